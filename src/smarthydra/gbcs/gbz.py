"""GBZ: ZigBee ZCL frames over the GB profile, the payload of gas meter and gas proxy use cases.

Wire layout (GBCS §7.3, as in the Reference Test Data Set)::

    GBZ payload (commands and responses)
      01 09                         profile id 0x0109 (big-endian)
      <count:1>                     number of GBZ components
      component * count

    GBZ alert payload (CRA flag 3)
      01 09 <count:1>
      <alert code:2> <time stamp:4> big-endian alert code and UTC time (seconds since 2000)
      then, by alert code: components, a future-dated-alert block, a DLMS octet-string hash,
      or use-case specific bytes

    component
      <control:1>                   bit 0 last component, bit 1 encrypted, bit 4 from-date-time
      <cluster id:2> <length:2>     big-endian; length counts everything after it
      [<from date-time:4>]          when bit 4 is set (and the component is not encrypted)
      [<add. control:1> <frame counter:1>]   when encrypted
      ZCL header: <frame control:1> [<manufacturer:2 LE>] <sequence:1> <command id:1>
      ZCL payload, or when encrypted:
        <ciphered length:2> 31 00000000 <ciphertext || tag(12)>

ZCL multi-byte fields inside the ZCL payload are little-endian; the GBZ headers are big-endian.
Profile-wide ZCL commands (read attributes, read attributes response, write attributes,
write attributes response, report attributes, default response) are decoded into typed
records; cluster-specific commands keep their payload bytes (named by cluster and command),
and :mod:`smarthydra.gbcs.gbz_clusters` types the ones sensitive reads answer with.
Every :class:`GbzPayload` re-encodes to the exact bytes it was decoded from.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from smarthydra.gbcs.errors import (
    BadField,
    BadLength,
    GbcsDecodeError,
    GbcsEncodeError,
    TrailingBytes,
    Truncated,
    UnexpectedTag,
)

GB_PROFILE_ID = 0x0109
SENSITIVE_SECURITY_HEADER = b"\x31\x00\x00\x00\x00"
_TAG_SIZE = 12

CONTROL_LAST = 0x01
CONTROL_ENCRYPTED = 0x02
CONTROL_FROM_DATE_TIME = 0x10

FRAME_TYPE_PROFILE = 0
FRAME_TYPE_CLUSTER = 1
FC_MANUFACTURER = 0x04
FC_SERVER_TO_CLIENT = 0x08

# Alert codes whose GBZ alert payload is not a list of components.
FUTURE_DATED_ALERT_CODES = frozenset({0x8F66, 0x8F67})
FIRMWARE_DISTRIBUTION_RECEIPT_ALERT = 0x8F72


def _take(data: bytes, pos: int, size: int, what: str) -> tuple[bytes, int]:
    end = pos + size
    if size < 0 or end > len(data):
        raise Truncated(f"GBZ {what}: needs {size} bytes at offset {pos}, {len(data) - pos} left")
    return data[pos:end], end


def _uint(data: bytes, pos: int, size: int, what: str, order: str = "big") -> tuple[int, int]:
    raw, pos = _take(data, pos, size, what)
    return int.from_bytes(raw, order), pos  # type: ignore[arg-type]


def _u(value: int, size: int, what: str, order: str = "big") -> bytes:
    if not 0 <= value < 1 << (8 * size):
        raise GbcsEncodeError(f"GBZ {what} {value} does not fit in {size} bytes")
    return value.to_bytes(size, order)  # type: ignore[arg-type]


# --- ZCL attribute values -------------------------------------------------------------------


class ZclType(enum.IntEnum):
    """ZCL data type ids that GBCS uses (ZCL §2.6.2)."""

    NO_DATA = 0x00
    DATA8 = 0x08
    DATA16 = 0x09
    DATA24 = 0x0A
    DATA32 = 0x0B
    DATA40 = 0x0C
    DATA48 = 0x0D
    DATA56 = 0x0E
    DATA64 = 0x0F
    BOOLEAN = 0x10
    BITMAP8 = 0x18
    BITMAP16 = 0x19
    BITMAP24 = 0x1A
    BITMAP32 = 0x1B
    BITMAP40 = 0x1C
    BITMAP48 = 0x1D
    BITMAP56 = 0x1E
    BITMAP64 = 0x1F
    UINT8 = 0x20
    UINT16 = 0x21
    UINT24 = 0x22
    UINT32 = 0x23
    UINT40 = 0x24
    UINT48 = 0x25
    UINT56 = 0x26
    UINT64 = 0x27
    INT8 = 0x28
    INT16 = 0x29
    INT24 = 0x2A
    INT32 = 0x2B
    INT40 = 0x2C
    INT48 = 0x2D
    INT56 = 0x2E
    INT64 = 0x2F
    ENUM8 = 0x30
    ENUM16 = 0x31
    SEMI_FLOAT = 0x38
    FLOAT = 0x39
    DOUBLE = 0x3A
    OCTET_STRING = 0x41
    CHARACTER_STRING = 0x42
    LONG_OCTET_STRING = 0x43
    LONG_CHARACTER_STRING = 0x44
    TIME_OF_DAY = 0xE0
    DATE = 0xE1
    UTC_TIME = 0xE2
    CLUSTER_ID = 0xE8
    ATTRIBUTE_ID = 0xE9
    BACNET_OID = 0xEA
    IEEE_ADDRESS = 0xF0
    SECURITY_KEY = 0xF1


def _fixed_size(kind: ZclType) -> int | None:
    """Size in bytes of a fixed-size type; None for the length-prefixed strings."""
    code = int(kind)
    if kind is ZclType.NO_DATA:
        return 0
    if 0x08 <= code <= 0x0F:
        return code - 0x07
    if kind is ZclType.BOOLEAN:
        return 1
    if 0x18 <= code <= 0x1F:
        return code - 0x17
    if 0x20 <= code <= 0x2F:
        return (code & 0x07) + 1
    sizes = {
        ZclType.ENUM8: 1,
        ZclType.ENUM16: 2,
        ZclType.SEMI_FLOAT: 2,
        ZclType.FLOAT: 4,
        ZclType.DOUBLE: 8,
        ZclType.TIME_OF_DAY: 4,
        ZclType.DATE: 4,
        ZclType.UTC_TIME: 4,
        ZclType.CLUSTER_ID: 2,
        ZclType.ATTRIBUTE_ID: 2,
        ZclType.BACNET_OID: 4,
        ZclType.IEEE_ADDRESS: 8,
        ZclType.SECURITY_KEY: 16,
    }
    return sizes.get(kind)


@dataclass(frozen=True)
class ZclValue:
    """A typed ZCL attribute value.

    ``value`` is an int for integer, bitmap, enum, boolean and time types (little-endian on
    the wire; signed for INTn), and the raw bytes for strings, floats, data and keys.
    """

    kind: ZclType
    value: int | bytes

    def encode(self) -> bytes:
        size = _fixed_size(self.kind)
        if size is None:
            if not isinstance(self.value, bytes):
                raise GbcsEncodeError(f"ZCL {self.kind.name} value must be bytes")
            prefix = (
                2 if self.kind in (ZclType.LONG_OCTET_STRING, ZclType.LONG_CHARACTER_STRING) else 1
            )
            return _u(len(self.value), prefix, f"{self.kind.name} length", "little") + self.value
        if isinstance(self.value, bytes):
            if len(self.value) != size:
                raise GbcsEncodeError(
                    f"ZCL {self.kind.name} is {size} bytes, got {len(self.value)}"
                )
            return self.value
        if 0x28 <= self.kind <= 0x2F:
            try:
                return self.value.to_bytes(size, "little", signed=True)
            except OverflowError:
                raise GbcsEncodeError(f"ZCL {self.kind.name} out of range: {self.value}") from None
        return _u(self.value, size, self.kind.name, "little")


_BYTES_VALUED = frozenset(
    {ZclType.SEMI_FLOAT, ZclType.FLOAT, ZclType.DOUBLE, ZclType.IEEE_ADDRESS, ZclType.SECURITY_KEY}
)


def decode_zcl_value(data: bytes, pos: int, type_id: int) -> tuple[ZclValue, int]:
    """Decode the value of ZCL type ``type_id`` at ``pos``."""
    try:
        kind = ZclType(type_id)
    except ValueError:
        raise BadField(f"ZCL data type 0x{type_id:02X} at offset {pos} is not supported") from None
    size = _fixed_size(kind)
    if size is None:
        prefix = 2 if kind in (ZclType.LONG_OCTET_STRING, ZclType.LONG_CHARACTER_STRING) else 1
        length, pos = _uint(data, pos, prefix, f"{kind.name} length", "little")
        raw, pos = _take(data, pos, length, kind.name)
        return ZclValue(kind, raw), pos
    raw, pos = _take(data, pos, size, kind.name)
    if kind in _BYTES_VALUED or 0x08 <= kind <= 0x0F:
        return ZclValue(kind, raw), pos
    signed = 0x28 <= kind <= 0x2F
    return ZclValue(kind, int.from_bytes(raw, "little", signed=signed)), pos


# --- Profile-wide ZCL commands --------------------------------------------------------------


class ZclCommand(enum.IntEnum):
    READ_ATTRIBUTES = 0x00
    READ_ATTRIBUTES_RESPONSE = 0x01
    WRITE_ATTRIBUTES = 0x02
    WRITE_ATTRIBUTES_RESPONSE = 0x04
    REPORT_ATTRIBUTES = 0x0A
    DEFAULT_RESPONSE = 0x0B


@dataclass(frozen=True)
class ReadAttributes:
    attribute_ids: tuple[int, ...]

    def encode(self) -> bytes:
        return b"".join(_u(a, 2, "attribute id", "little") for a in self.attribute_ids)


@dataclass(frozen=True)
class AttributeRecord:
    """One attribute in a read-attributes response (status, and value when status is 0)."""

    attribute_id: int
    status: int
    value: ZclValue | None = None

    def encode(self) -> bytes:
        out = _u(self.attribute_id, 2, "attribute id", "little") + _u(self.status, 1, "status")
        if self.status == 0:
            if self.value is None:
                raise GbcsEncodeError("a successful attribute record carries a value")
            out += bytes([self.value.kind]) + self.value.encode()
        elif self.value is not None:
            raise GbcsEncodeError("a failed attribute record carries no value")
        return out


@dataclass(frozen=True)
class ReadAttributesResponse:
    records: tuple[AttributeRecord, ...]

    def encode(self) -> bytes:
        return b"".join(r.encode() for r in self.records)


@dataclass(frozen=True)
class AttributeValue:
    """Attribute id, type and value (write attributes, report attributes)."""

    attribute_id: int
    value: ZclValue

    def encode(self) -> bytes:
        return (
            _u(self.attribute_id, 2, "attribute id", "little")
            + bytes([self.value.kind])
            + self.value.encode()
        )


@dataclass(frozen=True)
class WriteAttributes:
    attributes: tuple[AttributeValue, ...]

    def encode(self) -> bytes:
        return b"".join(a.encode() for a in self.attributes)


@dataclass(frozen=True)
class ReportAttributes:
    attributes: tuple[AttributeValue, ...]

    def encode(self) -> bytes:
        return b"".join(a.encode() for a in self.attributes)


@dataclass(frozen=True)
class WriteAttributesResponse:
    """A single success status (``records == ()``) or (status, attribute id) failures."""

    records: tuple[tuple[int, int], ...] = ()

    def encode(self) -> bytes:
        if not self.records:
            return b"\x00"
        return b"".join(
            _u(s, 1, "status") + _u(a, 2, "attribute id", "little") for s, a in self.records
        )


@dataclass(frozen=True)
class DefaultResponse:
    command_id: int
    status: int

    def encode(self) -> bytes:
        return _u(self.command_id, 1, "command id") + _u(self.status, 1, "status")


@dataclass(frozen=True)
class ClusterPayload:
    """A cluster-specific command's payload, kept as bytes."""

    data: bytes

    def encode(self) -> bytes:
        return self.data


