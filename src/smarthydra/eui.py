"""EUI-64 identifiers: every device, party and the DCC is named by one.

Written as 16 hex digits in GBCS and SMKI, and as eight hyphen-separated pairs in DUIS
RequestIDs (``90-B3-D5-1F-30-01-00-00``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEX16 = re.compile(r"^[0-9A-Fa-f]{16}$")
_HYPHENATED = re.compile(r"^([0-9A-Fa-f]{2}-){7}[0-9A-Fa-f]{2}$")


class InvalidEui64(ValueError):
    """Text or bytes that are not an EUI-64."""


@dataclass(frozen=True, order=True)
class Eui64:
    """An 8-byte EUI-64."""

    value: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.value, bytes) or len(self.value) != 8:
            raise InvalidEui64(f"an EUI-64 is 8 bytes, got {self.value!r}")

    @classmethod
    def parse(cls, text: str) -> Eui64:
        """Accept ``00DB1234567890A0`` or ``00-DB-12-34-56-78-90-A0``."""
        text = text.strip()
        if _HEX16.match(text):
            return cls(bytes.fromhex(text))
        if _HYPHENATED.match(text):
            return cls(bytes.fromhex(text.replace("-", "")))
        raise InvalidEui64(f"not an EUI-64: {text!r} (want 16 hex digits, optionally hyphenated)")

    @classmethod
    def from_int(cls, number: int) -> Eui64:
        if not 0 <= number < 1 << 64:
            raise InvalidEui64(f"EUI-64 out of range: {number}")
        return cls(number.to_bytes(8, "big"))

    def __str__(self) -> str:
        return self.value.hex().upper()

    @property
    def hyphenated(self) -> str:
        return self.value.hex("-").upper()
