"""``smarthydra home`` end to end through the CLI."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from smarthydra.cli.main import app

runner = CliRunner()


def test_home_battery_json() -> None:
    result = runner.invoke(app, ["home", "battery", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["default schedule"]["years"] >= 15
    assert data["read flood without GPF"]["years"] < 15
    assert data["read flood with GPF"]["meets_target"] is True


def test_home_simulate_json_reads_the_daily_log_each_day() -> None:
    result = runner.invoke(app, ["home", "simulate", "--days", "2", "--seed", "3", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert len(data["days"]) == 2
    assert all(day["daily_log_response_bytes"] > 0 for day in data["days"])
    assert all(day["import_kwh"] > 0 for day in data["days"])
    assert data["gas_energy_j"] > 0


def test_home_household_bad_date_is_a_clean_error() -> None:
    result = runner.invoke(app, ["home", "household", "--date", "yesterday"])
    assert result.exit_code == 2
    assert "not a date" in result.output


def test_home_battery_measured_on_real_traffic() -> None:
    result = runner.invoke(app, ["home", "battery", "--measured", "--flood", "300", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["default schedule"]["years"] >= 15
    assert data["read flood with GPF"]["years"] >= 15
    assert data["read flood without GPF"]["years"] < data["read flood with GPF"]["years"] / 1.5
