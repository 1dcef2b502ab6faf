"""``smarthydra demo``: the whole system end to end on embedded defaults."""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from smarthydra.crypto.keystore import KeystoreError
from smarthydra.sim.demo import DemoReport, run_demo
from smarthydra.sim.world import KeystoreFactory, in_memory_keystores, softhsm_keystores

app = typer.Typer()
_R = TypeVar("_R")


def default_conformance() -> Path | None:
    """``$SMARTHYDRA_CONFORMANCE``, else ``../shared/conformance`` beside the checkout or cwd."""
    env = os.environ.get("SMARTHYDRA_CONFORMANCE")
    if env:
        return Path(env)
    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        candidate = base.parent / "shared" / "conformance"
        if candidate.is_dir():
            return candidate
    return None


def _summary(report: DemoReport, console: Console) -> None:
    table = Table(
        title=f"smarthydra demo: {report.homes} homes, {report.keystore} keystores",
        show_lines=False,
    )
    table.add_column("what happened")
    table.add_column("result", justify="right")

    def mark(ok: bool) -> str:
        return "[green]yes[/green]" if ok else "[red]NO[/red]"

    table.add_row(
        "meters read by the supplier (4.1.1, MAC'd, values encrypted)",
        f"{report.reads_ok}/{report.homes}",
    )
    table.add_row("read values equal the meters' registers", mark(report.reads_match_meters))
    table.add_row(
        "supply disabled (7.2: pre-command, supplier signs, DCC MACs)", str(report.supply_disabled)
    )
    for refusal in report.refused:
        table.add_row(
            f"{refusal.who} refused {refusal.srv}: {refusal.meaning}",
            f"[yellow]{refusal.code}[/yellow]",
        )
    table.add_row("replayed command dropped by the meter", str(report.replays_dropped))
    table.add_row("tampered command dropped by the meter (MAC)", str(report.tampered_dropped))
    table.add_row(
        "command bypassing the DCC dropped by the meter (no ACB MAC)", str(report.bypass_dropped)
    )
    table.add_row("meters unchanged by the attacks", mark(report.meters_unchanged_by_attacks))
    table.add_row("supplier's next disable within its window quarantined", str(report.quarantined))
    table.add_row(
        "DCC audit log entries / hash chain intact",
        f"{report.audit_entries} / {mark(report.audit_log_intact)}",
    )
    table.add_row("audit entries persisted in the DCC database", str(report.audit_log_persisted))
    table.add_row("WAN frames delivered", str(report.wan_frames))
    table.add_row("elapsed", f"{report.seconds:.2f} s")
    console.print(table)


@dataclass(frozen=True)
class ScenarioOptions:
    homes: int
    conformance: Path | None
    as_json: bool
    hsm: bool


@dataclass(frozen=True)
class Scenario:
    summary: str
    run: Callable[[ScenarioOptions], None] | None  # None: the built-in default story


def _print_report(
    title: str, ok: bool, rows: list[tuple[str, object]], as_json: bool, payload: dict[str, object]
) -> None:
    if as_json:
        typer.echo(json.dumps(payload, indent=2, default=str))
    else:
        table = Table(title=title)
        table.add_column("what happened")
        table.add_column("result", justify="right")
        for what, result in rows:
            table.add_row(what, str(result))
        table.add_row("all checks hold", "[green]yes[/green]" if ok else "[red]NO[/red]")
        Console().print(table)
    if not ok:
        raise typer.Exit(1)


def _with_scenario_keystores(options: ScenarioOptions, run: Callable[..., _R]) -> _R:
    """Run a CoS / recovery scenario, with its CA and party keys in SoftHSM2 under --hsm."""
    from smarthydra.sim.scenarios.cos import (
        in_memory_scenario_keystores,
        softhsm_scenario_keystores,
    )

    if not options.hsm:
        return run(keystores_for=in_memory_scenario_keystores)
    with tempfile.TemporaryDirectory(prefix="smarthydra-demo-") as scratch:
        try:
            return run(keystores_for=softhsm_scenario_keystores(Path(scratch) / "softhsm"))
        except KeystoreError as exc:
            typer.echo(f"error: --hsm needs SoftHSM2: {exc}", err=True)
            raise typer.Exit(2) from None


def _scenario_cos(options: ScenarioOptions) -> None:
    from smarthydra.sim.scenarios.cos import run_cos

    report = _with_scenario_keystores(
        options, functools.partial(run_cos, options.homes, conformance=options.conformance)
    )
    rows: list[tuple[str, object]] = [
        (
            "meters moved to the gaining supplier (6.23, CS02b by TransCoS)",
            f"{report.cos_accepted}/{report.homes}",
        ),
        ("gaining supplier's reads accepted", f"{report.gaining_reads_ok}/{report.homes}"),
        ("gaining supplier's disable supply accepted", report.gaining_disable_ok),
        ("losing supplier refused by the DCC", report.losing_dcc_refusals),
        (
            "losing supplier's critical commands dropped by the meters",
            f"{report.losing_rejected_by_meter}/{report.homes}",
        ),
        (
            "DCC registration and meter supplier cells agree",
            f"{report.ownership_agrees}/{report.homes}",
        ),
        ("elapsed", f"{report.seconds:.2f} s"),
    ]
    _print_report("change of supplier", report.ok, rows, options.as_json, report.to_dict())


