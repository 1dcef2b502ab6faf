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

from smarthydra.gbcs.catalogue import Catalogue, CatalogueError, Category, RemotePartyRole
from smarthydra.gbcs.conformance import ConformanceSummary, run_conformance
from smarthydra.gbcs.describe import describe_message
from smarthydra.gbcs.envelope import CraFlag, decode_message, decode_segmented
from smarthydra.gbcs.errors import GbcsDecodeError, GbcsError
from smarthydra.gbcs.rtds import (
    RtdsKeystore,
    RtdsKeystoreError,
    RtdsSummary,
    default_keystore_dir,
    rtds_message_files,
    verify_rtds,
)
from smarthydra.gbcs.usecase import (
    MessageKeys,
    UseCaseParams,
    build_alert,
    build_command,
    build_precommand,
    build_response,
    resolve_use_case,
    rtds_keys,
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
    table.add_row("rebuilt from use-case parameters", str(summary.rebuilt), str(summary.files))
    console.print(table)
    if summary.mac_skipped:
        console.print(
            f"  {summary.mac_skipped} MACs not checkable: HAN-only messages between two devices, "
            "whose private keys are not published"
        )
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
    text = _file_or_text(message)
    try:
        data = bytes.fromhex("".join(text.split()))
    except ValueError:
        _fail("not hex (and not a file holding hex)", as_json)
    try:
        # A general-block-transfer stream (segmented message) is reassembled first.
        parsed = decode_segmented(data) if data[:1] == b"\xe0" else decode_message(data)
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


def _file_or_text(value: str) -> str:
    """The contents of the file named ``value``, or ``value`` itself (hex given inline, which
    may be longer than a file name can be)."""
    try:
        path = Path(value)
        if path.is_file():
            return path.read_text(errors="replace")
    except OSError:
        return value  # too long or too odd to be a file name: hex given inline
    return value


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


# --- build ----------------------------------------------------------------------------------


def _read_params(text: str, as_json: bool) -> object:
    source = text
    if text.startswith("@"):
        path = Path(text[1:])
        if not path.is_file():
            _fail(f"--params file not found: {path}", as_json)
        source = path.read_text()
    elif not text.lstrip().startswith("{"):
        source = _file_or_text(text)
    try:
        return json.loads(source)
    except json.JSONDecodeError as exc:
        _fail(f"--params is not JSON: {exc}", as_json)


def _eui(value: str | None, what: str, as_json: bool) -> bytes:
    if value is None:
        _fail(f"--{what} is required (an EUI-64, 16 hex digits)", as_json)
    try:
        raw = bytes.fromhex(value.replace(":", "").replace("-", ""))
    except ValueError:
        _fail(f"--{what} is not hex: {value!r}", as_json)
    if len(raw) != 8:
        _fail(f"--{what} must be 8 bytes (16 hex digits), got {len(raw)}", as_json)
    return raw


def _catalogue_for(conformance: Path | None, as_json: bool) -> Catalogue:
    try:
        if conformance is not None:
            folder = conformance / "gbcs" if (conformance / "gbcs").is_dir() else conformance
            return Catalogue.load(folder)
        return Catalogue.default()
    except CatalogueError as exc:
        _fail(str(exc), as_json)


def _use_case_ref(text: str) -> str | int:
    lowered = text.lower()
    if lowered.startswith("0x"):
        try:
            return int(lowered, 16)
        except ValueError:
            return text
    return text


@app.command("build")
def build_cli(
    use_case: str = typer.Argument(..., help="use case code (ECS17b) or message code (0x00CC)"),
    params: str = typer.Option(
        ...,
        "--params",
        help="use-case parameters: JSON text, @FILE or FILE (as `parse --json` prints under params)",
    ),
    kind: str | None = typer.Option(
        None, "--kind", help="command, precommand, response or alert (default: from the use case)"
    ),
    originator: str | None = typer.Option(None, "--originator", help="originator EUI-64 (hex)"),
    recipient: str | None = typer.Option(None, "--recipient", help="recipient EUI-64 (hex)"),
    counter: int = typer.Option(..., "--counter", min=0, help="originator counter"),
    message_code: str | None = typer.Option(
        None, "--message-code", help="for use cases with several codes (CS02b), hex"
    ),
    keystore: Path | None = typer.Option(
        None, "--keystore", help="RTDS-style key folder: MAC (and sign) with its keys"
    ),
    conformance: Path | None = typer.Option(
        None, "--conformance", help="conformance folder: catalogue, and rtds-keystore for keys"
    ),
    signature: str | None = typer.Option(
        None, "--signature", help="use this r||s (hex) instead of signing"
    ),
    no_mac: bool = typer.Option(False, "--no-mac", help="leave the message un-MAC'd"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of hex"),
) -> None:
    """Build a use case's GBCS command, pre-command, response or alert from typed parameters."""
    catalogue = _catalogue_for(conformance, as_json)
    code: int | None = None
    if message_code is not None:
        try:
            code = int(message_code, 16)
        except ValueError:
            _fail(f"--message-code is not hex: {message_code!r}", as_json)
    try:
        entry, resolved = resolve_use_case(
            _use_case_ref(use_case), catalogue=catalogue, message_code=code
        )
    except GbcsError as exc:
        _fail(str(exc), as_json)
    chosen = kind or ("alert" if entry is not None and entry.category.is_alert else "command")
    if chosen not in ("command", "precommand", "response", "alert"):
        _fail(f"--kind must be command, precommand, response or alert, not {chosen!r}", as_json)
    source = _eui(originator, "originator", as_json)
    target = _eui(recipient, "recipient", as_json)
    try:
        parsed = UseCaseParams.from_json(_read_params(params, as_json), counter=counter)
    except GbcsError as exc:
        _fail(str(exc), as_json)
    raw_signature = None
    if signature is not None:
        try:
            raw_signature = bytes.fromhex(signature)
        except ValueError:
            _fail("--signature is not hex", as_json)
    key_dir = keystore
    if key_dir is None and conformance is not None:
        nested = conformance / "gbcs" / "rtds-keystore"
        key_dir = nested if nested.is_dir() else default_keystore_dir(conformance)
    keys = MessageKeys()
    if key_dir is not None and chosen != "precommand":
        try:
            store = RtdsKeystore.load(key_dir)
        except RtdsKeystoreError as exc:
            _fail(str(exc), as_json)
        cra = {"command": CraFlag.COMMAND, "response": CraFlag.RESPONSE}.get(chosen, CraFlag.ALERT)
        critical = entry is not None and entry.category is Category.CRITICAL_COMMAND
        try:
            keys = rtds_keys(
                store,
                cra_flag=cra,
                originator=source,
                recipient=target,
                sign=critical and chosen == "command" and raw_signature is None,
                encryption_party=parsed.supplementary_remote_party_id or target,
            )
        except GbcsError as exc:
            _fail(str(exc), as_json)
        if keys.mac_z is None and not no_mac:
            _fail(
                f"no published key-agreement key pair for {source.hex().upper()} -> "
                f"{target.hex().upper()}: cannot MAC (use --no-mac)",
                as_json,
            )
    elif chosen != "precommand" and not no_mac:
        _fail("a MAC needs keys: give --keystore or --conformance (or --no-mac)", as_json)
    if no_mac:
        keys = MessageKeys(signer=keys.signer, encryption_z=keys.encryption_z)
    try:
        if chosen == "precommand":
            wire = build_precommand(
                resolved,
                parsed,
                originator=source,
                recipient=target,
                counter=counter,
                catalogue=catalogue,
            )
        elif chosen == "command":
            wire = build_command(
                entry or resolved,
                parsed,
                originator=source,
                recipient=target,
                counter=counter,
                keys=keys,
                signature=raw_signature,
                catalogue=catalogue,
                message_code=resolved,
            )
        else:
            builder = build_response if chosen == "response" else build_alert
            wire = builder(
                entry or resolved,
                parsed,
                device=source,
                recipient=target,
                counter=counter,
                keys=keys,
                signature=raw_signature,
                catalogue=catalogue,
                message_code=resolved,
            )
    except GbcsError as exc:
        _fail(f"{type(exc).__name__}: {exc}", as_json)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "use_case": None if entry is None else entry.code,
                    "message_code": f"{resolved:04X}",
                    "kind": chosen,
                    "bytes": len(wire),
                    "hex": wire.hex().upper(),
                },
                indent=2,
            )
        )
    else:
        typer.echo(wire.hex().upper())


