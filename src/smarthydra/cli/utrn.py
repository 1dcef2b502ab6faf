"""``smarthydra utrn``: GB prepayment top-up reference numbers (GBCS CS01a/b).

Keys, one source per command:

* ``--keystore FILE`` (a soft keystore, passphrase from $SMARTHYDRA_KEYSTORE_PASSPHRASE) or
  ``--pkcs11-module/--token/--pin`` (an HSM): the supplier's prepayment top-up key (label
  ``pp-ka``) to generate, the meter's KA key (label ``ka``) to verify; ``--key-label``
  overrides; ``--peer`` is the other side's certificate or public key;
* ``--key PEM`` with ``--peer``: raw keys;
* ``--conformance DIR``: the RTDS test keystore (``DIR/gbcs/rtds-keystore``): the supplier's
  published prepayment top-up private key and the meter's KA device certificate. RTDS meter
  private keys are not published, so verify there computes the same Z from the supplier side.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.crypto import primitives
from smarthydra.crypto.keystore import Keystore, KeystoreError
from smarthydra.gbcs.errors import GbcsError
from smarthydra.gbcs.rtds import KeyKind, RtdsKeystore
from smarthydra.gbcs.utrn import (
    UtrnCounterCache,
    UtrnError,
    generate_utrn,
    has_valid_check_digit,
    utrn_from_cs01,
    verify_utrn,
)

app = typer.Typer(no_args_is_help=True, help="GBCS prepayment top-up UTRNs")

PASSPHRASE_ENV = "SMARTHYDRA_KEYSTORE_PASSPHRASE"
SUPPLIER_TOP_UP_LABEL = "pp-ka"
METER_KA_LABEL = "ka"


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


def _conformance_secret(directory: Path, supplier: bytes, device: bytes) -> bytes:
    """Z from the RTDS keystore: the supplier's prepayment top-up private key x the meter's
    KA device certificate (the same Z the meter gets from its side)."""
    keys_dir = directory / "gbcs" / "rtds-keystore"
    try:
        keys = RtdsKeystore.load(keys_dir if keys_dir.is_dir() else directory)
    except GbcsError as exc:
        raise _fail(str(exc)) from None
    party = keys.parties.get(supplier)
    if party is None or KeyKind.PP_KA not in party.private:
        raise _fail(f"no prepayment top-up private key for supplier {supplier.hex()} there")
    meter = keys.public_key(device, KeyKind.KA)
    if meter is None:
        raise _fail(f"no KA certificate for meter {device.hex()} there")
    return primitives.ecdh(party.private[KeyKind.PP_KA], meter)


def _soft_keystore(path: Path) -> Keystore:
    passphrase = os.environ.get(PASSPHRASE_ENV)
    if not passphrase:
        raise _fail(f"set ${PASSPHRASE_ENV} to the keystore passphrase")
    if not path.is_file():
        raise _fail(f"no keystore file {path}")
    from smarthydra.crypto.softstore import SoftKeystore

    try:
        return SoftKeystore(path, passphrase.encode())
    except KeystoreError as exc:
        raise _fail(str(exc)) from None


@dataclass(frozen=True)
class _KeySource:
    key: Path | None
    peer: Path | None
    keystore: Path | None
    conformance: Path | None
    module: str | None
    token: str | None
    pin: str | None
    label: str | None


def _shared_secret(source: _KeySource, supplier: bytes, device: bytes,
                   default_label: str) -> bytes:
    chosen = [n for n, v in (("--key", source.key), ("--keystore", source.keystore),
                             ("--conformance", source.conformance),
                             ("--pkcs11-module", source.module)) if v is not None]
    if len(chosen) != 1:
        raise _fail("give exactly one of --key, --keystore, --pkcs11-module or --conformance")
    if source.conformance is not None:
        return _conformance_secret(source.conformance, supplier, device)
    if source.peer is None:
        raise _fail(f"{chosen[0]} needs --peer (the other side's certificate or public key)")
    peer_key = _public(source.peer)
    label = source.label or default_label
    if source.keystore is not None:
        try:
            return _soft_keystore(source.keystore).derive_shared_secret(label, peer_key)
        except KeystoreError as exc:
            raise _fail(str(exc)) from None
    if source.module is not None:
        if source.token is None or source.pin is None:
            raise _fail("--pkcs11-module needs --token and --pin")
        from smarthydra.crypto.pkcs11store import Pkcs11Keystore

        try:
            with Pkcs11Keystore(source.module, source.token, source.pin) as store:
                return store.derive_shared_secret(label, peer_key)
        except KeystoreError as exc:
            raise _fail(str(exc)) from None
    assert source.key is not None
    return primitives.ecdh(_private(source.key), peer_key)


KeyOpt = Annotated[Path | None, typer.Option("--key", help="own KA private key (PEM)")]
PeerOpt = Annotated[Path | None, typer.Option(
    "--peer", help="the other side's key: the meter's KA certificate to generate, the "
    "supplier's prepayment top-up certificate to verify (PEM certificate or public key)")]
KeystoreOpt = Annotated[Path | None, typer.Option(
    "--keystore", help=f"soft keystore file (passphrase from ${PASSPHRASE_ENV})")]
ConformanceOpt = Annotated[Path | None, typer.Option(
    "--conformance", help="conformance directory: keys from its RTDS keystore")]
ModuleOpt = Annotated[str | None, typer.Option("--pkcs11-module", help="PKCS#11 module path")]
TokenOpt = Annotated[str | None, typer.Option("--token", help="PKCS#11 token label")]
PinOpt = Annotated[str | None, typer.Option("--pin", help="PKCS#11 user PIN")]
LabelOpt = Annotated[str | None, typer.Option(
    "--key-label", help="key label in the keystore/token (default pp-ka to generate, ka to "
    "verify)")]
SupplierOpt = Annotated[str, typer.Option("--supplier", help="supplier EUI-64 (hex)")]
DeviceOpt = Annotated[str, typer.Option("--device", help="meter EUI-64 (hex)")]


@app.command()
def generate(
    supplier: SupplierOpt, device: DeviceOpt,
    value: Annotated[int, typer.Option("--value", help="top-up value (pence, or pounds)")],
    counter: Annotated[int | None, typer.Option(
        "--counter", help="UTRN counter (default: Unix time now)")] = None,
    pounds: Annotated[bool, typer.Option("--pounds", help="value is in pounds")] = False,
    peer: PeerOpt = None, key: KeyOpt = None, keystore: KeystoreOpt = None,
    conformance: ConformanceOpt = None, pkcs11_module: ModuleOpt = None,
    token: TokenOpt = None, pin: PinOpt = None, key_label: LabelOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Generate a UTRN with the supplier's prepayment top-up key (keystore, HSM, PEM or RTDS)."""
    supplier_eui, device_eui = _eui(supplier, "--supplier"), _eui(device, "--device")
    source = _KeySource(key, peer, keystore, conformance, pkcs11_module, token, pin, key_label)
    z = _shared_secret(source, supplier_eui, device_eui, SUPPLIER_TOP_UP_LABEL)
    if counter is None:
        counter = int(dt.datetime.now(dt.UTC).timestamp())
    try:
        utrn = generate_utrn(z, supplier_eui, device_eui, counter, value, int(pounds))
    except UtrnError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps({"utrn": utrn, "counter": counter,
                               "pence": value * (100 if pounds else 1)}))
    else:
        typer.echo(utrn)


