from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smarthydra.cli.main import app
from smarthydra.crypto import softhsm
from smarthydra.sim.demo import run_demo
from smarthydra.sim.world import softhsm_keystores


def test_demo_report_shows_every_defence() -> None:
    report = run_demo(4, seed=2)
    assert report.reads_ok == 4 and report.reads_failed == 0 and report.reads_match_meters
    assert report.supply_disabled == 1
    assert [(r.who, r.srv, r.code) for r in report.refused] == [("Distributor A", "7.2", "E2")]
    assert report.replays_dropped == 1
    assert report.tampered_dropped == 1
    assert report.bypass_dropped == 1
    assert report.meters_unchanged_by_attacks
    assert report.quarantined == 1
    assert report.audit_log_intact


def test_demo_cli_json() -> None:
    result = CliRunner().invoke(app, ["demo", "--homes", "3", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for key in (
        "homes",
        "reads_ok",
        "supply_disabled",
        "refused",
        "replays_dropped",
        "quarantined",
    ):
        assert key in data
    assert data["homes"] == 3 and data["reads_ok"] == 3
    assert data["refused"][0]["code"] == "E2"


def test_demo_cli_table_and_bad_arguments() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["demo", "--homes", "2"])
    assert result.exit_code == 0
    assert "quarantined" in result.stdout
    bad = runner.invoke(app, ["demo", "--homes", "1"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    bad = runner.invoke(app, ["demo", "--homes", "lots"])
    assert bad.exit_code == 2


@pytest.mark.softhsm
def test_demo_with_party_keys_in_softhsm(tmp_path: Path) -> None:
    reason = softhsm.unavailable_reason()
    if reason:
        pytest.skip(reason)
    report = run_demo(2, keystores=softhsm_keystores(tmp_path), keystore_kind="softhsm2")
    assert report.keystore == "softhsm2"
    assert report.reads_ok == 2 and report.supply_disabled == 1 and report.quarantined == 1
    assert report.meters_unchanged_by_attacks
