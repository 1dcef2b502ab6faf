"""The mapping vocabulary: which DUIS body element fills which payload leaf, and how.

A :class:`Slot` ties a DUIS body path (``ReadLogPeriod/StartDateTime``) to a leaf of the
payload template with a :class:`Conversion`. Each conversion works both ways, so the tests can
derive the DUIS body a real RTDS command corresponds to from the decoded payload.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from smarthydra.dcc.transform.device import Inventory
from smarthydra.dcc.transform.payload import LeafPath
from smarthydra.duis.codes import ResponseCode
from smarthydra.eui import Eui64, InvalidEui64
from smarthydra.gbcs.axdr import CosemDateTime, Data, DataType
from smarthydra.gbcs.errors import GbcsEncodeError

GBCS_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
# DUIS: an ExecutionDateTime of 3000-12-31T00:00:00Z cancels an earlier future-dated request.
CANCELLATION_DATETIME = dt.datetime(3000, 12, 31, tzinfo=dt.UTC)
IMMEDIATE_COSEM = bytes(9) + b"\x80\x00\xff"  # all-zero date-time: act now
CANCEL_COSEM = b"\xff" * 9 + b"\x80\x00\xff"  # all-unspecified date-time: cancel
IMMEDIATE_ZIGBEE = bytes(4)  # UTCTime 0: act now
CANCEL_ZIGBEE = b"\xff" * 4  # UTCTime 0xFFFFFFFF: cancel
NOW = "@now"  # a slot filled with the DCC's time of issue (e.g. a ZCL issuer event id)


class TransformError(Exception):
    """The DCC cannot express this request in GBCS; ``code`` is the DUIS response code."""

    def __init__(self, message: str, code: ResponseCode = ResponseCode.INVALID_REQUEST) -> None:
        super().__init__(message)
        self.code = code


class Conversion(enum.Enum):
    UINT = "uint"  # xs integer text <-> any integer leaf (keeps the leaf's type)
    BOOL = "bool"  # xs:boolean <-> boolean leaf
    COSEM_DATE_TIME = "cosem-date-time"  # xs:dateTime <-> 12-byte octet-string date-time
    SECONDS_2000 = "seconds-2000"  # xs:dateTime <-> seconds since 2000-01-01 UTC
    HEX = "hex"  # hexBinary <-> octet-string
    TEXT = "text"  # printable string <-> octet-string of its ASCII bytes
    EUI = "eui"  # DUIS EUI (hyphenated hex) <-> 8-byte octet-string
    VALUES = "values"  # an enumerated DUIS value <-> the leaf value the slot's table gives
    # Byte slots of GBZ (ZigBee) payloads, little-endian as ZCL fields are:
    INT_LE = "int-le"  # xs integer <-> two's-complement little-endian bytes
    UINT_LE = "uint-le"  # xs unsigned integer <-> unsigned little-endian bytes
    SECONDS_2000_LE = "seconds-2000-le"  # xs:dateTime <-> ZigBee UTCTime
    SECONDS_2000_BE = "seconds-2000-be"  # xs:dateTime <-> a GBZ header time (big-endian)
    BASE64 = "base64"  # base64Binary <-> the bytes themselves (e.g. a certificate)
    GENERALIZED_TIME = "generalized-time"  # xs:dateTime <-> DER GeneralizedTime YYYYMMDDHHMMSSZ
    COSEM_TIME = "cosem-time"  # xs:time <-> 4-byte COSEM time (hour, minute, second, 1/100)


def parse_xs_datetime(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise TransformError(f"{text!r} is not an xs:dateTime") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def xs_datetime(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cosem_bytes(moment: dt.datetime) -> bytes:
    utc = moment.astimezone(dt.UTC)
    try:
        return CosemDateTime(
            utc.year,
            utc.month,
            utc.day,
            0xFF,
            utc.hour,
            utc.minute,
            utc.second,
            utc.microsecond // 10000,
            -0x8000,
            0xFF,
        ).to_bytes()
    except GbcsEncodeError as exc:
        raise TransformError(str(exc), ResponseCode.INVALID_EXECUTION_DATE) from None


def cosem_time_bytes(text: str, what: str) -> bytes:
    """An xs:time (UTC, as GBCS keeps time) as a COSEM time."""
    try:
        moment = dt.time.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise TransformError(f"{what}: {text!r} is not an xs:time") from None
    if moment.tzinfo is not None and moment.utcoffset() != dt.timedelta(0):
        raise TransformError(f"{what}: {text!r} is not UTC")
    return bytes([moment.hour, moment.minute, moment.second, moment.microsecond // 10000])


def cosem_to_datetime(raw: bytes) -> dt.datetime:
    c = CosemDateTime.from_bytes(raw)
    return dt.datetime(
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.hundredths * 10000, tzinfo=dt.UTC
    )


_INT_TYPES = frozenset(
    {
        DataType.DOUBLE_LONG,
        DataType.DOUBLE_LONG_UNSIGNED,
        DataType.INTEGER,
        DataType.LONG,
        DataType.UNSIGNED,
        DataType.LONG_UNSIGNED,
        DataType.LONG64,
        DataType.LONG64_UNSIGNED,
        DataType.ENUM,
    }
)
_INT_RANGES: dict[DataType, tuple[int, int]] = {
    DataType.DOUBLE_LONG: (-(1 << 31), (1 << 31) - 1),
    DataType.DOUBLE_LONG_UNSIGNED: (0, (1 << 32) - 1),
    DataType.INTEGER: (-128, 127),
    DataType.LONG: (-(1 << 15), (1 << 15) - 1),
    DataType.UNSIGNED: (0, 255),
    DataType.LONG_UNSIGNED: (0, 0xFFFF),
    DataType.LONG64: (-(1 << 63), (1 << 63) - 1),
    DataType.LONG64_UNSIGNED: (0, (1 << 64) - 1),
    DataType.ENUM: (0, 255),
}


def to_leaf(
    conversion: Conversion,
    text: str,
    template_leaf: Data,
    what: str,
    values: tuple[tuple[str, int | bool], ...] = (),
) -> Data:
    """The payload leaf for a DUIS value, typed like the template's leaf."""
    kind = template_leaf.type
    if conversion is Conversion.VALUES:
        for name, mapped in values:
            if name == text.strip():
                return Data(kind, mapped)
        raise TransformError(f"{what}: {text!r} is not one of {[n for n, _ in values]}")
    if conversion is Conversion.EUI:
        try:
            return Data(DataType.OCTET_STRING, Eui64.parse(text).value)
        except InvalidEui64 as exc:
            raise TransformError(f"{what}: {exc}") from None
    if conversion is Conversion.TEXT:
        try:
            raw = text.encode("ascii")
        except UnicodeEncodeError:
            raise TransformError(f"{what}: {text!r} is not printable ASCII") from None
        if kind is DataType.VISIBLE_STRING:
            return Data(kind, text)
        return Data(DataType.OCTET_STRING, raw)
    if conversion is Conversion.UINT:
        if kind not in _INT_TYPES:
            raise TransformError(f"{what}: template leaf is {kind.name}, not an integer")
        try:
            number = int(text.strip())
        except ValueError:
            raise TransformError(f"{what}: {text!r} is not an integer") from None
        low, high = _INT_RANGES[kind]
        if not low <= number <= high:
            raise TransformError(f"{what}: {number} is outside {low}..{high}")
        return Data(kind, number)
    if conversion is Conversion.BOOL:
        flag = text.strip().lower()
        if flag not in ("true", "false", "1", "0"):
            raise TransformError(f"{what}: {text!r} is not an xs:boolean")
        return Data(DataType.BOOLEAN, flag in ("true", "1"))
    if conversion is Conversion.COSEM_DATE_TIME:
        return Data(kind, cosem_bytes(parse_xs_datetime(text)))
    if conversion is Conversion.COSEM_TIME:
        return Data(kind, cosem_time_bytes(text, what))
    if conversion is Conversion.SECONDS_2000:
        seconds = int((parse_xs_datetime(text) - GBCS_EPOCH).total_seconds())
        if not 0 <= seconds < 1 << 32:
            raise TransformError(f"{what}: {text} is outside the GBCS time range")
        return Data(kind, seconds)
    try:
        return Data(DataType.OCTET_STRING, bytes.fromhex(text.strip()))
    except ValueError:
        raise TransformError(f"{what}: {text!r} is not hexBinary") from None


