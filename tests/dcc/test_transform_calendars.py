"""Calendars, tariffs and gas ZCL commands built from the request (no conformance data):
each codec's output, its inverse, and its refusals."""

from __future__ import annotations

import datetime as dt

import pytest

from smarthydra.dcc.transform import DeviceType, Target, TransformError, transform
from smarthydra.dcc.transform.gas import (
    GasPrepaymentConfiguration,
    GasPrices,
    GasTariff,
    components,
    gas_date,
)
from smarthydra.dcc.transform.items import (
    BillingCalendar,
    ChannelMask,
    CreditChargeConfiguration,
    NamedScript,
    ScheduleEntry,
    bits,
    duis_date,
    duis_date_bytes,
    xs_date_bytes,
)
from smarthydra.dcc.transform.payload import decode_access_request, get_leaf
from smarthydra.dcc.transform.tariff import PrimaryPrices
from smarthydra.duis.request import CommandVariant, RequestId, ServiceRequest
from smarthydra.eui import Eui64
from smarthydra.gbcs.axdr import DataType
from smarthydra.gbcs.gbz import decode_gbz

SUPPLIER = Eui64.parse("90B3D51F30010000")
ESME = Target(DeviceType.ESME)
GSME = Target(DeviceType.GSME)
ISSUED = dt.datetime(2015, 1, 1, tzinfo=dt.UTC)
CRITICAL = CommandVariant.CRITICAL_TRANSFORM


def request(
    variant: str, body: dict[str, object], target: str = "00DB1234567890A0"
) -> ServiceRequest:
    rid = RequestId(SUPPLIER, Eui64.parse(target), 1000)
    return ServiceRequest(rid, SUPPLIER, "IS", variant, CRITICAL, body)


def date(year: int | None, month: int, day: int) -> dict[str, object]:
    return {
        "Year": {"SpecifiedYear": str(year)} if year else {"NonSpecifiedYear": {}},
        "Month": {"SpecifiedMonth": f"{month:02d}"},
        "DayOfMonth": {"SpecifiedDayOfMonth": f"{day:02d}"},
        "DayOfWeek": {"NonSpecifiedDayOfWeek": {}},
    }


def test_dates_and_wildcards() -> None:
    assert duis_date_bytes(date(None, 12, 25), "x") == bytes.fromhex("ffff0c19ff")
    last = {**date(2015, 2, 1), "DayOfMonth": {"LastDayOfMonth": {}}}
    assert duis_date_bytes(last, "x") == bytes.fromhex("07df02feff")
    assert duis_date(bytes.fromhex("07df02feff"))["DayOfMonth"] == {"LastDayOfMonth": {}}
    assert xs_date_bytes("65535-04-29Z", "x") == bytes.fromhex("ffff041dff")
    for bad in ("2015-13-01Z", "2015-01-01+01:00", "yesterday"):
        with pytest.raises(TransformError):
            xs_date_bytes(bad, "x")
    with pytest.raises(TransformError):
        duis_date_bytes({**date(2015, 1, 1), "Month": {"SpecifiedMonth": "13"}}, "x")


@pytest.mark.parametrize(
    ("calendar", "dates"),
    [
        ({"Daily": {}}, ["ffffffffff"]),
        ({"Weekly": "3"}, ["ffffffff03"]),
        ({"Monthly": "15"}, ["ffffff0fff"]),
        ({"Quarterly": {"DayOfMonth": "1", "BillingPeriodStartMonth": "2"}},
         ["ffff0201ff", "ffff0501ff", "ffff0801ff", "ffff0b01ff"]),
        ({"SixMonthly": {"DayOfMonth": "28", "BillingPeriodStartMonth": "9"}},
         ["ffff091cff", "ffff031cff"]),
        ({"Yearly": {"DayOfMonth": "5", "BillingPeriodStartMonth": "4"}}, ["ffff0405ff"]),
    ],
)  # fmt: skip
def test_billing_calendar_periodicities(calendar: dict[str, object], dates: list[str]) -> None:
    body: dict[str, object] = {
        "ElectricityBillingCalendar": {"BillingTime": "12:00:00Z", **calendar}
    }
    items = BillingCalendar().build(body)
    assert [i.value[1].value.hex() for i in items] == dates  # type: ignore[index, union-attr]
    parsed = BillingCalendar().parse(items)["ElectricityBillingCalendar"]
    assert isinstance(parsed, dict)
    assert {k: v for k, v in parsed.items() if k != "BillingTime"} == calendar


