"""``smarthydra card``: run a secure element and talk to it.

``serve --vpcd HOST:PORT`` connects a card to pcscd's vsmartcard reader so that PC/SC tools
see it (``--test-keys``: a GlobalPlatform card with the GP test keys and an SCP11b key);
``serve --stdio`` runs a card as a separate OS process speaking vpcd framing on
stdin/stdout; ``apdu`` sends APDUs to a card image; ``info`` lists its registry.

GlobalPlatform card management, against a card image in process (``--image``, profile
``gp``) or a card in a PC/SC reader (``--reader``), over SCP03 (default: the GP test keys)
or SCP11b: ``list``, ``load``, ``install``, ``delete``, ``lock``, ``unlock``, ``put-key``,
``store-data``. ``conformance FILE`` replays a GP secure-channel vector file.
"""

from __future__ import annotations

import functools
import inspect
import json
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from smarthydra.card.apdu import APDUFormatError, CommandAPDU, ResponseAPDU
from smarthydra.card.card import Card
from smarthydra.card.gp import management as gpm
from smarthydra.card.gp.client import GpClient, GpCommandError, dap_signature, token_signer_for
from smarthydra.card.gp.conformance import replay_vectors
from smarthydra.card.gp.errors import GpError
from smarthydra.card.gp.keystore import KeyType, SdKey
from smarthydra.card.gp.scp03 import Scp03StaticKeys
from smarthydra.card.gp.scp11 import Scp11Variant
from smarthydra.card.memory import CorruptImage, FileBacking, MemoryError_
from smarthydra.card.package import AppletPackage, PackageError, build_package, load_manifest
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
    test_keys: bool = typer.Option(
        False, "--test-keys",
        help="GlobalPlatform card: ISD A000000151000000 with the GP test keys (40..4F, KVN 30) "
             "and an SCP11b key pair (profile gp-test)"),
    certificate: Path = typer.Option(
        Path("smarthydra-scp11b.cert"), "--certificate",
        help="with --test-keys: where to write the SCP11b certificate store (BF21)"),
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
    if test_keys:
        profile = "gp-test"
    transport = _open_card(image, profile, separate_process, test_seed)
    if test_keys:
        try:
            transport.power_on()
            client = GpClient(transport.transmit)
            client.select()
            certificate.write_bytes(client.certificate_store())
        except (GpCommandError, TransportError, OSError) as exc:
            transport.close()
            raise _fail(f"cannot write the SCP11b certificate: {exc}") from None
        err.print(f"SCP11b certificate store (BF21) written to {certificate}")
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


# --- GlobalPlatform card management ---------------------------------------------------------


def _hex(value: str, what: str) -> bytes:
    try:
        return bytes.fromhex(value.replace(":", "").replace(" ", ""))
    except ValueError:
        raise _fail(f"{what} {value!r} is not hex") from None


def _aid(value: str, what: str = "AID") -> bytes:
    aid = _hex(value, what)
    if not 5 <= len(aid) <= 16:
        raise _fail(f"{what} must be 5..16 bytes, got {len(aid)}")
    return aid