def from_leaf(
    conversion: Conversion, leaf: Data, values: tuple[tuple[str, int | bool], ...] = ()
) -> str:
    """The DUIS text a payload leaf came from (the inverse of :func:`to_leaf`)."""
    value = leaf.value
    if conversion is Conversion.VALUES:
        for name, candidate in values:
            if candidate == value and type(candidate) is type(value):
                return name
        raise TransformError(f"leaf value {value!r} has no DUIS value")
    if conversion is Conversion.BOOL:
        return "true" if value else "false"
    if conversion is Conversion.UINT:
        return str(value)
    if conversion is Conversion.SECONDS_2000:
        assert isinstance(value, int)
        return xs_datetime(GBCS_EPOCH + dt.timedelta(seconds=value))
    if conversion is Conversion.TEXT and isinstance(value, str):
        return value
    assert isinstance(value, bytes)
    if conversion is Conversion.TEXT:
        return value.decode("ascii")
    if conversion is Conversion.EUI:
        return Eui64(value).hyphenated
    if conversion is Conversion.COSEM_DATE_TIME:
        return xs_datetime(cosem_to_datetime(value))
    if conversion is Conversion.COSEM_TIME:
        if len(value) != 4:
            raise TransformError(f"COSEM time {value.hex()} is not 4 bytes")
        return f"{value[0]:02d}:{value[1]:02d}:{value[2]:02d}"
    return value.hex().upper()