def test_billing_calendar_through_the_transform() -> None:
    body: dict[str, object] = {
        "ElectricityBillingCalendar": {"BillingTime": "00:00:00Z", "Monthly": "1"}
    }
    apdu = decode_access_request(transform(request("6.8", body), ESME).general_signing.payload)
    assert get_leaf(apdu, ("data", 0, 0, 1)).value == bytes.fromhex("ffffff01ff")
    with pytest.raises(TransformError):
        transform(request("6.8", {"ElectricityBillingCalendar": {"BillingTime": "x"}}), ESME)


def test_credit_charge_configuration_follows_the_flags() -> None:
    def entries(disabled: str, emergency: str, twin: bool) -> list[tuple[object, ...]]:
        body: dict[str, object] = {
            "Prepayment": {"SuspendDebtDisabled": disabled, "SuspendDebtEmergency": emergency}
        }
        codec = CreditChargeConfiguration(twin=twin)
        built = codec.build(body)
        assert codec.parse(built) == {
            "Prepayment/SuspendDebtDisabled": disabled,
            "Prepayment/SuspendDebtEmergency": emergency,
        }
        return [
            (i.value[0].value[4], i.value[1].value[4], i.value[2].value.data.hex())  # type: ignore[index, union-attr]
            for i in built
        ]

    single = entries("true", "false", False)
    assert (0, 1, "c0") in single and len(single) == 10
    assert len(entries("false", "true", True)) == 15
    with pytest.raises(TransformError):
        CreditChargeConfiguration().build({"Prepayment": {"SuspendDebtDisabled": "maybe"}})


def test_schedule_entries_check_days_and_special_days() -> None:
    entry = ScheduleEntry(bytes(6), NamedScript("Script", (("START", 32),)), "SpecialDay")
    item: dict[str, object] = {
        "Script": "START",
        "SpecialDaysApplicability": {"SpecialDayApplicability": {"SpecialDayID": "2"}},
        "DaysOfWeekApplicability": {"DayOfWeekApplicability": [{"DayOfWeekID": "Sunday"}]},
        "ScheduleDatesAndTime": {
            "SwitchTime": "09:30:00Z",
            "StartDate": "2015-01-01Z",
            "EndDate": "65535-12-31Z",
        },
    }
    body: dict[str, object] = {"SpecialDay": [{}, {}]}
    data = entry.to_data(item, 0, body)
    fields = data.value
    assert isinstance(fields, list)
    assert bits(fields[6].value) == [False] * 6 + [True]  # type: ignore[arg-type]
    assert bits(fields[7].value) == [False, True]  # type: ignore[arg-type]
    assert entry.from_data(data, 0, [data])["Script"] == "START"
    with pytest.raises(TransformError, match="not in the table"):
        entry.to_data(item, 0, {"SpecialDay": [{}]})
    with pytest.raises(TransformError, match="day of the week"):
        entry.to_data(
            {
                **item,
                "DaysOfWeekApplicability": {"DayOfWeekApplicability": {"DayOfWeekID": "Funday"}},
            },
            0,
            body,
        )
    with pytest.raises(TransformError):
        entry.to_data({**item, "Script": "PAUSE"}, 0, body)


def test_primary_prices_fill_the_whole_table() -> None:
    body: dict[str, object] = {
        "PriceElements": {
            "ElectricityPriceElements": {
                "HybridTariff": {
                    "BlockPrices": {"@index": "2", "BlockPrice": {"@index": "3", "#text": "77"}},
                    "TOUPrice": [{"@index": "1", "#text": "10"}, {"@index": "48", "#text": "-5"}],
                }
            }
        }
    }
    items = PrimaryPrices().build(body)
    table = {i.value[0].value[0]: i.value[1].value for i in items}  # type: ignore[index, union-attr]
    assert len(items) == 80 and table[1] == 10 and table[48] == -5 and table[0xC2] == 77
    parsed = PrimaryPrices().parse(items)
    assert "PriceElements/ElectricityPriceElements/HybridTariff" in parsed
    with pytest.raises(TransformError, match="one of"):
        PrimaryPrices().build({"PriceElements": {"ElectricityPriceElements": {}}})
    bad: dict[str, object] = {
        "PriceElements": {
            "ElectricityPriceElements": {
                "TOUTariff": {"TOUPrice": {"@index": "1", "#text": "40000"}}
            }
        }
    }
    with pytest.raises(TransformError, match="long"):
        PrimaryPrices().build(bad)


