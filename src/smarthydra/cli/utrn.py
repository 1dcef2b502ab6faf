"""``smarthydra utrn``: GB prepayment top-up reference numbers (GBCS CS01a/b)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.crypto import primitives
from smarthydra.crypto.keystore import KeystoreError
from smarthydra.gbcs.errors import GbcsError
from smarthydra.gbcs.utrn import (
    UtrnCounterCache,
    UtrnError,
    generate_utrn,
    has_valid_check_digit,
    utrn_from_cs01,
    verify_utrn,
)

app = typer.Typer(no_args_is_help=True, help="GBCS prepayment top-up UTRNs")


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _eui(text: str, what: str) -> bytes:
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise _fail(f"{what} is not hex") from None
    if len(value) != 8:
        raise _fail(f"{what} is an 8-byte EUI-64 (16 hex digits)")
    return value


def _private(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise _fail(f"cannot read private key {path}: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise _fail(f"{path} is not an EC private key")
    return key


def _public(path: Path) -> ec.EllipticCurvePublicKey:
    try:
        data = path.read_bytes()
        key = (x509.load_pem_x509_certificate(data).public_key() if b"CERTIFICATE" in data
               else serialization.load_pem_public_key(data))
    except (OSError, ValueError, TypeError) as exc:
        raise _fail(f"cannot read public key or certificate {path}: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise _fail(f"{path} is not an EC public key")
    return key


def _shared_secret(private: Path | None, peer: Path, module: str | None, token: str | None,
                   pin: str | None, label: str | None) -> bytes:
    peer_key = _public(peer)
    if module is not None:
        if token is None or pin is None or label is None:
            raise _fail("--pkcs11-module needs --token, --pin and --key-label")
        from smarthydra.crypto.pkcs11store import Pkcs11Keystore

        try:
            with Pkcs11Keystore(module, token, pin) as store:
                return store.derive_shared_secret(label, peer_key)
        except KeystoreError as exc:
            raise _fail(str(exc)) from None
    if private is None:
        raise _fail("give --key PEM or --pkcs11-module/--token/--pin/--key-label")
    return primitives.ecdh(_private(private), peer_key)


KeyOpt = Annotated[Path | None, typer.Option("--key", help="own KA private key (PEM)")]
PeerOpt = Annotated[Path, typer.Option("--peer", help="the other side's KA key (PEM/cert)")]
ModuleOpt = Annotated[str | None, typer.Option("--pkcs11-module", help="PKCS#11 module path")]
TokenOpt = Annotated[str | None, typer.Option("--token", help="PKCS#11 token label")]
PinOpt = Annotated[str | None, typer.Option("--pin", help="PKCS#11 user PIN")]
LabelOpt = Annotated[str | None, typer.Option("--key-label", help="key label in the token")]
SupplierOpt = Annotated[str, typer.Option("--supplier", help="supplier EUI-64 (hex)")]
DeviceOpt = Annotated[str, typer.Option("--device", help="meter EUI-64 (hex)")]


@app.command()
def generate(
    supplier: SupplierOpt, device: DeviceOpt, peer: PeerOpt,
    counter: Annotated[int, typer.Option("--counter", help="UTRN counter (32 bits)")],
    value: Annotated[int, typer.Option("--value", help="top-up value (pence, or pounds)")],
    pounds: Annotated[bool, typer.Option("--pounds", help="value is in pounds")] = False,
    key: KeyOpt = None, pkcs11_module: ModuleOpt = None, token: TokenOpt = None,
    pin: PinOpt = None, key_label: LabelOpt = None,
) -> None:
    """Generate a UTRN with the supplier's prepayment top-up key (PEM or in an HSM)."""
    z = _shared_secret(key, peer, pkcs11_module, token, pin, key_label)
    try:
        typer.echo(generate_utrn(z, _eui(supplier, "--supplier"), _eui(device, "--device"),
                                 counter, value, int(pounds)))
    except UtrnError as exc:
        raise _fail(str(exc)) from None


@app.command()
def verify(
    utrn: Annotated[str, typer.Argument(help="the 20-digit UTRN")],
    supplier: SupplierOpt, device: DeviceOpt, peer: PeerOpt,
    key: KeyOpt = None, pkcs11_module: ModuleOpt = None, token: TokenOpt = None,
    pin: PinOpt = None, key_label: LabelOpt = None,
    state: Annotated[Path | None, typer.Option("--state", help="meter anti-replay cache (JSON)")]
    = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Verify a UTRN as the meter does; with --state, also the anti-replay cache."""
    z = _shared_secret(key, peer, pkcs11_module, token, pin, key_label)
    cache = UtrnCounterCache()
    if state is not None and state.exists():
        try:
            saved = json.loads(state.read_text())
            cache = UtrnCounterCache(tuple(saved["counters"]), int(saved.get("size", 5)))
        except (ValueError, KeyError, TypeError) as exc:
            raise _fail(f"unreadable state file {state}: {exc}") from None
    try:
        ptut = verify_utrn(utrn, z, _eui(supplier, "--supplier"), _eui(device, "--device"))
        cache = cache.accept(ptut.counter)
    except UtrnError as exc:
        if as_json:
            typer.echo(json.dumps({"accepted": False, "reason": exc.reason, "message": str(exc)}))
        raise _fail(f"refused ({exc.reason}): {exc}", 1) from None
    if state is not None:
        state.write_text(json.dumps({"counters": list(cache.counters), "size": cache.size}))
    if as_json:
        typer.echo(json.dumps({"accepted": True, "counter": ptut.counter, "pence": ptut.pence}))
    else:
        typer.echo(f"accepted: counter {ptut.counter}, top-up {ptut.pence / 100:.2f} GBP")


@app.command()
def extract(
    message: Annotated[Path, typer.Argument(help="a CS01a/CS01b command (hex file)")],
) -> None:
    """Print the UTRN carried by a CS01a/CS01b command and whether its check digit holds."""
    try:
        raw = bytes.fromhex(message.read_text().strip())
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot read {message}: {exc}") from None
    try:
        utrn = utrn_from_cs01(raw)
    except GbcsError as exc:
        raise _fail(str(exc)) from None
    typer.echo(json.dumps({"utrn": utrn, "check_digit_valid": has_valid_check_digit(utrn)}))
