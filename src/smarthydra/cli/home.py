"""``smarthydra home``: run a simulated home, project the gas meter's battery, send a use case.

- ``simulate --days N --seed S [--gas/--no-gas] [--json]``: a seeded household drives the
  meters half hour by half hour; each day ends with the supplier's daily-log read (ECS21a)
  end to end; prints a line per day.
- ``battery [--flood READS_PER_DAY] [--budget N] [--measured] [--json]``: the gas meter's
  projected battery life under the default schedule, and under a read flood with and without
  the gas proxy; ``--measured`` sends the day's traffic for real and uses the meter's ledger.
- ``household --seed S [--date D] [--json]``: one day of a household's demand, half hourly.
- ``duis SRV [--device esme|gsme|gpf|hub|ppmid] [--body FILE] [--execute-in MINUTES] [--xml]``:
  one service request on the full DUIS path in a fresh simulated home (electricity, gas, a
  PPMID and the hub in the DCC's inventory): the request as schema-valid XML, the DataCommsCompany (CV 4 and
  the supplier's signed pre-command for a critical service), WAN, hub, device, and the DUIS
  response; prints the device's GBCS response, or with ``--xml`` both XML documents.
- ``replace-hub [--seed S]``: a home's hub fails and is replaced; the DCC restores the old
  hub's device log on the new one (8.12.1, CCS03, from the CS14 backups it kept), the devices
  rejoin, and the PPMID, electricity meter and gas proxy answer through the new hub.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import typer
from rich.console import Console
from rich.table import Table

from smarthydra.cli.fleet import fleet
from smarthydra.premises.gsme import DEFAULT_READ_BUDGET, TARGET_YEARS, schedule_projection
from smarthydra.sim.household import Household, generate_day

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="A simulated home: Hydra hub, meters, in-home devices, demand.")
console = Console()
err = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


@app.command()
def simulate(
    days: int = typer.Option(7, "--days", min=1, max=366, help="days to simulate"),
    seed: int = typer.Option(1, "--seed", help="household and world seed"),
    gas: bool = typer.Option(True, "--gas/--no-gas", help="with a gas meter and the GPF"),
    as_json: bool = typer.Option(False, "--json", help="JSON output"),
) -> None:
    """Run one home for DAYS days of seeded household demand."""
    from smarthydra.sim.home import add_gas
    from smarthydra.sim.home import simulate as run_home
    from smarthydra.sim.world import build_world

    world = build_world(homes=1, seed=seed)
    home = world.home(0)
    installation = add_gas(world, home) if gas else None
    household = Household.sample(seed)
    summaries = run_home(world, home, household, days, gas=installation)
    rows = [dataclasses.asdict(s) | {"date": s.date.isoformat()} for s in summaries]
    if as_json:
        typer.echo(json.dumps({"household": dataclasses.asdict(household) | {"appliances": len(
            household.appliances)}, "days": rows,
            "hub_apdus": {k.hex(): v for k, v in home.hub.vt.apdus.items()},
            "gas_energy_j": installation.gsme.energy.spent_joules if installation else None},
            indent=2))
        return
    table = Table(title=f"home {home.mpan} (seed {seed})")
    for column in ("date", "import kWh", "export kWh", "gas m3", "peak W", "supply",
                   "ECS21a bytes"):
        table.add_column(column)
    for s in summaries:
        table.add_row(s.date.isoformat(), f"{s.import_kwh:.2f}", f"{s.export_kwh:.2f}",
                      f"{s.gas_m3:.3f}", str(s.peak_w), s.supply, str(s.daily_log_response_bytes))
    console.print(table)


@app.command()
def battery(
    flood: int = typer.Option(24 * 60, "--flood", min=0, help="extra reads a day (an attack)"),
    budget: int = typer.Option(DEFAULT_READ_BUDGET, "--budget", min=0,
                               help="pass-through reads a day the GPF allows"),
    measured: bool = typer.Option(
        False, "--measured",
        help="send the reads for real (WAN, hub, GPF, HAN) and project from the meter's ledger"),
    as_json: bool = typer.Option(False, "--json", help="JSON output"),
) -> None:
    """Projected gas meter battery life: default schedule, and a read flood with/without GPF."""
    if measured:
        from smarthydra.sim.home import measure_gas_day

        cases = {
            "default schedule": measure_gas_day(0, with_gpf=True).projection,
            "read flood without GPF": measure_gas_day(flood, with_gpf=False).projection,
            "read flood with GPF": measure_gas_day(flood, with_gpf=True).projection,
        }
    else:
        cases = {
            "default schedule": schedule_projection(0, read_budget=budget),
            "read flood without GPF": schedule_projection(flood, with_gpf=False),
            "read flood with GPF": schedule_projection(flood, with_gpf=True, read_budget=budget),
        }
    if as_json:
        typer.echo(json.dumps({name: dataclasses.asdict(p) for name, p in cases.items()}
                              | {"target_years": TARGET_YEARS, "flood_reads_per_day": flood},
                              indent=2))
        return
    table = Table(title=f"gas meter battery (target {TARGET_YEARS:.0f} years)")
    for column in ("case", "J/day", "years", "meets target"):
        table.add_column(column)
    for name, p in cases.items():
        table.add_row(name, f"{p.joules_per_day:.1f}", f"{p.years:.1f}",
                      "yes" if p.meets_target else "no")
    console.print(table)


@app.command()
def household(
    seed: int = typer.Option(1, "--seed"),
    date: str = typer.Option("2026-01-15", "--date", help="YYYY-MM-DD"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """One day of a seeded household's demand, half hour by half hour."""
    try:
        day = dt.date.fromisoformat(date)
    except ValueError:
        raise _fail(f"not a date: {date!r} (expected YYYY-MM-DD)") from None
    house = Household.sample(seed)
    demand = generate_day(house, day)
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(demand) | {"date": day.isoformat()}))
        return
    console.print(f"household {seed}: {house.occupants} occupants, "
                  f"electric heating {house.electric_heating}, EV {house.electric_vehicle}, "
                  f"PV {house.solar_pv_kwp} kWp")
    console.print(f"{day}: import {demand.total_import_wh / 1000:.2f} kWh, "
                  f"export {sum(demand.export_wh) / 1000:.2f} kWh, "
                  f"gas {sum(demand.gas_litres) / 1000:.2f} m3")


