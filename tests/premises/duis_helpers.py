"""Use cases on the full DUIS path, from XML to XML, through the real DataCommsCompany.

:class:`DuisPath` is the DCC user's side (:class:`smarthydra.sim.home.DuisUser` with the
conformance DUIS schema): it writes the DUIS request as XML from an XSD-shaped body
(:func:`~smarthydra.duis.xml.build_request`), validates it against the DUIS 5.4 schema, reads
it back the way the DCC's gateway does, submits it to the world's DCC (CV 1, or CV 4 then the
signed pre-command as CV 5 for a critical service), and turns the device's GBCS answer into
the DUIS ``ResponseMessage`` the DCC sends back (validated too). The GBCS inside that response
is then parsed with our GBCS parser and its MAC or signature checked with the device's keys.

The bodies below are written here, element by element in the schema's order; nothing is
derived from RTDS commands.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from smarthydra.duis.xml import DuisSchema
from smarthydra.sim.home import DuisRoundTrip, DuisUser, xs_datetime
from smarthydra.sim.world import World

SUPPLIER_ROLE = "IS"
GAS_SUPPLIER_ROLE = "GS"


def read_log_period(start: dt.datetime, end: dt.datetime) -> dict[str, object]:
    return {"ReadLogPeriod": {"StartDateTime": xs_datetime(start), "EndDateTime": xs_datetime(end)}}


def indexed(values: list[int] | list[str]) -> list[dict[str, object]]:
    """A DUIS list whose items carry an ``index`` attribute (1-based) and a text value."""
    return [{"@index": str(i), "#text": str(v)} for i, v in enumerate(values, start=1)]


def _date(year: int | None, month: int, day: int) -> dict[str, object]:
    return {
        "Year": {"SpecifiedYear": str(year)} if year else {"NonSpecifiedYear": {}},
        "Month": {"SpecifiedMonth": f"{month:02d}"},
        "DayOfMonth": {"SpecifiedDayOfMonth": f"{day:02d}"},
        "DayOfWeek": {"NonSpecifiedDayOfWeek": {}},
    }


def _week(name: int, days: list[int]) -> dict[str, object]:
    return {"WeekName": str(name), "ReferencedDayName": indexed(days)}


def electricity_tou_tariff(prices: list[int], standing_charge: int) -> dict[str, object]:
    """SRV 1.1.1 body: two TOU rates on weekdays (1 from 00:00, 2 from 07:00), rate 1 at
    weekends, one season from 1 January 2026, no block thresholds."""
    return {
        "ElecTariffElements": {
            "CurrencyUnits": "GBP",
            "SwitchingTable": {
                "DayProfiles": {"DayProfile": [
                    {"DayName": "1", "ProfileSchedule": [
                        {"StartTime": "00:00:00.00Z", "TOUTariffAction": "1"},
                        {"StartTime": "07:00:00.00Z", "TOUTariffAction": "2"}]},
                    {"DayName": "2", "ProfileSchedule": [
                        {"StartTime": "00:00:00.00Z", "TOUTariffAction": "1"}]},
                ]},
                "WeekProfiles": {"WeekProfile": [_week(1, [1, 1, 1, 1, 1, 2, 2])]},
                "Seasons": {"Season": [{"SeasonName": "all", "SeasonStartDate": _date(2026, 1, 1),
                                        "ReferencedWeekName": "1"}]},
            },
            "SpecialDays": {"SpecialDay": [{"Date": _date(None, 12, 25),
                                            "ReferencedDayName": "2"}]},
            "ThresholdMatrix": {"Thresholds": [
                {"@index": str(i), "BlockThreshold": indexed([4294967295])} for i in range(1, 9)]},
        },
        "PriceElements": {"ElectricityPriceElements": {
            "StandingCharge": str(standing_charge), "StandingChargeScale": "-5",
            "PriceScale": "-5", "TOUTariff": {"TOUPrice": indexed(prices)}}},
    }


def electricity_block_prices(prices: list[int], standing_charge: int) -> dict[str, object]:
    """SRV 1.2.1 body: block prices for the primary element."""
    return {"PriceElements": {"ElectricityPriceElements": {
        "StandingCharge": str(standing_charge), "StandingChargeScale": "-5", "PriceScale": "-5",
        "BlockTariff": {"BlockPrices": [{"@index": "1", "BlockPrice": indexed(prices)}]}}}}


def secondary_tou_tariff(prices: list[int]) -> dict[str, object]:
    """SRV 1.1.2 body: the secondary element's switching table and its four TOU prices."""
    return {
        "SwitchingTable": {
            "DayProfiles": {"DayProfile": [
                {"DayName": "1", "ProfileSchedule": [
                    {"StartTime": "00:00:00.00Z", "TOUTariffAction": "1"},
                    {"StartTime": "19:00:00.00Z", "TOUTariffAction": "3"}]}]},
            "WeekProfiles": {"WeekProfile": [_week(1, [1] * 7)]},
            "Seasons": {"Season": [{"SeasonName": "all", "SeasonStartDate": _date(2026, 1, 1),
                                    "ReferencedWeekName": "1"}]},
        },
        "SpecialDays": {"SpecialDay": []},
        "PriceElements": {"PriceScale": "-5", "ElectricityPriceElement": indexed(prices)},
    }


