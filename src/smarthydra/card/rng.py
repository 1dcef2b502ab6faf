"""Randomness for the card, injected so that tests are deterministic."""

from __future__ import annotations

import hashlib
import os
from typing import Protocol


class RandomSource(Protocol):
    def random_bytes(self, n: int) -> bytes:
        """``n`` random bytes."""
        ...


class OsRandom:
    """The operating system's CSPRNG: what a real card image uses."""

    def random_bytes(self, n: int) -> bytes:
        return os.urandom(n)


class DeterministicRandom:
    """FOR TESTS ONLY: a reproducible byte stream, SHA-256 over ``seed || counter``.

    Not a DRBG and not for keys anyone relies on: it exists so that key generation and
    challenges in tests and vectors are repeatable.
    """

    def __init__(self, seed: bytes | str = b"smarthydra-test") -> None:
        self._seed = seed.encode() if isinstance(seed, str) else bytes(seed)
        self._counter = 0
        self._buffer = b""

    def random_bytes(self, n: int) -> bytes:
        if n < 0:
            raise ValueError("cannot draw a negative number of bytes")
        while len(self._buffer) < n:
            block = hashlib.sha256(self._seed + self._counter.to_bytes(8, "big")).digest()
            self._buffer += block
            self._counter += 1
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out