def to_bytes(conversion: Conversion, text: str, size: int, what: str) -> bytes:
    """A GBZ byte slot's bytes for a DUIS value."""
    if conversion in (Conversion.INT_LE, Conversion.UINT_LE):
        try:
            number = int(text.strip())
        except ValueError:
            raise TransformError(f"{what}: {text!r} is not an integer") from None
        if conversion is Conversion.UINT_LE and number < 0:
            raise TransformError(f"{what}: {number} is negative")
        try:
            return number.to_bytes(size, "little", signed=number < 0)
        except OverflowError:
            raise TransformError(f"{what}: {number} does not fit {size} bytes") from None
    if conversion in (Conversion.SECONDS_2000_LE, Conversion.SECONDS_2000_BE):
        seconds = int((parse_xs_datetime(text) - GBCS_EPOCH).total_seconds())
        if not 0 <= seconds < 0xFFFFFFFF:
            raise TransformError(f"{what}: {text} is outside the ZigBee UTCTime range")
        if conversion is Conversion.SECONDS_2000_LE:
            return seconds.to_bytes(size, "little")
        return seconds.to_bytes(size, "big")
    if conversion is Conversion.TEXT:
        try:
            raw = text.encode("ascii")
        except UnicodeEncodeError:
            raise TransformError(f"{what}: {text!r} is not printable ASCII") from None
    elif conversion is Conversion.EUI:
        try:
            raw = Eui64.parse(text).value
        except InvalidEui64 as exc:
            raise TransformError(f"{what}: {exc}") from None
    elif conversion is Conversion.VALUES:
        raise TransformError(f"{what}: enumerated byte slots go through to_bytes_values")
    elif conversion is Conversion.GENERALIZED_TIME:
        raw = parse_xs_datetime(text).astimezone(dt.UTC).strftime("%Y%m%d%H%M%SZ").encode()
    elif conversion is Conversion.BASE64:
        try:
            raw = base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise TransformError(f"{what}: not base64") from None
        return raw  # a whole-payload slot takes any length
    else:
        raise TransformError(f"{what}: {conversion.value} is not a byte-slot conversion")
    if len(raw) != size:
        raise TransformError(f"{what}: {len(raw)} bytes where the payload has {size}")
    return raw


def decimal_to_integer(text: str, decimals: int, what: str) -> str:
    """An xs:decimal as the integer number of 10^-decimals it is, in text."""
    try:
        value = Decimal(text.strip()).scaleb(decimals)
    except InvalidOperation:
        raise TransformError(f"{what}: {text!r} is not an xs:decimal") from None
    if value != value.to_integral_value():
        raise TransformError(f"{what}: {text} has more than {decimals} decimal places")
    return str(int(value))


def integer_to_decimal(text: str, decimals: int) -> str:
    """The inverse of :func:`decimal_to_integer`."""
    return str(Decimal(int(text)).scaleb(-decimals))


