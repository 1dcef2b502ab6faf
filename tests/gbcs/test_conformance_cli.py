"""``smarthydra gbcs conformance`` end to end, and the per-message conformance checker."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from smarthydra.cli.main import app
from smarthydra.gbcs.conformance import check_conformance
from smarthydra.gbcs.envelope import decode_message
from smarthydra.gbcs.rtds import RtdsKeystore, rtds_message_files
from tests.conftest import conformance_path
from tests.gbcs.vectors import read_hex

runner = CliRunner()


def test_conformance_json_on_the_real_data() -> None:
    root = conformance_path("gbcs")
    result = runner.invoke(app, ["gbcs", "conformance", str(root), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["files"] == 1275
    assert report["parsed"] == 1275
    assert report["roundtrip"] == 1275
    # PCS01/PCS02 (HAN-only, PPMID to gas meter) are MAC'd by the device: no published key.
    assert (report["mac_valid"], report["mac_checked"], report["mac_skipped"]) == (811, 811, 4)
    assert (report["signature_valid"], report["signature_checked"]) == (472, 472)
    assert (report["decrypted"], report["sensitive"]) == (48, 48)
    # Every message whose keys are published is rebuilt from its use-case parameters.
    assert report["rebuilt"] == 1271
    assert report["failures"] == {}


def test_conformance_human_output() -> None:
    root = conformance_path("gbcs")
    folder = next(p for p in (root / "rtds-4.5.0").iterdir() if p.name.endswith("GCS53"))
    result = runner.invoke(app, ["gbcs", "conformance", str(folder)])
    assert result.exit_code == 0, result.output
    assert "round-trip" in result.stdout and "decrypted and decoded" in result.stdout


def test_tampered_payload_is_reported(tmp_path: Path) -> None:
    root = conformance_path("gbcs")
    source = next(p for p in rtds_message_files(root / "rtds-4.5.0") if p.name.startswith("GCS53_"))
    original = read_hex(source)
    payload = decode_message(original).payload
    data = bytearray(original)
    data[original.index(payload) + len(payload) - 5] ^= 0x01  # inside the GCM tag
    (tmp_path / "rtds-keystore").symlink_to(root / "rtds-keystore")
    (tmp_path / source.name).write_text(bytes(data).hex())
    result = runner.invoke(app, ["gbcs", "conformance", str(tmp_path), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["parsed"] == 1 and report["roundtrip"] == 1
    reason = report["failures"][source.name]
    assert "signature does not verify" in reason
    assert "sensitive payload: 0/1 decrypted" in reason


def test_garbage_file_is_a_parse_failure() -> None:
    keys = RtdsKeystore.load(conformance_path("gbcs", "rtds-keystore"))
    result = check_conformance("x.HEX", bytes.fromhex("dd0000"), keys)
    assert not result.parsed and result.failure is not None
    assert result.failure.startswith("parse:")


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["gbcs", "conformance", str(tmp_path / "nope"), "--json"])
    assert result.exit_code == 2
    assert "not a directory" in json.loads(result.stdout)["error"]
