"""Short ISO 7816-4 command and response APDUs, as small immutable values.

Only short APDUs (Lc <= 255) are handled: GlobalPlatform secure messaging as used here never needs
extended length, and an extended-length command is refused with a clear error rather than misread.
``le`` keeps the raw encoded Le byte (``0`` meaning 256) so that bytes round-trip exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from smarthydra.card.gp.errors import MalformedApdu


@dataclass(frozen=True)
class CommandApdu:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFF:
                raise MalformedApdu(f"{name} must be one byte, got {value!r}")
        if len(self.data) > 255:
            raise MalformedApdu(f"command data of {len(self.data)} bytes needs extended length")
        if self.le is not None and not 0 <= self.le <= 0xFF:
            raise MalformedApdu(f"Le must be one byte (00 meaning 256), got {self.le!r}")

    @property
    def case(self) -> int:
        """ISO 7816-3 case: 1 (no data, no Le), 2 (Le), 3 (data), 4 (data and Le)."""
        if self.data:
            return 4 if self.le is not None else 3
        return 2 if self.le is not None else 1

    @property
    def header(self) -> bytes:
        return bytes((self.cla, self.ins, self.p1, self.p2))

    def to_bytes(self) -> bytes:
        out = self.header
        if self.data:
            out += bytes((len(self.data),)) + self.data
        if self.le is not None:
            out += bytes((self.le,))
        return out

    @classmethod
    def parse(cls, raw: bytes) -> CommandApdu:
        raw = bytes(raw)
        if len(raw) < 4:
            raise MalformedApdu(f"a command APDU has at least 4 bytes, got {len(raw)}")
        cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
        if cla == 0xFF:
            raise MalformedApdu("CLA FF is invalid", sw=0x6E00)
        body = raw[4:]
        if not body:
            return cls(cla, ins, p1, p2)
        if len(body) == 1:
            return cls(cla, ins, p1, p2, le=body[0])
        lc = body[0]
        if lc == 0:
            raise MalformedApdu("extended-length APDUs are not supported")
        if len(body) == 1 + lc:
            return cls(cla, ins, p1, p2, body[1:])
        if len(body) == 2 + lc:
            return cls(cla, ins, p1, p2, body[1:-1], le=body[-1])
        raise MalformedApdu(f"Lc {lc} does not match the {len(body) - 1} bytes that follow it")


@dataclass(frozen=True)
class ResponseApdu:
    data: bytes
    sw: int

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def is_success_or_warning(self) -> bool:
        """9000 or a warning (62xx, 63xx): the responses secure messaging protects."""
        return self.sw == 0x9000 or self.sw1 in (0x62, 0x63)

    def to_bytes(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    @classmethod
    def parse(cls, raw: bytes) -> ResponseApdu:
        raw = bytes(raw)
        if len(raw) < 2:
            raise MalformedApdu(
                f"a response APDU has at least the 2-byte status word, got {len(raw)}"
            )
        return cls(raw[:-2], int.from_bytes(raw[-2:], "big"))
