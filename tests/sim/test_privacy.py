"""The privacy measurement: what each party receives and what it can infer from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smarthydra.sim import privacy


@pytest.fixture(scope="module")
def report() -> privacy.PrivacyReport:
    return privacy.measure(homes=6, days=240)


def _party(report: privacy.PrivacyReport, party: str, scheme: str) -> privacy.PartyResult:
    return next(p for p in report.parties if (p.party, p.scheme) == (party, scheme))


def test_hydra_supplier_learns_less_than_conventional(report: privacy.PrivacyReport) -> None:
    conventional = _party(report, "supplier", "conventional")
    hydra = _party(report, "supplier", "hydra")
    assert conventional.granularity == "half-hourly" and hydra.granularity == "monthly"
    assert conventional.occupancy > 0.6 and hydra.occupancy == 0.5
    assert hydra.bytes * 10 < conventional.bytes
    assert hydra.messages == 6 * 7 and conventional.messages == 6 * 240  # 7 whole months


def test_parties_without_consumption_infer_nothing(report: privacy.PrivacyReport) -> None:
    for party in ("distributor", "telehealth provider"):
        result = _party(report, party, "hydra")
        assert (result.occupancy, result.electric_vehicle, result.electric_heating) == (
            0.5, 0.5, 0.5)
        assert result.among_receiving is None
    assert _party(report, "energy agent", "hydra").homes_receiving == 2  # homes 0 and 3


def test_inference_rules() -> None:
    hh = privacy.Received("half-hourly", ([100] * 4 + [3000] * 2 + [100] * 42) * 6, 738000)
    assert privacy.infer_ev(hh)
    occupancy = privacy.infer_occupancy(hh, 6)
    assert occupancy is not None and occupancy[0][4] and not occupancy[0][0]
    assert privacy.infer_occupancy(privacy.Received("daily", [1.0]), 1) is None
    assert not privacy.infer_ev(privacy.Received("monthly", [1.0] * 12))
    assert privacy.balanced_accuracy([True, False, False], [True, True, False]) == 0.75
    assert privacy.balanced_accuracy([True, True], [False, False]) == 0.0


def test_json_and_html_written(report: privacy.PrivacyReport, tmp_path: Path) -> None:
    json_path, html_path = privacy.write_report(report, tmp_path)
    payload = json.loads(json_path.read_text())
    assert payload["homes"] == 6 and len(payload["parties"]) == 7
    assert {"bytes", "fields", "granularity", "occupancy_balanced_accuracy"} <= set(
        payload["parties"][0])
    page = html_path.read_text()
    assert page.count("data:image/png;base64,") == 2 and "<table>" in page


def test_main_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        privacy.main(["--homes", "0", "--out", str(tmp_path)])
    assert privacy.main(["--homes", "1", "--days", "3", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "privacy.html").exists()


@pytest.mark.slow
def test_hundred_homes_for_a_year(tmp_path: Path) -> None:
    report = privacy.measure(homes=100, days=365)
    privacy.write_report(report, tmp_path)
    assert report.homes == 100 and _party(report, "supplier", "hydra").occupancy == 0.5
    assert report.raw.occupancy > 0.6
