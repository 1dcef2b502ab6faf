"""``smarthydra card``: run a secure element and talk to it.

``serve --vpcd HOST:PORT`` connects a card to pcscd's vsmartcard reader so that PC/SC tools
see it; ``serve --stdio`` runs a card as a separate OS process speaking vpcd framing on
stdin/stdout; ``apdu`` sends APDUs to a card image; ``info`` lists its registry.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from smarthydra.card.apdu import APDUFormatError, CommandAPDU, ResponseAPDU
from smarthydra.card.card import Card
from smarthydra.card.memory import CorruptImage, FileBacking, MemoryError_
from smarthydra.card.process import build_card, serve_stream
from smarthydra.card.transport import (
    CardTransport,
    InProcessTransport,
    ProcessTransport,
    TransportError,
    resolve_profile,
)
from smarthydra.card.vpcd import DEFAULT_PORT, VpcdBridge

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="The Hydra secure element: serve it, send it APDUs, inspect it.")
console = Console()
err = Console(stderr=True)

DEFAULT_IMAGE = Path("smarthydra-card.img")


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def _parse_hostport(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = value, str(DEFAULT_PORT)
    try:
        number = int(port)
    except ValueError:
        raise _fail(f"--vpcd wants HOST:PORT, got {value!r}") from None
    if not 0 < number < 65536:
        raise _fail(f"port {number} is outside 1..65535")
    return host or "127.0.0.1", number


def _open_card(image: Path, profile: str, separate_process: bool, seed: str | None
               ) -> CardTransport:
    try:
        if separate_process:
            extra = ("--test-seed", seed) if seed is not None else ()
            return ProcessTransport(image, profile, extra_args=extra)
        return InProcessTransport(build_card(str(image), profile, seed=seed))
    except ValueError as exc:
        raise _fail(str(exc)) from None


@app.command()
def serve(
    vpcd: str = typer.Option(None, "--vpcd", help="connect to pcscd's vpcd reader HOST:PORT"),
    stdio: bool = typer.Option(False, "--stdio",
                               help="serve vpcd framing on stdin/stdout (a card process)"),
    image: Path = typer.Option(DEFAULT_IMAGE, "--image", help="card image file"),
    profile: str = typer.Option("examples", "--profile",
                                help="examples, empty, or package.module:attribute"),
    separate_process: bool = typer.Option(
        False, "--separate-process",
        help="run the card in its own OS process (killing it is a power cut)"),
    test_seed: str = typer.Option(None, "--test-seed", hidden=True,
                                  help="deterministic RNG, for tests only"),
) -> None:
    """Run a card until interrupted."""
    if (vpcd is None) == (not stdio):
        raise _fail("give exactly one of --vpcd HOST:PORT or --stdio")
    if stdio:
        try:
            card = build_card(str(image), profile, seed=test_seed)
        except ValueError as exc:
            raise _fail(str(exc)) from None
        serve_stream(card, sys.stdin.buffer, sys.stdout.buffer)
        return
    host, port = _parse_hostport(vpcd)
    transport = _open_card(image, profile, separate_process, test_seed)
    bridge = VpcdBridge(transport, host, port,
                        on_error=lambda e: err.print(f"[yellow]card link:[/yellow] {e}"))

    def stop(signum: int, frame: FrameType | None) -> None:
        bridge.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    err.print(f"serving card image {image} ({profile}) to vpcd at {host}:{port}"
              + (" from a separate process" if separate_process else ""))
    worker = threading.Thread(target=bridge.serve_forever, daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.2)
    transport.close()


@app.command()
def apdu(
    commands: list[str] = typer.Argument(..., help="command APDUs in hex"),
    image: Path = typer.Option(DEFAULT_IMAGE, "--image", help="card image file"),
    profile: str = typer.Option("examples", "--profile"),
    separate_process: bool = typer.Option(False, "--separate-process"),
    raw: bool = typer.Option(False, "--raw", help="do not follow 61xx with GET RESPONSE"),
    as_json: bool = typer.Option(False, "--json", help="print JSON only"),
) -> None:
    """Power the card up, send APDUs in order, print the responses."""
    parsed: list[bytes] = []
    for text in commands:
        try:
            command = bytes.fromhex(text.replace(":", "").replace(" ", ""))
        except ValueError:
            raise _fail(f"{text!r} is not hex") from None
        parsed.append(command)
    transport = _open_card(image, profile, separate_process, None)
    results = []
    try:
        atr = transport.power_on()
        for command in parsed:
            if raw:
                response = ResponseAPDU.parse(transport.transmit(command))
            else:
                try:
                    response = transport.send(CommandAPDU.parse(command))
                except APDUFormatError:  # let the card judge malformed bytes itself
                    response = ResponseAPDU.parse(transport.transmit(command))
            results.append({"command": command.hex().upper(),
                            "data": response.data.hex().upper(),
                            "sw": f"{response.sw:04X}"})
    except (TransportError, CorruptImage, MemoryError_) as exc:
        raise _fail(str(exc)) from None
    finally:
        transport.close()
    if as_json:
        print(json.dumps({"atr": atr.hex().upper(), "responses": results}))
        return
    table = Table(title=f"card {image} ATR {atr.hex().upper()}")
    for column in ("command", "response data", "SW"):
        table.add_column(column)
    for row in results:
        table.add_row(row["command"], row["data"], row["sw"])
    console.print(table)


@app.command()
def info(
    image: Path = typer.Option(DEFAULT_IMAGE, "--image", help="card image file"),
    profile: str = typer.Option("examples", "--profile"),
    as_json: bool = typer.Option(False, "--json", help="print JSON only"),
) -> None:
    """List load files and applets in a card image (powering it up, which personalises it)."""
    try:
        card = Card(FileBacking(image), resolve_profile(profile))
        card.power_on()
    except (ValueError, CorruptImage) as exc:
        raise _fail(str(exc)) from None
    manager = card.manager
    doc: dict[str, Any] = {
        "atr": card.atr.hex().upper(),
        "card_life_cycle": f"{manager.card_life_cycle:02X}",
        "load_files": [{"aid": lf.aid.hex().upper(), "life_cycle": f"{lf.life_cycle:02X}",
                        "rom": lf.rom} for lf in manager.load_files()],
        "applets": [{"aid": e.aid.hex().upper(), "load_file": e.load_file_aid.hex().upper(),
                     "module": e.module_aid.hex().upper(),
                     "life_cycle": f"{e.life_cycle:02X}",
                     "privileges": e.privileges.hex().upper()} for e in manager.entries()],
    }
    if as_json:
        print(json.dumps(doc))
        return
    table = Table(title=f"card image {image}")
    for column in ("kind", "AID", "load file", "life cycle", "privileges"):
        table.add_column(column)
    for lf in doc["load_files"]:
        table.add_row("load file", lf["aid"], "", lf["life_cycle"], "")
    for e in doc["applets"]:
        table.add_row("applet", e["aid"], e["load_file"], e["life_cycle"], e["privileges"])
    console.print(table)
