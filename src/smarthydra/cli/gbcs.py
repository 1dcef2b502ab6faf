"""``smarthydra gbcs ...``: GBCS message tools."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.tree import Tree

from smarthydra.gbcs.catalogue import Catalogue, CatalogueError
from smarthydra.gbcs.conformance import ConformanceSummary, run_conformance
from smarthydra.gbcs.describe import describe_message
from smarthydra.gbcs.envelope import decode_message
from smarthydra.gbcs.errors import GbcsDecodeError
from smarthydra.gbcs.rtds import (
    RtdsKeystore,
    RtdsKeystoreError,
    RtdsSummary,
    default_keystore_dir,
    rtds_message_files,
    verify_rtds,
)

app = typer.Typer(no_args_is_help=True, help="GBCS messages: parse, check, build.")


def _fail(message: str, as_json: bool) -> NoReturn:
    if as_json:
        typer.echo(json.dumps({"error": message}))
    else:
        Console(stderr=True).print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


def _load_rtds(
    directory: Path, keystore: Path | None, as_json: bool
) -> tuple[list[Path], RtdsKeystore]:
    """The RTDS message files under ``directory`` and their keys, or a clear CLI error."""
    if not directory.is_dir():
        _fail(f"not a directory: {directory}", as_json)
    key_dir = keystore if keystore is not None else default_keystore_dir(directory)
    try:
        keys = RtdsKeystore.load(key_dir)
    except RtdsKeystoreError as exc:
        _fail(str(exc), as_json)
    files = rtds_message_files(directory)
    if not files:
        _fail(f"no .HEX message files under {directory}", as_json)
    return files, keys


@app.command("verify-rtds")
def verify_rtds_command(
    directory: Path = typer.Argument(
        ..., help="RTDS folder (.../conformance/gbcs or .../rtds-4.5.0 or one use case)"
    ),
    keystore: Path | None = typer.Option(
        None, "--keystore", help="RTDS key folder (default: DIR/rtds-keystore)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print JSON only"),
) -> None:
    """Check the MAC, signature and sensitive payloads of every RTDS message under DIR."""
    files, keys = _load_rtds(directory, keystore, as_json)
    if as_json:
        summary = verify_rtds(files, keys)
        typer.echo(json.dumps(summary.to_json(), indent=2))
    else:
        stderr = Console(stderr=True)
        with Progress(
            TextColumn("checking RTDS"), BarColumn(), MofNCompleteColumn(), console=stderr
        ) as progress:
            task = progress.add_task("verify", total=len(files))
            summary = verify_rtds(files, keys, lambda _path: progress.advance(task))
        _print_summary(summary)
    if summary.failures and not _only_expected_failures(summary):
        raise typer.Exit(1)


@app.command("conformance")
def conformance_command(
    directory: Path = typer.Argument(
        ..., help="RTDS folder (.../conformance/gbcs or .../rtds-4.5.0 or one use case)"
    ),
    keystore: Path | None = typer.Option(
        None, "--keystore", help="RTDS key folder (default: DIR/rtds-keystore)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print JSON only"),
) -> None:
    """Parse, round-trip (envelope and payload), MAC, signature and decrypt every RTDS file."""
    files, keys = _load_rtds(directory, keystore, as_json)
    if as_json:
        summary = run_conformance(files, keys)
        typer.echo(json.dumps(summary.to_json(), indent=2))
    else:
        stderr = Console(stderr=True)
        with Progress(
            TextColumn("RTDS conformance"), BarColumn(), MofNCompleteColumn(), console=stderr
        ) as progress:
            task = progress.add_task("conformance", total=len(files))
            summary = run_conformance(files, keys, lambda _path: progress.advance(task))
        _print_conformance(summary)
    if summary.failures and not all(
        name.startswith(_EXPECTED_FAILURE_PREFIXES) for name in summary.failures
    ):
        raise typer.Exit(1)


def _print_conformance(summary: ConformanceSummary) -> None:
    console = Console()
    table = Table(title=f"RTDS conformance: {summary.files} messages")
    table.add_column("check")
    table.add_column("ok", justify="right")
    table.add_column("of", justify="right")
    table.add_row("parsed", str(summary.parsed), str(summary.files))
    table.add_row("round-trip (envelope + payload)", str(summary.roundtrip), str(summary.files))
    table.add_row("MAC valid", str(summary.mac_valid), str(summary.mac_checked))
    table.add_row("signature valid", str(summary.signature_valid), str(summary.signature_checked))
    table.add_row("decrypted and decoded", str(summary.decrypted), str(summary.sensitive))
    console.print(table)
    for name, reason in sorted(summary.failures.items()):
        note = (
            " (HAN-only, keyed differently)" if name.startswith(_EXPECTED_FAILURE_PREFIXES) else ""
        )
        console.print(f"  [yellow]{name}[/yellow]: {reason}{note}")


# The two HAN-only prepayment-interface commands are keyed outside the RTDS keystore.
_EXPECTED_FAILURE_PREFIXES = ("PCS01_", "PCS02_")


def _only_expected_failures(summary: RtdsSummary) -> bool:
    return all(name.startswith(_EXPECTED_FAILURE_PREFIXES) for name in summary.failures)


def _print_summary(summary: RtdsSummary) -> None:
    console = Console()
    table = Table(title=f"RTDS: {summary.files} messages, {summary.parsed} parsed")
    for column in ("check", "valid / ok", "invalid / failed", "skipped", "not applicable"):
        table.add_column(column, justify="right" if column != "check" else "left")
    table.add_row(
        "MAC",
        str(summary.mac_valid),
        str(summary.mac_invalid),
        str(summary.mac_skipped),
        str(summary.files - summary.mac_valid - summary.mac_invalid - summary.mac_skipped),
    )
    table.add_row(
        "signature",
        str(summary.signature_valid),
        str(summary.signature_invalid),
        str(summary.signature_skipped),
        f"{summary.signature_unsigned} unsigned",
    )
    table.add_row(
        "sensitive payload",
        str(summary.decrypted_ok),
        str(summary.decrypted_failed),
        str(summary.decryption_skipped),
        "",
    )
    console.print(table)
    if summary.failures:
        console.print("[yellow]failures:[/yellow]")
        for name in sorted(summary.failures):
            note = (
                " (HAN-only, keyed differently)"
                if name.startswith(_EXPECTED_FAILURE_PREFIXES)
                else ""
            )
            console.print(f"  {name}{note}")


@app.command("parse")
def parse_command(
    message: str = typer.Argument(..., help="a file holding hex, or the hex itself"),
    keystore: Path | None = typer.Option(
        None, "--keystore", help="RTDS key folder: check MAC and signature, decrypt"
    ),
    catalogue: Path | None = typer.Option(
        None,
        "--catalogue",
        help="folder with use-cases.json and codes.json (default: beside the keystore)",
    ),
    as_json: bool = typer.Option(False, "--json", help="print JSON only"),
) -> None:
    """Parse one GBCS message into a readable tree (or JSON)."""
    path = Path(message)
    text = path.read_text(errors="replace") if path.is_file() else message
    try:
        data = bytes.fromhex("".join(text.split()))
    except ValueError:
        _fail("not hex (and not a file holding hex)", as_json)
    try:
        parsed = decode_message(data)
    except GbcsDecodeError as exc:
        _fail(f"not a GBCS message: {type(exc).__name__}: {exc}", as_json)
    keys = None
    if keystore is not None:
        try:
            keys = RtdsKeystore.load(keystore)
        except RtdsKeystoreError as exc:
            _fail(str(exc), as_json)
    catalogue_dir = catalogue or (keystore.parent if keystore is not None else None)
    cat = None
    if catalogue_dir is not None and (catalogue_dir / "use-cases.json").is_file():
        try:
            cat = Catalogue.load(catalogue_dir)
        except CatalogueError as exc:
            _fail(str(exc), as_json)
    elif catalogue is not None:
        _fail(f"no use-cases.json in {catalogue}", as_json)
    tree = describe_message(parsed, catalogue=cat, keystore=keys)
    if as_json:
        typer.echo(json.dumps(tree, indent=2))
    else:
        root = Tree(f"[bold]GBCS message[/bold] ({len(data)} bytes)")
        _add_tree(root, tree)
        Console().print(root)


def _add_tree(node: Tree, value: object) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list):
                _add_tree(node.add(f"[cyan]{key}[/cyan]"), item)
            else:
                node.add(f"[cyan]{key}[/cyan]: {item}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, dict | list):
                _add_tree(node.add(f"[{index}]"), item)
            else:
                node.add(f"[{index}] {item}")
    else:
        node.add(str(value))
