"""``smarthydra home fleet``: a fleet of simulated homes, sharded over an engine.

Registered on the ``home`` group (cli/home.py); the main assembler does not load this module.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from smarthydra.sim.fleet import FleetReport, ShardReport

console = Console()
err = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


def fleet(
    homes: int = typer.Option(10, "--homes", min=1, help="homes in the fleet"),
    days: int = typer.Option(1, "--days", min=1, max=366, help="days to simulate"),
    shard_size: int = typer.Option(50, "--shard-size", min=1, help="homes per shard"),
    engine: str = typer.Option("inprocess", "--engine",
                               help="where shards run: inprocess, processes or ray"),
    workers: int = typer.Option(2, "--workers", min=1, help="processes for --engine processes"),
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="an existing Ray cluster (default: start a local one)"),
    ray_cpus: int | None = typer.Option(None, "--ray-cpus", min=1,
                                        help="CPUs for a local Ray cluster"),
    attack: str | None = typer.Option(None, "--attack", help="an attack scenario: mass-disconnect"),
    disable_threshold: int | None = typer.Option(
        None, "--disable-threshold", min=0,
        help="fleet-wide 7.2 requests a day before quarantine (default 1% of homes)"),
    anomaly_detection: bool = typer.Option(
        True, "--anomaly-detection/--no-anomaly-detection",
        help="the DCC's anomaly threshold on Disable Supply"),
    gas: bool = typer.Option(False, "--gas/--no-gas", help="a gas meter and GPF in every home"),
    dcc_reads: bool = typer.Option(True, "--dcc-reads/--no-dcc-reads",
                                   help="a daily DUIS 4.1.1 read of every meter via the DCC"),
    seed: int = typer.Option(1, "--seed", help="fleet seed"),
    as_json: bool = typer.Option(False, "--json", help="JSON output"),
) -> None:
    """Run a fleet of homes sharded in-process, across local processes or on Ray."""
    # Imported here so that the CLI starts without building the simulation stack.
    from smarthydra.sim.fleet import (
        ENGINES,
        FleetPlan,
        FleetPlanError,
        RayUnavailable,
        engine_for,
    )

    if engine not in ENGINES:
        raise _fail(f"--engine must be one of {', '.join(ENGINES)} (got {engine!r})")
    if ray_address is not None and engine != "ray":
        raise _fail("--ray-address only applies to --engine ray")
    try:
        plan = FleetPlan(homes=homes, days=days, seed=seed, shard_size=shard_size,
                         with_gas=gas, dcc_daily_read=dcc_reads, attack=attack,
                         disable_threshold=disable_threshold,
                         anomaly_detection=anomaly_detection)
        runner = engine_for(engine, workers=workers, ray_address=ray_address,
                            ray_cpus=ray_cpus)
    except (FleetPlanError, RayUnavailable) as exc:
        raise _fail(str(exc)) from None
    try:
        if as_json:
            report = runner.run(plan)
        else:
            with Progress(TextColumn("{task.description}"), BarColumn(),
                          TextColumn("{task.completed}/{task.total} shards"),
                          TimeElapsedColumn(), console=err, transient=True) as bar:
                task = bar.add_task(f"{engine}: {homes} homes x {days} days", total=plan.shards)

                def progress(_: ShardReport) -> None:
                    bar.advance(task)

                report = runner.run(plan, progress=progress)
    except RayUnavailable as exc:
        raise _fail(str(exc)) from None
    except ConnectionError as exc:  # RayClusterUnreachable, or Ray's own when it gives up
        raise _fail(f"cannot reach the Ray cluster: {exc}") from None
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    _summary(report)


def _summary(report: FleetReport) -> None:
    plan = report.plan
    table = Table(title=f"fleet: {report.homes} homes x {plan.days} days on {report.engine} "
                        f"({report.shards} shards, {report.workers} worker(s))")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [
        ("meter-days", f"{report.meter_days:,}"),
        ("electricity imported", f"{report.import_wh / 1000:,.1f} kWh"),
        ("electricity exported", f"{report.export_wh / 1000:,.1f} kWh"),
        ("gas", f"{report.gas_litres / 1000:,.3f} m3"),
        ("daily-log reads (ECS21a)", f"{report.daily_log_reads:,} ({report.daily_log_bytes:,} B)"),
        ("DCC requests accepted", f"{report.dcc_requests_accepted:,}"),
        ("DCC requests quarantined", f"{report.dcc_requests_quarantined:,}"),
        ("DCC requests refused", f"{report.dcc_requests_refused:,}"),
    ]
    if plan.attack is not None:
        threshold = plan.fleet_disable_threshold
        rows += [
            ("attack", plan.attack),
            ("DCC 7.2 threshold / day", "off" if threshold is None else f"{threshold:,}"),
            ("attack commands sent", f"{report.attack_commands_sent:,}"),
            ("attack commands quarantined", f"{report.attack_commands_quarantined:,}"),
            ("meters disconnected (blast radius)", f"{report.meters_disconnected:,}"),
        ]
    rows += [
        ("wall time", f"{report.wall_seconds:.2f} s"),
        ("measured meter-days / s (wall)", f"{report.meter_days_per_second:,.1f}"),
        ("measured meter-days / core-second", f"{report.meter_days_per_cpu_second:,.1f}"),
        ("commissioning CPU", f"{report.commission_cpu_seconds:.2f} s"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    guess = report.extrapolate(cores=report.workers)
    console.print(f"[yellow]{guess.label}[/yellow]: {guess.wall_hours:,.1f} h wall "
                  f"({guess.core_hours:,.1f} core-hours; commissioning "
                  f"{guess.commissioning_core_hours:,.1f} core-hours more)")