def to_bytes_values(
    text: str, size: int, what: str, values: tuple[tuple[str, int | bool], ...]
) -> bytes:
    """An enumerated DUIS value as the fixed bytes (big-endian) its table gives."""
    for name, mapped in values:
        if name == text.strip():
            return int(mapped).to_bytes(size, "big")
    raise TransformError(f"{what}: {text!r} is not one of {[n for n, _ in values]}")


def from_bytes_values(raw: bytes, values: tuple[tuple[str, int | bool], ...]) -> str:
    for name, mapped in values:
        if int(mapped).to_bytes(len(raw), "big") == raw:
            return name
    raise TransformError(f"bytes {raw.hex()} have no DUIS value")


def from_bytes(conversion: Conversion, raw: bytes) -> str:
    """The DUIS value a GBZ byte slot came from (the inverse of :func:`to_bytes`)."""
    if conversion is Conversion.INT_LE:
        return str(int.from_bytes(raw, "little", signed=True))
    if conversion is Conversion.UINT_LE:
        return str(int.from_bytes(raw, "little"))
    if conversion is Conversion.TEXT:
        return raw.decode("ascii")
    if conversion is Conversion.EUI:
        return Eui64(raw).hyphenated
    if conversion is Conversion.BASE64:
        return base64.b64encode(raw).decode("ascii")
    if conversion is Conversion.GENERALIZED_TIME:
        moment = dt.datetime.strptime(raw.decode("ascii"), "%Y%m%d%H%M%SZ")
        return xs_datetime(moment.replace(tzinfo=dt.UTC))
    if conversion is Conversion.SECONDS_2000_BE:
        return xs_datetime(GBCS_EPOCH + dt.timedelta(seconds=int.from_bytes(raw, "big")))
    return xs_datetime(GBCS_EPOCH + dt.timedelta(seconds=int.from_bytes(raw, "little")))


@dataclass(frozen=True)
class Slot:
    """DUIS body element at ``duis`` (``/``-separated) fills the payload leaf at ``at``."""

    duis: str
    at: LeafPath
    conversion: Conversion
    values: tuple[tuple[str, int | bool], ...] = ()  # for Conversion.VALUES
    # For UINT: leaf = DUIS value * scale + offset (e.g. a script id built from an index).
    # For a period ``A..B`` (two xs:dateTimes): the number of ``scale``-second intervals
    # from A through B, inclusive (ZCL GetSampledData's NumberOfSamples).
    scale: int = 1
    offset: int = 0
    # For UINT: further DUIS values packed into the same leaf, each times its weight
    # (``@present:PATH`` counts 1 when the element is there), e.g. an auxiliary controller
    # script id = (0x10 | controller) << 8 | level. Weights descend and do not overlap.
    terms: tuple[tuple[str, int], ...] = ()
    # Used when the DUIS element is absent; ``default_means`` names the (empty) element
    # that stands for it (e.g. SwitchTypeAndId ALCS, the built-in switch: an all-zero EUI).
    default: str | None = None
    default_means: str = ""
    # For INT_LE: the DUIS value is an xs:decimal with this many fraction digits, sent as
    # an integer count of 10^-decimals (e.g. a conversion factor 1.02264 as 102264).
    decimals: int = 0


Body = dict[str, object]


@dataclass(frozen=True)
class ListSlot:
    """A repeated DUIS element at ``duis`` becomes the array leaf at ``at``, one item per
    repeat (``item`` is an :class:`~smarthydra.dcc.transform.items.ItemCodec`)."""

    duis: str
    at: LeafPath
    item: ItemCodecLike


class ArrayCodecLike(ABC):
    """An array built from the request as a whole (its length follows from a value)."""

    @abstractmethod
    def build(self, body: dict[str, object]) -> list[Data]:
        """The array's items for ``body``."""

    @abstractmethod
    def parse(self, items: list[Data]) -> dict[str, object]:
        """The DUIS elements the items came from (the inverse of :meth:`build`)."""


class LeafCodecLike(ABC):
    """One leaf built from several DUIS elements (e.g. a channel mask from ChannelN flags)."""

    @abstractmethod
    def build(self, body: dict[str, object]) -> Data:
        """The leaf for ``body``."""

    @abstractmethod
    def parse(self, leaf: Data) -> dict[str, object]:
        """The DUIS elements (by path) the leaf came from."""


