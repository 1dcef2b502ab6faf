"""The fleet engine: meter-days per second in one process and across 2 local processes.

A meter-day here is what bench_home's "full" meter-day is (a day of household demand through
the ESME and the supplier's ECS21a daily-log read end to end), so the baseline is that: one
home simulated in-process on one world, measured in the same run. The fleet adds sharding,
commissioning a world per shard, and (for processes) spawning workers and pickling reports.

Rates: ``wall`` counts everything the engine did (commissioning, spawn); ``per core-second``
counts the shards' own CPU time running days (commissioning excluded). The 30-million-meter
figure is an extrapolation of the measured per-core rate, labelled as such.
"""

from __future__ import annotations

import os
import time

from smarthydra.sim.fleet import FleetPlan, InProcessEngine, LocalProcessesEngine
from smarthydra.sim.home import simulate
from smarthydra.sim.household import Household
from smarthydra.sim.world import build_world


def run(quick: bool) -> dict[str, object]:
    days = 4 if quick else 30
    homes, shard_size = (8, 4) if quick else (80, 20)
    baseline_days = 20 if quick else 150  # long enough not to be one scheduler hiccup

    world = build_world(homes=1, seed=42)
    home = world.home(0)
    start = time.perf_counter()
    simulate(world, home, Household.sample(42), baseline_days, read_daily_log=True)
    baseline = baseline_days / (time.perf_counter() - start)

    plan = FleetPlan(homes=homes, days=days, seed=42, shard_size=shard_size,
                     dcc_daily_read=False)
    inprocess = InProcessEngine().run(plan)
    processes = LocalProcessesEngine(workers=2).run(plan)
    if processes.counts() != inprocess.counts():
        raise AssertionError("the processes engine disagrees with the in-process engine")

    def rates(report: object) -> dict[str, float]:
        from smarthydra.sim.fleet import FleetReport

        assert isinstance(report, FleetReport)
        return {
            "meter_days_per_second_wall": round(report.meter_days_per_second, 1),
            "meter_days_per_core_second": round(report.meter_days_per_cpu_second, 1),
            "ratio_wall_to_baseline": round(report.meter_days_per_second / baseline, 3),
            "ratio_per_core_to_baseline": round(report.meter_days_per_cpu_second / baseline, 3),
            "wall_seconds": round(report.wall_seconds, 2),
            "commission_cpu_seconds_per_home": round(
                report.commission_cpu_seconds / report.homes, 4),
        }

    guess = processes.extrapolate(meters=30_000_000, days=1, cores=2)
    return {
        "plan": {"homes": homes, "days": days, "shard_size": shard_size},
        "baseline_single_home_meter_days_per_second": round(baseline, 1),
        "inprocess": rates(inprocess),
        "processes_2_workers": rates(processes),
        "cpus": os.cpu_count() or 0,
        "extrapolation_30m_meters_1_day": {
            "label": guess.label,
            "wall_hours_on_2_cores": guess.wall_hours,
            "core_hours": guess.core_hours,
            "commissioning_core_hours": guess.commissioning_core_hours,
        },
        "note": "measured on this machine; the 30M figure is NOT measured (linear scaling, "
                "no shared DCC bottleneck)",
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=2))