ZclBody = (
    ReadAttributes
    | ReadAttributesResponse
    | WriteAttributes
    | WriteAttributesResponse
    | ReportAttributes
    | DefaultResponse
    | ClusterPayload
)


def _decode_attribute_values(data: bytes) -> tuple[AttributeValue, ...]:
    out: list[AttributeValue] = []
    pos = 0
    while pos < len(data):
        attr, pos = _uint(data, pos, 2, "attribute id", "little")
        kind, pos = _uint(data, pos, 1, "attribute data type")
        value, pos = decode_zcl_value(data, pos, kind)
        out.append(AttributeValue(attr, value))
    return tuple(out)


def decode_zcl_body(frame_control: int, command_id: int, data: bytes) -> ZclBody:
    """Decode a ZCL payload: typed for profile-wide commands, bytes for cluster commands."""
    if frame_control & 0x03 != FRAME_TYPE_PROFILE:
        return ClusterPayload(data)
    if command_id == ZclCommand.READ_ATTRIBUTES:
        if len(data) % 2:
            raise BadLength(f"read attributes: {len(data)} bytes is not a list of 2-byte ids")
        return ReadAttributes(
            tuple(int.from_bytes(data[i : i + 2], "little") for i in range(0, len(data), 2))
        )
    if command_id == ZclCommand.READ_ATTRIBUTES_RESPONSE:
        records: list[AttributeRecord] = []
        pos = 0
        while pos < len(data):
            attr, pos = _uint(data, pos, 2, "attribute id", "little")
            status, pos = _uint(data, pos, 1, "attribute status")
            value = None
            if status == 0:
                kind, pos = _uint(data, pos, 1, "attribute data type")
                value, pos = decode_zcl_value(data, pos, kind)
            records.append(AttributeRecord(attr, status, value))
        return ReadAttributesResponse(tuple(records))
    if command_id == ZclCommand.WRITE_ATTRIBUTES:
        return WriteAttributes(_decode_attribute_values(data))
    if command_id == ZclCommand.REPORT_ATTRIBUTES:
        return ReportAttributes(_decode_attribute_values(data))
    if command_id == ZclCommand.WRITE_ATTRIBUTES_RESPONSE:
        if data == b"\x00":
            return WriteAttributesResponse()
        if not data or len(data) % 3:
            raise BadLength(f"write attributes response of {len(data)} bytes")
        return WriteAttributesResponse(
            tuple(
                (data[i], int.from_bytes(data[i + 1 : i + 3], "little"))
                for i in range(0, len(data), 3)
            )
        )
    if command_id == ZclCommand.DEFAULT_RESPONSE:
        if len(data) != 2:
            raise BadLength(f"default response is 2 bytes, got {len(data)}")
        return DefaultResponse(data[0], data[1])
    return ClusterPayload(data)