def secondary_prices(prices: list[int]) -> dict[str, object]:
    """SRV 1.2.2 body."""
    return {"PriceElements": {"PriceScale": "-5", "ElectricityPriceElement": indexed(prices)}}


def gas_block_tariff(prices: list[int], thresholds: list[int], standing_charge: int,
                     ) -> dict[str, object]:
    """SRV 1.1.1 body for a gas meter: one block-tariff day all year, thresholds in dm3."""
    return {
        "GasTariffElements": {
            "SwitchingTable": {
                "DayProfiles": {"DayProfile": [{"DayName": "1", "BlockTariff": {}}]},
                "WeekProfiles": {"WeekProfile": [_week(1, [1] * 7)]},
                "Seasons": {"Season": [{"SeasonStartDate": {
                    "GasYearWithWildcards": {"NonSpecifiedYear": {}},
                    "GasMonthWithWildcards": {"SpecifiedMonth": "1"},
                    "GasDayOfMonthWithWildcards": {"SpecifiedDayOfMonth": "1"},
                    "GasDayOfWeekWithWildcards": {"NonSpecifiedDayOfWeek": {}}},
                    "ReferencedWeekName": "1"}]},
            },
            "SpecialDays": {"SpecialDay": []},
            "ThresholdMatrix": {"BlockThreshold": indexed(thresholds)},
        },
        "PriceElements": {"GasPriceElements": {
            "CurrencyUnits": "GBP", "StandingCharge": str(standing_charge),
            "BlockTariff": {"BlockPrice": indexed(prices),
                            "NumberOfThresholds": str(len(thresholds))}}},
    }


def gas_block_prices(prices: list[int], standing_charge: int) -> dict[str, object]:
    """SRV 1.2.1 body for a gas meter."""
    return {"PriceElements": {"GasPriceElements": {
        "CurrencyUnits": "GBP", "StandingCharge": str(standing_charge),
        "BlockTariff": {"BlockPrice": indexed(prices),
                        "NumberOfThresholds": str(len(prices) - 1)}}}}


def prepayment_mode(threshold: int, *, suspend_disabled: bool = True,
                    suspend_emergency: bool = True) -> dict[str, object]:
    """SRV 1.6 body: to prepayment, with the disablement threshold."""
    return {"Prepayment": {"SuspendDebtDisabled": str(suspend_disabled).lower(),
                           "SuspendDebtEmergency": str(suspend_emergency).lower(),
                           "DisablementThreshold": str(threshold)}}


CREDIT_MODE: dict[str, object] = {"Credit": {}}