def test_channel_mask() -> None:
    mask = ChannelMask("Lower", 29, 27, 8)
    leaf = mask.build({"Lower": {"Channel28": {}, "Channel34": {}}})
    assert leaf.type is DataType.BIT_STRING
    assert mask.parse(leaf) == {"Lower": {"Channel28": {}, "Channel34": {}}}
    with pytest.raises(TransformError, match="not on this page"):
        mask.build({"Lower": {"Channel3": {}}})


GAS_PRICE_BODY: dict[str, object] = {
    "PriceElements": {
        "GasPriceElements": {
            "CurrencyUnits": "GBP",
            "StandingCharge": "22465",
            "TOUTariff": {"TOUPrice": [{"@index": "1", "#text": "9600"}]},
        }
    }
}


def test_gas_prices_round_trip_and_refusals() -> None:
    codec = GasPrices()
    payload = codec.build(GAS_PRICE_BODY, None, 1, ISSUED)
    assert decode_gbz(payload).encode() == payload
    assert codec.parse(payload) == (GAS_PRICE_BODY, None)
    assert codec.issued(payload) == ISSUED
    with pytest.raises(TransformError, match="time of issue"):
        codec.build(GAS_PRICE_BODY, None, 1)
    euro: dict[str, object] = {"PriceElements": {"GasPriceElements": {"CurrencyUnits": "USD"}}}
    with pytest.raises(TransformError, match="CurrencyUnits"):
        codec.build(euro, None, 1, ISSUED)


def test_gas_tariff_calendar_commands() -> None:
    week = {
        "WeekName": "1",
        "ReferencedDayName": [{"@index": str(d), "#text": "1"} for d in range(1, 8)],
    }
    gas_day = {
        "GasYearWithWildcards": {"NonSpecifiedYear": {}},
        "GasMonthWithWildcards": {"SpecifiedMonth": "3"},
        "GasDayOfMonthWithWildcards": {"SpecifiedDayOfMonth": "20"},
        "GasDayOfWeekWithWildcards": {"NonSpecifiedDayOfWeek": {}},
    }
    assert gas_date(gas_day, "x") == bytes.fromhex("ff0314ff")
    body: dict[str, object] = {
        "GasTariffElements": {
            "SwitchingTable": {
                "DayProfiles": {"DayProfile": {"DayName": "1", "TOUTariffAction": "2"}},
                "WeekProfiles": {"WeekProfile": week},
                "Seasons": {"Season": {"SeasonStartDate": gas_day, "ReferencedWeekName": "1"}},
            },
            "SpecialDays": {},
            "ThresholdMatrix": {"BlockThreshold": {"@index": "1", "#text": "1"}},
        },
        **GAS_PRICE_BODY,
    }
    payload = GasTariff().build(body, dt.datetime(2030, 1, 1, tzinfo=dt.UTC), 1, ISSUED)
    assert len(components(payload)) == 7  # calendar, day, week, seasons, special days, 2 prices
    parsed, execution = GasTariff().parse(payload)
    assert execution == dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert parsed["PriceElements"] == GAS_PRICE_BODY["PriceElements"]
    with pytest.raises(TransformError):
        GasTariff().build({"GasTariffElements": {}}, None, 1, ISSUED)


def test_gas_prepayment_configuration_refuses_bad_actions() -> None:
    body: dict[str, object] = {
        "UpdatePrepayConfigGas": {
            "DebtRecoveryRateCap": "1",
            "EmergencyCreditLimit": "1",
            "EmergencyCreditThreshold": "1",
            "LowCreditThreshold": "1",
            "GasNonDisablementCalendar": {
                "DayProfiles": {
                    "GasNonDisablementDayProfile": {
                        "TimeStartAction": {
                            "StartTime": "00:00:00Z",
                            "NonDisablementAction": "PAUSE",
                        },
                        "GasDayName": "1",
                    }
                }
            },
            "MaxMeterBalance": "1",
            "MaxCreditThreshold": "1",
        }
    }
    with pytest.raises(TransformError, match="START or STOP"):
        GasPrepaymentConfiguration().build(body, None, 1, ISSUED)


def test_gas_price_update_through_the_transform_is_a_precommand() -> None:
    result = transform(request("1.2.1", GAS_PRICE_BODY, "00DB1234567890A1"), GSME, issued_at=ISSUED)
    assert result.critical and result.use_case == "GCS01b"
    assert result.general_signing.signature is None
