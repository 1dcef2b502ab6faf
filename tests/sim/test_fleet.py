"""The fleet engine: shards are deterministic, every engine gives the same report, the mass
disconnect's blast radius is what the DCC threshold lets through, and the CLI."""

from __future__ import annotations

import json
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from smarthydra.cli.main import app
from smarthydra.sim.fleet import (
    MASS_DISCONNECT,
    FleetPlan,
    FleetPlanError,
    FleetReport,
    InProcessEngine,
    LocalProcessesEngine,
    RayClusterUnreachable,
    RayEngine,
    RayUnavailable,
    ShardReport,
    check_reachable,
    derive_seed,
    engine_for,
    run_shard,
)
from smarthydra.sim.home import simulate
from smarthydra.sim.household import Household
from smarthydra.sim.world import build_world

SMALL = FleetPlan(homes=4, days=2, seed=7, shard_size=2, attack=MASS_DISCONNECT,
                  disable_threshold=1)


@pytest.fixture(scope="module")
def small_report() -> FleetReport:
    return InProcessEngine().run(SMALL)


def test_in_process_twice_is_identical(small_report: FleetReport) -> None:
    again = InProcessEngine().run(SMALL)
    assert again.counts() == small_report.counts()
    assert small_report.meter_days == 8 and small_report.homes == 4
    assert small_report.daily_log_reads == 8 and small_report.daily_log_bytes > 0
    assert small_report.import_wh > 0
    # one DUIS 4.1.1 read per home per day plus the one 7.2 the threshold let through
    assert small_report.dcc_requests_accepted == 8 + 1


def test_run_shard_is_a_function_of_plan_and_index() -> None:
    first, second = run_shard(SMALL, 1), run_shard(SMALL, 1)
    timings = ("commission_cpu_seconds", "run_cpu_seconds", "wall_seconds")
    strip = {f: 0.0 for f in timings}
    assert ShardReport(**(vars(first) | strip)) == ShardReport(**(vars(second) | strip))
    assert run_shard(SMALL, 0).import_wh != first.import_wh  # different homes, different demand


def test_local_processes_give_the_same_report(small_report: FleetReport) -> None:
    report = LocalProcessesEngine(workers=2).run(SMALL)
    assert report.counts() == small_report.counts()
    assert report.engine == "processes" and report.workers == 2


@pytest.mark.slow
def test_ray_gives_the_same_report(small_report: FleetReport) -> None:
    pytest.importorskip("ray")
    seen: list[int] = []
    report = RayEngine(num_cpus=2).run(SMALL, progress=lambda shard: seen.append(shard.index))
    assert report.counts() == small_report.counts()
    assert sorted(seen) == [0, 1] and report.engine == "ray"
    import ray

    assert not ray.is_initialized()  # the cluster it started was shut down


@pytest.mark.slow
def test_ray_uses_a_cluster_already_running_and_leaves_it(small_report: FleetReport) -> None:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        report = RayEngine().run(SMALL)
        assert report.counts() == small_report.counts()
        assert ray.is_initialized()  # not ours to shut down
    finally:
        ray.shutdown()


def test_an_unreachable_ray_address_is_refused_quickly() -> None:
    pytest.importorskip("ray")
    with pytest.raises(RayClusterUnreachable):
        check_reachable("127.0.0.1:1", timeout=2)
    with pytest.raises(RayClusterUnreachable, match="not a Ray address"):
        check_reachable("nonsense")
    result = CliRunner().invoke(app, ["home", "fleet", "--engine", "ray", "--ray-address",
                                      "ray://127.0.0.1:1"])
    assert result.exit_code == 2
    assert "cannot reach the Ray cluster" in result.output


def test_mass_disconnect_is_bounded_by_the_dcc_threshold() -> None:
    plan = FleetPlan(homes=6, days=1, seed=3, shard_size=2, attack=MASS_DISCONNECT,
                     disable_threshold=2, dcc_daily_read=False, read_daily_log=False)
    report = InProcessEngine().run(plan)
    assert report.attack_commands_sent == 6
    assert report.meters_disconnected == 2  # exactly the fleet-wide threshold
    assert report.attack_commands_quarantined == 4 == report.dcc_requests_quarantined
    unguarded = InProcessEngine().run(
        FleetPlan(**(vars(plan) | {"anomaly_detection": False})))
    assert unguarded.meters_disconnected == 6  # without the threshold: every meter
    assert unguarded.attack_commands_quarantined == 0


def test_default_threshold_is_one_percent_and_zero_stops_everything() -> None:
    assert FleetPlan(homes=1000, days=1).fleet_disable_threshold == 10
    assert FleetPlan(homes=5, days=1).fleet_disable_threshold == 1
    assert FleetPlan(homes=5, days=1, anomaly_detection=False).fleet_disable_threshold is None
    plan = FleetPlan(homes=2, days=1, shard_size=1, attack=MASS_DISCONNECT,
                     disable_threshold=0, dcc_daily_read=False, read_daily_log=False)
    report = InProcessEngine().run(plan)
    assert report.meters_disconnected == 0 and report.attack_commands_quarantined == 2


def test_energy_does_not_depend_on_how_the_fleet_is_sharded() -> None:
    one = InProcessEngine().run(FleetPlan(homes=3, days=2, seed=5, shard_size=1,
                                          dcc_daily_read=False))
    whole = InProcessEngine().run(FleetPlan(homes=3, days=2, seed=5, shard_size=3,
                                            dcc_daily_read=False))
    for name in ("meter_days", "import_wh", "export_wh", "daily_log_reads", "daily_log_bytes"):
        assert getattr(one, name) == getattr(whole, name), name
    assert (one.shards, whole.shards) == (3, 1)


