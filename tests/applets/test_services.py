"""Power quality for the distributor, bill disputes for the ombudsman, the host's errors."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smarthydra.applets.consent import Granularity
from smarthydra.applets.hub import (
    AGENT,
    AUDIT,
    BILLING,
    METER_DATA,
    POWER_QUALITY,
    PRICE_COMPARISON,
    TELEHEALTH,
    HydraCommandError,
)
from smarthydra.applets.release import aggregate, power_quality
from smarthydra.applets.tariff import rising_block
from smarthydra.sim.hydra import HydraHome
from tests.applets.helpers import day, home_with_days


@pytest.fixture(scope="module")
def home() -> HydraHome:
    return home_with_days(35)


def test_power_quality_has_no_consumption(home: HydraHome) -> None:
    payload = home.parties.distributor.open(home.host.power_quality(day(4)))
    assert set(payload) == {"type", "hub", "day", "v-min", "v-max", "v-mean", "under", "over",
                            "outage-half-hours"}
    volts = home.truth[day(4)].voltage_v
    assert payload["v-min"] == min(volts) and payload["v-max"] == max(volts)


def test_outages_and_limits_counted() -> None:
    summary = power_quality(1, [0, 0, 210, 260] + [240] * 44)
    assert summary["outage-half-hours"] == 2 and summary["under"] == 1 and summary["over"] == 1
    assert power_quality(1, [0] * 48)["v-min"] == 0


def test_dispute_justified_without_raw_data_to_supplier(home: HydraHome) -> None:
    supplier = home.parties.supplier
    home.host.set_tariff(supplier.tariff_message(rising_block()))
    bill = supplier.receive_bill(home.host.close_period(day(0), day(30)))
    justification, verdict = home.host.dispute(day(0), day(30))
    opened = home.parties.ombudsman.check_justification(justification)
    assert opened["adds-up"] and opened["agrees"] and opened["billed-pence"] == bill.amount_pence
    assert sum(opened["breakdown"]["energy-wh"].values()) == sum(
        sum(home.truth[day(n)].import_wh) for n in range(31))
    outcome = supplier.receive_verdict(verdict, home.setup.hub)
    assert outcome["agrees"] is True
    assert set(outcome) == {"type", "hub", "meter", "period", "billed-pence", "agrees"}
    with pytest.raises(HydraCommandError) as refused:  # no bill was made for that period
        home.host.dispute(day(1), day(30))
    assert refused.value.sw == 0x6A88


def test_every_applet_refuses_garbage(home: HydraHome) -> None:
    for slot in (METER_DATA, BILLING, AUDIT, POWER_QUALITY, AGENT, PRICE_COMPARISON, TELEHEALTH):
        with pytest.raises(HydraCommandError) as refused:
            home.host.call(slot, 0xEE)
        assert refused.value.sw == 0x6D00
    with pytest.raises(HydraCommandError):
        home.host.call(METER_DATA, 0x10, b"\x00" * 10)
    with pytest.raises(ValueError):
        home.host.push_day(dt.date(2026, 1, 1), [0] * 47, [240] * 48)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 0xFF), st.binary(max_size=300), st.integers(0, 1))
def test_fuzz_commands_answer_status_words(ins: int, data: bytes, p1: int) -> None:
    home = _fuzz_home()
    for slot in (METER_DATA, BILLING, TELEHEALTH, AGENT):
        try:
            home.host.call(slot, ins, data, p1=p1)
        except HydraCommandError as exc:
            assert exc.sw != 0x6F00, exc  # never an applet crash


_FUZZ: list[HydraHome] = []


def _fuzz_home() -> HydraHome:
    if not _FUZZ:
        _FUZZ.append(home_with_days(2))
    return _FUZZ[0]


def test_aggregate_granularities() -> None:
    days = [[1] * 48, [2] * 48]
    first = dt.date(2026, 1, 31).toordinal()
    assert aggregate(first, days, Granularity.HOURLY) == [2] * 24 + [4] * 24
    assert aggregate(first, days, Granularity.DAILY) == [48, 96]
    assert aggregate(first, days, Granularity.MONTHLY) == [48, 96]