@dataclass(frozen=True)
class LeafSlot:
    at: LeafPath
    codec: LeafCodecLike


@dataclass(frozen=True)
class ArraySlot:
    at: LeafPath
    codec: ArrayCodecLike


class ItemCodecLike(ABC):
    """What the engine needs of an item codec (defined in :mod:`.items`)."""

    @abstractmethod
    def to_data(self, item: dict[str, object], position: int, body: dict[str, object]) -> Data:
        """The array item for one repeat."""

    @abstractmethod
    def from_data(self, data: Data, position: int, items: list[Data]) -> dict[str, object]:
        """The repeat an array item came from."""


class BodyCodec(ABC):
    """A payload whose layout no template captures (variable-length DER, lists): built from
    the DUIS body in code. ``parse`` is the inverse, giving the DUIS body (and execution
    date-time) a payload was made from; the RTDS-derived tests use it."""

    future_dated: bool = False  # whether build() honours an ExecutionDateTime

    @abstractmethod
    def build(
        self,
        body: Body,
        execution: dt.datetime | None,
        counter: int,
        issued_at: dt.datetime | None = None,
    ) -> bytes:
        """The payload for ``body``; ``counter`` is the GBCS originator counter,
        ``issued_at`` the DCC's time of issue (ZCL issuer event ids)."""

    @abstractmethod
    def parse(self, payload: bytes) -> tuple[Body, dt.datetime | None]:
        """The DUIS body and execution date-time ``payload`` carries."""

    def issued(self, payload: bytes) -> dt.datetime | None:
        """The time of issue ``payload`` carries, if any."""
        return None


class InventoryCodec(BodyCodec):
    """A payload that also carries what the DCC's inventory records (a join's other device
    type and certificate, a device log to restore): built by :meth:`build_from`."""

    def build(
        self,
        body: Body,
        execution: dt.datetime | None,
        counter: int,
        issued_at: dt.datetime | None = None,
    ) -> bytes:
        raise TransformError("this use case needs the inventory")

    @abstractmethod
    def build_from(self, body: Body, inventory: Inventory) -> bytes:
        """The payload for ``body`` given ``inventory``."""

    def build_counted(self, body: Body, inventory: Inventory, counter: int) -> bytes:
        """The payload for ``body`` given ``inventory``, for a payload that also carries the
        originator counter (an xDLMS invoke-id); by default it does not."""
        return self.build_from(body, inventory)


@dataclass(frozen=True)
class UseCaseSpec:
    """How one use case's command is made from a DUIS body.

    ``execution`` names the COSEM date-time leaves that carry the execution date-time of a
    future-dated request (all zero: immediate; all unspecified: cancellation).
    """

    use_case: str
    slots: tuple[Slot, ...] = ()
    execution: tuple[LeafPath, ...] = ()
    # A structural variant of the use case's command (e.g. ``TWIN`` for a twin-element
    # ESME): its template comes from the RTDS files whose names carry ``_TWIN_``.
    variant: str = ""
    # (condition, request specification index): the specification (and its data) is sent
    # only when the condition holds (``@present:PATH`` or ``PATH=value``), e.g. each
    # optional register a reset names.
    optional: tuple[tuple[str, int], ...] = ()
    # DUIS body elements the command does not carry (e.g. a log period's end where the device
    # reads from the start onwards; the DCC applies it to the response).
    unused: tuple[str, ...] = ()
    # Built in code rather than from the template's leaves (the template still gives the
    # message code, criticality and other-information).
    codec: BodyCodec | None = None
    # Repeated DUIS elements that become arrays (calendars, schedules).
    lists: tuple[ListSlot, ...] = ()
    arrays: tuple[ArraySlot, ...] = ()
    leaves: tuple[LeafSlot, ...] = ()
    # Sent by the DCC in its own name and with its own counter (no supplementary remote
    # party fields): e.g. a CS02b the DCC signs as transitional CoS party.
    dcc_originates: bool = False

    @property
    def template_key(self) -> str:
        return f"{self.use_case}:{self.variant}" if self.variant else self.use_case


@dataclass(frozen=True)
class Choice:
    """The use case depends on one DUIS body value (e.g. 6.13 LogToRead)."""

    duis: str
    options: dict[str, UseCaseSpec | Choice]


Mapping = UseCaseSpec | Choice
