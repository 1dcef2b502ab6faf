"""The hub reads the meter's half-hourly profile and voltages over the HAN (ECS22b/ECS23 objects)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smarthydra.gbcs.xdlms import AccessResponse, decode_xdlms
from smarthydra.sim.household import SLOTS, generate_day
from smarthydra.sim.hydra import (
    HydraHome,
    HydraParties,
    MeterFeed,
    MeterReadError,
    day_from_profile_read,
    profile_read,
)

JAN1 = dt.date(2026, 1, 1)


def test_the_days_read_over_the_han_equal_the_household_demand() -> None:
    home = HydraHome.create(HydraParties.create())
    for n in range(3):
        date = JAN1 + dt.timedelta(days=n)
        demand = generate_day(home.household, date)
        home.meter.run_day(date, demand)
        imports, volts = home.read_meter(date)
        assert imports == list(demand.import_wh) and volts == list(demand.voltage_v)
    assert home.meter.reads == 3
    # the read went through the CHF applet's link security: the meter is in the device log
    assert home.hub.in_device_log(home.meter.eui)


def test_a_meter_not_on_the_han_gives_no_answer() -> None:
    home = HydraHome.create(HydraParties.create())
    home.hub.han.pop(home.meter.eui)
    home.meter.run_day(JAN1, generate_day(home.household, JAN1))
    with pytest.raises(MeterReadError):
        home.read_meter(JAN1)


def test_a_short_or_refused_answer_is_an_error() -> None:
    meter = MeterFeed()
    household = HydraHome.create(HydraParties.create()).household
    meter.run_day(JAN1, generate_day(household, JAN1))
    answer = meter.receive(profile_read(JAN1, 1).encode())
    assert answer is not None
    imports, _ = day_from_profile_read(JAN1, answer)
    assert len(imports) == SLOTS
    with pytest.raises(MeterReadError):  # a day the meter has no data for
        day_from_profile_read(JAN1 + dt.timedelta(days=5), meter.receive(
            profile_read(JAN1 + dt.timedelta(days=5), 2).encode()) or b"")
    response = decode_xdlms(answer)
    assert isinstance(response, AccessResponse)
    with pytest.raises(MeterReadError):
        day_from_profile_read(JAN1, b"\x00")
    assert meter.receive(b"not xdlms") is None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80))
def test_fuzz_meter_answers(answer: bytes) -> None:
    try:
        imports, volts = day_from_profile_read(JAN1, answer)
    except MeterReadError:
        return
    assert len(imports) == len(volts) == SLOTS