def test_a_fleet_home_is_the_single_home_simulation() -> None:
    plan = FleetPlan(homes=1, days=3, seed=11, with_gas=True, dcc_daily_read=False)
    report = InProcessEngine().run(plan)
    from smarthydra.sim.home import add_gas

    world = build_world(homes=1, seed=99)
    home = world.home(0)
    days = simulate(world, home, Household.sample(derive_seed(11, 0) % 2**31), 3,
                    gas=add_gas(world, home))
    assert report.import_wh == sum(round(d.import_kwh * 1000) for d in days)
    assert report.gas_litres == sum(round(d.gas_m3 * 1000) for d in days) > 0
    assert report.daily_log_bytes == sum(d.daily_log_response_bytes for d in days)


@settings(max_examples=200, deadline=None)
@given(homes=st.integers(1, 500), shard_size=st.integers(1, 64),
       threshold=st.integers(0, 600))
def test_shards_partition_the_fleet_and_its_threshold(homes: int, shard_size: int,
                                                      threshold: int) -> None:
    plan = FleetPlan(homes=homes, days=1, shard_size=shard_size, disable_threshold=threshold)
    numbers = [n for i in range(plan.shards) for n in plan.shard_homes(i)]
    assert numbers == list(range(homes))
    shares = [plan.shard_disable_threshold(i) for i in range(plan.shards)]
    assert sum(s for s in shares if s is not None) == threshold
    assert max(s for s in shares if s is not None) - min(
        s for s in shares if s is not None) <= 1


@pytest.mark.parametrize("kwargs", [
    {"homes": 0, "days": 1}, {"homes": 1, "days": 0}, {"homes": 1, "days": 1, "shard_size": 0},
    {"homes": 1, "days": 1, "attack": "nuke"}, {"homes": 1, "days": 1, "disable_threshold": -1},
])
def test_bad_plans_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(FleetPlanError):
        FleetPlan(**kwargs)  # type: ignore[arg-type]


def test_merge_refuses_missing_or_doubled_shards(small_report: FleetReport) -> None:
    shard = run_shard(SMALL, 0)
    with pytest.raises(FleetPlanError):
        FleetReport.merge(SMALL, [shard], engine="x", wall_seconds=1.0)
    with pytest.raises(FleetPlanError):
        FleetReport.merge(SMALL, [shard, shard], engine="x", wall_seconds=1.0)
    with pytest.raises(FleetPlanError):
        SMALL.shard_homes(2)
    with pytest.raises(FleetPlanError):
        LocalProcessesEngine(workers=0)
    with pytest.raises(FleetPlanError):
        engine_for("cloud")


def test_extrapolation_is_labelled_and_scales_the_measured_rate(
        small_report: FleetReport) -> None:
    guess = small_report.extrapolate(meters=30_000_000, days=1, cores=100)
    assert guess.label.startswith("EXTRAPOLATION, not measured")
    rate = small_report.meter_days_per_cpu_second
    assert guess.core_hours == pytest.approx(30_000_000 / rate / 3600, rel=1e-3)
    assert guess.wall_hours == pytest.approx(guess.core_hours / 100, rel=1e-2)


def test_ray_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(RayUnavailable, match="pip install"):
        engine_for("ray")
    result = CliRunner().invoke(app, ["home", "fleet", "--engine", "ray"])
    assert result.exit_code == 2
    assert "pip install" in result.output


# --- the CLI ----------------------------------------------------------------------------------

def test_cli_in_process_table() -> None:
    result = CliRunner().invoke(app, ["home", "fleet", "--homes", "3", "--days", "1",
                                      "--shard-size", "2", "--attack", "mass-disconnect",
                                      "--disable-threshold", "1"])
    assert result.exit_code == 0, result.output
    assert "meters disconnected (blast radius)" in result.output
    assert "EXTRAPOLATION, not measured" in result.output


def test_cli_processes_json_matches_in_process() -> None:
    args = ["home", "fleet", "--homes", "3", "--days", "2", "--shard-size", "2",
            "--attack", "mass-disconnect", "--disable-threshold", "1", "--json"]
    inprocess = CliRunner().invoke(app, args)
    processes = CliRunner().invoke(app, [*args, "--engine", "processes", "--workers", "2"])
    assert inprocess.exit_code == 0, inprocess.output
    assert processes.exit_code == 0, processes.output
    a, b = json.loads(inprocess.output), json.loads(processes.output)
    timings = {"commission_cpu_seconds", "run_cpu_seconds", "wall_seconds", "engine",
               "workers", "meter_days_per_second", "meter_days_per_cpu_second",
               "extrapolation"}
    assert {k: v for k, v in a.items() if k not in timings} == {
        k: v for k, v in b.items() if k not in timings}
    assert a["meters_disconnected"] == 1 and a["attack_commands_sent"] == 3
    assert b["engine"] == "processes"
    assert "EXTRAPOLATION" in b["extrapolation"]["label"]


@pytest.mark.parametrize(("args", "message"), [
    (["--homes", "0"], "--homes"),
    (["--days", "0"], "--days"),
    (["--shard-size", "0"], "--shard-size"),
    (["--workers", "0"], "--workers"),
    (["--engine", "cloud"], "--engine must be one of"),
    (["--attack", "nuke"], "unknown attack"),
    (["--disable-threshold", "-1"], "--disable-threshold"),
    (["--ray-address", "127.0.0.1:6379"], "only applies to --engine ray"),
])
def test_cli_bad_arguments(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["home", "fleet", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
