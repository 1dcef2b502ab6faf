"""``smarthydra gbcs verify-rtds`` end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from smarthydra.cli.main import app
from tests.conftest import conformance_path

runner = CliRunner()


def test_verify_rtds_json_on_the_real_data() -> None:
    root = conformance_path("gbcs")
    result = runner.invoke(app, ["gbcs", "verify-rtds", str(root), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["mac"]["valid"] >= 811
    assert report["mac"]["invalid"] == 0 and report["mac"]["skipped"] == 4
    assert report["signature"] == {"valid": 472, "invalid": 0, "unsigned": 803, "skipped": 0}
    assert report["decrypted"]["ok"] == 48 and report["decrypted"]["failed"] == 0
    assert report["failures"] == []


def test_verify_rtds_human_table_and_explicit_keystore() -> None:
    root = conformance_path("gbcs")
    result = runner.invoke(
        app,
        [
            "gbcs",
            "verify-rtds",
            str(root / "rtds-4.5.0" / "7.2_ECS43"),
            "--keystore",
            str(root / "rtds-keystore"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "RTDS: 6 messages, 6 parsed" in result.stdout
    assert "signature" in result.stdout


def test_verify_rtds_reports_tampered_messages(tmp_path: Path) -> None:
    root = conformance_path("gbcs")
    source = root / "rtds-4.5.0" / "7.2_ECS43" / "ECS43_7.2_SUCCESS_COMMAND_GBCS.HEX"
    data = bytearray(bytes.fromhex(source.read_text().strip()))
    data[60] ^= 1
    (tmp_path / "TAMPERED_COMMAND_GBCS.HEX").write_text(data.hex().upper())
    (tmp_path / "JUNK_GBCS.HEX").write_text("zz")
    result = runner.invoke(
        app,
        ["gbcs", "verify-rtds", str(tmp_path), "--keystore", str(root / "rtds-keystore"), "--json"],
    )
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["mac"]["invalid"] == 1 and report["signature"]["invalid"] == 1
    assert report["failures"] == ["JUNK_GBCS.HEX", "TAMPERED_COMMAND_GBCS.HEX"]


def test_verify_rtds_clear_errors(tmp_path: Path) -> None:
    result = runner.invoke(app, ["gbcs", "verify-rtds", str(tmp_path / "nope"), "--json"])
    assert result.exit_code == 2
    assert "not a directory" in json.loads(result.stdout)["error"]
    result = runner.invoke(app, ["gbcs", "verify-rtds", str(tmp_path)])
    assert result.exit_code == 2
    assert "keystore directory not found" in result.output