_DEVICES = ("esme", "gsme", "gpf", "hub", "ppmid")


@app.command()
def duis(
    srv: str = typer.Argument(..., help="service reference variant, e.g. 7.2 or 4.1.1"),
    device: str = typer.Option("esme", "--device", help="esme, gsme, gpf, hub or ppmid"),
    body: typer.FileText | None = typer.Option(
        None, "--body", help="the request body as JSON (XSD element names; '-' for stdin)"),
    execute_in: int | None = typer.Option(
        None, "--execute-in", min=1, help="future-dated: minutes from now"),
    seed: int = typer.Option(1, "--seed"),
    xml: bool = typer.Option(False, "--xml", help="print the DUIS request and response XML"),
) -> None:
    """Send one DUIS service request through the DCC to a simulated home's device."""
    from smarthydra.dcc.gateway import default_schema_dir
    from smarthydra.duis.xml import DuisSchema, DuisXmlError, SchemaNotFound
    from smarthydra.gbcs.describe import payload_kind
    from smarthydra.sim.home import DuisRoundTripError, DuisUser, add_gas, add_ppmid, enrol_hub
    from smarthydra.sim.world import build_world

    if device not in _DEVICES:
        raise _fail(f"--device must be one of {', '.join(_DEVICES)}")
    parameters: dict[str, object] = {}
    if body is not None:
        try:
            loaded = json.loads(body.read())
        except json.JSONDecodeError as exc:
            raise _fail(f"--body is not JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise _fail("--body must be a JSON object (the body element's children)")
        parameters = loaded
    schema_dir = default_schema_dir()
    try:
        schema = DuisSchema.load(schema_dir)
    except SchemaNotFound as exc:
        raise _fail(f"the DUIS schema is needed: {exc}") from None
    world = build_world(homes=1, seed=seed, conformance=schema_dir.parent)
    home = world.home(0)
    gas = add_gas(world, home)
    ppmid = add_ppmid(world, home)
    enrol_hub(world, home)
    target = {"esme": home.esme.eui, "gsme": gas.gsme.eui, "gpf": gas.gpf.eui,
              "hub": home.hub.eui, "ppmid": ppmid.eui}[device]
    role = "GS" if device in ("gsme", "gpf") else "IS"
    execution = (world.clock.now() + dt.timedelta(minutes=execute_in)
                 if execute_in is not None else None)
    try:
        trip = DuisUser(world, schema).send(srv, target, parameters, role=role,
                                            execution=execution)
    except DuisRoundTripError as exc:
        raise _fail(str(exc)) from None
    except DuisXmlError as exc:
        raise _fail(f"the request is not valid DUIS: {exc}") from None
    message = trip.message
    if xml:
        typer.echo(trip.request_xml.decode())
        typer.echo(trip.response_xml.decode())
        return
    console.print(f"[bold]{srv}[/bold] -> {device} {target.hyphenated}: "
                  f"DUIS {trip.response.code_text}, GBCS message code 0x{message.message_code:04X} "
                  f"({payload_kind(message.payload)}), "
                  f"{'signed' if not message.is_macd else 'MAC verified'}")
    typer.echo(message.payload.hex())


@app.command("replace-hub")
def replace_hub_command(seed: int = typer.Option(1, "--seed")) -> None:
    """Replace a home's comms hub and restore its device log through the DCC (8.12.1)."""
    from smarthydra.dcc.gateway import default_schema_dir
    from smarthydra.duis.xml import DuisSchema, SchemaNotFound
    from smarthydra.sim.home import (
        DuisRoundTripError,
        DuisUser,
        add_gas,
        add_ppmid,
        enrol_hub,
        forward_device_log_backups,
        rejoin_devices,
        replace_hub,
    )
    from smarthydra.sim.world import build_world

    schema_dir = default_schema_dir()
    try:
        schema = DuisSchema.load(schema_dir)
    except SchemaNotFound as exc:
        raise _fail(f"the DUIS schema is needed: {exc}") from None
    world = build_world(homes=1, seed=seed, conformance=schema_dir.parent)
    home = world.home(0)
    gas = add_gas(world, home)
    ppmid = add_ppmid(world, home)
    enrol_hub(world, home)
    forward_device_log_backups(world, home)
    user = DuisUser(world, schema)
    replacement = replace_hub(world, home, gas=gas)
    table = Table("step", "result")
    table.add_row("old hub", f"{replacement.old.eui.hyphenated} "
                  f"({len(replacement.old.device_log())} devices in its log)")
    table.add_row("new hub", f"{replacement.new.eui.hyphenated} "
                  f"({len(replacement.new.device_log())} devices in its log)")
    try:
        restore = user.send("8.12.1", replacement.new.eui,
                            {"OldCHFID": replacement.old.eui.hyphenated})
        table.add_row("8.12.1 CCS03", f"DUIS {restore.response.code_text}, "
                      f"{len(replacement.new.device_log())} devices restored")
        rejoined = rejoin_devices(replacement)
        table.add_row("rejoined", ", ".join(e.hyphenated for e in rejoined))
        read = user.send("11.2", ppmid.eui)
        table.add_row("11.2 CS08 (PPMID)", read.message.payload.hex())
        gas_read = user.send("4.1.1", gas.gpf.eui, role="GS")
        table.add_row("4.1.1 GCS13a (new GPF)", f"{len(gas_read.message.payload)} bytes")
        supply = user.send("7.4", home.esme.eui)
        table.add_row("7.4 ECS45 (ESME)", supply.message.payload.hex())
    except DuisRoundTripError as exc:
        console.print(table)
        raise _fail(str(exc)) from None
    console.print(table)


app.command("fleet")(fleet)
