"""The shared frame of the atheris harnesses in this package.

Each ``fuzz_<area>.py`` module names the packages atheris instruments (``INSTRUMENT``) and builds
its :class:`Target` list lazily in ``targets()`` (so the imports happen inside atheris'
instrumentation). A target is one parser or entry point together with the exception types its
documentation promises; anything else escaping it, or a check failing (state changed, a bare base
class raised, a hang caught by libFuzzer's ``-timeout``), is a finding.

``one_input`` routes an input by its first byte to one target, so libFuzzer keeps one corpus per
harness yet learns each target's shape; ``check_every_target`` runs all targets on the same bytes
for the hypothesis tests.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType


@dataclass(frozen=True)
class Target:
    """One parser under fuzz: ``call`` gets the bytes, ``allowed`` are its documented errors."""

    name: str
    call: Callable[[bytes], object]
    allowed: tuple[type[BaseException], ...]
    # Base classes too general to be a useful answer: the error must be a subclass of them.
    unspecific: tuple[type[BaseException], ...] = field(default=())


class Finding(AssertionError):
    """A target let an undocumented exception escape, or broke one of its own checks."""


def run_target(target: Target, data: bytes) -> None:
    try:
        target.call(data)
    except target.allowed as exc:
        if type(exc) in target.unspecific:
            raise Finding(f"{target.name}: unspecific {type(exc).__name__}: {exc}") from exc
    except Finding:
        raise
    except Exception as exc:
        raise Finding(f"{target.name}: undocumented {type(exc).__name__}: {exc}") from exc


def text_of(data: bytes) -> str:
    """Bytes as text the way a file reader would see them (bad UTF-8 replaced, not refused)."""
    return data.decode("utf-8", errors="replace")


# What a digit check meets besides 0-9: non-ASCII digits (``"²".isdigit()`` is True, ``int("²")``
# fails), separators and line ends.
_NEAR_DIGITS = "²٣ -:.\r\n"


def digits_of(data: bytes, length: int = 20) -> str:
    """Bias towards well-formed digit strings: ``length`` characters drawn from ``data``, mostly
    ASCII digits (bytes 0-247), sometimes one of the near-digits (bytes 248-255)."""
    padded = (data * (length // max(len(data), 1) + 1))[:length] if data else bytes(length)
    return "".join(_NEAR_DIGITS[b - 248] if b >= 248 else str(b % 10) for b in padded)


class Harness:
    """The targets of one ``fuzz_<area>`` module, built once."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        self._targets: list[Target] | None = None

    @property
    def targets(self) -> list[Target]:
        if self._targets is None:
            self._targets = list(self.module.targets())
        return self._targets

    def one_input(self, data: bytes) -> None:
        if not data:
            return
        targets = self.targets
        run_target(targets[data[0] % len(targets)], data[1:])

    def check_every_target(self, data: bytes) -> None:
        for target in self.targets:
            run_target(target, data)


def main(module: ModuleType) -> None:
    """libFuzzer entry: ``python -m tests.fuzz.fuzz_<area> -runs=N -seed=S ...``."""
    import atheris

    harness = Harness(module)
    with atheris.instrument_imports(include=list(module.INSTRUMENT)):
        harness.targets  # noqa: B018 - imports the parsers under instrumentation
    atheris.Setup(sys.argv, harness.one_input)
    atheris.Fuzz()


def splice(template: bytes, data: bytes) -> bytes:
    """``template`` with a stretch replaced by ``data[3:]``: the first two bytes of ``data`` pick
    where, the third how many template bytes to cut. Reaches the deep end of a parser that
    random bytes never get past the first check of."""
    if len(data) < 3:
        return template[: len(data)]
    offset = int.from_bytes(data[:2], "big") % (len(template) + 1)
    return template[:offset] + data[3:] + template[offset + data[2] :]