# --- Components -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ZclHeader:
    frame_control: int
    sequence: int
    command_id: int
    manufacturer_code: int | None = None

    @property
    def frame_type(self) -> int:
        return self.frame_control & 0x03

    @property
    def server_to_client(self) -> bool:
        return bool(self.frame_control & FC_SERVER_TO_CLIENT)

    def encode(self) -> bytes:
        out = _u(self.frame_control, 1, "frame control")
        if self.frame_control & FC_MANUFACTURER:
            if self.manufacturer_code is None:
                raise GbcsEncodeError("manufacturer-specific frame needs a manufacturer code")
            out += _u(self.manufacturer_code, 2, "manufacturer code", "little")
        elif self.manufacturer_code is not None:
            raise GbcsEncodeError("manufacturer code given but frame control bit 2 is clear")
        return out + _u(self.sequence, 1, "sequence") + _u(self.command_id, 1, "command id")


def _decode_zcl_header(data: bytes, pos: int) -> tuple[ZclHeader, int]:
    fc, pos = _uint(data, pos, 1, "ZCL frame control")
    if fc & 0x03 > FRAME_TYPE_CLUSTER:
        raise BadField(f"ZCL frame type {fc & 0x03} is reserved (frame control 0x{fc:02X})")
    manufacturer = None
    if fc & FC_MANUFACTURER:
        manufacturer, pos = _uint(data, pos, 2, "ZCL manufacturer code", "little")
    seq, pos = _uint(data, pos, 1, "ZCL sequence number")
    cmd, pos = _uint(data, pos, 1, "ZCL command id")
    return ZclHeader(fc, seq, cmd, manufacturer), pos


