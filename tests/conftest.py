"""Shared fixtures: where the conformance data lives, and skipping cleanly when it does not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFORMANCE = Path(
    os.environ.get("SMARTHYDRA_CONFORMANCE", REPO_ROOT.parent / "shared" / "conformance")
)


_CONFORMANCE_MISSING = "conformance data not found"


def conformance_path(*parts: str) -> Path:
    """Return a path inside ../shared/conformance, or skip the test naming what is missing."""
    path = CONFORMANCE.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"{_CONFORMANCE_MISSING}: {path} (set SMARTHYDRA_CONFORMANCE or place shared/ beside the checkout)"
        )
    return path


@pytest.fixture
def conformance() -> Path:
    return conformance_path()


# In CI the real components are installed, so a test that needs them may not quietly skip:
# SMARTHYDRA_REQUIRE_SOFTHSM=1 / _PCSC=1 / _POSTGRES=1 turn such skips into failures.
_REQUIRED_MARKERS = {
    "softhsm": "SMARTHYDRA_REQUIRE_SOFTHSM",
    "pcsc": "SMARTHYDRA_REQUIRE_PCSC",
    "postgres": "SMARTHYDRA_REQUIRE_POSTGRES",
}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or _CONFORMANCE_MISSING in str(report.longrepr):
        # Absent conformance data is its own, clearly reported reason to skip; the
        # REQUIRE_* switches are about the installed components, not the data.
        return
    for marker, variable in _REQUIRED_MARKERS.items():
        if item.get_closest_marker(marker) and os.environ.get(variable) == "1":
            report.outcome = "failed"
            report.longrepr = f"{variable}=1 but this test skipped: {report.longrepr}"
            return
