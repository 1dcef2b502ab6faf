"""A seeded, deterministic, appliance-level household demand generator.

A household is its occupants and appliances; a day's demand follows from who is at home when
(weekday / weekend occupancy), the season (heating, lighting, solar), and each appliance's
habits. Variants: electric (storage / heat-pump) heating instead of gas, an electric vehicle
charged at night, and rooftop PV exporting at midday. The same seed and date always give the
same day, so simulations and tests are reproducible.

Output per half hour: active import and export (Wh), reactive import (varh), gas (litres),
and the supply voltage (V).
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field

SLOTS = 48


@dataclass(frozen=True)
class Appliance:
    name: str
    watts: int
    slots: int  # how many half hours one use lasts
    uses_per_day: float
    hours: tuple[int, ...]  # hours of the day it is used in, when someone is at home
    needs_occupant: bool = True
    power_factor: float = 0.95


COMMON_APPLIANCES: tuple[Appliance, ...] = (
    Appliance("kettle", 2800, 1, 3.0, (7, 8, 10, 13, 16, 18, 20)),
    Appliance("cooker", 2000, 2, 0.9, (17, 18, 19)),
    Appliance("microwave", 900, 1, 0.6, (12, 13, 18, 19)),
    Appliance("washing machine", 500, 3, 0.5, (9, 10, 18, 19)),
    Appliance("tumble dryer", 2200, 2, 0.25, (11, 19, 20)),
    Appliance("dishwasher", 1200, 3, 0.6, (20, 21)),
    Appliance("television", 120, 6, 1.0, (18, 19, 20)),
    Appliance("computer", 150, 4, 0.8, (9, 14, 19, 20)),
    Appliance("shower pump", 400, 1, 0.8, (7, 8)),
)


@dataclass(frozen=True)
class Household:
    seed: int
    occupants: int = 2
    works_from_home: bool = False
    electric_heating: bool = False
    electric_vehicle: bool = False
    solar_pv_kwp: float = 0.0
    appliances: tuple[Appliance, ...] = COMMON_APPLIANCES

    @classmethod
    def sample(cls, seed: int) -> Household:
        """A household drawn at random (deterministically from the seed)."""
        rng = random.Random(seed)
        return cls(
            seed=seed,
            occupants=rng.choice((1, 2, 2, 3, 4, 5)),
            works_from_home=rng.random() < 0.3,
            electric_heating=rng.random() < 0.1,
            electric_vehicle=rng.random() < 0.15,
            solar_pv_kwp=rng.choice((0.0, 0.0, 0.0, 0.0, 3.0, 4.0)),
        )


@dataclass
class DayDemand:
    date: dt.date
    import_wh: list[int] = field(default_factory=lambda: [0] * SLOTS)
    export_wh: list[int] = field(default_factory=lambda: [0] * SLOTS)
    reactive_varh: list[int] = field(default_factory=lambda: [0] * SLOTS)
    gas_litres: list[int] = field(default_factory=lambda: [0] * SLOTS)
    voltage_v: list[int] = field(default_factory=lambda: [240] * SLOTS)

    @property
    def total_import_wh(self) -> int:
        return sum(self.import_wh)


def winter_factor(date: dt.date) -> float:
    """1 in mid-winter (mid January), 0 in mid-summer."""
    day = date.timetuple().tm_yday
    return (1 + math.cos(2 * math.pi * (day - 15) / 365.25)) / 2


def daylight_hours(date: dt.date) -> tuple[float, float]:
    """Sunrise and sunset (hours, UTC) for the south of England."""
    summer = 1 - winter_factor(date)
    half_day = 4.0 + 4.3 * summer  # ~8 h in winter, ~16.6 h in summer
    return 12.2 - half_day, 12.2 + half_day


def occupied(household: Household, date: dt.date, slot: int) -> bool:
    hour = slot / 2
    if household.works_from_home or date.weekday() >= 5:
        return 7 <= hour < 23.5
    return 6.5 <= hour < 8.5 or 17 <= hour < 23.5


def generate_day(household: Household, date: dt.date) -> DayDemand:
    rng = random.Random(household.seed * 1_000_003 + date.toordinal())
    day = DayDemand(date)
    load_w = [0.0] * SLOTS
    reactive_w = [0.0] * SLOTS
    winter = winter_factor(date)
    sunrise, sunset = daylight_hours(date)
    people = household.occupants

    for slot in range(SLOTS):
        base = 90 + 25 * people  # fridge-freezer, standby, router
        if occupied(household, date, slot):
            hour = slot / 2
            if hour < sunrise + 0.5 or hour > sunset - 0.5:
                base += 60 + 30 * people  # lighting
        load_w[slot] += base
        reactive_w[slot] += base * 0.3

    for appliance in household.appliances:
        expected = appliance.uses_per_day * (0.6 + 0.2 * people)
        uses = int(expected) + (rng.random() < expected - int(expected))
        for _ in range(uses):
            hour = rng.choice(appliance.hours)
            start = min(SLOTS - appliance.slots, hour * 2 + rng.randrange(2))
            if appliance.needs_occupant and not occupied(household, date, start):
                continue
            for slot in range(start, start + appliance.slots):
                load_w[slot] += appliance.watts * rng.uniform(0.8, 1.1)
                reactive_w[slot] += appliance.watts * (1 - appliance.power_factor)

    heat_demand_w = (3000 + 600 * people) * winter  # space heating when occupied, scaled by season
    for slot in range(SLOTS):
        heating = heat_demand_w * (1.0 if occupied(household, date, slot) else 0.3)
        if household.electric_heating:
            load_w[slot] += heating / 3.0  # heat pump, COP ~3
        else:
            # gas: litres of gas per half hour at ~10.5 kWh per m3, 90 % boiler efficiency
            day.gas_litres[slot] = int(heating * 0.5 / 0.9 / 10.5)

    if household.electric_vehicle and rng.random() < 0.45:
        start = rng.choice((2, 3, 4))  # 01:00-02:00, off-peak
        for slot in range(start, start + rng.choice((4, 6, 8))):
            load_w[slot] += 7000

    cloud = rng.uniform(0.3, 1.0)
    for slot in range(SLOTS):
        hour = slot / 2 + 0.25
        solar_w = 0.0
        if household.solar_pv_kwp and sunrise < hour < sunset:
            elevation = math.sin(math.pi * (hour - sunrise) / (sunset - sunrise))
            # 0.6: irradiance below 1 kW/m2 and system losses, even at noon in summer
            solar_w = (household.solar_pv_kwp * 600 * elevation * cloud
                       * (0.4 + 0.6 * (1 - winter)))
        net = load_w[slot] - solar_w
        day.import_wh[slot] = max(0, int(net / 2))
        day.export_wh[slot] = max(0, int(-net / 2))
        day.reactive_varh[slot] = int(reactive_w[slot] / 2)
        # the voltage drops under the street's evening peak and rises with local export
        evening = 1.0 if 34 <= slot <= 40 else 0.0
        day.voltage_v[slot] = round(241 - 6 * evening - net / 2500 + rng.gauss(0, 1.2))
    return day


def days(household: Household, start: dt.date, count: int) -> list[DayDemand]:
    return [generate_day(household, start + dt.timedelta(days=n)) for n in range(count)]