# --- the catalogue --------------------------------------------------------------------------


@app.command("use-cases")
def use_cases_cli(
    category: str | None = typer.Option(
        None, "--category", help="critical command, non-critical command, critical alert, ..."
    ),
    role: str | None = typer.Option(
        None, "--role", help="DUIS role (IS, GS, ES, ED, GT, OU, RSA) or GBCS role (supplier, ...)"
    ),
    sensitive: bool | None = typer.Option(
        None, "--sensitive/--not-sensitive", help="only use cases whose response is (not) encrypted"
    ),
    service_request: str | None = typer.Option(
        None, "--service-request", help="only the use cases of this DUIS SRV variant (4.1.1)"
    ),
    conformance: Path | None = typer.Option(None, "--conformance", help="conformance folder"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """List the GBCS use cases: message codes, category, sensitivity, roles, replay rules."""
    catalogue = _catalogue_for(conformance, as_json)
    wanted_category = None
    if category is not None:
        try:
            wanted_category = Category(
                category.replace("_", " ").replace("non critical", "non-critical")
            )
        except ValueError:
            _fail(f"--category must be one of {[c.value for c in Category]}", as_json)
    wanted_role: RemotePartyRole | str | None = role
    if role is not None and not role.isupper():
        try:
            wanted_role = RemotePartyRole[role.upper().replace(" ", "_").replace("-", "_")]
        except KeyError:
            _fail(f"--role {role!r} is neither a DUIS role code nor a GBCS role name", as_json)
    found = catalogue.query(
        category=wanted_category, role=wanted_role, response_sensitive=sensitive
    )
    if service_request is not None:
        serving = {uc.code for uc in catalogue.for_service_request(service_request)}
        found = [uc for uc in found if uc.code in serving]
    if as_json:
        typer.echo(json.dumps([uc.to_json() for uc in found], indent=2))
        return
    table = Table(title=f"GBCS use cases: {len(found)}")
    for column in ("code", "codes", "category", "sensitive", "roles", "title"):
        table.add_column(column)
    for uc in found:
        table.add_row(
            uc.code,
            " ".join(f"{c:04X}" for c in uc.message_codes),
            uc.category.value,
            "yes" if uc.response_sensitive else "",
            " ".join(uc.duis_roles),
            uc.title,
        )
    Console().print(table)