def _private_key(path: Path) -> gpm.PrivateKey:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise _fail(f"cannot read private key {path}: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise _fail(f"{path}: only EC (P-256) and RSA keys sign DAPs and tokens")
    return key


class _Session:
    """Options shared by the GP commands: where the card is and how to open the channel."""

    def __init__(self, image: Path, profile: str, reader: str | None, sd: str, key: str,
                 kvn: int, scp: str, level: int) -> None:
        self.image, self.profile, self.reader = image, profile, reader
        self.sd = _aid(sd, "--sd")
        self.key = _hex(key, "--key")
        if len(self.key) not in (16, 24, 32):
            raise _fail("--key is an AES key of 16, 24 or 32 bytes")
        self.kvn, self.scp, self.level = kvn, scp.lower(), level
        if self.scp not in ("03", "11b"):
            raise _fail("--scp is 03 or 11b")
        self.transport: CardTransport | None = None

    def open(self) -> GpClient:
        if self.reader is not None:
            from smarthydra.card.transport import PcscTransport

            try:
                self.transport = PcscTransport(self.reader)
            except TransportError as exc:
                raise _fail(str(exc)) from None
        else:
            self.transport = _open_card(self.image, self.profile, False, None)
        try:
            self.transport.power_on()
            client = GpClient(self.transport.transmit)
            client.select(self.sd)
            if self.scp == "03":
                client.open_scp03(Scp03StaticKeys(self.key, self.key, self.key, self.kvn),
                                  security_level=self.level)
            else:
                client.open_scp11(Scp11Variant.B, client.sd_public_key())
        except (GpCommandError, GpError, TransportError, CorruptImage, MemoryError_) as exc:
            self.close()
            raise _fail(f"cannot open a secure channel: {exc}") from None
        return client

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@dataclass(frozen=True)
class _ChannelOptions:
    """The card and secure-channel options every GP command takes, as given (unchecked)."""

    image: Path
    profile: str
    reader: str | None
    sd: str
    key: str
    kvn: int
    scp: str
    level: int

    def session(self) -> _Session:
        """Check the options and make the session (not yet opened)."""
        return _Session(self.image, self.profile, self.reader, self.sd, self.key, self.kvn,
                        self.scp, self.level)


def _channel_option(name: str, annotation: type, option: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option,
                             annotation=annotation)


# The options behind _ChannelOptions, in the order --help lists them after a command's own.
_CHANNEL_PARAMETERS = (
    _channel_option("image", Path, typer.Option(Path("smarthydra-gp.img"), "--image")),
    _channel_option("profile", str, typer.Option("gp", "--profile")),
    _channel_option("reader", str, typer.Option(None, "--reader")),
    _channel_option("sd", str, typer.Option(gpm.ISD_AID.hex().upper(), "--sd")),
    _channel_option("key", str, typer.Option(bytes(range(0x40, 0x50)).hex().upper(), "--key")),
    _channel_option("kvn", int, typer.Option(0x30, "--kvn")),
    _channel_option("scp", str, typer.Option("03", "--scp")),
    _channel_option("level", int, typer.Option(0x33, "--level")),
)


def _gp_command(name: str | None = None) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register a GP command whose ``channel: _ChannelOptions`` parameter stands for the
    shared options (--image --profile --reader --sd --key --kvn --scp --level).

    Typer cannot group options into one parameter, so the command typer sees has the
    shared options in place of ``channel`` and bundles them into a ``_ChannelOptions``
    before calling the command.
    """

    def register(command: Callable[..., None]) -> Callable[..., None]:
        own = inspect.signature(command, eval_str=True)
        parameters = list(own.parameters.values())
        at = list(own.parameters).index("channel")

        @functools.wraps(command)
        def with_channel(**given: Any) -> None:
            channel = _ChannelOptions(**{p.name: given.pop(p.name) for p in _CHANNEL_PARAMETERS})
            command(channel=channel, **given)

        with_channel.__signature__ = own.replace(  # type: ignore[attr-defined]
            parameters=[*parameters[:at], *_CHANNEL_PARAMETERS, *parameters[at + 1:]])
        app.command(name)(with_channel)
        return command

    return register


def _run(session: _Session, action: Any) -> Any:
    client = session.open()
    try:
        return action(client)
    except GpCommandError as exc:
        raise _fail(str(exc), 1) from None
    except (GpError, TransportError) as exc:
        raise _fail(str(exc)) from None
    finally:
        session.close()


@_gp_command("list")
def list_(
    *, channel: _ChannelOptions,
    as_json: bool = typer.Option(False, "--json", help="print JSON only"),
) -> None:
    """GET STATUS: the ISD, applications and security domains, load files and modules."""
    opened = channel.session()

    def act(client: GpClient) -> dict[str, Any]:
        def rows(p1: int) -> list[dict[str, Any]]:
            return [{"aid": e.aid.hex().upper(), "life_cycle": f"{e.life_cycle:02X}",
                     "privileges": e.privileges.hex().upper(),
                     "associated_sd": e.associated_sd.hex().upper() if e.associated_sd else None,
                     "load_file": e.load_file_aid.hex().upper() if e.load_file_aid else None,
                     "modules": [m.hex().upper() for m in e.modules]}
                    for e in client.get_status(p1)]

        return {"isd": rows(0x80), "applications": rows(0x40), "load_files": rows(0x10)}

    doc = _run(opened, act)
    if as_json:
        print(json.dumps(doc))
        return
    table = Table(title="GlobalPlatform registry")
    for column in ("kind", "AID", "life cycle", "privileges", "SD / modules"):
        table.add_column(column)
    for kind, key_ in (("ISD", "isd"), ("app/SD", "applications"), ("load file", "load_files")):
        for row in doc[key_]:
            extra = row["associated_sd"] or " ".join(row["modules"]) or ""
            table.add_row(kind, row["aid"], row["life_cycle"], row["privileges"], extra)
    console.print(table)


@_gp_command()
def load(
    package: Path = typer.Argument(..., help="encoded applet package, or applet source with "
                                             "--manifest"),
    manifest: Path = typer.Option(None, "--manifest", help="JSON manifest (build from source)"),
    load_file_aid: str = typer.Option(None, "--aid", help="load file AID (default: package's)"),
    into: str = typer.Option("", "--into", help="security domain to associate (default: --sd)"),
    dap_key: list[Path] = typer.Option([], "--dap-key",
                                       help="SD_AID=PEM: sign a DAP block for that SD"),
    token_key: Path = typer.Option(None, "--token-key",
                                   help="PEM key signing delegated-management tokens"),
    *, channel: _ChannelOptions,
) -> None:
    """INSTALL for load, then LOAD an applet package (DAP blocks and a token if asked)."""
    try:
        if manifest is not None:
            applet_package = build_package(package, load_manifest(manifest))
        else:
            applet_package = AppletPackage.decode(package.read_bytes())
    except (PackageError, OSError) as exc:
        raise _fail(f"cannot read the package: {exc}") from None
    block = applet_package.encode()
    aid = _aid(load_file_aid, "--aid") if load_file_aid else applet_package.aid
    daps: dict[bytes, bytes] = {}
    for spec in dap_key:
        sd_hex, sep, pem = str(spec).partition("=")
        if not sep:
            raise _fail("--dap-key is SD_AID=path/to/key.pem")
        daps[_aid(sd_hex, "--dap-key SD")] = dap_signature(_private_key(Path(pem)), block)
    signer = token_signer_for(_private_key(token_key)) if token_key is not None else None
    opened = channel.session()
    target = _aid(into, "--into") if into else b""
    result = _run(opened, lambda c: c.load(aid, block, sd_aid=target, daps=daps,
                                           token_signer=signer))
    console.print(f"loaded {aid.hex().upper()} ({len(block)} bytes)"
                  + (f", receipt {result.raw.hex().upper()}" if result.raw != b"\x00" else ""))


@_gp_command()
def install(
    load_file_aid: str = typer.Argument(..., help="executable load file AID"),
    module_aid: str = typer.Argument(..., help="executable module AID"),
    app_aid: str = typer.Argument(None, help="application AID (default: the module AID)"),
    privileges: str = typer.Option("00", "--privileges", help="1 or 3 privilege bytes, hex"),
    params: str = typer.Option("", "--params", help="application parameters (C9), hex"),
    selectable: bool = typer.Option(True, "--selectable/--not-selectable"),
    token_key: Path = typer.Option(None, "--token-key"),
    *, channel: _ChannelOptions,
) -> None:
    """INSTALL for install (and make selectable) an application or security domain."""
    lf, module = _aid(load_file_aid, "load file AID"), _aid(module_aid, "module AID")
    instance = _aid(app_aid, "application AID") if app_aid else module
    privilege_bytes = _hex(privileges, "--privileges")
    if len(privilege_bytes) not in (1, 3):
        raise _fail("--privileges is 1 or 3 bytes")
    signer = token_signer_for(_private_key(token_key)) if token_key is not None else None
    opened = channel.session()
    _run(opened, lambda c: c.install(lf, module, instance, privileges=privilege_bytes,
                                     params=_hex(params, "--params"),
                                     make_selectable=selectable, token_signer=signer))
    console.print(f"installed {instance.hex().upper()}")


@_gp_command()
def delete(
    aid: str = typer.Argument(..., help="application, security domain or load file AID"),
    related: bool = typer.Option(False, "--related", help="also delete related objects"),
    token_key: Path = typer.Option(None, "--token-key"),
    *, channel: _ChannelOptions,
) -> None:
    """DELETE an object (and its related objects)."""
    target = _aid(aid)
    signer = token_signer_for(_private_key(token_key)) if token_key is not None else None
    opened = channel.session()
    _run(opened, lambda c: c.delete(target, related=related, token_signer=signer))
    console.print(f"deleted {target.hex().upper()}")


def _lock_command(lock_it: bool) -> Any:
    def command(
        aid: str = typer.Argument(None, help="application AID (omit with --card)"),
        card: bool = typer.Option(False, "--card", help="the card itself (CARD_LOCKED/SECURED)"),
        *, channel: _ChannelOptions,
    ) -> None:
        if card == (aid is not None):
            raise _fail("give an application AID or --card")
        opened = channel.session()
        if card:
            _run(opened, lambda c: c.set_status(0x80, 0x7F if lock_it else 0x0F))
            console.print("card " + ("locked" if lock_it else "unlocked"))
            return
        target = _aid(aid)
        _run(opened, lambda c: c.lock(target) if lock_it else c.unlock(target))
        console.print(f"{target.hex().upper()} " + ("locked" if lock_it else "unlocked"))

    command.__doc__ = "SET STATUS: lock an application or the card." if lock_it else \
        "SET STATUS: unlock an application or the card."
    return command


_gp_command("lock")(_lock_command(True))
_gp_command("unlock")(_lock_command(False))


@_gp_command("put-key")
def put_key(
    new_kvn: int = typer.Option(..., "--new-kvn", help="key version number of the new keys"),
    new_key: list[str] = typer.Option(..., "--new-key",
                                      help="AES key, hex; once (ENC=MAC=DEK) or three times"),
    replace: int = typer.Option(0, "--replace", help="key version to replace (0: add)"),
    *, channel: _ChannelOptions,
) -> None:
    """PUT KEY: an SCP03 key set (K-ENC, K-MAC, K-DEK), encrypted with the DEK; shows KCVs."""
    values = [_hex(v, "--new-key") for v in new_key]
    if len(values) == 1:
        values *= 3
    if len(values) != 3:
        raise _fail("--new-key once (same key thrice) or three times (ENC, MAC, DEK)")
    if not 1 <= new_kvn <= 0x7F:
        raise _fail("--new-kvn is 1..127")
    try:
        keys = [SdKey(new_kvn, kid, KeyType.AES, v) for kid, v in zip((1, 2, 3), values,
                                                                     strict=True)]
    except GpError as exc:
        raise _fail(str(exc)) from None
    opened = channel.session()
    answer = _run(opened, lambda c: c.put_key(keys, replace_kvn=replace))
    console.print(f"key version {answer[:1].hex().upper()}, KCVs "
                  + " ".join(answer[i:i + 3].hex().upper() for i in range(1, len(answer), 3)))


@_gp_command("store-data")
def store_data(
    aid: str = typer.Argument(..., help="application (or SD) to personalise"),
    data: str = typer.Argument(..., help="personalisation data, hex"),
    structure: str = typer.Option("dgi", "--structure", help="dgi, tlv or none"),
    *, channel: _ChannelOptions,
) -> None:
    """INSTALL for personalization, then STORE DATA to an application."""
    codes = {"dgi": 0x08, "tlv": 0x10, "none": 0x00}
    if structure not in codes:
        raise _fail("--structure is dgi, tlv or none")
    target, payload = _aid(aid), _hex(data, "data")
    opened = channel.session()
    answer = _run(opened, lambda c: c.personalize(target, payload, structure=codes[structure]))
    console.print(f"stored {len(payload)} bytes in {target.hex().upper()}"
                  + (f", answer {answer.hex().upper()}" if answer else ""))


@app.command()
def conformance(
    file: Path = typer.Argument(..., help="GP secure channel vector file (scp_vectors.json)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON only"),
) -> None:
    """Replay a vector file, host side and card side; non-zero exit if any check fails."""
    if not file.is_file():
        raise _fail(f"no vector file {file}")
    try:
        report = replay_vectors(file)
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot read {file}: {exc}") from None
    doc = report.to_dict()
    if as_json:
        print(json.dumps(doc))
    else:
        table = Table(title=f"{file}: {report.passed}/{report.checks} checks passed")
        for column in ("set", "checks", "passed", "failed"):
            table.add_column(column)
        for item in doc.get("sets", []):
            table.add_row(str(item.get("id")), str(item.get("checks")),
                          str(item.get("passed")), str(item.get("failed")))
        console.print(table)
        for failure in doc.get("failures", [])[:20]:
            err.print(f"[red]FAIL[/red] {failure}")
    if not report.ok:
        raise typer.Exit(1)
