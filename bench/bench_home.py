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

    # The full DUIS path (XML request, schema, DCC checks and transform, ACB MAC, WAN, hub,
    # meter, DUIS response XML, MAC check) for a read (4.1.1) and a critical command (7.2).
    from smarthydra.dcc.gateway import default_schema_dir
    from smarthydra.duis.xml import DuisSchema, SchemaNotFound
    from smarthydra.sim.home import DuisUser

    duis_rate: dict[str, float] = {}
    try:
        schema_dir = default_schema_dir()
        duis_world = build_world(homes=1, seed=5, conformance=schema_dir.parent)
        user = DuisUser(duis_world, DuisSchema.load(schema_dir))
        esme = duis_world.home(0).esme.eui
        trips = 20 if quick else 200
        for srv in ("4.1.1", "7.2"):
            start = time.perf_counter()
            for _ in range(trips):
                user.send(srv, esme)
            duis_rate[srv] = round(_per_second(trips, time.perf_counter() - start), 1)
    except SchemaNotFound as exc:  # the DUIS schema lives in the conformance data
        duis_rate = {"skipped": 0.0}
        print(f"bench_home: DUIS round trips skipped: {exc}")

    return {
        "duis_round_trips_per_second": duis_rate,
        "ratio_duis_read_to_4_ecdh": round(duis_rate.get("4.1.1", 0.0) / (ecdh / 4), 3),
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
