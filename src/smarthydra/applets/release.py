"""What the applets compute from raw data before anything leaves the home (pure functions).

The applets and the privacy measurement (:mod:`smarthydra.sim.privacy`) call the same
functions, so what the measurement says a party receives is what the applet sends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from smarthydra.applets.consent import Granularity

SLOTS = 48
#: statutory supply voltage limits in GB: 230 V +10 % / -6 %
VOLTAGE_LOW = 216
VOLTAGE_HIGH = 253


def aggregate(first_day: int, days: Sequence[Sequence[int]], granularity: Granularity
              ) -> list[int]:
    """Consecutive days of half-hourly values summed to ``granularity`` (months: calendar)."""
    if granularity is Granularity.MONTHLY:
        months: dict[tuple[int, int], int] = {}
        for offset, day in enumerate(days):
            date = dt.date.fromordinal(first_day + offset)
            months[(date.year, date.month)] = months.get((date.year, date.month), 0) + sum(day)
        return [months[key] for key in sorted(months)]
    step = int(granularity)
    out: list[int] = []
    for day in days:
        out.extend(sum(day[i:i + step]) for i in range(0, SLOTS, step))
    return out


def insights(days: Sequence[Sequence[int]]) -> dict[str, int]:
    """Appliance and usage insights from half-hourly import (Wh): what an energy agent advises on.

    ``baseload_w``: the always-on load (the 10th-percentile half hour, as watts);
    ``evening_peak_share``: percent of energy used 16:00-19:00; ``night_ev_kwh``: energy above
    baseload between 00:00 and 05:00 in half hours over 2.5 kWh (an EV charging);
    ``high_load_half_hours``: half hours over 1.5 kWh (cooking, heating, washing).
    """
    flat = sorted(v for day in days for v in day)
    if not flat:
        return {"baseload_w": 0, "evening_peak_share": 0, "night_ev_kwh": 0,
                "high_load_half_hours": 0}
    baseload_wh = flat[len(flat) // 10]
    total = sum(flat) or 1
    evening = sum(v for day in days for v in day[32:38])
    night_ev = sum(max(0, v - baseload_wh) for day in days for v in day[0:10] if v > 2500)
    return {
        "baseload_w": baseload_wh * 2,
        "evening_peak_share": round(100 * evening / total),
        "night_ev_kwh": night_ev // 1000,
        "high_load_half_hours": sum(1 for v in flat if v > 1500),
    }


def power_quality(day: int, voltages: Sequence[int]) -> dict[str, Any]:
    """A day's power-quality summary for the distributor: no consumption, no time of use.

    Only the voltage extremes, the average, how many half hours were outside the statutory
    limits and how many had no supply. (The simulated meters have no harmonics register,
    so no THD figure is made up here.)
    """
    live = [v for v in voltages if v > 0]
    return {
        "day": day,
        "v-min": min(live) if live else 0,
        "v-max": max(live) if live else 0,
        "v-mean": round(sum(live) / len(live)) if live else 0,
        "under": sum(1 for v in live if v < VOLTAGE_LOW),
        "over": sum(1 for v in live if v > VOLTAGE_HIGH),
        "outage-half-hours": sum(1 for v in voltages if v == 0),
    }
