"""SoftHSM2 fixtures shared by tests/crypto and tests/pki: a fresh token per test."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from smarthydra.crypto import softhsm

USER_PIN = "123456"
SO_PIN = "12345678"
_counter = itertools.count()


def require_softhsm() -> None:
    """Skip when SoftHSM2 is absent, unless CI says it must be there (then fail)."""
    reason = softhsm.unavailable_reason()
    if reason is not None:
        if os.environ.get("SMARTHYDRA_REQUIRE_SOFTHSM") == "1":
            pytest.fail(f"SMARTHYDRA_REQUIRE_SOFTHSM=1 but SoftHSM2 is unavailable: {reason}")
        pytest.skip(f"SoftHSM2 unavailable: {reason}")


@pytest.fixture
def softhsm_token(tmp_path: Path) -> Iterator[softhsm.SoftHsmToken]:
    """A freshly initialised SoftHSM2 token in its own directory, active in this process."""
    require_softhsm()
    token = softhsm.init_token(tmp_path / "softhsm", f"test-{next(_counter)}", USER_PIN, SO_PIN)
    softhsm.activate(token)
    yield token
