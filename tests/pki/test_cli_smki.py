"""``smarthydra smki``: init, issue (organisation and device), query, revoke, CRL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smarthydra.cli.main import app
from smarthydra.pki.certificates import CaCertificate, parse_certificate
from smarthydra.pki.hierarchy import parse_crl

runner = CliRunner()


@pytest.fixture(autouse=True)
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTHYDRA_KEYSTORE_PASSPHRASE", "test")


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["smki", *args])
    return result.exit_code, " ".join(result.output.split())


def test_life_cycle(tmp_path: Path) -> None:
    smki = tmp_path / "smki"
    code, out = _run("init", str(smki), "--capacity", "1")
    assert code == 0, out
    code, out = _run(
        "issue",
        str(smki),
        "--eui64",
        "90B3D51F30010000",
        "--role",
        "02",
        "--usage",
        "ds",
        "--key-out",
        str(tmp_path / "k.pem"),
        "--json",
    )
    assert code == 0, out
    serial = json.loads(out)["serial"]
    code, out = _run(
        "issue",
        str(smki),
        "--eui64",
        "00DB1234567890A0",
        "--device",
        "--usage",
        "ka",
        "--key-out",
        str(tmp_path / "d.pem"),
        "--out",
        str(tmp_path / "d.crt"),
    )
    assert code == 0, out
    assert parse_certificate((tmp_path / "d.crt").read_bytes()).eui64 == bytes.fromhex(  # type: ignore[union-attr]
        "00DB1234567890A0"
    )
    # Capacity 1: the next device certificate comes from a new device CA (the first is gone).
    code, out = _run(
        "issue",
        str(smki),
        "--eui64",
        "00DB1234567890A1",
        "--device",
        "--usage",
        "ka",
        "--key-out",
        str(tmp_path / "d2.pem"),
        "--json",
    )
    assert code == 0, out
    state = json.loads((smki / "ledger.json").read_text())
    assert state == {"smki-device-ca-1": 1, "smki-device-ca-2": 1}
    code, out = _run("query", str(smki), "--eui64", "90B3D51F30010000", "--json")
    assert [row["serial"] for row in json.loads(out)] == [serial]
    assert _run("revoke", str(smki), serial)[0] == 0
    code, out = _run("query", str(smki), "--serial", serial, "--json")
    assert json.loads(out)[0]["revoked"] is True
    code, out = _run("crl", str(smki), "--out", str(tmp_path / "crl.der"))
    assert code == 0, out
    hierarchy = json.loads((smki / "hierarchy.json").read_text())
    organisation_ca = parse_certificate(bytes.fromhex(hierarchy["organisation_ca"]))
    assert isinstance(organisation_ca, CaCertificate)
    assert parse_crl((tmp_path / "crl.der").read_bytes(), organisation_ca) == {int(serial, 16)}


def test_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    smki = tmp_path / "smki"
    code, out = _run("query", str(smki))
    assert code == 2 and "not an SMKI directory" in out
    assert _run("init", str(smki))[0] == 0
    code, out = _run("init", str(smki))
    assert code == 2 and "already holds" in out
    code, out = _run("issue", str(smki), "--eui64", "zz", "--role", "02", "--usage", "ds")
    assert code == 2 and "not an EUI-64" in out
    code, out = _run("issue", str(smki), "--eui64", "0000000000000001", "--usage", "ds")
    assert code == 2 and "exactly one of --role or --device" in out
    code, out = _run("revoke", str(smki), "ABCD")
    assert code == 2 and "no certificate" in out
    code, out = _run("revoke", str(smki), "xyz")
    assert code == 2 and "hexadecimal" in out
    monkeypatch.setenv("SMARTHYDRA_KEYSTORE_PASSPHRASE", "wrong")
    code, out = _run("query", str(smki))
    assert code == 2
