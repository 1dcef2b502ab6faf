"""ISO/IEC 7816-4 command and response APDUs: the only way into the secure element.

Sans-I/O: parsing and encoding over bytes, the class-byte coding (logical channel, command
chaining, secure messaging) and the status words the card answers with.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

SHORT_MAX_NC = 255
SHORT_MAX_NE = 256
EXTENDED_MAX_NC = 65535
EXTENDED_MAX_NE = 65536
MAX_LOGICAL_CHANNELS = 20  # 0-3 in first interindustry CLA, 4-19 in further interindustry


class SW(enum.IntEnum):
    """The ISO 7816-4 (and Java Card) status words the card answers with."""

    OK = 0x9000
    BYTES_REMAINING = 0x6100  # 61xx: xx more bytes for GET RESPONSE (00: 256 or more)
    WARNING_NV_UNCHANGED = 0x6200
    MORE_DATA_AVAILABLE = 0x6310
    EXECUTION_ERROR_NV_UNCHANGED = 0x6400
    MEMORY_FAILURE = 0x6581
    WRONG_LENGTH = 0x6700
    LOGICAL_CHANNEL_NOT_SUPPORTED = 0x6881
    SECURE_MESSAGING_NOT_SUPPORTED = 0x6882
    LAST_COMMAND_OF_CHAIN_EXPECTED = 0x6883
    COMMAND_CHAINING_NOT_SUPPORTED = 0x6884
    COMMAND_NOT_ALLOWED = 0x6986
    SECURITY_STATUS_NOT_SATISFIED = 0x6982
    CONDITIONS_NOT_SATISFIED = 0x6985
    APPLET_SELECT_FAILED = 0x6999
    WRONG_DATA = 0x6A80
    FUNCTION_NOT_SUPPORTED = 0x6A81
    FILE_NOT_FOUND = 0x6A82
    NOT_ENOUGH_MEMORY = 0x6A84
    INCORRECT_P1P2 = 0x6A86
    REFERENCED_DATA_NOT_FOUND = 0x6A88
    WRONG_P1P2 = 0x6B00
    CORRECT_LENGTH = 0x6C00  # 6Cxx: wrong Le, xx is the right one
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    UNKNOWN = 0x6F00


class APDUFormatError(ValueError):
    """Bytes that are not a well-formed APDU; ``sw`` is the status word the card answers."""

    def __init__(self, message: str, sw: int = SW.WRONG_LENGTH) -> None:
        super().__init__(message)
        self.sw = sw


@dataclass(frozen=True)
class ClassByte:
    """What the CLA byte says: logical channel, chaining, secure messaging, proprietary class."""

    channel: int
    chained: bool
    secure_messaging: int  # 0 none, otherwise the SM indication bits as coded
    proprietary: bool

    @staticmethod
    def decode(cla: int) -> ClassByte:
        if cla == 0xFF:
            raise APDUFormatError("CLA FF is invalid (reserved for PPS)", SW.CLA_NOT_SUPPORTED)
        low = cla & 0x7F  # GlobalPlatform codes proprietary CLAs the same way as interindustry
        if low & 0x40:
            return ClassByte(
                channel=4 + (low & 0x0F),
                chained=bool(low & 0x10),
                secure_messaging=(low >> 5) & 0x01,
                proprietary=bool(cla & 0x80),
            )
        if low & 0x20 and not cla & 0x80:
            # first interindustry is 000x xxxx; 001x xxxx is reserved
            raise APDUFormatError(f"CLA {cla:02X} is reserved", SW.CLA_NOT_SUPPORTED)
        return ClassByte(
            channel=low & 0x03,
            chained=bool(low & 0x10),
            secure_messaging=(low >> 2) & 0x03,
            proprietary=bool(cla & 0x80),
        )

    @staticmethod
    def with_channel(cla: int, channel: int) -> int:
        """``cla`` re-coded for ``channel`` (keeping chaining, SM and proprietary bits)."""
        if not 0 <= channel < MAX_LOGICAL_CHANNELS:
            raise ValueError(f"logical channel {channel} is outside 0..19")
        decoded = ClassByte.decode(cla)
        high = cla & 0x80
        chain = 0x10 if decoded.chained else 0
        if channel < 4:
            return high | chain | (decoded.secure_messaging & 0x03) << 2 | channel
        return high | 0x40 | chain | (0x20 if decoded.secure_messaging else 0) | (channel - 4)


@dataclass(frozen=True)
class CommandAPDU:
    """A command APDU. ``ne`` is the expected response length: 0 means no Le field."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    ne: int = 0
    extended: bool = False  # force extended encoding even when short would do

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFF:
                raise ValueError(f"{name} must be one byte, got {value}")
        if len(self.data) > EXTENDED_MAX_NC:
            raise ValueError(f"command data is at most {EXTENDED_MAX_NC} bytes")
        if not 0 <= self.ne <= EXTENDED_MAX_NE:
            raise ValueError(f"Ne must be 0..{EXTENDED_MAX_NE}, got {self.ne}")

    @property
    def case(self) -> int:
        """ISO 7816-3 case: 1 no data no Le, 2 Le only, 3 data only, 4 data and Le."""
        return 1 + (1 if self.ne else 0) + (2 if self.data else 0)

    @property
    def is_extended(self) -> bool:
        return self.extended or len(self.data) > SHORT_MAX_NC or self.ne > SHORT_MAX_NE

    @property
    def class_byte(self) -> ClassByte:
        return ClassByte.decode(self.cla)

    def encode(self) -> bytes:
        header = bytes((self.cla, self.ins, self.p1, self.p2))
        nc = len(self.data)
        if not nc and not self.ne:
            return header  # case 1 has no length fields, short or extended
        if not self.is_extended:
            body = b""
            if nc:
                body += bytes((nc,)) + self.data
            if self.ne:
                body += bytes((self.ne % 256,))
            return header + body
        body = b"\x00"
        if nc:
            body += nc.to_bytes(2, "big") + self.data
        if self.ne:
            body += (self.ne % 65536).to_bytes(2, "big")
        return header + body

    @staticmethod
    def parse(raw: bytes) -> CommandAPDU:
        """Decode a command APDU (all four cases, short and extended) or raise APDUFormatError."""
        n = len(raw)
        if n < 4:
            raise APDUFormatError(f"an APDU has at least 4 header bytes, got {n}")
        cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
        if n == 4:
            return CommandAPDU(cla, ins, p1, p2)
        b1 = raw[4]
        if n == 5:
            return CommandAPDU(cla, ins, p1, p2, ne=b1 or SHORT_MAX_NE)
        if b1:
            lc = b1
            if n == 5 + lc:
                return CommandAPDU(cla, ins, p1, p2, raw[5:])
            if n == 6 + lc:
                return CommandAPDU(cla, ins, p1, p2, raw[5:-1], ne=raw[-1] or SHORT_MAX_NE)
            raise APDUFormatError(f"short Lc={lc} does not match the {n - 5} bytes that follow")
        if n < 7:
            raise APDUFormatError("extended length needs at least 7 bytes")
        value = int.from_bytes(raw[5:7], "big")
        if n == 7:
            return CommandAPDU(cla, ins, p1, p2, ne=value or EXTENDED_MAX_NE, extended=True)
        if value == 0:
            raise APDUFormatError("extended Lc of 0 is not allowed")
        if n == 7 + value:
            return CommandAPDU(cla, ins, p1, p2, raw[7:], extended=True)
        if n == 9 + value:
            ne = int.from_bytes(raw[-2:], "big") or EXTENDED_MAX_NE
            return CommandAPDU(cla, ins, p1, p2, raw[7:-2], ne=ne, extended=True)
        raise APDUFormatError(f"extended Lc={value} does not match the {n - 7} bytes that follow")


@dataclass(frozen=True)
class ResponseAPDU:
    data: bytes
    sw: int

    def __post_init__(self) -> None:
        if not 0 <= self.sw <= 0xFFFF:
            raise ValueError(f"a status word is two bytes, got {self.sw:#x}")

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        return self.sw & 0xFF

    def encode(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    @staticmethod
    def parse(raw: bytes) -> ResponseAPDU:
        if len(raw) < 2:
            raise APDUFormatError(f"a response APDU has at least 2 bytes, got {len(raw)}")
        return ResponseAPDU(raw[:-2], int.from_bytes(raw[-2:], "big"))

    @staticmethod
    def status(sw: int) -> ResponseAPDU:
        return ResponseAPDU(b"", sw)


def is_success(sw: int) -> bool:
    return sw == SW.OK or sw >> 8 == 0x61
