"""Every parser under fuzz: a bounded, seeded libFuzzer run per harness when atheris is
installed, and each harness' targets under hypothesis always.

``SMARTHYDRA_ATHERIS_SCALE`` multiplies the libFuzzer run counts (e.g. 10 for a longer check);
``python -m tests.fuzz.run --seconds 60`` runs proper campaigns.
"""

from __future__ import annotations

import importlib
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.harness import Finding, Harness, Target, digits_of, run_target, splice
from tests.fuzz.run import HARNESSES, run_harness

SCALE = float(os.environ.get("SMARTHYDRA_ATHERIS_SCALE", "1"))
# Inputs per harness, sized by its speed so that all seven take about 25 s here.
RUNS = {"card": 10_000, "duis": 10_000, "pki": 8_000, "prepay": 3_000, "dcc": 20_000,
        "premises": 5_000, "applets": 20_000}
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_HARNESSES: dict[str, Harness] = {}


def harness(name: str) -> Harness:
    if name not in _HARNESSES:
        _HARNESSES[name] = Harness(importlib.import_module(f"tests.fuzz.fuzz_{name}"))
    return _HARNESSES[name]


def test_every_harness_has_a_bounded_run() -> None:
    assert set(RUNS) == set(HARNESSES)


@pytest.mark.parametrize("name", HARNESSES)
def test_bounded_atheris_run(name: str, tmp_path: object) -> None:
    pytest.importorskip("atheris", reason="atheris is not installed (pip install atheris)")
    campaign = run_harness(name, runs=max(1, int(RUNS[name] * SCALE)), seed=1)
    assert campaign.ok, campaign.output[-3000:]
    assert campaign.runs >= RUNS[name] * SCALE * 0.99, campaign.output[-1000:]


@pytest.mark.parametrize("name", HARNESSES)
@FUZZ
@given(data=st.binary(max_size=200))
def test_every_target_under_hypothesis(name: str, data: bytes) -> None:
    harness(name).check_every_target(data)


@pytest.mark.parametrize("name", HARNESSES)
@FUZZ
@given(data=st.binary(max_size=200))
def test_routed_inputs_under_hypothesis(name: str, data: bytes) -> None:
    harness(name).one_input(data)


# --- the harness itself can fail ------------------------------------------------------------------


def _raise(exc: BaseException) -> object:
    raise exc


def test_an_undocumented_exception_is_a_finding() -> None:
    target = Target("t", lambda b: _raise(KeyError("x")), (ValueError,))
    with pytest.raises(Finding, match="undocumented KeyError"):
        run_target(target, b"")


def test_a_documented_but_unspecific_exception_is_a_finding() -> None:
    target = Target("t", lambda b: _raise(ValueError("x")), (ValueError,), unspecific=(ValueError,))
    with pytest.raises(Finding, match="unspecific ValueError"):
        run_target(target, b"")
    run_target(Target("t", lambda b: _raise(UnicodeError("x")), (ValueError,),
                      unspecific=(ValueError,)), b"")


def test_splice_and_digits() -> None:
    assert splice(b"abcdef", b"\x00\x02\x01XY") == b"abXYdef"
    assert splice(b"abcdef", b"\x00\x00\x00") == b"abcdef"
    assert digits_of(b"\x01\x0b\xf8", 6) == "11²11²"
