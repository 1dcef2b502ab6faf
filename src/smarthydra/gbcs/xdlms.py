"""xDLMS APDUs carried in GBCS ESME and comms-hub payloads, byte-exact both ways.

- ``D9`` access-request: invoke id, optional date-time, request specifications (get, set,
  action, get/set with selection on COSEM attribute or method descriptors), then the list of
  Data (one per specification, null-data for a get).
- ``DA`` access-response: invoke id, optional date-time, optional echo of the request
  specification (absent in GBCS), the list of Data and the response specifications (result
  per request).
- ``0F`` data-notification: invoke id, optional date-time, one Data (GBCS alerts).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from smarthydra.gbcs.axdr import Data, decode_data
from smarthydra.gbcs.envelope import decode_length, encode_length
from smarthydra.gbcs.errors import (
    BadField,
    BadLength,
    GbcsEncodeError,
    TrailingBytes,
    Truncated,
    UnexpectedTag,
)

ACCESS_REQUEST_TAG = 0xD9
ACCESS_RESPONSE_TAG = 0xDA
DATA_NOTIFICATION_TAG = 0x0F


class RequestKind(enum.IntEnum):
    GET = 1
    SET = 2
    ACTION = 3
    GET_WITH_SELECTION = 4
    SET_WITH_SELECTION = 5


class DataAccessResult(enum.IntEnum):
    SUCCESS = 0
    HARDWARE_FAULT = 1
    TEMPORARY_FAILURE = 2
    READ_WRITE_DENIED = 3
    OBJECT_UNDEFINED = 4
    OBJECT_CLASS_INCONSISTENT = 9
    OBJECT_UNAVAILABLE = 11
    TYPE_UNMATCHED = 12
    SCOPE_OF_ACCESS_VIOLATED = 13
    DATA_BLOCK_UNAVAILABLE = 14
    LONG_GET_ABORTED = 15
    NO_LONG_GET_IN_PROGRESS = 16
    LONG_SET_ABORTED = 17
    NO_LONG_SET_IN_PROGRESS = 18
    DATA_BLOCK_NUMBER_INVALID = 19
    OTHER_REASON = 250


def result_name(value: int) -> str:
    """The DLMS result name (Data-Access-Result and Action-Result share the common values)."""
    try:
        return DataAccessResult(value).name.lower()
    except ValueError:
        return f"result-{value}"


@dataclass(frozen=True)
class CosemDescriptor:
    """COSEM attribute or method descriptor: class id, logical name (OBIS), index."""

    class_id: int
    instance_id: bytes
    index: int

    @property
    def obis(self) -> str:
        a, b, c, d, e, f = self.instance_id
        return f"{a}-{b}:{c}.{d}.{e}.{f}"

    def encode(self) -> bytes:
        if len(self.instance_id) != 6:
            raise GbcsEncodeError("a COSEM instance id (OBIS code) is 6 bytes")
        if not (0 <= self.class_id <= 0xFFFF and -128 <= self.index <= 255):
            raise GbcsEncodeError("class id is 2 bytes and the index 1 byte")
        return self.class_id.to_bytes(2, "big") + self.instance_id + bytes([self.index & 0xFF])


@dataclass(frozen=True)
class RequestSpecification:
    kind: RequestKind
    descriptor: CosemDescriptor
    selector: int | None = None  # access-selection, for the *_WITH_SELECTION kinds
    selection: Data | None = None

    def encode(self) -> bytes:
        out = bytes([self.kind]) + self.descriptor.encode()
        if self.kind in (RequestKind.GET_WITH_SELECTION, RequestKind.SET_WITH_SELECTION):
            if self.selector is None or self.selection is None:
                raise GbcsEncodeError("a request with selection needs selector and selection")
            out += bytes([self.selector]) + self.selection.encode()
        return out


@dataclass(frozen=True)
class ResponseSpecification:
    kind: RequestKind
    result: int

    def encode(self) -> bytes:
        return bytes([self.kind, self.result])


def _invoke_id_bytes(invoke_id: int) -> bytes:
    if not 0 <= invoke_id <= 0xFFFFFFFF:
        raise GbcsEncodeError("long-invoke-id-and-priority is 4 bytes")
    return invoke_id.to_bytes(4, "big")


def _date_time_field(date_time: bytes | None) -> bytes:
    if date_time is None:
        return b"\x00"
    if len(date_time) != 12:
        raise GbcsEncodeError("an xDLMS date-time is 12 bytes")
    return b"\x0c" + date_time


@dataclass(frozen=True)
class AccessRequest:
    invoke_id: int
    date_time: bytes | None
    specifications: list[RequestSpecification]
    data: list[Data]

    @property
    def counter(self) -> int:
        """The low 24 bits: GBCS sets them from the originator counter."""
        return self.invoke_id & 0xFFFFFF

    def encode(self) -> bytes:
        return b"".join(
            [
                bytes([ACCESS_REQUEST_TAG]),
                _invoke_id_bytes(self.invoke_id),
                _date_time_field(self.date_time),
                encode_length(len(self.specifications)),
                *(spec.encode() for spec in self.specifications),
                encode_length(len(self.data)),
                *(item.encode() for item in self.data),
            ]
        )


@dataclass(frozen=True)
class AccessResponse:
    invoke_id: int
    date_time: bytes | None
    data: list[Data]
    results: list[ResponseSpecification]

    def encode(self) -> bytes:
        return b"".join(
            [
                bytes([ACCESS_RESPONSE_TAG]),
                _invoke_id_bytes(self.invoke_id),
                _date_time_field(self.date_time),
                b"\x00",  # access-request-specification OPTIONAL: absent in GBCS
                encode_length(len(self.data)),
                *(item.encode() for item in self.data),
                encode_length(len(self.results)),
                *(result.encode() for result in self.results),
            ]
        )


@dataclass(frozen=True)
class DataNotification:
    invoke_id: int
    date_time: bytes | None
    body: Data

    def encode(self) -> bytes:
        return (
            bytes([DATA_NOTIFICATION_TAG])
            + _invoke_id_bytes(self.invoke_id)
            + _date_time_field(self.date_time)
            + self.body.encode()
        )


XdlmsApdu = AccessRequest | AccessResponse | DataNotification


# --- Decoding -------------------------------------------------------------------------------


def _take(buffer: bytes, offset: int, size: int, what: str) -> tuple[bytes, int]:
    end = offset + size
    if end > len(buffer):
        raise Truncated(f"{what}: needs {size} bytes at offset {offset}")
    return buffer[offset:end], end


def _decode_header(buffer: bytes) -> tuple[int, bytes | None, int]:
    invoke, pos = _take(buffer, 1, 4, "long-invoke-id-and-priority")
    length, pos = decode_length(buffer, pos, "xDLMS date-time")
    if length == 0:
        return int.from_bytes(invoke, "big"), None, pos
    if length != 12:
        raise BadLength(f"xDLMS date-time length is {length}; it must be 0 or 12")
    date_time, pos = _take(buffer, pos, 12, "xDLMS date-time")
    return int.from_bytes(invoke, "big"), date_time, pos


def _count(buffer: bytes, pos: int, what: str, min_item_size: int) -> tuple[int, int]:
    count, pos = decode_length(buffer, pos, what)
    if count * min_item_size > len(buffer) - pos:
        raise Truncated(f"{what}: {count} items cannot fit in {len(buffer) - pos} bytes")
    return count, pos


def _decode_request_spec(buffer: bytes, pos: int) -> tuple[RequestSpecification, int]:
    raw_kind, pos = _take(buffer, pos, 1, "request specification")
    try:
        kind = RequestKind(raw_kind[0])
    except ValueError:
        raise BadField(f"access-request specification choice {raw_kind[0]} is unknown") from None
    body, pos = _take(buffer, pos, 9, "COSEM descriptor")
    descriptor = CosemDescriptor(int.from_bytes(body[:2], "big"), body[2:8], body[8])
    if kind in (RequestKind.GET_WITH_SELECTION, RequestKind.SET_WITH_SELECTION):
        selector, pos = _take(buffer, pos, 1, "access selector")
        selection, pos = decode_data(buffer, pos)
        return RequestSpecification(kind, descriptor, selector[0], selection), pos
    return RequestSpecification(kind, descriptor), pos


def decode_xdlms(buffer: bytes) -> XdlmsApdu:
    """Decode a whole xDLMS APDU (``D9``, ``DA`` or ``0F``) with no bytes left over."""
    buffer = bytes(buffer)
    if not buffer:
        raise Truncated("empty xDLMS APDU")
    tag = buffer[0]
    apdu: XdlmsApdu
    if tag == ACCESS_REQUEST_TAG:
        invoke, date_time, pos = _decode_header(buffer)
        count, pos = _count(buffer, pos, "request specifications", 10)
        specs = []
        for _ in range(count):
            spec, pos = _decode_request_spec(buffer, pos)
            specs.append(spec)
        count, pos = _count(buffer, pos, "access-request data", 1)
        data = []
        for _ in range(count):
            item, pos = decode_data(buffer, pos)
            data.append(item)
        apdu = AccessRequest(invoke, date_time, specs, data)
    elif tag == ACCESS_RESPONSE_TAG:
        invoke, date_time, pos = _decode_header(buffer)
        optional, pos = _take(buffer, pos, 1, "access-request-specification flag")
        if optional[0] != 0:
            raise BadField("GBCS access-responses do not echo the request specification")
        count, pos = _count(buffer, pos, "access-response data", 1)
        data = []
        for _ in range(count):
            item, pos = decode_data(buffer, pos)
            data.append(item)
        count, pos = _count(buffer, pos, "response specifications", 2)
        results = []
        for _ in range(count):
            raw, pos = _take(buffer, pos, 2, "response specification")
            try:
                kind = RequestKind(raw[0])
            except ValueError:
                raise BadField(
                    f"access-response specification choice {raw[0]} is unknown"
                ) from None
            results.append(ResponseSpecification(kind, raw[1]))
        apdu = AccessResponse(invoke, date_time, data, results)
    elif tag == DATA_NOTIFICATION_TAG:
        invoke, date_time, pos = _decode_header(buffer)
        body, pos = decode_data(buffer, pos)
        apdu = DataNotification(invoke, date_time, body)
    else:
        raise UnexpectedTag(f"an xDLMS APDU starts D9, DA or 0F, found 0x{tag:02X}")
    if pos != len(buffer):
        raise TrailingBytes(f"{len(buffer) - pos} bytes follow the xDLMS APDU")
    return apdu