@dataclass(frozen=True)
class EncryptedZcl:
    """The sensitive ZCL payload of an encrypted component: ``31 00000000 || ct || tag``."""

    additional_control: int
    frame_counter: int
    ciphertext_and_tag: bytes

    @property
    def block(self) -> bytes:
        return SENSITIVE_SECURITY_HEADER + self.ciphertext_and_tag


@dataclass(frozen=True)
class GbzComponent:
    control: int
    cluster_id: int
    zcl: ZclHeader
    body: ZclBody | EncryptedZcl
    from_date_time: int | None = None

    @property
    def is_last(self) -> bool:
        return bool(self.control & CONTROL_LAST)

    @property
    def is_encrypted(self) -> bool:
        return bool(self.control & CONTROL_ENCRYPTED)

    @property
    def cluster_name(self) -> str:
        return CLUSTER_NAMES.get(self.cluster_id, f"cluster 0x{self.cluster_id:04X}")

    def encode(self) -> bytes:
        inner = b""
        if isinstance(self.body, EncryptedZcl):
            if not self.is_encrypted:
                raise GbcsEncodeError("an encrypted body needs control bit 1")
            inner += _u(self.body.additional_control, 1, "additional header control")
            inner += _u(self.body.frame_counter, 1, "additional header frame counter")
            inner += self.zcl.encode()
            block = self.body.block
            inner += _u(len(block), 2, "ciphered information length") + block
        else:
            if self.is_encrypted:
                raise GbcsEncodeError("control bit 1 (encrypted) needs an EncryptedZcl body")
            if self.control & CONTROL_FROM_DATE_TIME:
                if self.from_date_time is None:
                    raise GbcsEncodeError("control bit 4 needs a from-date-time")
                inner += _u(self.from_date_time, 4, "from-date-time")
            elif self.from_date_time is not None:
                raise GbcsEncodeError("a from-date-time needs control bit 4")
            inner += self.zcl.encode() + self.body.encode()
        return (
            _u(self.control, 1, "control field")
            + _u(self.cluster_id, 2, "cluster id")
            + _u(len(inner), 2, "command length")
            + inner
        )


