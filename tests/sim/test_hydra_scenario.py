"""``smarthydra demo --scenario hydra``: the whole story, through the CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from smarthydra.cli.main import app
from smarthydra.sim.hydra import run_hydra_scenario


def test_scenario_checks_hold() -> None:
    report = run_hydra_scenario(days=40)
    assert report.ok, report.render()
    assert len(report.checks) == 13
    assert any("revoked" in line for line in report.log)
    assert "all checks hold: yes" in report.render()


def test_scenario_needs_a_month() -> None:
    with pytest.raises(ValueError):
        run_hydra_scenario(days=10)


def test_cli_demo_hydra() -> None:
    result = CliRunner().invoke(app, ["demo", "--scenario", "hydra", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["scenario"] == "hydra" and payload["ok"] is True
    whats = " ".join(c["what"] for c in payload["checks"])
    for story in ("ground-truth bill", "telehealth", "revocation", "unapproved", "tampered"):
        assert story in whats
    text = CliRunner().invoke(app, ["demo", "--scenario", "hydra"])
    assert text.exit_code == 0 and "consumer's release log" in text.output
