"""The fleet engine: the same scenario in one process, across local processes, or on Ray.

A :class:`FleetPlan` is split into shards of homes. :func:`run_shard` is a pure,
deterministic function of ``(plan, index)``: it builds its own whole system (SMKI, DCC, WAN,
commissioned homes — :func:`smarthydra.sim.world.build_world`, seeded from the plan's seed
and the shard index), runs its homes day by day through the real stack (household demand,
meters, the supplier's ECS21a daily-log read end to end, and optionally a DUIS 4.1.1 read
through the DCC), optionally plays an attack, and returns plain numbers. The engines only
decide where shards run; :meth:`FleetReport.merge` sums the shards in index order, so one plan
gives the same report (apart from timings) on every engine.

Household demand is seeded by the home's fleet-wide number, not its shard, so energy totals do
not depend on how the fleet is cut into shards. A DCC, though, is per shard: a fleet-wide
anomaly threshold is divided between the shards' DCCs (as a DCC partitioned by region would
divide it), so the attack's blast radius stays bounded by the fleet-wide threshold.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import hashlib
import multiprocessing
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from smarthydra.dcc.anomaly import Threshold
from smarthydra.parties.party import Outcome
from smarthydra.premises.esme import SupplyState
from smarthydra.sim.home import GasInstallation, add_gas, simulate
from smarthydra.sim.household import Household
from smarthydra.sim.world import START, build_world

MASS_DISCONNECT = "mass-disconnect"
ATTACKS = (MASS_DISCONNECT,)
ENGINES = ("inprocess", "processes", "ray")
DISABLE_WINDOW = dt.timedelta(days=1)
NATIONAL_FLEET = 30_000_000  # GB electricity meters, for the extrapolation


class FleetPlanError(ValueError):
    """A fleet plan that cannot be run (no homes, no days, an unknown attack ...)."""


class RayUnavailable(RuntimeError):
    """The Ray engine was asked for but the ``ray`` package cannot be imported."""


class RayClusterUnreachable(ConnectionError):
    """``--ray-address`` names a cluster that does not answer (Ray itself would keep
    retrying for minutes, so the address is tried first)."""


@dataclass(frozen=True)
class FleetPlan:
    """What to run. ``disable_threshold`` is the fleet-wide number of Disable Supply (7.2)
    requests the DCC lets the supplier send per day before it quarantines the rest; None means
    1 % of the fleet (at least one). ``anomaly_detection=False`` switches the threshold off."""

    homes: int
    days: int
    seed: int = 1
    shard_size: int = 100
    with_gas: bool = False
    read_daily_log: bool = True
    dcc_daily_read: bool = True
    attack: str | None = None
    disable_threshold: int | None = None
    anomaly_detection: bool = True

    def __post_init__(self) -> None:
        if self.homes < 1:
            raise FleetPlanError(f"a fleet needs at least one home (got {self.homes})")
        if self.days < 1:
            raise FleetPlanError(f"a fleet runs at least one day (got {self.days})")
        if self.shard_size < 1:
            raise FleetPlanError(f"shard size must be at least 1 (got {self.shard_size})")
        if self.attack is not None and self.attack not in ATTACKS:
            raise FleetPlanError(
                f"unknown attack {self.attack!r} (known: {', '.join(ATTACKS)})")
        if self.disable_threshold is not None and self.disable_threshold < 0:
            raise FleetPlanError("the disable threshold cannot be negative")

    @property
    def shards(self) -> int:
        return -(-self.homes // self.shard_size)

    def shard_homes(self, index: int) -> range:
        """The fleet-wide numbers of the homes in shard ``index``."""
        if not 0 <= index < self.shards:
            raise FleetPlanError(f"no shard {index} in a plan of {self.shards} shards")
        first = index * self.shard_size
        return range(first, min(first + self.shard_size, self.homes))

    @property
    def fleet_disable_threshold(self) -> int | None:
        if not self.anomaly_detection:
            return None
        if self.disable_threshold is not None:
            return self.disable_threshold
        return max(1, self.homes // 100)

    def shard_disable_threshold(self, index: int) -> int | None:
        """Shard ``index``'s share of the fleet-wide threshold (spread as evenly as possible)."""
        total = self.fleet_disable_threshold
        if total is None:
            return None
        share, extra = divmod(total, self.shards)
        return share + (1 if index < extra else 0)