def _decode_component(data: bytes, pos: int) -> tuple[GbzComponent, int]:
    control, pos = _uint(data, pos, 1, "extended header control field")
    cluster, pos = _uint(data, pos, 2, "extended header cluster id")
    length, pos = _uint(data, pos, 2, "extended header command length")
    inner, pos = _take(data, pos, length, "component")
    at = 0
    from_date_time = None
    if control & CONTROL_ENCRYPTED:
        add_control, at = _uint(inner, at, 1, "additional header control")
        frame_counter, at = _uint(inner, at, 1, "additional header frame counter")
        zcl, at = _decode_zcl_header(inner, at)
        ciphered_len, at = _uint(inner, at, 2, "ciphered information length")
        block, at = _take(inner, at, ciphered_len, "ciphered information")
        if block[:5] != SENSITIVE_SECURITY_HEADER:
            raise UnexpectedTag(
                f"encrypted GBZ component: security header {block[:5].hex()}, expected 3100000000"
            )
        if len(block) < 5 + _TAG_SIZE:
            raise BadLength(f"ciphered information of {len(block)} bytes cannot hold a tag")
        if at != len(inner):
            raise TrailingBytes(f"{len(inner) - at} bytes follow the ciphered information")
        body: ZclBody | EncryptedZcl = EncryptedZcl(add_control, frame_counter, block[5:])
    else:
        if control & CONTROL_FROM_DATE_TIME:
            from_date_time, at = _uint(inner, at, 4, "from-date-time")
        zcl, at = _decode_zcl_header(inner, at)
        body = decode_zcl_body(zcl.frame_control, zcl.command_id, inner[at:])
    return GbzComponent(control, cluster, zcl, body, from_date_time), pos


def _decode_components(data: bytes, pos: int, count: int) -> tuple[tuple[GbzComponent, ...], int]:
    components: list[GbzComponent] = []
    for _ in range(count):
        component, pos = _decode_component(data, pos)
        components.append(component)
    return tuple(components), pos


# --- Alerts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FutureDatedAlert:
    """What a future-dated command did: its message code, counter and ZCL command."""

    message_code: int
    originator_counter: int
    cluster_id: int
    frame_control: int
    command_id: int

    SIZE = 14

    def encode(self) -> bytes:
        return (
            bytes([self.SIZE])
            + _u(self.message_code, 2, "message code")
            + _u(self.originator_counter, 8, "originator counter")
            + _u(self.cluster_id, 2, "cluster id")
            + _u(self.frame_control, 1, "frame control")
            + _u(self.command_id, 1, "command id")
        )


def _decode_future_dated(data: bytes) -> FutureDatedAlert:
    if len(data) != 1 + FutureDatedAlert.SIZE:
        raise BadLength(f"future-dated alert block is 15 bytes, got {len(data)}")
    if data[0] != FutureDatedAlert.SIZE:
        raise BadLength(f"future-dated alert block length byte is {data[0]}, expected 14")
    return FutureDatedAlert(
        int.from_bytes(data[1:3], "big"),
        int.from_bytes(data[3:11], "big"),
        int.from_bytes(data[11:13], "big"),
        data[13],
        data[14],
    )


