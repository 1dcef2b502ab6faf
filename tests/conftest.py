"""Shared fixtures: where the conformance data lives, and skipping cleanly when it does not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFORMANCE = Path(os.environ.get("SMARTHYDRA_CONFORMANCE", REPO_ROOT.parent / "shared" / "conformance"))


def conformance_path(*parts: str) -> Path:
    """Return a path inside ../shared/conformance, or skip the test naming what is missing."""
    path = CONFORMANCE.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"conformance data not found: {path} (set SMARTHYDRA_CONFORMANCE or place shared/ beside the checkout)")
    return path


@pytest.fixture
def conformance() -> Path:
    return conformance_path()