@app.command()
def verify(
    utrn: Annotated[str, typer.Argument(help="the 20-digit UTRN")],
    supplier: SupplierOpt, device: DeviceOpt, peer: PeerOpt = None,
    key: KeyOpt = None, keystore: KeystoreOpt = None, conformance: ConformanceOpt = None,
    pkcs11_module: ModuleOpt = None, token: TokenOpt = None,
    pin: PinOpt = None, key_label: LabelOpt = None,
    state: Annotated[Path | None, typer.Option("--state", help="meter anti-replay cache (JSON)")]
    = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Verify a UTRN as the meter does; with --state, also the anti-replay cache."""
    supplier_eui, device_eui = _eui(supplier, "--supplier"), _eui(device, "--device")
    source = _KeySource(key, peer, keystore, conformance, pkcs11_module, token, pin, key_label)
    z = _shared_secret(source, supplier_eui, device_eui, METER_KA_LABEL)
    cache = UtrnCounterCache()
    if state is not None and state.exists():
        try:
            saved = json.loads(state.read_text())
            cache = UtrnCounterCache(tuple(saved["counters"]), int(saved.get("size", 5)))
        except (ValueError, KeyError, TypeError) as exc:
            raise _fail(f"unreadable state file {state}: {exc}") from None
    try:
        ptut = verify_utrn(utrn, z, supplier_eui, device_eui)
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