@dataclass(frozen=True)
class GbzAlertHeader:
    alert_code: int
    time_stamp: int  # UTC seconds since 2000-01-01


@dataclass(frozen=True)
class GbzPayload:
    """A decoded GBZ payload.

    ``alert`` is set for alert payloads; then exactly one of ``components`` (the usual form),
    ``future_dated`` (alerts 8F66/8F67), ``hash`` (a DLMS octet-string, alert 8F72) or
    ``specific`` (other use-case specific bytes) carries the rest. ``count`` is the
    component-count byte as sent (alerts do not always count what follows).
    """

    count: int
    components: tuple[GbzComponent, ...] = ()
    alert: GbzAlertHeader | None = None
    future_dated: FutureDatedAlert | None = None
    hash: bytes | None = None
    specific: bytes = b""

    def encode(self) -> bytes:
        out = _u(GB_PROFILE_ID, 2, "profile id") + _u(self.count, 1, "component count")
        if self.alert is not None:
            out += _u(self.alert.alert_code, 2, "alert code")
            out += _u(self.alert.time_stamp, 4, "time stamp")
            if self.future_dated is not None:
                return out + self.future_dated.encode()
            if self.hash is not None:
                if len(self.hash) >= 0x80:
                    raise GbcsEncodeError("firmware hash longer than 127 bytes")
                return out + bytes([0x09, len(self.hash)]) + self.hash
            if self.specific:
                return out + self.specific
        elif self.count != len(self.components):
            raise GbcsEncodeError(
                f"component count {self.count} but {len(self.components)} components"
            )
        return out + b"".join(c.encode() for c in self.components)

    def protected_blocks(self) -> list[bytes]:
        """``ciphertext || tag`` of each encrypted component, in order."""
        return [
            c.body.ciphertext_and_tag for c in self.components if isinstance(c.body, EncryptedZcl)
        ]


def is_gbz(payload: bytes) -> bool:
    return len(payload) >= 3 and int.from_bytes(payload[:2], "big") == GB_PROFILE_ID


def decode_gbz(payload: bytes, *, alert: bool = False) -> GbzPayload:
    """Decode a GBZ payload; ``alert`` for the payload of an alert (CRA flag 3)."""
    data = bytes(payload)
    profile, pos = _uint(data, 0, 2, "profile id")
    if profile != GB_PROFILE_ID:
        raise UnexpectedTag(f"GBZ profile id is 0x{profile:04X}, expected 0x0109")
    count, pos = _uint(data, pos, 1, "component count")
    if not alert:
        components, pos = _decode_components(data, pos, count)
        if pos != len(data):
            raise TrailingBytes(f"{len(data) - pos} bytes follow the {count} GBZ components")
        return GbzPayload(count, components)
    code, pos = _uint(data, pos, 2, "alert code")
    stamp, pos = _uint(data, pos, 4, "alert time stamp")
    header = GbzAlertHeader(code, stamp)
    rest = data[pos:]
    if code in FUTURE_DATED_ALERT_CODES:
        return GbzPayload(count, alert=header, future_dated=_decode_future_dated(rest))
    if code == FIRMWARE_DISTRIBUTION_RECEIPT_ALERT:
        if len(rest) < 2 or rest[0] != 0x09 or rest[1] != len(rest) - 2 or rest[1] >= 0x80:
            raise BadField("firmware distribution receipt alert: expected 09 <len> <hash>")
        return GbzPayload(count, alert=header, hash=rest[2:])
    if not rest:
        return GbzPayload(count, alert=header)
    try:
        components, end = _decode_components(data, pos, count)
    except GbcsDecodeError:
        components, end = (), -1
    if components and end == len(data):
        return GbzPayload(count, components, alert=header)
    # Use-case specific bytes (e.g. a meter integrity issue warning): kept as sent.
    return GbzPayload(count, alert=header, specific=rest)


# Names of the ZigBee SE clusters GBCS uses (ZigBee SE 1.4), for display only.
CLUSTER_NAMES: dict[int, str] = {
    0x0000: "Basic",
    0x0700: "Price",
    0x0702: "Metering",
    0x0703: "Messaging",
    0x0704: "Tunneling",
    0x0705: "Prepayment",
    0x0707: "Calendar",
    0x0708: "Device Management",
    0x0709: "Events",
}
