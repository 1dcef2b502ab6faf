"""Shared timing for the benchmarks: how often an action runs per second of wall-clock time.

Benchmarks report such rates next to a baseline measured in the same run (see run.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable


def calls_per_second(
    action: Callable[[], object], seconds: float, *, warm_up: bool = False
) -> float:
    """Calls of ``action`` per second, calling it until ``seconds`` have passed (at least
    once); ``warm_up`` makes one untimed call first (first-use costs such as key loading)."""
    if warm_up:
        action()
    count, start = 0, time.perf_counter()
    while True:
        action()
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count / elapsed
