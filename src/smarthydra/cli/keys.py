"""``smarthydra keys ...``: keystores (soft file or SoftHSM2 token) and SMKI certificates."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from smarthydra.crypto import softhsm
from smarthydra.crypto.keystore import Keystore, KeystoreError, KeyUsage
from smarthydra.crypto.primitives import CryptoError
from smarthydra.pki import (
    CaCertificate,
    CertificateError,
    CertificateSigner,
    DeviceCertificate,
    IssuanceError,
    OrganisationCertificate,
    ca_name,
    parse_certificate,
)
from smarthydra.pki.certificates import AnyCertificate

app = typer.Typer(no_args_is_help=True, help="Keystores and SMKI certificates.")

PASSPHRASE_ENV = "SMARTHYDRA_KEYSTORE_PASSPHRASE"
PIN_ENV = "SMARTHYDRA_TOKEN_PIN"

FileOption = typer.Option(
    None, "--file", help="soft keystore file (passphrase from $" + PASSPHRASE_ENV + ")"
)
TokenOption = typer.Option(
    None, "--token", help="PKCS#11 token label (PIN from --pin or $" + PIN_ENV + ")"
)
PinOption = typer.Option(None, "--pin", help="token user PIN")
SoftHsmDirOption = typer.Option(
    None, "--softhsm-dir", help="SoftHSM2 store made by init-softhsm (sets SOFTHSM2_CONF)"
)
ModuleOption = typer.Option(None, "--module", help="PKCS#11 module (default: libsofthsm2)")
JsonOption = typer.Option(False, "--json", help="print JSON only")


def _fail(message: str, as_json: bool) -> NoReturn:
    if as_json:
        typer.echo(json.dumps({"error": message}))
    else:
        Console(stderr=True).print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


def _open_store(
    file: Path | None,
    token: str | None,
    pin: str | None,
    softhsm_dir: Path | None,
    module: Path | None,
    as_json: bool,
) -> Keystore:
    if (file is None) == (token is None):
        _fail("give exactly one of --file (soft keystore) or --token (PKCS#11)", as_json)
    try:
        if file is not None:
            passphrase = os.environ.get(PASSPHRASE_ENV)
            if not passphrase:
                _fail(f"set ${PASSPHRASE_ENV} to the keystore passphrase", as_json)
            from smarthydra.crypto.softstore import SoftKeystore

            return SoftKeystore(file, str(passphrase).encode())
        pin = pin or os.environ.get(PIN_ENV)
        if not pin:
            _fail(f"give --pin or set ${PIN_ENV}", as_json)
        module_path = module or softhsm.find_module()
        if module_path is None:
            _fail("no PKCS#11 module: give --module or install softhsm2", as_json)
        if softhsm_dir is not None:
            conf = softhsm.write_config(softhsm_dir)
            softhsm.activate(softhsm.SoftHsmToken(module_path, conf, str(token), "", ""))
        from smarthydra.crypto.pkcs11store import Pkcs11Keystore

        return Pkcs11Keystore(str(module_path), str(token), str(pin))
    except KeystoreError as exc:
        _fail(str(exc), as_json)


def _usage(value: str, as_json: bool) -> KeyUsage:
    try:
        return KeyUsage(value.lower())
    except ValueError:
        _fail(f"usage must be 'ds' or 'ka', got {value!r}", as_json)


def _eui64(value: str, as_json: bool) -> bytes:
    try:
        raw = bytes.fromhex(value.replace("-", "").replace(":", ""))
    except ValueError:
        raw = b""
    if len(raw) != 8:
        _fail(f"an EUI-64 is 16 hex digits, got {value!r}", as_json)
    return raw


def _describe(certificate: AnyCertificate) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": type(certificate).__name__,
        "serial": f"{certificate.serial:X}",
        "issuer": certificate.issuer,
        "not_before": certificate.not_before.isoformat(),
        "not_after": certificate.not_after.isoformat(),
        "subject_key_id": certificate.subject_key_id.hex().upper(),
        "authority_key_id": (certificate.authority_key_id or b"").hex().upper() or None,
        "policies": list(certificate.policies),
        "public_key": certificate.public_key_xy().hex().upper(),
    }
    if isinstance(certificate, OrganisationCertificate):
        out |= {
            "role": f"{certificate.role:02X}",
            "role_name": certificate.role_name,
            "eui64": certificate.eui64.hex().upper(),
            "usage": certificate.usage.value,
            "common_name": certificate.common_name,
        }
    elif isinstance(certificate, DeviceCertificate):
        out |= {
            "eui64": certificate.eui64.hex().upper(),
            "usage": certificate.usage.value,
            "hw_type": certificate.hw_type,
        }
    else:
        out |= {"subject": certificate.subject, "path_length": certificate.path_length}
    return out


def _print_certificate(certificate: AnyCertificate, as_json: bool) -> None:
    fields = _describe(certificate)
    if as_json:
        typer.echo(json.dumps(fields))
        return
    table = Table(title=fields["type"], show_header=False)
    for key, value in fields.items():
        table.add_row(key, str(value))
    Console().print(table)


@app.command("init-softhsm")
def init_softhsm(
    directory: Path = typer.Argument(..., help="where the SoftHSM2 store lives"),
    label: str = typer.Option(..., "--label", help="token label"),
    pin: str = typer.Option(..., "--pin", help="user PIN (4-255 characters)"),
    so_pin: str = typer.Option(..., "--so-pin", help="security officer PIN"),
    as_json: bool = JsonOption,
) -> None:
    """Create a SoftHSM2 token in DIRECTORY."""
    try:
        token = softhsm.init_token(directory, label, pin, so_pin)
    except KeystoreError as exc:
        _fail(str(exc), as_json)
    result = {
        "token": token.token_label,
        "conf": str(token.conf_path),
        "module": str(token.module_path),
    }
    if as_json:
        typer.echo(json.dumps(result))
    else:
        Console().print(f"token [bold]{label}[/bold] ready; use --softhsm-dir {directory}")


@app.command("generate")
def generate(
    label: str = typer.Argument(...),
    usage: str = typer.Option(..., "--usage", help="ds (signing) or ka (key agreement)"),
    file: Path | None = FileOption,
    token: str | None = TokenOption,
    pin: str | None = PinOption,
    softhsm_dir: Path | None = SoftHsmDirOption,
    module: Path | None = ModuleOption,
    as_json: bool = JsonOption,
) -> None:
    """Generate a P-256 key pair in the keystore."""
    key_usage = _usage(usage, as_json)
    store = _open_store(file, token, pin, softhsm_dir, module, as_json)
    try:
        from smarthydra.crypto.primitives import public_key_to_xy

        public = store.generate(label, key_usage)
    except KeystoreError as exc:
        _fail(str(exc), as_json)
    finally:
        store.close()
    xy = public_key_to_xy(public).hex().upper()
    if as_json:
        typer.echo(json.dumps({"label": label, "usage": key_usage.value, "public_key": xy}))
    else:
        Console().print(f"generated [bold]{label}[/bold] ({key_usage.value}) public key {xy}")


@app.command("list")
def list_keys(
    file: Path | None = FileOption,
    token: str | None = TokenOption,
    pin: str | None = PinOption,
    softhsm_dir: Path | None = SoftHsmDirOption,
    module: Path | None = ModuleOption,
    as_json: bool = JsonOption,
) -> None:
    """List the keys in the keystore."""
    store = _open_store(file, token, pin, softhsm_dir, module, as_json)
    try:
        rows = [{"label": label, "usage": store.usage(label).value} for label in store.labels()]
    except KeystoreError as exc:
        _fail(str(exc), as_json)
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table("label", "usage")
    for row in rows:
        table.add_row(row["label"], row["usage"])
    Console().print(table)


def _validity(days: int) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return start, start + dt.timedelta(days=days)


@app.command("make-ca")
def make_ca(
    label: str = typer.Argument(..., help="existing ds key to act as a self-signed CA"),
    name: str = typer.Option("Z1", "--name", help="CA common name"),
    out: Path = typer.Option(..., "--out", help="where to write the CA certificate (PEM)"),
    days: int = typer.Option(3650, "--days"),
    file: Path | None = FileOption,
    token: str | None = TokenOption,
    pin: str | None = PinOption,
    softhsm_dir: Path | None = SoftHsmDirOption,
    module: Path | None = ModuleOption,
    as_json: bool = JsonOption,
) -> None:
    """Self-sign a CA certificate (OU=07, CN=NAME) for a signing key in the keystore."""
    store = _open_store(file, token, pin, softhsm_dir, module, as_json)
    try:
        signer = CertificateSigner.self_signing(store, label, ca_name(name))
        start, end = _validity(days)
        certificate = signer.issue_ca(
            subject_name_der=signer.name_der,
            subject_public_key=store.public_key(label),
            not_before=start,
            not_after=end,
            path_length=None,
        )
    except (KeystoreError, IssuanceError) as exc:
        _fail(str(exc), as_json)
    finally:
        store.close()
    out.write_text(certificate.to_pem())
    _print_certificate(certificate, as_json)


@app.command("issue-org")
def issue_org(
    subject_label: str = typer.Argument(..., help="key in the keystore to certify"),
    ca_label: str = typer.Option(..., "--ca-label"),
    ca_cert: Path = typer.Option(..., "--ca-cert", help="the CA's certificate (PEM)"),
    role: str = typer.Option(..., "--role", help="role code, 2 hex digits (02 supplier, ...)"),
    eui64: str = typer.Option(..., "--eui64", help="organisation EUI-64, 16 hex digits"),
    out: Path = typer.Option(..., "--out", help="where to write the certificate (PEM)"),
    days: int = typer.Option(3650, "--days"),
    common_name: str | None = typer.Option(None, "--cn"),
    file: Path | None = FileOption,
    token: str | None = TokenOption,
    pin: str | None = PinOption,
    softhsm_dir: Path | None = SoftHsmDirOption,
    module: Path | None = ModuleOption,
    as_json: bool = JsonOption,
) -> None:
    """Issue an SMKI organisation certificate for a key, signed by a CA key in the keystore."""
    eui = _eui64(eui64, as_json)
    try:
        role_value = int(role, 16)
        if not 0 <= role_value <= 0xFF or len(role) != 2:
            raise ValueError
    except ValueError:
        _fail(f"role must be 2 hex digits, got {role!r}", as_json)
    try:
        ca = parse_certificate(ca_cert.read_bytes())
    except (OSError, CertificateError) as exc:
        _fail(f"cannot read CA certificate {ca_cert}: {exc}", as_json)
    if not isinstance(ca, CaCertificate):
        _fail(f"{ca_cert} is not a CA certificate", as_json)
    store = _open_store(file, token, pin, softhsm_dir, module, as_json)
    try:
        signer = CertificateSigner.for_ca(store, ca_label, ca)
        start, end = _validity(days)
        certificate = signer.issue_organisation(
            subject_public_key=store.public_key(subject_label),
            role=role_value,
            eui64=eui,
            usage=store.usage(subject_label),
            not_before=start,
            not_after=end,
            common_name=common_name,
        )
    except (KeystoreError, IssuanceError, CryptoError) as exc:
        _fail(str(exc), as_json)
    finally:
        store.close()
    out.write_text(certificate.to_pem())
    _print_certificate(certificate, as_json)


@app.command("show-cert")
def show_cert(
    path: Path = typer.Argument(..., help="certificate, PEM or DER"),
    as_json: bool = JsonOption,
) -> None:
    """Parse an SMKI certificate and show its profile fields."""
    try:
        certificate = parse_certificate(path.read_bytes())
    except (OSError, CertificateError) as exc:
        _fail(f"{path}: {exc}", as_json)
    _print_certificate(certificate, as_json)