def electricity_prepay_configuration(emergency_limit: int, emergency_threshold: int,
                                     low_credit: int, cap: int, max_balance: int = 5000000,
                                     max_credit: int = 1000000) -> dict[str, object]:
    """SRV 2.1 body for an ESME: emergency credit, low-credit threshold, recovery cap and a
    non-disablement calendar with one special day."""
    return {"UpdatePrepayConfigElectricity": {
        "DebtRecoveryRateCap": str(cap),
        "EmergencyCreditLimit": str(emergency_limit),
        "EmergencyCreditThreshold": str(emergency_threshold),
        "LowCreditThreshold": str(low_credit),
        "ElectricityNonDisablementCalendar": {
            "ElectricitySpecialDays": {"SpecialDay": [{"@index": "1", "Date": _date(None, 12, 25)}]},
            "ElectricityNonDisablementSchedule": [
                {"NonDisablementScript": script, "SpecialDaysApplicability": {},
                 "DaysOfWeekApplicability": {"DayOfWeekApplicability": [
                     {"DayOfWeekID": "Saturday"}, {"DayOfWeekID": "Sunday"}]},
                 "ScheduleDatesAndTime": {"SwitchTime": at, "StartDate": "2026-01-01Z",
                                          "EndDate": "2026-12-31Z"}}
                for script, at in (("START", "00:00:00.00Z"), ("STOP", "09:30:00.00Z"))],
        },
        "MaxMeterBalance": str(max_balance),
        "MaxCreditThreshold": str(max_credit),
    }}


DuisOutcome = DuisRoundTrip


@dataclass
class DuisPath(DuisUser):
    """:class:`~smarthydra.sim.home.DuisUser` with the DUIS schema from the conformance data."""

    @classmethod
    def load(cls, world: World, duis_dir: Path) -> DuisPath:
        return cls(world, DuisSchema.load(duis_dir))


def _gas_date(year: int | None, month: int, day: int) -> dict[str, object]:
    return {
        "GasYearWithWildcards": {"SpecifiedYear": str(year)} if year else {"NonSpecifiedYear": {}},
        "GasMonthWithWildcards": {"SpecifiedMonth": str(month)},
        "GasDayOfMonthWithWildcards": {"SpecifiedDayOfMonth": str(day)},
        "GasDayOfWeekWithWildcards": {"NonSpecifiedDayOfWeek": {}},
    }


def gas_prepay_configuration(emergency_limit: int, emergency_threshold: int, low_credit: int,
                             cap: int, max_balance: int = 25000000,
                             max_credit: int = 25000000) -> dict[str, object]:
    """SRV 2.1 body for a GSME: credit thresholds and a non-disablement calendar (no
    disablement at weekends before 08:00)."""
    return {"UpdatePrepayConfigGas": {
        "DebtRecoveryRateCap": str(cap),
        "EmergencyCreditLimit": str(emergency_limit),
        "EmergencyCreditThreshold": str(emergency_threshold),
        "LowCreditThreshold": str(low_credit),
        "GasNonDisablementCalendar": {
            "DayProfiles": {"GasNonDisablementDayProfile": [
                {"TimeStartAction": [
                    {"StartTime": "00:00:00.00Z", "NonDisablementAction": "START"},
                    {"StartTime": "08:00:00.00Z", "NonDisablementAction": "STOP"}],
                 "GasDayName": "1"},
                {"TimeStartAction": [
                    {"StartTime": "00:00:00.00Z", "NonDisablementAction": "STOP"}],
                 "GasDayName": "2"}]},
            "WeekProfiles": {"WeekProfile": [_week(1, [2, 2, 2, 2, 2, 1, 1])]},
            "SeasonProfiles": {"Season": [{"SeasonStartDate": _gas_date(2026, 1, 1),
                                           "ReferencedWeekName": "1"}]},
            "SpecialDays": {"SpecialDay": [{"Date": _gas_date(None, 12, 25),
                                            "ReferencedDayName": "1"}]},
        },
        "MaxMeterBalance": str(max_balance),
        "MaxCreditThreshold": str(max_credit),
    }}
