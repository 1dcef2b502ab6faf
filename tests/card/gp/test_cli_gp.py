"""``smarthydra card list|load|install|delete|lock|unlock|put-key|store-data|conformance``
through the real CLI app, against card images in process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from smarthydra.cli.main import app
from smarthydra.crypto.primitives import private_key_from_scalar
from tests.conftest import conformance_path

from .gpcards import NOTE_APP_AID, NOTE_MODULE_AID, NOTE_PACKAGE_AID, NOTE_SOURCE, note_package

runner = CliRunner()


def _card(args: list[str], image: Path) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(app, ["card", *args, "--image", str(image)])
    assert result.exit_code == 0, result.output
    return {"output": result.output}


def _registry(image: Path) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(app, ["card", "list", "--image", str(image), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_life_cycle_through_the_cli(tmp_path: Path) -> None:
    image = tmp_path / "gp.img"
    package = tmp_path / "note.pkg"
    package.write_bytes(note_package().encode())
    lf, module, app_aid = (a.hex().upper() for a in (NOTE_PACKAGE_AID, NOTE_MODULE_AID,
                                                      NOTE_APP_AID))
    _card(["load", str(package)], image)
    _card(["install", lf, module, app_aid, "--params", "6869", "--not-selectable"], image)
    doc = _registry(image)
    assert doc["isd"][0]["aid"] == "A000000151000000" and doc["isd"][0]["life_cycle"] == "0F"
    apps = {a["aid"]: a for a in doc["applications"]}
    assert apps[app_aid]["life_cycle"] == "03"
    assert module in {m for lf_ in doc["load_files"] for m in lf_["modules"]}
    _card(["store-data", app_aid, "AABB"], image)
    _card(["lock", app_aid], image)
    assert {a["aid"]: a for a in _registry(image)["applications"]}[app_aid]["life_cycle"] == "83"
    _card(["unlock", app_aid], image)
    out = _card(["put-key", "--new-kvn", "49", "--new-key", "505152535455565758595A5B5C5D5E5F"],
                image)["output"]
    assert "KCVs" in out
    result = runner.invoke(app, ["card", "list", "--image", str(image), "--kvn", "49", "--key",
                                 "505152535455565758595A5B5C5D5E5F", "--json"])
    assert result.exit_code == 0, result.output
    _card(["delete", lf, "--related"], image)
    assert lf not in {x["aid"] for x in _registry(image)["load_files"]}


def test_load_from_source_and_manifest_with_a_dap(tmp_path: Path) -> None:
    image = tmp_path / "gp.img"
    source = tmp_path / "note.py"
    source.write_text(NOTE_SOURCE)
    manifest = tmp_path / "note.json"
    manifest.write_text(json.dumps({"aid": NOTE_PACKAGE_AID.hex(), "name": "note",
                                    "version": "1.0",
                                    "applets": {"NoteApplet": [NOTE_MODULE_AID.hex()]}}))
    key = private_key_from_scalar(bytes.fromhex("6e" * 32))
    pem = tmp_path / "dap.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    # a DAP block for an SD without DAP Verification is refused (6A88), exit code 1
    result = runner.invoke(app, ["card", "load", str(source), "--manifest", str(manifest),
                                 "--dap-key", f"A000000151000000={pem}", "--image", str(image)])
    assert result.exit_code == 1 and "6A88" in result.output
    _card(["load", str(source), "--manifest", str(manifest)], image)


def test_cli_errors_are_clear(tmp_path: Path) -> None:
    image = tmp_path / "gp.img"
    bad = runner.invoke(app, ["card", "delete", "F0F0F0F0F0", "--image", str(image)])
    assert bad.exit_code == 1 and "6A88" in bad.output
    wrong_key = runner.invoke(app, ["card", "list", "--image", str(image), "--key", "00" * 16])
    assert wrong_key.exit_code == 2 and "secure channel" in wrong_key.output
    not_hex = runner.invoke(app, ["card", "install", "zz", "F0F0F0F0F0", "--image", str(image)])
    assert not_hex.exit_code == 2 and "not hex" in not_hex.output
    both = runner.invoke(app, ["card", "lock", "--image", str(image)])
    assert both.exit_code == 2


def test_lock_and_unlock_the_card(tmp_path: Path) -> None:
    image = tmp_path / "gp.img"
    _card(["lock", "--card"], image)
    assert _registry(image)["isd"][0]["life_cycle"] == "7F"
    _card(["unlock", "--card"], image)
    assert _registry(image)["isd"][0]["life_cycle"] == "0F"


def test_scp11b_through_the_cli(tmp_path: Path) -> None:
    image = tmp_path / "gp11.img"
    result = runner.invoke(app, ["card", "list", "--image", str(image), "--profile", "gp-test",
                                 "--scp", "11b", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["isd"][0]["aid"] == "A000000151000000"


def test_conformance_command_json() -> None:
    path = conformance_path("gp", "scp_vectors.json")
    result = runner.invoke(app, ["card", "conformance", str(path), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc) >= {"sets", "checks", "passed", "failed", "failures"}
    assert doc["failed"] == 0 and doc["passed"] == doc["checks"] >= 500


def test_conformance_command_fails_on_a_bad_vector(tmp_path: Path) -> None:
    path = conformance_path("gp", "scp_vectors.json")
    doc = json.loads(path.read_text())
    doc["scp03"][0]["init_update_resp"] = "00" * 29
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(doc))
    result = runner.invoke(app, ["card", "conformance", str(broken), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["failed"] > 0
    missing = runner.invoke(app, ["card", "conformance", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2


class _FakeReader:
    """pcscd's vpcd side: listens, and speaks vpcd framing to the card that connects."""

    def __init__(self) -> None:
        import socket

        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(30)
        self.port = self.server.getsockname()[1]
        self.conn: Any = None

    def accept(self) -> None:
        self.conn, _ = self.server.accept()
        self.conn.settimeout(30)

    def _recv(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.conn.recv(n - len(data))
            assert chunk, "card closed the link"
            data += chunk
        return data

    def exchange(self, payload: bytes) -> bytes:
        self.conn.sendall(len(payload).to_bytes(2, "big") + payload)
        length = int.from_bytes(self._recv(2), "big")
        return self._recv(length)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()


def test_serve_test_keys_over_vpcd(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from smarthydra.card.gp.certificates import parse_certificate_store
    from smarthydra.card.gp.client import GpClient
    from smarthydra.card.gp.scp03 import Scp03StaticKeys
    from smarthydra.card.gp.scp11 import Scp11Variant

    reader = _FakeReader()
    certificate = tmp_path / "scp11b.cert"
    process = subprocess.Popen(
        [sys.executable, "-m", "smarthydra.cli.main", "card", "serve", "--vpcd",
         f"127.0.0.1:{reader.port}", "--test-keys", "--certificate", str(certificate),
         "--image", str(tmp_path / "served.img")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ})
    try:
        reader.accept()
        assert reader.exchange(b"\x04")[:1] == b"\x3B"  # the ATR
        client = GpClient(reader.exchange)
        client.select()
        client.open_scp03(Scp03StaticKeys.test_keys())  # 40..4F, key version 30
        assert client.get_status(0x80)[0].aid == bytes.fromhex("A000000151000000")
        store = parse_certificate_store(certificate.read_bytes())
        client.select()
        client.open_scp11(Scp11Variant.B, store[-1].public_key)
        assert client.get_status(0x80)[0].life_cycle == 0x0F
    finally:
        process.terminate()
        process.communicate(timeout=30)
        reader.close()


def test_gp_client_over_a_separate_card_process(tmp_path: Path) -> None:
    """The host library over ProcessTransport: the card is its own OS process (the chip)."""
    from smarthydra.card.gp.client import GpClient
    from smarthydra.card.gp.scp03 import Scp03StaticKeys
    from smarthydra.card.transport import ProcessTransport

    transport = ProcessTransport(tmp_path / "proc.img", "gp", durable=False)
    try:
        transport.power_on()
        client = GpClient(transport.transmit)
        client.select()
        client.open_scp03(Scp03StaticKeys.test_keys(), s_mode=16)
        client.load(NOTE_PACKAGE_AID, note_package().encode())
        client.install(NOTE_PACKAGE_AID, NOTE_MODULE_AID, NOTE_APP_AID, params=b"proc")
        transport.kill()  # a power cut: power-up starts a new card process on the image
        transport.power_on()
        client.select()
        client.open_scp03(Scp03StaticKeys.test_keys())
        assert NOTE_APP_AID in {e.aid for e in client.get_status(0x40)}
    finally:
        transport.close()
