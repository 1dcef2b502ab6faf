"""A COSEM server: the DLMS side of a GBCS device, over a typed object model.

A device registers its objects' attributes (getter and optional setter) and methods; the
server answers an xDLMS access-request with the access-response GBCS devices send:

- one result and one data item per request, in order (null data for set and action);
- a request with selective access (``get_with_selection``) is answered as a ``get``;
- the first request that fails gets its own result (object undefined, type unmatched,
  hardware fault, ...); every later request is not executed and gets ``other_reason``,
  which is what the RTDS error responses show.

Sans-I/O: the server holds no clock or storage; the object model does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from smarthydra.gbcs.axdr import CompactArray, Data, DataType
from smarthydra.gbcs.xdlms import (
    AccessRequest,
    AccessResponse,
    DataAccessResult,
    RequestKind,
    ResponseSpecification,
)

Obis = bytes
AttributeKey = tuple[int, Obis, int]  # class id, logical name, attribute or method index


def obis(text: str) -> Obis:
    """``"0-0:1.0.0.255"`` -> the 6-byte logical name."""
    try:
        ab, rest = text.split(":")
        a, b = ab.split("-")
        parts = [int(a), int(b), *(int(x) for x in rest.split("."))]
    except ValueError:
        raise ValueError(f"not an OBIS code: {text!r}") from None
    if len(parts) != 6 or not all(0 <= p <= 255 for p in parts):
        raise ValueError(f"not an OBIS code: {text!r}")
    return bytes(parts)


class CosemError(Exception):
    """A request the object model refuses, with the DLMS result the device answers."""

    def __init__(self, result: DataAccessResult, detail: str = "") -> None:
        super().__init__(detail or result.name.lower())
        self.result = result


Getter = Callable[[int | None, Data | None], Data]  # (selector, selection) -> value
Setter = Callable[[Data], None]
Method = Callable[[Data], Data | None]


@dataclass
class Attribute:
    get: Getter | None
    set: Setter | None = None


def require_type(value: Data, *types: DataType) -> None:
    if value.type not in types:
        names = "/".join(t.name.lower() for t in types)
        raise CosemError(
            DataAccessResult.TYPE_UNMATCHED, f"expected {names}, got {value.type.name.lower()}"
        )


@dataclass
class CosemServer:
    attributes: dict[AttributeKey, Attribute] = field(default_factory=dict)
    methods: dict[AttributeKey, Method] = field(default_factory=dict)

    # --- registration ----------------------------------------------------------------------

    def attribute(
        self,
        class_id: int,
        logical_name: str,
        index: int,
        get: Getter | None,
        set: Setter | None = None,
    ) -> None:
        self.attributes[(class_id, obis(logical_name), index)] = Attribute(get, set)

    def value(self, class_id: int, logical_name: str, index: int, initial: Data) -> StoredValue:
        """A plain stored attribute: set replaces it (same type only), get returns it."""
        stored = StoredValue(initial)
        self.attribute(class_id, logical_name, index, stored.get, stored.set)
        return stored

    def method(self, class_id: int, logical_name: str, index: int, call: Method) -> None:
        self.methods[(class_id, obis(logical_name), index)] = call

    # --- serving ---------------------------------------------------------------------------

    def _one(self, kind: RequestKind, key: AttributeKey, selector: int | None,
             selection: Data | None, data: Data) -> Data:
        if kind is RequestKind.ACTION:
            method = self.methods.get(key)
            if method is None:
                raise CosemError(DataAccessResult.OBJECT_UNDEFINED, f"no method {key}")
            result = method(data)
            return result if result is not None else Data(DataType.NULL_DATA)
        attribute = self.attributes.get(key)
        if attribute is None:
            raise CosemError(DataAccessResult.OBJECT_UNDEFINED, f"no attribute {key}")
        if kind in (RequestKind.GET, RequestKind.GET_WITH_SELECTION):
            if attribute.get is None:
                raise CosemError(DataAccessResult.READ_WRITE_DENIED, "write-only attribute")
            return attribute.get(selector, selection)
        if attribute.set is None:
            raise CosemError(DataAccessResult.READ_WRITE_DENIED, "read-only attribute")
        attribute.set(data)
        return Data(DataType.NULL_DATA)

    def handle(self, request: AccessRequest) -> AccessResponse:
        results: list[ResponseSpecification] = []
        data: list[Data] = []
        failed = False
        for spec, item in zip(request.specifications, request.data, strict=False):
            kind = spec.kind
            answer_kind = {
                RequestKind.GET_WITH_SELECTION: RequestKind.GET,
                RequestKind.SET_WITH_SELECTION: RequestKind.SET,
            }.get(kind, kind)
            if failed:
                results.append(ResponseSpecification(answer_kind, DataAccessResult.OTHER_REASON))
                data.append(Data(DataType.NULL_DATA))
                continue
            key = (spec.descriptor.class_id, spec.descriptor.instance_id, spec.descriptor.index)
            try:
                value = self._one(kind, key, spec.selector, spec.selection, item)
            except CosemError as exc:
                failed = True
                results.append(ResponseSpecification(answer_kind, exc.result))
                data.append(Data(DataType.NULL_DATA))
                continue
            results.append(ResponseSpecification(answer_kind, DataAccessResult.SUCCESS))
            data.append(value if kind is not RequestKind.SET else Data(DataType.NULL_DATA))
        return AccessResponse(request.invoke_id, None, data, results)


@dataclass
class StoredValue:
    """An attribute the device keeps as given (tariff tables, thresholds, configuration)."""

    value: Data
    writes: int = 0

    def get(self, selector: int | None = None, selection: Data | None = None) -> Data:
        return self.value

    def set(self, value: Data) -> None:
        require_type(value, self.value.type)
        self.value = value
        self.writes += 1


# --- compact arrays (profiles and logs) -----------------------------------------------------


def _untagged(value: Data) -> bytes:
    """A leaf value as it sits in compact-array contents: the encoding without its tag."""
    if value.type in (DataType.ARRAY, DataType.STRUCTURE, DataType.COMPACT_ARRAY):
        raise ValueError("compact-array rows here are flat structures of simple values")
    return value.encode()[1:]


def type_description(row: list[Data]) -> bytes:
    """TypeDescription of a flat structure row: ``02 <n> <tag>...``."""
    return bytes([DataType.STRUCTURE, len(row), *(item.type for item in row)])


def compact_array(description: bytes, rows: list[list[Data]]) -> Data:
    """A compact-array of flat structure rows (GBCS profiles and logs)."""
    contents = b"".join(_untagged(item) for row in rows for item in row)
    return Data(DataType.COMPACT_ARRAY, CompactArray(description, contents))
