"""End to end through the CLI: ``smarthydra keys ...`` with a soft keystore and SoftHSM2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smarthydra.cli.main import app
from smarthydra.pki import CaCertificate, OrganisationCertificate, parse_certificate
from tests.conftest import conformance_path
from tests.crypto.softhsm_fixtures import require_softhsm

runner = CliRunner()


def _run(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(app, ["keys", *args], env=env)
    return result.exit_code, result.output


def _json(args: list[str], env: dict[str, str] | None = None) -> object:
    code, output = _run([*args, "--json"], env)
    assert code == 0, output
    return json.loads(output)


def test_soft_keystore_ca_and_organisation_certificate(tmp_path: Path) -> None:
    env = {"SMARTHYDRA_KEYSTORE_PASSPHRASE": "pw"}
    store = ["--file", str(tmp_path / "keys.json")]
    _json(["generate", "ca", "--usage", "ds", *store], env)
    generated = _json(["generate", "supplier-ka", "--usage", "ka", *store], env)
    assert isinstance(generated, dict) and len(generated["public_key"]) == 128
    assert _json(["list", *store], env) == [
        {"label": "ca", "usage": "ds"},
        {"label": "supplier-ka", "usage": "ka"},
    ]
    ca_pem = tmp_path / "ca.pem"
    _json(["make-ca", "ca", "--name", "Z1", "--out", str(ca_pem), *store], env)
    ca = parse_certificate(ca_pem.read_bytes())
    assert isinstance(ca, CaCertificate) and ca.subject == "OU=07, CN=Z1"
    cert_pem = tmp_path / "supplier-ka.pem"
    shown = _json(
        [
            "issue-org", "supplier-ka", "--ca-label", "ca", "--ca-cert", str(ca_pem),
            "--role", "02", "--eui64", "90B3D51F30010000", "--out", str(cert_pem), *store,
        ],
        env,
    )  # fmt: skip
    certificate = parse_certificate(cert_pem.read_bytes())
    assert isinstance(certificate, OrganisationCertificate)
    assert certificate.verify_signature(ca.public_key)
    assert isinstance(shown, dict)
    assert shown["role"] == "02" and shown["usage"] == "ka" and shown["eui64"] == "90B3D51F30010000"
    assert _json(["show-cert", str(cert_pem)]) == shown
    code, output = _run(["show-cert", str(cert_pem)])
    assert code == 0 and "supplier" in output


def test_clear_errors(tmp_path: Path) -> None:
    store = ["--file", str(tmp_path / "keys.json")]
    code, output = _run(["list", *store, "--json"], {"SMARTHYDRA_KEYSTORE_PASSPHRASE": ""})
    assert code == 2 and "SMARTHYDRA_KEYSTORE_PASSPHRASE" in json.loads(output)["error"]
    env = {"SMARTHYDRA_KEYSTORE_PASSPHRASE": "right"}
    _json(["generate", "k", "--usage", "ds", *store], env)
    code, output = _run(["list", *store], {"SMARTHYDRA_KEYSTORE_PASSPHRASE": "wrong"})
    assert code == 2 and "wrong passphrase" in output and "Traceback" not in output
    code, output = _run(["generate", "k", "--usage", "ds", *store, "--json"], env)
    assert code == 2 and "already exists" in json.loads(output)["error"]
    code, output = _run(["generate", "x", "--usage", "sideways", *store, "--json"], env)
    assert code == 2 and "'ds' or 'ka'" in json.loads(output)["error"]
    code, output = _run(["list", "--json"], env)
    assert code == 2 and "exactly one of" in json.loads(output)["error"]
    bogus = tmp_path / "bogus.pem"
    bogus.write_bytes(b"not a certificate")
    code, output = _run(["show-cert", str(bogus), "--json"])
    assert code == 2 and "malformed" in json.loads(output)["error"]
    code, output = _run(
        ["issue-org", "k", "--ca-label", "k", "--ca-cert", str(bogus), "--role", "2",
         "--eui64", "00", "--out", str(tmp_path / "o.pem"), *store, "--json"],
        env,
    )  # fmt: skip
    assert code == 2 and "EUI-64" in json.loads(output)["error"]


def test_show_conformance_certificate() -> None:
    path = conformance_path("smki", "Z1-supplier-ds.pem")
    shown = _json(["show-cert", str(path)])
    assert isinstance(shown, dict)
    assert shown["role_name"] == "supplier" and shown["common_name"] == "GITTESTSUPPLIER"
    assert shown["eui64"] == "90B3D51F30010000"


@pytest.mark.softhsm
def test_softhsm_token_through_the_cli(tmp_path: Path) -> None:
    require_softhsm()
    hsm_dir = tmp_path / "hsm"
    made = _json(
        ["init-softhsm", str(hsm_dir), "--label", "cli", "--pin", "1234", "--so-pin", "5678"]
    )
    assert isinstance(made, dict) and made["token"] == "cli"
    token = ["--token", "cli", "--softhsm-dir", str(hsm_dir)]
    _json(["generate", "root", "--usage", "ds", *token, "--pin", "1234"])
    _json(["generate", "nop-ds", "--usage", "ds", *token], {"SMARTHYDRA_TOKEN_PIN": "1234"})
    assert _json(["list", *token, "--pin", "1234"]) == [
        {"label": "nop-ds", "usage": "ds"},
        {"label": "root", "usage": "ds"},
    ]
    code, output = _run(["list", *token, "--pin", "9999", "--json"])
    assert code == 2 and "wrong user PIN" in json.loads(output)["error"]
    ca_pem, cert_pem = tmp_path / "root.pem", tmp_path / "nop.pem"
    _json(["make-ca", "root", "--out", str(ca_pem), *token, "--pin", "1234"])
    _json(
        [
            "issue-org", "nop-ds", "--ca-label", "root", "--ca-cert", str(ca_pem),
            "--role", "03", "--eui64", "90-B3-D5-1F-30-02-00-00", "--out", str(cert_pem),
            *token, "--pin", "1234",
        ]
    )  # fmt: skip
    certificate = parse_certificate(cert_pem.read_bytes())
    ca = parse_certificate(ca_pem.read_bytes())
    assert isinstance(certificate, OrganisationCertificate) and certificate.role == 3
    assert certificate.verify_signature(ca.public_key)
