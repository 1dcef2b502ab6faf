"""``smarthydra smki ...``: an SMKI in a directory — CAs, issuance, revocation, repository.

The directory holds ``hierarchy.json`` (CA certificates and key labels), ``ledger.json`` (the
device CA issuance counts, durable), ``repository.json`` (published certificates and
revocations) and the CA keys: a soft keystore file (passphrase from
``$SMARTHYDRA_KEYSTORE_PASSPHRASE``) or, with ``init --hsm``, a SoftHSM2 token in ``softhsm/``
(PIN from ``$SMARTHYDRA_TOKEN_PIN``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from rich.console import Console
from rich.table import Table

from smarthydra.crypto import softhsm
from smarthydra.crypto.keystore import Keystore, KeystoreError, KeyUsage
from smarthydra.eui import Eui64, InvalidEui64
from smarthydra.pki.certificates import AnyCertificate
from smarthydra.pki.hierarchy import (
    CaHierarchy,
    CertificateNotFound,
    CertificateRejected,
    FileLedger,
    SmkiRepository,
)
from smarthydra.pki.issue import IssuanceError

app = typer.Typer(
    no_args_is_help=True, help="SMKI: CAs in a keystore, issuance, revocation, repository."
)

PASSPHRASE_ENV = "SMARTHYDRA_KEYSTORE_PASSPHRASE"
PIN_ENV = "SMARTHYDRA_TOKEN_PIN"
TOKEN_LABEL = "smki"
JsonOption = typer.Option(False, "--json", help="print JSON only")
Directory = typer.Argument(..., help="the SMKI directory (made by smki init)")


def _fail(message: str, as_json: bool = False) -> NoReturn:
    if as_json:
        typer.echo(json.dumps({"error": message}))
    else:
        Console(stderr=True).print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


@dataclass
class Workspace:
    directory: Path
    hierarchy: CaHierarchy
    repository: SmkiRepository

    def save(self) -> None:
        self.hierarchy.save(self.directory / "hierarchy.json")
        (self.directory / "repository.json").write_text(self.repository.to_json())

    def crl(self) -> bytes:
        now = dt.datetime.now(dt.UTC)
        return self.repository.crl(
            self.hierarchy.organisation_signer(), now, now + dt.timedelta(days=7)
        )


def _keystore(directory: Path, *, create: bool, hsm: bool | None = None) -> Keystore:
    config_path = directory / "config.json"
    if hsm is None:
        try:
            hsm = bool(json.loads(config_path.read_text())["hsm"])
        except (OSError, ValueError, KeyError, TypeError):
            _fail(f"{directory} is not an SMKI directory (run smarthydra smki init)")
    if not hsm:
        passphrase = os.environ.get(PASSPHRASE_ENV)
        if not passphrase:
            _fail(f"set ${PASSPHRASE_ENV} to the CA keystore passphrase")
        from smarthydra.crypto.softstore import SoftKeystore

        return SoftKeystore(directory / "ca-keys.json", passphrase.encode())
    pin = os.environ.get(PIN_ENV)
    if not pin:
        _fail(f"set ${PIN_ENV} to the token user PIN")
    from smarthydra.crypto.pkcs11store import Pkcs11Keystore

    if create:
        token = softhsm.init_token(directory / "softhsm", TOKEN_LABEL, pin, so_pin=pin + "so")
    else:
        module = softhsm.find_module()
        if module is None:
            _fail("libsofthsm2 not found")
        conf = softhsm.write_config(directory / "softhsm")
        token = softhsm.SoftHsmToken(module, conf, TOKEN_LABEL, pin, pin + "so")
    softhsm.activate(token)
    return Pkcs11Keystore(token.module_path, token.token_label, pin)


def _open(directory: Path) -> Workspace:
    try:
        keystore = _keystore(directory, create=False)
        hierarchy = CaHierarchy.load(
            keystore, directory / "hierarchy.json", ledger=FileLedger(directory / "ledger.json")
        )
        repository = SmkiRepository.from_json((directory / "repository.json").read_text())
    except (IssuanceError, CertificateRejected, KeystoreError, OSError) as exc:
        _fail(str(exc))
    return Workspace(directory, hierarchy, repository)


def _row(certificate: AnyCertificate, repository: SmkiRepository) -> dict[str, object]:
    from smarthydra.pki.service import describe

    view = describe(certificate, repository)
    view.pop("pem")
    return view


@app.command()
def init(
    directory: Path = Directory,
    capacity: int = typer.Option(1000, "--capacity", min=1, help="certificates per device CA"),
    hsm: bool = typer.Option(False, "--hsm", help="CA keys on a SoftHSM2 token"),
    years: int = typer.Option(30, "--years", min=1, max=100),
) -> None:
    """Create a root, an organisation CA and a device CA (keys in the keystore)."""
    if (directory / "hierarchy.json").exists():
        _fail(f"{directory} already holds an SMKI")
    directory.mkdir(parents=True, exist_ok=True)
    try:
        keystore = _keystore(directory, create=True, hsm=hsm)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        hierarchy = CaHierarchy.create(
            keystore,
            not_before=now,
            not_after=now + dt.timedelta(days=365 * years),
            device_ca_capacity=capacity,
            ledger=FileLedger(directory / "ledger.json"),
        )
    except (IssuanceError, KeystoreError) as exc:
        _fail(str(exc))
    (directory / "config.json").write_text(json.dumps({"hsm": hsm}))
    workspace = Workspace(directory, hierarchy, SmkiRepository(hierarchy.ca_certificates))
    workspace.save()
    typer.echo(
        f"SMKI in {directory}: root {hierarchy.root.serial:X}, organisation CA "
        f"{hierarchy.organisation_ca.serial:X}, device CA capacity {capacity}"
    )


def _public_key(path: Path | None, key_out: Path | None) -> ec.EllipticCurvePublicKey:
    if path is not None:
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except (OSError, ValueError) as exc:
            _fail(f"cannot read a PEM public key from {path}: {exc}")
        if not isinstance(key, ec.EllipticCurvePublicKey):
            _fail("the subject key must be an EC (P-256) key")
        return key
    if key_out is None:
        _fail("give --public-key, or --key-out to generate the subject key pair")
    private = ec.generate_private_key(ec.SECP256R1())
    key_out.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return private.public_key()


@app.command()
def issue(
    directory: Path = Directory,
    eui64: str = typer.Option(..., "--eui64", help="the subject's EUI-64"),
    usage: str = typer.Option(..., "--usage", help="ds or ka"),
    role: str | None = typer.Option(None, "--role", help="organisation role code, e.g. 02"),
    device: bool = typer.Option(False, "--device", help="a device certificate"),
    public_key: Path | None = typer.Option(None, "--public-key", help="subject public key PEM"),
    key_out: Path | None = typer.Option(None, "--key-out", help="generate; write the key here"),
    out: Path | None = typer.Option(None, "--out", help="write the certificate PEM here"),
    as_json: bool = JsonOption,
) -> None:
    """Issue an organisation (--role) or device (--device) certificate and publish it."""
    if device == (role is not None):
        _fail("give exactly one of --role or --device", as_json)
    try:
        eui = Eui64.parse(eui64)
        key_usage = KeyUsage(usage)
        role_value = None if role is None else int(role, 16)
    except (InvalidEui64, ValueError) as exc:
        _fail(f"bad argument: {exc}", as_json)
    workspace = _open(directory)
    subject = _public_key(public_key, key_out)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    try:
        certificate: AnyCertificate
        if role_value is not None:
            certificate = workspace.hierarchy.issue_organisation(
                subject_public_key=subject,
                role=role_value,
                eui64=eui.value,
                usage=key_usage,
                not_before=now,
                not_after=now + dt.timedelta(days=3650),
            )
        else:
            certificate = workspace.hierarchy.issue_device(
                subject_public_key=subject, eui64=eui.value, usage=key_usage, not_before=now
            )
        for ca in workspace.hierarchy.ca_certificates:
            workspace.repository.publish(ca)
        workspace.repository.publish(certificate)
    except (IssuanceError, CertificateRejected, KeystoreError, ValueError) as exc:
        _fail(str(exc), as_json)
    workspace.save()
    if out is not None:
        out.write_text(certificate.to_pem())
    if as_json:
        typer.echo(json.dumps(_row(certificate, workspace.repository)))
    else:
        typer.echo(f"issued {certificate.serial:X}" if out else certificate.to_pem())


@app.command()
def revoke(
    directory: Path = Directory,
    serial: str = typer.Argument(..., help="hexadecimal serial"),
) -> None:
    """Revoke an organisation certificate (it appears in the next CRL)."""
    try:
        value = int(serial, 16)
    except ValueError:
        _fail(f"serial must be hexadecimal, got {serial!r}")
    workspace = _open(directory)
    try:
        workspace.repository.revoke(value, dt.datetime.now(dt.UTC))
    except (CertificateNotFound, CertificateRejected) as exc:
        _fail(str(exc))
    workspace.save()
    typer.echo(f"revoked {value:X}")


@app.command()
def query(
    directory: Path = Directory,
    eui64: str | None = typer.Option(None, "--eui64"),
    role: str | None = typer.Option(None, "--role"),
    serial: str | None = typer.Option(None, "--serial"),
    as_json: bool = JsonOption,
) -> None:
    """Certificates by EUI-64, role or serial (all of them with no filter)."""
    workspace = _open(directory)
    repository = workspace.repository
    try:
        found: list[AnyCertificate]
        if serial is not None:
            found = [repository.by_serial(int(serial, 16))]
        elif eui64 is not None:
            role_value = None if role is None else int(role, 16)
            found = list(repository.by_eui64(Eui64.parse(eui64).value, role=role_value))
        elif role is not None:
            found = list(repository.by_role(int(role, 16)))
        else:
            found = repository.certificates()
    except (CertificateNotFound, InvalidEui64, ValueError) as exc:
        _fail(str(exc), as_json)
    rows = [_row(c, repository) for c in found]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table(title=f"SMKI repository {directory}")
    for column in ("serial", "kind", "role", "eui64", "usage", "revoked"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            *(str(row.get(c, "")) for c in ("serial", "kind", "role", "eui64", "usage", "revoked"))
        )
    Console().print(table)


@app.command()
def crl(
    directory: Path = Directory,
    out: Path = typer.Option(..., "--out", help="write the DER CRL here"),
) -> None:
    """Sign and write the current CRL."""
    workspace = _open(directory)
    out.write_bytes(workspace.crl())
    typer.echo(f"CRL with {len(workspace.repository.revocations())} revocation(s) -> {out}")


@app.command()
def serve(
    directory: Path = Directory,
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8650, "--port", min=1, max=65535),
) -> None:
    """Serve the repository over HTTP (query by EUI-64, role, serial; CRL download)."""
    import uvicorn

    from smarthydra.pki.service import create_app

    workspace = _open(directory)
    uvicorn.run(create_app(workspace.repository, workspace.crl), host=host, port=port)