def derive_seed(seed: int, *parts: int) -> int:
    """A seed for a shard or home that does not depend on the process computing it
    (Python's ``hash`` is salted per process, so it cannot be used here)."""
    text = ":".join(str(p) for p in (seed, *parts)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big")


@dataclass(frozen=True)
class FleetTally:
    """The numbers a run adds up. Energy in Wh and gas in litres, so sums are exact."""

    homes: int
    meter_days: int
    import_wh: int
    export_wh: int
    gas_litres: int
    daily_log_reads: int
    daily_log_bytes: int
    dcc_requests_accepted: int
    dcc_requests_quarantined: int
    dcc_requests_refused: int
    attack_commands_sent: int
    attack_commands_quarantined: int
    meters_disconnected: int
    commission_cpu_seconds: float
    run_cpu_seconds: float
    wall_seconds: float


@dataclass(frozen=True)
class ShardReport(FleetTally):
    """Plain numbers from one shard."""

    index: int


TIMING_FIELDS = ("commission_cpu_seconds", "run_cpu_seconds", "wall_seconds")
COUNT_FIELDS = tuple(f.name for f in dataclasses.fields(FleetTally) if f.name not in TIMING_FIELDS)


@dataclass(frozen=True)
class FleetReport(FleetTally):
    """The shards summed. ``wall_seconds`` is the engine's elapsed time for the whole run,
    ``cpu_seconds`` the shards' own CPU time (commissioning plus running)."""

    plan: FleetPlan
    engine: str
    shards: int
    workers: int = 1

    @classmethod
    def merge(cls, plan: FleetPlan, shards: Iterable[ShardReport], *, engine: str,
              wall_seconds: float, workers: int = 1) -> FleetReport:
        ordered = sorted(shards, key=lambda s: s.index)
        if [s.index for s in ordered] != list(range(plan.shards)):
            raise FleetPlanError("the shard reports do not cover the plan exactly once")
        counts = {name: sum(getattr(s, name) for s in ordered) for name in COUNT_FIELDS}
        return cls(
            plan=plan, engine=engine, shards=len(ordered), **counts,
            commission_cpu_seconds=sum(s.commission_cpu_seconds for s in ordered),
            run_cpu_seconds=sum(s.run_cpu_seconds for s in ordered),
            wall_seconds=wall_seconds, workers=workers,
        )

    def counts(self) -> dict[str, int]:
        """Everything but timings: what must match across engines."""
        return {name: getattr(self, name) for name in ("shards", *COUNT_FIELDS)}

    @property
    def meter_days_per_second(self) -> float:
        """Measured throughput of this run, wall clock, commissioning included."""
        return self.meter_days / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def meter_days_per_cpu_second(self) -> float:
        """Measured meter-days per core-second of running (commissioning excluded)."""
        return self.meter_days / self.run_cpu_seconds if self.run_cpu_seconds > 0 else 0.0

    def extrapolate(self, meters: int = NATIONAL_FLEET, days: int = 1,
                    cores: int = 1) -> Extrapolation:
        return Extrapolation.from_rate(self.meter_days_per_cpu_second,
                                       self.commission_cpu_seconds / self.homes,
                                       meters=meters, days=days, cores=cores)

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["plan"] = dataclasses.asdict(self.plan)
        out["meter_days_per_second"] = round(self.meter_days_per_second, 2)
        out["meter_days_per_cpu_second"] = round(self.meter_days_per_cpu_second, 2)
        out["extrapolation"] = dataclasses.asdict(self.extrapolate(cores=self.workers))
        return out


@dataclass(frozen=True)
class Extrapolation:
    """NOT a measurement: the measured per-core rate scaled linearly to a larger fleet,
    assuming perfect parallelism and no shared bottleneck (a real DCC is one)."""

    label: str
    meters: int
    days: int
    cores: int
    measured_meter_days_per_core_second: float
    core_hours: float
    wall_hours: float
    commissioning_core_hours: float

    @classmethod
    def from_rate(cls, rate: float, commission_seconds_per_meter: float, *, meters: int,
                  days: int, cores: int) -> Extrapolation:
        core_seconds = meters * days / rate if rate > 0 else float("inf")
        return cls(
            label=(f"EXTRAPOLATION, not measured: {meters:,} meters x {days} day(s) at the "
                   f"measured {rate:.1f} meter-days per core-second, on {cores} core(s)"),
            meters=meters, days=days, cores=cores,
            measured_meter_days_per_core_second=round(rate, 3),
            core_hours=round(core_seconds / 3600, 2),
            wall_hours=round(core_seconds / 3600 / cores, 2),
            commissioning_core_hours=round(meters * commission_seconds_per_meter / 3600, 2),
        )


def run_shard(plan: FleetPlan, index: int) -> ShardReport:
    """Run shard ``index`` of ``plan`` on a world of its own; deterministic in (plan, index)."""
    wall = time.perf_counter()
    cpu = time.process_time()
    numbers = list(plan.shard_homes(index))
    threshold = plan.shard_disable_threshold(index)
    world = build_world(
        homes=len(numbers),
        seed=derive_seed(plan.seed, index),
        disable_threshold=(Threshold(threshold, DISABLE_WINDOW)
                           if plan.attack is not None and threshold is not None else None),
    )
    households = [Household.sample(derive_seed(plan.seed, number) % 2**31)
                  for number in numbers]
    gas: list[GasInstallation | None] = [
        add_gas(world, home) if plan.with_gas else None for home in world.homes]
    commission_cpu = time.process_time() - cpu

    cpu = time.process_time()
    totals = dict.fromkeys(COUNT_FIELDS, 0)
    totals["homes"] = len(numbers)
    supplier = world.supplier
    for day in range(plan.days):
        # Homes run day by day in lockstep: each starts the day at the same time, so every
        # home sees the same calendar whichever shard it lands in.
        day_start = START + dt.timedelta(days=1 + day)
        for home, household, installation in zip(world.homes, households, gas, strict=True):
            world.clock.current = day_start
            (summary,) = simulate(world, home, household, 1, gas=installation,
                                  read_daily_log=plan.read_daily_log)
            totals["meter_days"] += 1
            totals["import_wh"] += round(summary.import_kwh * 1000)
            totals["export_wh"] += round(summary.export_kwh * 1000)
            totals["gas_litres"] += round(summary.gas_m3 * 1000)
            if plan.read_daily_log:
                totals["daily_log_reads"] += 1 if summary.daily_log_response_bytes else 0
                totals["daily_log_bytes"] += summary.daily_log_response_bytes
        world.clock.current = day_start + dt.timedelta(days=1)
        if plan.dcc_daily_read:
            for home in world.homes:
                _count_dcc(totals, supplier.read_import_registers(world.dcc, home.esme.eui)
                           .outcome)
    if plan.attack == MASS_DISCONNECT:
        # The supplier's signing key is in the attacker's hands: a 7.2 Disable Supply to
        # every meter it supplies, through the real DCC (CV 4, signed pre-command, CV 5).
        for home in world.homes:
            outcome = supplier.disable_supply(world.dcc, home.esme.eui).outcome
            totals["attack_commands_sent"] += 1
            totals["attack_commands_quarantined"] += int(outcome is Outcome.QUARANTINED)
            _count_dcc(totals, outcome)
        totals["meters_disconnected"] = sum(
            1 for home in world.homes if home.esme.supply is SupplyState.DISABLED)
    return ShardReport(
        index=index, **totals,
        commission_cpu_seconds=commission_cpu,
        run_cpu_seconds=time.process_time() - cpu,
        wall_seconds=time.perf_counter() - wall,
    )


def _count_dcc(totals: dict[str, int], outcome: Outcome) -> None:
    if outcome is Outcome.QUARANTINED:
        totals["dcc_requests_quarantined"] += 1
    elif outcome is Outcome.REFUSED:
        totals["dcc_requests_refused"] += 1
    else:
        totals["dcc_requests_accepted"] += 1


Progress = Callable[[ShardReport], None]


class FleetEngine(Protocol):
    name: str

    def run(self, plan: FleetPlan, progress: Progress | None = None) -> FleetReport: ...


@dataclass
class InProcessEngine:
    """Every shard in this process, one after another."""

    name: str = "inprocess"

    def run(self, plan: FleetPlan, progress: Progress | None = None) -> FleetReport:
        start = time.perf_counter()
        reports = []
        for index in range(plan.shards):
            report = run_shard(plan, index)
            reports.append(report)
            if progress is not None:
                progress(report)
        return FleetReport.merge(plan, reports, engine=self.name,
                                 wall_seconds=time.perf_counter() - start)


@dataclass
class LocalProcessesEngine:
    """Shards across ``workers`` local processes (spawned, so nothing is inherited by fork)."""

    workers: int = 2
    name: str = "processes"

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise FleetPlanError(f"workers must be at least 1 (got {self.workers})")

    def run(self, plan: FleetPlan, progress: Progress | None = None) -> FleetReport:
        start = time.perf_counter()
        context = multiprocessing.get_context("spawn")
        reports: list[ShardReport] = []
        workers = min(self.workers, plan.shards)
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = [pool.submit(run_shard, plan, index) for index in range(plan.shards)]
            for future in concurrent.futures.as_completed(futures):
                report = future.result()
                reports.append(report)
                if progress is not None:
                    progress(report)
        return FleetReport.merge(plan, reports, engine=self.name,
                                 wall_seconds=time.perf_counter() - start, workers=workers)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailable(
            f"the Ray engine needs the 'ray' package (pip install 'ray>=2.9'): {exc}") from None
    return ray


@dataclass
class RayEngine:
    """Shards as Ray remote tasks. With no ``address`` a local Ray cluster is started (and
    shut down afterwards); with one, the shards run on that cluster."""

    address: str | None = None
    num_cpus: int | None = None
    name: str = "ray"

    def run(self, plan: FleetPlan, progress: Progress | None = None) -> FleetReport:
        ray = _import_ray()
        started = not ray.is_initialized()
        if started and self.address is not None:
            check_reachable(self.address)
        if started:
            import logging

            options: dict[str, Any] = {"address": self.address, "ignore_reinit_error": True,
                                       "include_dashboard": False, "log_to_driver": False,
                                       "logging_level": logging.WARNING}
            if self.address is None:  # a new local cluster; an existing one has its own CPUs
                options["num_cpus"] = self.num_cpus
            ray.init(**options)
        try:
            start = time.perf_counter()
            remote = ray.remote(run_shard)
            pending = [remote.remote(plan, index) for index in range(plan.shards)]
            reports: list[ShardReport] = []
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for report in ray.get(done):
                    reports.append(report)
                    if progress is not None:
                        progress(report)
            workers = int(ray.cluster_resources().get("CPU", 1))
            return FleetReport.merge(plan, reports, engine=self.name,
                                     wall_seconds=time.perf_counter() - start, workers=workers)
        finally:
            if started:
                ray.shutdown()


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Refuse a ``host:port`` or ``ray://host:port`` address nothing listens on. Ray's own
    forms ("auto", "local") are left to Ray."""
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        if address in ("auto", "local"):
            return
        raise RayClusterUnreachable(f"not a Ray address (host:port): {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise RayClusterUnreachable(f"no Ray cluster answers at {address}: {exc}") from None


def engine_for(name: str, *, workers: int = 2, ray_address: str | None = None,
               ray_cpus: int | None = None) -> FleetEngine:
    if name == "inprocess":
        return InProcessEngine()
    if name == "processes":
        return LocalProcessesEngine(workers)
    if name == "ray":
        _import_ray()
        return RayEngine(ray_address, ray_cpus)
    raise FleetPlanError(f"unknown engine {name!r} (known: {', '.join(ENGINES)})")

