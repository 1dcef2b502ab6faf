"""The home: simulated meter-days per second on one core.

One meter-day is: a day of appliance-level household demand (48 half hours), fed into the
ESME's registers, TOU / block registers, profile and voltage log; the end-of-day daily log;
and the GBCS daily-log read (ECS21a) answered end to end: ACB-MAC'd command over the WAN,
the hub's virtual terminal and CHF applet (HAN link security both ways), the meter's
GBCS checks, the protected read encrypted to the supplier and the MAC'd response.

Parts are timed separately (demand only; demand + meter; full) so the GBCS share shows, and
a baseline from the same run: raw ``cryptography`` P-256 ECDH exchanges per second (each
meter-day's GBCS exchange needs four: ACB MAC, meter MAC check, encryption, response MAC).
"""

from __future__ import annotations

import datetime as dt
import time

from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.sim.home import simulate
from smarthydra.sim.household import Household, generate_day
from smarthydra.sim.world import build_world


def _per_second(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def run(quick: bool) -> dict[str, object]:
    days = 10 if quick else 60
    house = Household.sample(42)

    start = time.perf_counter()
    for n in range(days * 4):
        generate_day(house, dt.date(2026, 1, 1) + dt.timedelta(days=n))
    demand_only = _per_second(days * 4, time.perf_counter() - start)

    world = build_world(homes=1, seed=42)
    home = world.home(0)
    start = time.perf_counter()
    simulate(world, home, house, days, read_daily_log=False)
    metered = _per_second(days, time.perf_counter() - start)

    start = time.perf_counter()
    summaries = simulate(world, home, house, days, read_daily_log=True)
    full = _per_second(days, time.perf_counter() - start)
    assert all(s.daily_log_response_bytes > 0 for s in summaries)

    private = ec.generate_private_key(ec.SECP256R1())
    peer = ec.generate_private_key(ec.SECP256R1()).public_key()
    rounds = 200 if quick else 2000
    start = time.perf_counter()
    for _ in range(rounds):
        private.exchange(ec.ECDH(), peer)
    ecdh = _per_second(rounds, time.perf_counter() - start)

    return {
        "meter_days_per_second": round(full, 1),
        "meter_days_per_second_without_gbcs": round(metered, 1),
        "household_days_per_second": round(demand_only, 1),
        "baseline_ecdh_per_second": round(ecdh, 1),
        "ratio_meter_day_to_4_ecdh": round(full / (ecdh / 4), 3),
        "days": days,
        "note": "one core; full = demand + meter + daily log + ECS21a end to end over WAN/hub/HAN",
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=2))