def _scenario_recovery(options: ScenarioOptions) -> None:
    from smarthydra.sim.scenarios.recovery import run_recovery

    report = _with_scenario_keystores(
        options, functools.partial(run_recovery, options.homes, conformance=options.conformance)
    )
    rows: list[tuple[str, object]] = []
    for drill in report.drills:
        rows.append(
            (f"[bold]{drill.name}[/bold]", "[green]ok[/green]" if drill.ok else "[red]FAILED[/red]")
        )
        rows.extend((f"  {step.replace('_', ' ')}", value) for step, value in drill.steps.items())
    rows.append(("elapsed", f"{report.seconds:.2f} s"))
    _print_report("recovery drills", report.ok, rows, options.as_json, report.to_dict())


def _scenario_hydra(options: ScenarioOptions) -> None:
    from smarthydra.sim.hydra import run_hydra_scenario

    if options.hsm:
        raise typer.BadParameter(
            "--hsm applies to the default, cos and recovery scenarios", param_hint="--hsm"
        )
    report = run_hydra_scenario()
    typer.echo(json.dumps(report.as_json(), indent=2) if options.as_json else report.render())
    if not report.ok:
        raise typer.Exit(1)


# Scenarios by name; new stories (hydra, attacks, ...) add an entry here.
SCENARIOS: dict[str, Scenario] = {
    "default": Scenario("commissioning, reads, disable, attacks", None),
    "cos": Scenario("change of supplier", _scenario_cos),
    "recovery": Scenario("key and root compromise drills", _scenario_recovery),
    "hydra": Scenario("applets, signed bills, telehealth, consent", _scenario_hydra),
}


@app.command()
def demo(
    homes: int = typer.Option(
        10, "--homes", min=2, max=1_000_000, help="number of homes to commission"
    ),
    seed: int = typer.Option(1, help="seed for the simulated consumption"),
    disable_threshold: int = typer.Option(
        1,
        "--disable-threshold",
        min=0,
        help="supplier's own anomaly threshold: 7.2 requests per day",
    ),
    conformance: Path | None = typer.Option(
        None, help="conformance data folder (for the full service request matrix)"
    ),
    database: str | None = typer.Option(
        None, help="SQLAlchemy URL of the DCC database (default: a new SQLite file per run)"
    ),
    hsm: bool = typer.Option(
        False,
        "--hsm",
        help="keep the SMKI CAs', supplier's, distributor's and ACB's keys in SoftHSM2"
        " (default, cos and recovery scenarios)",
    ),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON only"),
    scenario: str = typer.Option(
        "default",
        "--scenario",
        help="which story to run: " + ", ".join(f"{k} ({v.summary})" for k, v in SCENARIOS.items()),
    ),
) -> None:
    """Commission homes, read every meter, disable supply at one, and show the defences."""
    folder = conformance if conformance is not None else default_conformance()
    if folder is not None and not folder.is_dir():
        raise typer.BadParameter(f"{folder} is not a folder", param_hint="--conformance")
    chosen = SCENARIOS.get(scenario)
    if chosen is None:
        raise typer.BadParameter(
            f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}",
            param_hint="--scenario",
        )
    if chosen.run is not None:
        chosen.run(ScenarioOptions(homes, folder, as_json, hsm))
        return
    with tempfile.TemporaryDirectory(prefix="smarthydra-demo-") as scratch:
        url = database or f"sqlite:///{Path(scratch) / 'dcc.sqlite3'}"
        keystores: KeystoreFactory = in_memory_keystores
        if hsm:
            try:
                keystores = softhsm_keystores(Path(scratch) / "softhsm")
            except KeystoreError as exc:
                typer.echo(f"error: --hsm needs SoftHSM2: {exc}", err=True)
                raise typer.Exit(2) from None
        _run(
            homes,
            seed,
            disable_threshold,
            folder,
            url,
            as_json,
            keystores,
            "softhsm2" if hsm else "soft",
        )


def _run(
    homes: int,
    seed: int,
    disable_threshold: int,
    folder: Path | None,
    url: str,
    as_json: bool,
    keystores: KeystoreFactory,
    keystore_kind: str,
) -> None:
    run = functools.partial(
        run_demo,
        homes,
        seed=seed,
        conformance=folder,
        disable_threshold=disable_threshold,
        database_url=url,
        keystores=keystores,
        keystore_kind=keystore_kind,
    )
    console = Console(stderr=True)
    if as_json:
        try:
            report = run()
        except SQLAlchemyError as exc:
            raise typer.BadParameter(
                f"cannot use database {url}: {exc}", param_hint="--database"
            ) from None
        typer.echo(json.dumps(report.to_json(), indent=2))
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done)

        try:
            report = run(progress=progress)
        except SQLAlchemyError as exc:
            raise typer.BadParameter(
                f"cannot use database {url}: {exc}", param_hint="--database"
            ) from None
    _summary(report, Console())
