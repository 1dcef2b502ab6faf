"""The atheris harness: a bounded libFuzzer run when atheris is installed; its one-input
function under hypothesis always."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.gbcs.fuzz_atheris import one_input

HARNESS = Path(__file__).with_name("fuzz_atheris.py")
REPO = HARNESS.parent.parent.parent
RUNS = int(os.environ.get("SMARTHYDRA_ATHERIS_RUNS", "20000"))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_every_decoder_raises_only_decode_errors(data: bytes) -> None:
    one_input(data)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([b"\xdd", b"\xdf", b"\xd9", b"\xda", b"\x0f", b"\x01\x09", b"\x30"]),
    st.binary(max_size=100),
)
def test_decoders_with_plausible_first_bytes(head: bytes, tail: bytes) -> None:
    one_input(head + tail)


def test_bounded_atheris_run() -> None:
    pytest.importorskip("atheris", reason="atheris is not installed (pip install atheris)")
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'src'}"}
    result = subprocess.run(
        [sys.executable, str(HARNESS), f"-runs={RUNS}", "-timeout=10"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
