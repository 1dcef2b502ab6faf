"""The household demand generator: deterministic, seasonal, with its variants."""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from smarthydra.sim.household import SLOTS, Household, days, generate_day, occupied, winter_factor

WINTER = dt.date(2026, 1, 15)
SUMMER = dt.date(2026, 7, 15)


def test_same_seed_and_date_same_day() -> None:
    house = Household.sample(7)
    assert generate_day(house, WINTER) == generate_day(house, WINTER)
    assert generate_day(house, WINTER) != generate_day(house, WINTER + dt.timedelta(days=1))


def test_a_typical_home_uses_a_plausible_amount() -> None:
    totals = [generate_day(Household(seed=s), WINTER).total_import_wh for s in range(20)]
    assert 5_000 < sum(totals) / len(totals) < 20_000  # GB typical: ~8-10 kWh a day


def test_gas_heating_follows_the_season() -> None:
    house = Household(seed=1)
    assert sum(generate_day(house, WINTER).gas_litres) > 3 * sum(generate_day(house, SUMMER).gas_litres)
    assert winter_factor(WINTER) > 0.99 and winter_factor(SUMMER) < 0.01


def test_electric_heating_moves_heat_to_electricity() -> None:
    gas_home = Household(seed=2)
    electric = dataclasses.replace(gas_home, electric_heating=True)
    assert sum(generate_day(electric, WINTER).gas_litres) == 0
    assert generate_day(electric, WINTER).total_import_wh > generate_day(gas_home, WINTER).total_import_wh


def test_pv_exports_at_midday_in_summer_and_ev_charges_at_night() -> None:
    solar = Household(seed=3, solar_pv_kwp=4.0)
    day = generate_day(solar, SUMMER)
    assert sum(day.export_wh[22:30]) > 0 and sum(day.export_wh[:7]) == 0  # no sun before 03:30
    ev = Household(seed=4, electric_vehicle=True)
    nights = [sum(d.import_wh[2:12]) for d in days(ev, WINTER, 14)]
    assert max(nights) > 10_000  # a 7 kW charge


def test_occupancy_weekday_and_weekend() -> None:
    worker = Household(seed=5)
    monday, saturday = dt.date(2026, 1, 12), dt.date(2026, 1, 17)
    assert not occupied(worker, monday, 24) and occupied(worker, saturday, 24)


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.dates(min_value=dt.date(2020, 1, 1),
                                                            max_value=dt.date(2040, 12, 31)))
def test_any_household_any_day_is_well_formed(seed: int, date: dt.date) -> None:
    day = generate_day(Household.sample(seed), date)
    for series in (day.import_wh, day.export_wh, day.reactive_varh, day.gas_litres, day.voltage_v):
        assert len(series) == SLOTS and min(series) >= 0
    assert all(200 < v < 260 for v in day.voltage_v)
