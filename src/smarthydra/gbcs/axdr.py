"""A-XDR ``Data`` (DLMS/COSEM) as used in GBCS xDLMS payloads, both ways, byte-exact.

A value is a :class:`Data`: its type tag and a Python value whose shape depends on the type
(``int`` for the integer types and enums, ``bytes`` for octet strings, ``str`` for visible
strings, ``list[Data]`` for arrays and structures, :class:`BitString`, ``bool``, ``None``,
``float``; dates and times are kept as their raw octets, see :class:`CosemDateTime`).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from smarthydra.gbcs.envelope import decode_length, encode_length
from smarthydra.gbcs.errors import BadField, GbcsEncodeError, TrailingBytes, Truncated

# Nesting deeper than this is not in any GBCS payload; refusing it bounds recursion.
MAX_DEPTH = 32


class DataType(enum.IntEnum):
    NULL_DATA = 0
    ARRAY = 1
    STRUCTURE = 2
    BOOLEAN = 3
    BIT_STRING = 4
    DOUBLE_LONG = 5
    DOUBLE_LONG_UNSIGNED = 6
    OCTET_STRING = 9
    VISIBLE_STRING = 10
    UTF8_STRING = 12
    BCD = 13
    COMPACT_ARRAY = 19
    INTEGER = 15
    LONG = 16
    UNSIGNED = 17
    LONG_UNSIGNED = 18
    LONG64 = 20
    LONG64_UNSIGNED = 21
    ENUM = 22
    FLOAT32 = 23
    FLOAT64 = 24
    DATE_TIME = 25
    DATE = 26
    TIME = 27


# type -> (struct format, size) for the fixed-width numbers
_FIXED: dict[DataType, tuple[str, int]] = {
    DataType.DOUBLE_LONG: (">i", 4),
    DataType.DOUBLE_LONG_UNSIGNED: (">I", 4),
    DataType.BCD: (">b", 1),
    DataType.INTEGER: (">b", 1),
    DataType.LONG: (">h", 2),
    DataType.UNSIGNED: (">B", 1),
    DataType.LONG_UNSIGNED: (">H", 2),
    DataType.LONG64: (">q", 8),
    DataType.LONG64_UNSIGNED: (">Q", 8),
    DataType.ENUM: (">B", 1),
    DataType.FLOAT32: (">f", 4),
    DataType.FLOAT64: (">d", 8),
}
_RAW_SIZES = {DataType.DATE_TIME: 12, DataType.DATE: 5, DataType.TIME: 4}
_DATA_TYPES = {int(t): t for t in DataType}
_TYPE_NAMES = {t: t.name.lower() for t in DataType}  # for error messages, built once


@dataclass(frozen=True)
class BitString:
    """A bit string: ``length`` bits, packed most-significant first into ``data``."""

    length: int
    data: bytes


@dataclass(frozen=True)
class CosemDateTime:
    """The 12-byte COSEM date-time; 0xFF / 0x8000 fields mean 'not specified'."""

    year: int
    month: int
    day: int
    day_of_week: int
    hour: int
    minute: int
    second: int
    hundredths: int
    deviation: int
    clock_status: int

    @classmethod
    def from_bytes(cls, raw: bytes) -> CosemDateTime:
        if len(raw) != 12:
            raise BadField(f"a COSEM date-time is 12 bytes, got {len(raw)}")
        year, month, day, dow, hour, minute, second, hundredths, deviation, status = struct.unpack(
            ">HBBBBBBBhB", raw
        )
        return cls(year, month, day, dow, hour, minute, second, hundredths, deviation, status)

    def to_bytes(self) -> bytes:
        try:
            return struct.pack(
                ">HBBBBBBBhB",
                self.year,
                self.month,
                self.day,
                self.day_of_week,
                self.hour,
                self.minute,
                self.second,
                self.hundredths,
                self.deviation,
                self.clock_status,
            )
        except struct.error as exc:
            raise GbcsEncodeError(f"COSEM date-time field out of range: {exc}") from None

    def isoformat(self) -> str:
        """Readable form; unspecified fields print as ``*``."""

        def part(value: int, width: int, unspecified: int) -> str:
            return "*" * width if value == unspecified else f"{value:0{width}d}"

        date = f"{part(self.year, 4, 0xFFFF)}-{part(self.month, 2, 0xFF)}-{part(self.day, 2, 0xFF)}"
        time = (
            f"{part(self.hour, 2, 0xFF)}:{part(self.minute, 2, 0xFF)}:{part(self.second, 2, 0xFF)}"
        )
        return f"{date}T{time}"


@dataclass(frozen=True)
class CompactArray:
    """A compact-array: its type description (raw A-XDR) and the packed, untagged contents."""

    type_description: bytes
    contents: bytes


DataValue = None | bool | int | float | bytes | str | BitString | CompactArray | list["Data"]


@dataclass(frozen=True)
class Data:
    type: DataType
    value: DataValue = None

    def encode(self) -> bytes:
        return encode_data(self)

    def to_json(self) -> object:
        """A JSON-friendly form: ``{"type": value}``, recursively."""
        name = self.type.name.lower()
        value = self.value
        if isinstance(value, list):
            return {name: [item.to_json() for item in value]}
        if isinstance(value, bytes):
            if self.type is DataType.DATE_TIME:
                return {name: CosemDateTime.from_bytes(value).isoformat(), "hex": value.hex()}
            return {name: value.hex()}
        if isinstance(value, BitString):
            return {name: {"bits": value.length, "hex": value.data.hex()}}
        if isinstance(value, CompactArray):
            return {name: {"type": value.type_description.hex(), "contents": value.contents.hex()}}
        return {name: value}


# --- Convenience constructors -------------------------------------------------------------


def structure(*items: Data) -> Data:
    return Data(DataType.STRUCTURE, list(items))


def array(*items: Data) -> Data:
    return Data(DataType.ARRAY, list(items))


def octet_string(value: bytes) -> Data:
    return Data(DataType.OCTET_STRING, bytes(value))


def unsigned(value: int) -> Data:
    return Data(DataType.UNSIGNED, value)


def long_unsigned(value: int) -> Data:
    return Data(DataType.LONG_UNSIGNED, value)


def double_long_unsigned(value: int) -> Data:
    return Data(DataType.DOUBLE_LONG_UNSIGNED, value)


def enum_value(value: int) -> Data:
    return Data(DataType.ENUM, value)


# --- Codec ----------------------------------------------------------------------------------


def encode_data(data: Data) -> bytes:
    kind = data.type
    value = data.value
    tag = bytes([kind])
    if kind is DataType.NULL_DATA:
        return tag
    if kind in (DataType.ARRAY, DataType.STRUCTURE):
        if not isinstance(value, list):
            raise GbcsEncodeError(f"{kind.name} needs a list of Data")
        return tag + encode_length(len(value)) + b"".join(encode_data(item) for item in value)
    if kind is DataType.BOOLEAN:
        if not isinstance(value, bool):
            raise GbcsEncodeError("BOOLEAN needs a bool")
        return tag + (b"\xff" if value else b"\x00")
    if kind is DataType.BIT_STRING:
        if not isinstance(value, BitString) or len(value.data) != (value.length + 7) // 8:
            raise GbcsEncodeError("BIT_STRING needs a BitString whose data holds its bits")
        return tag + encode_length(value.length) + value.data
    if kind is DataType.COMPACT_ARRAY:
        if not isinstance(value, CompactArray):
            raise GbcsEncodeError("COMPACT_ARRAY needs a CompactArray")
        return tag + value.type_description + encode_length(len(value.contents)) + value.contents
    if kind in (DataType.OCTET_STRING, DataType.VISIBLE_STRING, DataType.UTF8_STRING):
        raw = (
            value.encode("latin-1" if kind is DataType.VISIBLE_STRING else "utf-8")
            if isinstance(value, str)
            else value
        )
        if not isinstance(raw, bytes):
            raise GbcsEncodeError(f"{kind.name} needs bytes or str")
        return tag + encode_length(len(raw)) + raw
    if kind in _RAW_SIZES:
        if not isinstance(value, bytes) or len(value) != _RAW_SIZES[kind]:
            raise GbcsEncodeError(f"{kind.name} is {_RAW_SIZES[kind]} raw bytes")
        return tag + value
    fmt, _size = _FIXED[kind]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GbcsEncodeError(f"{kind.name} needs a number")
    try:
        return tag + struct.pack(fmt, value)
    except struct.error as exc:
        raise GbcsEncodeError(f"{kind.name} value {value!r} out of range: {exc}") from None


def decode_data(buffer: bytes, offset: int = 0, depth: int = 0) -> tuple[Data, int]:
    """Decode one Data at ``offset``; return it and the offset after it."""
    if depth > MAX_DEPTH:
        raise BadField(f"Data nested deeper than {MAX_DEPTH} levels at offset {offset}")
    if offset >= len(buffer):
        raise Truncated(f"Data: input ends at offset {offset} where a type tag was expected")
    raw_tag = buffer[offset]
    kind = _DATA_TYPES.get(raw_tag)  # a dict lookup: Enum(value) is the decoder's hot spot
    if kind is None:
        raise BadField(f"Data type tag {raw_tag} at offset {offset} is not supported")
    pos = offset + 1
    if kind is DataType.NULL_DATA:
        return Data(kind), pos
    if kind in (DataType.ARRAY, DataType.STRUCTURE):
        count, pos = decode_length(buffer, pos, _TYPE_NAMES[kind])
        if count > len(buffer) - pos:
            raise Truncated(
                f"{kind.name.lower()} of {count} elements at offset {offset} cannot fit"
            )
        items: list[Data] = []
        for _ in range(count):
            item, pos = decode_data(buffer, pos, depth + 1)
            items.append(item)
        return Data(kind, items), pos
    if kind is DataType.BOOLEAN:
        value, pos = _take(buffer, pos, 1, "boolean")
        return Data(kind, value[0] != 0), pos
    if kind is DataType.BIT_STRING:
        bits, pos = decode_length(buffer, pos, "bit-string")
        packed, pos = _take(buffer, pos, (bits + 7) // 8, "bit-string")
        return Data(kind, BitString(bits, packed)), pos
    if kind is DataType.COMPACT_ARRAY:
        end = _skip_type_description(buffer, pos, depth + 1)
        description = buffer[pos:end]
        length, pos = decode_length(buffer, end, "compact-array contents")
        contents, pos = _take(buffer, pos, length, "compact-array contents")
        return Data(kind, CompactArray(description, contents)), pos
    if kind in (DataType.OCTET_STRING, DataType.VISIBLE_STRING, DataType.UTF8_STRING):
        length, pos = decode_length(buffer, pos, _TYPE_NAMES[kind])
        raw, pos = _take(buffer, pos, length, _TYPE_NAMES[kind])
        if kind is DataType.VISIBLE_STRING:
            return Data(kind, raw.decode("latin-1")), pos
        if kind is DataType.UTF8_STRING:
            try:
                return Data(kind, raw.decode("utf-8")), pos
            except UnicodeDecodeError:
                raise BadField(f"utf8-string at offset {offset} is not UTF-8") from None
        return Data(kind, raw), pos
    if kind in _RAW_SIZES:
        raw, pos = _take(buffer, pos, _RAW_SIZES[kind], _TYPE_NAMES[kind])
        return Data(kind, raw), pos
    fmt, size = _FIXED[kind]
    raw, pos = _take(buffer, pos, size, _TYPE_NAMES[kind])
    number = struct.unpack(fmt, raw)[0]
    return Data(kind, number), pos


def _skip_type_description(buffer: bytes, pos: int, depth: int) -> int:
    """The offset after a compact-array TypeDescription starting at ``pos``."""
    if depth > MAX_DEPTH:
        raise BadField(f"type description nested deeper than {MAX_DEPTH} levels")
    raw, pos = _take(buffer, pos, 1, "type description")
    try:
        kind = DataType(raw[0])
    except ValueError:
        raise BadField(f"type description tag {raw[0]} is not supported") from None
    if kind is DataType.ARRAY:
        _count, pos = _take(buffer, pos, 2, "compact-array element count")
        return _skip_type_description(buffer, pos, depth + 1)
    if kind is DataType.STRUCTURE:
        count, pos = decode_length(buffer, pos, "structure type description")
        if count > len(buffer) - pos:
            raise Truncated("structure type description cannot fit")
        for _ in range(count):
            pos = _skip_type_description(buffer, pos, depth + 1)
        return pos
    if kind is DataType.COMPACT_ARRAY:
        raise BadField("a compact-array cannot describe another compact-array")
    return pos


def decode_data_exact(buffer: bytes) -> Data:
    """Decode ``buffer`` as exactly one Data."""
    data, pos = decode_data(bytes(buffer))
    if pos != len(buffer):
        raise TrailingBytes(f"{len(buffer) - pos} bytes follow the Data value")
    return data


def _take(buffer: bytes, offset: int, size: int, what: str) -> tuple[bytes, int]:
    end = offset + size
    if end > len(buffer):
        raise Truncated(f"{what}: needs {size} bytes at offset {offset}")
    return buffer[offset:end], end
