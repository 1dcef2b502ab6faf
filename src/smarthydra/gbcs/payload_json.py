"""Typed GBCS payloads (xDLMS, GBZ, DER) to JSON and back, losslessly.

The JSON is what ``smarthydra gbcs parse --json`` prints under ``params`` and what
``smarthydra gbcs build --params`` reads, so a decoded command can be edited and rebuilt.
One top-level key names the codec::

    {"xdlms": {"apdu": "access-request", "invoke_id": "auto", "date_time": null,
               "requests": [{"kind": "action", "class_id": 30, "obis": "0-0:43.2.8.255",
                             "index": 1}],
               "data": [{"structure": [{"octet_string": "00005e2c220a"}, ...]}]}}
    {"gbz": {"count": 1, "components": [{"control": 1, "cluster_id": 1794, ...}]}}
    {"der": {"identifier": 48, "children": [{"identifier": 2, "hex": "01"}]}}

A-XDR values are ``{"<type name>": value}`` (ints, hex for octet strings, text for visible
strings, lists for arrays and structures; a date-time may be given as ``{"date_time": "<hex>"}``).
Every bad value raises :class:`ParamsError` naming the JSON path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smarthydra.gbcs.axdr import MAX_DEPTH, BitString, CompactArray, Data, DataType
from smarthydra.gbcs.der import DerNode, TagClass
from smarthydra.gbcs.errors import GbcsEncodeError
from smarthydra.gbcs.gbz import (
    AttributeRecord,
    AttributeValue,
    ClusterPayload,
    DefaultResponse,
    EncryptedZcl,
    FutureDatedAlert,
    GbzAlertHeader,
    GbzComponent,
    GbzPayload,
    ReadAttributes,
    ReadAttributesResponse,
    ReportAttributes,
    WriteAttributes,
    WriteAttributesResponse,
    ZclBody,
    ZclHeader,
    ZclType,
    ZclValue,
)
from smarthydra.gbcs.xdlms import (
    AccessRequest,
    AccessResponse,
    CosemDescriptor,
    DataAccessResult,
    DataNotification,
    RequestKind,
    RequestSpecification,
    ResponseSpecification,
    XdlmsApdu,
    result_name,
)

Payload = AccessRequest | AccessResponse | DataNotification | GbzPayload | DerNode
"""Any typed GBCS payload: an xDLMS APDU, a GBZ payload or a DER tree."""

# long-invoke-id-and-priority as GBCS sets it: 0x20 in the high byte, the low 24 bits of the
# originator counter below (every RTDS xDLMS message follows this).
INVOKE_ID_FLAGS = 0x20


class ParamsError(GbcsEncodeError):
    """Use-case parameters (JSON or objects) that do not describe a valid payload."""


def invoke_id_for(counter: int) -> int:
    """The long-invoke-id-and-priority GBCS derives from an originator counter."""
    return (INVOKE_ID_FLAGS << 24) | (counter & 0xFFFFFF)


# --- small typed readers --------------------------------------------------------------------


def _obj(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ParamsError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def _list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise ParamsError(f"{path}: expected a JSON array, got {type(value).__name__}")
    return value


def _int(value: object, path: str, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, str):
        text = value.strip().lower()
        try:
            number = int(text, 16) if text.startswith("0x") else int(text)
        except ValueError:
            raise ParamsError(f"{path}: {value!r} is not an integer") from None
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise ParamsError(f"{path}: expected an integer, got {type(value).__name__}")
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        raise ParamsError(f"{path}: {number} is outside {lo}..{hi}")
    return number


def _hex(value: object, path: str, size: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise ParamsError(f"{path}: expected a hex string, got {type(value).__name__}")
    try:
        raw = bytes.fromhex("".join(value.split()))
    except ValueError:
        raise ParamsError(f"{path}: {value!r} is not hex") from None
    if size is not None and len(raw) != size:
        raise ParamsError(f"{path}: expected {size} bytes, got {len(raw)}")
    return raw


def _opt_hex(value: object, path: str, size: int | None = None) -> bytes | None:
    return None if value is None else _hex(value, path, size)


def _get(obj: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise ParamsError(f"{path}: missing {key!r}")
    return obj[key]


def _single_key(obj: Mapping[str, Any], path: str, allowed: Mapping[str, Any]) -> str:
    keys = [k for k in obj if k in allowed]
    if len(keys) != 1:
        raise ParamsError(f"{path}: expected exactly one of {sorted(allowed)}, got {sorted(obj)}")
    return keys[0]


# --- A-XDR Data -----------------------------------------------------------------------------

_DATA_TYPES = {t.name.lower(): t for t in DataType}
_DATA_TYPES.update({"enum": DataType.ENUM})  # Data.to_json's name for ENUM is "enum" already


def data_to_json(data: Data) -> object:
    """``{"<type>": value}`` (see :meth:`Data.to_json`)."""
    return data.to_json()


def data_from_json(value: object, path: str = "data", depth: int = 0) -> Data:
    """Inverse of :func:`data_to_json`."""
    if depth > MAX_DEPTH:
        raise ParamsError(f"{path}: A-XDR data nested deeper than {MAX_DEPTH} levels")
    obj = _obj(value, path)
    name = _single_key(obj, path, _DATA_TYPES)
    kind = _DATA_TYPES[name]
    raw = obj[name]
    here = f"{path}.{name}"
    if kind is DataType.NULL_DATA:
        return Data(kind)
    if kind in (DataType.ARRAY, DataType.STRUCTURE):
        items = _list(raw, here)
        return Data(
            kind, [data_from_json(item, f"{here}[{i}]", depth + 1) for i, item in enumerate(items)]
        )
    if kind is DataType.BOOLEAN:
        if not isinstance(raw, bool):
            raise ParamsError(f"{here}: expected true or false")
        return Data(kind, raw)
    if kind is DataType.BIT_STRING:
        bits = _obj(raw, here)
        length = _int(_get(bits, "bits", here), f"{here}.bits", 0, 1 << 24)
        packed = _hex(_get(bits, "hex", here), f"{here}.hex", (length + 7) // 8)
        return Data(kind, BitString(length, packed))
    if kind is DataType.COMPACT_ARRAY:
        compact = _obj(raw, here)
        return Data(
            kind,
            CompactArray(
                _hex(_get(compact, "type", here), f"{here}.type"),
                _hex(_get(compact, "contents", here), f"{here}.contents"),
            ),
        )
    if kind is DataType.OCTET_STRING:
        return Data(kind, _hex(raw, here))
    if kind in (DataType.VISIBLE_STRING, DataType.UTF8_STRING):
        if not isinstance(raw, str):
            raise ParamsError(f"{here}: expected a string")
        return Data(kind, raw)
    if kind is DataType.DATE_TIME:
        # to_json gives {"date_time": "<iso>", "hex": "<12 bytes>"}; the hex is authoritative.
        source = obj.get("hex", raw)
        return Data(kind, _hex(source, here, 12))
    if kind in (DataType.DATE, DataType.TIME):
        return Data(kind, _hex(raw, here, 5 if kind is DataType.DATE else 4))
    if kind in (DataType.FLOAT32, DataType.FLOAT64):
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ParamsError(f"{here}: expected a number")
        return Data(kind, float(raw))
    return Data(kind, _int(raw, here))


# --- xDLMS ----------------------------------------------------------------------------------


# COSEM interface classes GBCS payloads address (DLMS UA Blue Book), for readable output;
# ignored when reading parameters back.
COSEM_CLASS_NAMES: dict[int, str] = {
    1: "data",
    3: "register",
    4: "extended register",
    5: "demand register",
    7: "profile generic",
    8: "clock",
    9: "script table",
    10: "schedule",
    11: "special days table",
    15: "association LN",
    17: "SAP assignment",
    18: "image transfer",
    20: "activity calendar",
    21: "register monitor",
    22: "single action schedule",
    23: "IEC HDLC setup",
    30: "data protection",
    61: "register table",
    62: "compact data",
    63: "status mapping",
    64: "security setup",
    70: "disconnect control",
    71: "limiter",
    111: "account",
    112: "credit",
    113: "charge",
    115: "token gateway",
}


def _descriptor_to_json(descriptor: CosemDescriptor) -> dict[str, object]:
    out: dict[str, object] = {
        "class_id": descriptor.class_id,
        "obis": descriptor.obis,
        "index": descriptor.index,
    }
    name = COSEM_CLASS_NAMES.get(descriptor.class_id)
    if name is not None:
        out["class"] = name
    return out


def _parse_obis(value: object, path: str) -> bytes:
    if not isinstance(value, str):
        raise ParamsError(f"{path}: expected an OBIS code such as '0-0:43.2.8.255'")
    text = value.strip()
    try:
        ab, _, cdef = text.partition(":")
        a, _, b = ab.partition("-")
        parts = [int(a), int(b), *(int(p) for p in cdef.split("."))]
    except ValueError:
        parts = []
    if len(parts) != 6 or not all(0 <= p <= 255 for p in parts):
        # Also accept the 6 bytes as hex.
        raw = _hex(text, path) if all(c in "0123456789abcdefABCDEF" for c in text) else b""
        if len(raw) == 6:
            return raw
        raise ParamsError(f"{path}: {value!r} is not an OBIS code (A-B:C.D.E.F)")
    return bytes(parts)


def _descriptor_from_json(obj: Mapping[str, Any], path: str) -> CosemDescriptor:
    return CosemDescriptor(
        _int(_get(obj, "class_id", path), f"{path}.class_id", 0, 0xFFFF),
        _parse_obis(_get(obj, "obis", path), f"{path}.obis"),
        _int(_get(obj, "index", path), f"{path}.index", 0, 255),
    )


def _invoke_to_json(invoke_id: int) -> str:
    return f"{invoke_id:08X}"


def _invoke_from_json(value: object, path: str, counter: int | None) -> int:
    if value is None or value == "auto":
        if counter is None:
            raise ParamsError(f"{path}: 'auto' needs the originator counter")
        return invoke_id_for(counter)
    if isinstance(value, str):
        return _int("0x" + value if not value.lower().startswith("0x") else value, path, 0)
    return _int(value, path, 0, 0xFFFFFFFF)


def _kind(value: object, path: str) -> RequestKind:
    if isinstance(value, str):
        try:
            return RequestKind[value.upper()]
        except KeyError:
            names = [k.name.lower() for k in RequestKind]
            raise ParamsError(f"{path}: {value!r} is not one of {names}") from None
    try:
        return RequestKind(_int(value, path))
    except ValueError:
        raise ParamsError(f"{path}: {value!r} is not a request kind") from None


def _result(value: object, path: str) -> int:
    if isinstance(value, str) and not (value.isascii() and value.strip().lstrip("-").isdigit()):
        text = value.strip().lower()
        if text.startswith("result-"):
            return _int(text[len("result-") :], path, 0, 255)
        try:
            return int(DataAccessResult[text.upper()])
        except KeyError:
            raise ParamsError(f"{path}: {value!r} is not a DLMS result name") from None
    return _int(value, path, 0, 255)


def xdlms_to_json(apdu: XdlmsApdu) -> dict[str, object]:
    date_time = None if apdu.date_time is None else apdu.date_time.hex()
    if isinstance(apdu, AccessRequest):
        requests: list[dict[str, object]] = []
        for spec in apdu.specifications:
            item: dict[str, object] = {
                "kind": spec.kind.name.lower(),
                **_descriptor_to_json(spec.descriptor),
            }
            if spec.selection is not None:
                item["selector"] = spec.selector
                item["selection"] = spec.selection.to_json()
            requests.append(item)
        return {
            "apdu": "access-request",
            "invoke_id": _invoke_to_json(apdu.invoke_id),
            "date_time": date_time,
            "requests": requests,
            "data": [d.to_json() for d in apdu.data],
        }
    if isinstance(apdu, AccessResponse):
        return {
            "apdu": "access-response",
            "invoke_id": _invoke_to_json(apdu.invoke_id),
            "date_time": date_time,
            "data": [d.to_json() for d in apdu.data],
            "results": [
                {"kind": r.kind.name.lower(), "result": result_name(r.result)} for r in apdu.results
            ],
        }
    return {
        "apdu": "data-notification",
        "invoke_id": _invoke_to_json(apdu.invoke_id),
        "date_time": date_time,
        "body": apdu.body.to_json(),
    }


def xdlms_from_json(value: object, path: str = "xdlms", counter: int | None = None) -> XdlmsApdu:
    obj = _obj(value, path)
    apdu = _get(obj, "apdu", path)
    invoke = _invoke_from_json(obj.get("invoke_id", "auto"), f"{path}.invoke_id", counter)
    date_time = _opt_hex(obj.get("date_time"), f"{path}.date_time", 12)
    if apdu == "access-request":
        specs: list[RequestSpecification] = []
        for i, raw in enumerate(_list(_get(obj, "requests", path), f"{path}.requests")):
            here = f"{path}.requests[{i}]"
            spec = _obj(raw, here)
            kind = _kind(_get(spec, "kind", here), f"{here}.kind")
            descriptor = _descriptor_from_json(spec, here)
            if kind in (RequestKind.GET_WITH_SELECTION, RequestKind.SET_WITH_SELECTION):
                specs.append(
                    RequestSpecification(
                        kind,
                        descriptor,
                        _int(_get(spec, "selector", here), f"{here}.selector", 0, 255),
                        data_from_json(_get(spec, "selection", here), f"{here}.selection"),
                    )
                )
            else:
                specs.append(RequestSpecification(kind, descriptor))
        data_list = _list(obj.get("data", []), f"{path}.data")
        if "data" not in obj:
            # A get carries null-data per request; let callers omit it.
            data = [Data(DataType.NULL_DATA) for _ in specs]
        else:
            data = [data_from_json(d, f"{path}.data[{i}]") for i, d in enumerate(data_list)]
        return AccessRequest(invoke, date_time, specs, data)
    if apdu == "access-response":
        data = [
            data_from_json(d, f"{path}.data[{i}]")
            for i, d in enumerate(_list(_get(obj, "data", path), f"{path}.data"))
        ]
        results: list[ResponseSpecification] = []
        for i, raw in enumerate(_list(_get(obj, "results", path), f"{path}.results")):
            here = f"{path}.results[{i}]"
            spec = _obj(raw, here)
            results.append(
                ResponseSpecification(
                    _kind(_get(spec, "kind", here), f"{here}.kind"),
                    _result(_get(spec, "result", here), f"{here}.result"),
                )
            )
        return AccessResponse(invoke, date_time, data, results)
    if apdu == "data-notification":
        return DataNotification(invoke, date_time, data_from_json(_get(obj, "body", path)))
    raise ParamsError(
        f"{path}.apdu: {apdu!r} is not access-request, access-response or data-notification"
    )


# --- GBZ ------------------------------------------------------------------------------------


def _zcl_value_to_json(value: ZclValue) -> dict[str, object]:
    raw = value.value
    return {"type": value.kind.name.lower(), "value": raw.hex() if isinstance(raw, bytes) else raw}


def _zcl_type(value: object, path: str) -> ZclType:
    if isinstance(value, str) and not value.lower().startswith("0x"):
        try:
            return ZclType[value.upper()]
        except KeyError:
            raise ParamsError(f"{path}: {value!r} is not a ZCL data type name") from None
    try:
        return ZclType(_int(value, path, 0, 255))
    except ValueError:
        raise ParamsError(f"{path}: {value!r} is not a ZCL data type") from None


def _zcl_value_from_json(value: object, path: str) -> ZclValue:
    obj = _obj(value, path)
    kind = _zcl_type(_get(obj, "type", path), f"{path}.type")
    raw = _get(obj, "value", path)
    if isinstance(raw, str):
        return ZclValue(kind, _hex(raw, f"{path}.value"))
    return ZclValue(kind, _int(raw, f"{path}.value"))


def zcl_body_to_json(body: ZclBody | EncryptedZcl) -> dict[str, object]:
    if isinstance(body, EncryptedZcl):
        return {
            "encrypted": {
                "additional_control": body.additional_control,
                "frame_counter": body.frame_counter,
                "ciphertext": body.ciphertext_and_tag.hex(),
            }
        }
    if isinstance(body, ReadAttributes):
        return {"read_attributes": list(body.attribute_ids)}
    if isinstance(body, ReadAttributesResponse):
        records: list[dict[str, object]] = []
        for r in body.records:
            record: dict[str, object] = {"attribute_id": r.attribute_id, "status": r.status}
            if r.value is not None:
                record.update(_zcl_value_to_json(r.value))
            records.append(record)
        return {"read_attributes_response": records}
    if isinstance(body, WriteAttributes | ReportAttributes):
        name = "write_attributes" if isinstance(body, WriteAttributes) else "report_attributes"
        return {
            name: [
                {"attribute_id": a.attribute_id, **_zcl_value_to_json(a.value)}
                for a in body.attributes
            ]
        }
    if isinstance(body, WriteAttributesResponse):
        return {
            "write_attributes_response": [{"status": s, "attribute_id": a} for s, a in body.records]
        }
    if isinstance(body, DefaultResponse):
        return {"default_response": {"command_id": body.command_id, "status": body.status}}
    return {"cluster_payload": body.data.hex()}


_ZCL_BODIES = dict.fromkeys(
    (
        "encrypted",
        "read_attributes",
        "read_attributes_response",
        "write_attributes",
        "report_attributes",
        "write_attributes_response",
        "default_response",
        "cluster_payload",
    )
)


def _attribute_values(value: object, path: str) -> tuple[AttributeValue, ...]:
    out = []
    for i, raw in enumerate(_list(value, path)):
        here = f"{path}[{i}]"
        obj = _obj(raw, here)
        out.append(
            AttributeValue(
                _int(_get(obj, "attribute_id", here), f"{here}.attribute_id", 0, 0xFFFF),
                _zcl_value_from_json(obj, here),
            )
        )
    return tuple(out)


def _zcl_body_from_json(value: object, path: str) -> ZclBody | EncryptedZcl:
    obj = _obj(value, path)
    name = _single_key(obj, path, _ZCL_BODIES)
    raw = obj[name]
    here = f"{path}.{name}"
    if name == "encrypted":
        enc = _obj(raw, here)
        return EncryptedZcl(
            _int(_get(enc, "additional_control", here), f"{here}.additional_control", 0, 255),
            _int(_get(enc, "frame_counter", here), f"{here}.frame_counter", 0, 255),
            _hex(enc.get("ciphertext", ""), f"{here}.ciphertext"),
        )
    if name == "read_attributes":
        return ReadAttributes(
            tuple(_int(a, f"{here}[{i}]", 0, 0xFFFF) for i, a in enumerate(_list(raw, here)))
        )
    if name == "read_attributes_response":
        records = []
        for i, item in enumerate(_list(raw, here)):
            at = f"{here}[{i}]"
            rec = _obj(item, at)
            status = _int(_get(rec, "status", at), f"{at}.status", 0, 255)
            records.append(
                AttributeRecord(
                    _int(_get(rec, "attribute_id", at), f"{at}.attribute_id", 0, 0xFFFF),
                    status,
                    _zcl_value_from_json(rec, at) if status == 0 else None,
                )
            )
        return ReadAttributesResponse(tuple(records))
    if name == "write_attributes":
        return WriteAttributes(_attribute_values(raw, here))
    if name == "report_attributes":
        return ReportAttributes(_attribute_values(raw, here))
    if name == "write_attributes_response":
        pairs = []
        for i, item in enumerate(_list(raw, here)):
            at = f"{here}[{i}]"
            rec = _obj(item, at)
            pairs.append(
                (
                    _int(_get(rec, "status", at), f"{at}.status", 0, 255),
                    _int(_get(rec, "attribute_id", at), f"{at}.attribute_id", 0, 0xFFFF),
                )
            )
        return WriteAttributesResponse(tuple(pairs))
    if name == "default_response":
        rec = _obj(raw, here)
        return DefaultResponse(
            _int(_get(rec, "command_id", here), f"{here}.command_id", 0, 255),
            _int(_get(rec, "status", here), f"{here}.status", 0, 255),
        )
    return ClusterPayload(_hex(raw, here))


def gbz_to_json(payload: GbzPayload) -> dict[str, object]:
    out: dict[str, object] = {"count": payload.count}
    if payload.alert is not None:
        out["alert"] = {
            "alert_code": f"{payload.alert.alert_code:04X}",
            "time_stamp": payload.alert.time_stamp,
        }
    if payload.future_dated is not None:
        f = payload.future_dated
        out["future_dated"] = {
            "message_code": f"{f.message_code:04X}",
            "originator_counter": f.originator_counter,
            "cluster_id": f.cluster_id,
            "frame_control": f.frame_control,
            "command_id": f.command_id,
        }
    if payload.hash is not None:
        out["hash"] = payload.hash.hex()
    if payload.specific:
        out["specific"] = payload.specific.hex()
    out["components"] = [
        {
            "control": c.control,
            "cluster_id": c.cluster_id,
            "cluster": c.cluster_name,
            "from_date_time": c.from_date_time,
            "zcl": {
                "frame_control": c.zcl.frame_control,
                "sequence": c.zcl.sequence,
                "command_id": c.zcl.command_id,
                "manufacturer_code": c.zcl.manufacturer_code,
            },
            "body": zcl_body_to_json(c.body),
        }
        for c in payload.components
    ]
    return out


def _hex_code(value: object, path: str) -> int:
    if isinstance(value, str) and not value.lower().startswith("0x"):
        value = "0x" + value
    return _int(value, path, 0, 0xFFFF)


def gbz_from_json(value: object, path: str = "gbz") -> GbzPayload:
    obj = _obj(value, path)
    components = []
    for i, raw in enumerate(_list(obj.get("components", []), f"{path}.components")):
        here = f"{path}.components[{i}]"
        comp = _obj(raw, here)
        zcl = _obj(_get(comp, "zcl", here), f"{here}.zcl")
        manufacturer = zcl.get("manufacturer_code")
        from_dt = comp.get("from_date_time")
        components.append(
            GbzComponent(
                _int(_get(comp, "control", here), f"{here}.control", 0, 255),
                _int(_get(comp, "cluster_id", here), f"{here}.cluster_id", 0, 0xFFFF),
                ZclHeader(
                    _int(_get(zcl, "frame_control", here), f"{here}.zcl.frame_control", 0, 255),
                    _int(_get(zcl, "sequence", here), f"{here}.zcl.sequence", 0, 255),
                    _int(_get(zcl, "command_id", here), f"{here}.zcl.command_id", 0, 255),
                    None
                    if manufacturer is None
                    else _int(manufacturer, f"{here}.zcl.manufacturer_code", 0, 0xFFFF),
                ),
                _zcl_body_from_json(_get(comp, "body", here), f"{here}.body"),
                None if from_dt is None else _int(from_dt, f"{here}.from_date_time", 0),
            )
        )
    count = _int(obj.get("count", len(components)), f"{path}.count", 0, 255)
    alert = None
    if obj.get("alert") is not None:
        a = _obj(obj["alert"], f"{path}.alert")
        alert = GbzAlertHeader(
            _hex_code(_get(a, "alert_code", f"{path}.alert"), f"{path}.alert.alert_code"),
            _int(_get(a, "time_stamp", f"{path}.alert"), f"{path}.alert.time_stamp", 0),
        )
    future = None
    if obj.get("future_dated") is not None:
        here = f"{path}.future_dated"
        f = _obj(obj["future_dated"], here)
        future = FutureDatedAlert(
            _hex_code(_get(f, "message_code", here), f"{here}.message_code"),
            _int(_get(f, "originator_counter", here), f"{here}.originator_counter", 0),
            _int(_get(f, "cluster_id", here), f"{here}.cluster_id", 0, 0xFFFF),
            _int(_get(f, "frame_control", here), f"{here}.frame_control", 0, 255),
            _int(_get(f, "command_id", here), f"{here}.command_id", 0, 255),
        )
    extra = (future, obj.get("hash"), obj.get("specific"))
    if alert is None and any(x is not None for x in extra):
        raise ParamsError(f"{path}: future_dated, hash and specific belong to alert payloads")
    return GbzPayload(
        count,
        tuple(components),
        alert=alert,
        future_dated=future,
        hash=_opt_hex(obj.get("hash"), f"{path}.hash"),
        specific=_hex(obj.get("specific", ""), f"{path}.specific"),
    )


# --- DER ------------------------------------------------------------------------------------


def der_to_json(node: DerNode) -> dict[str, object]:
    """Lossless: identifier byte, long-form length octets, then children or content hex."""
    out: dict[str, object] = {"tag": node.name, "identifier": node.identifier}
    if node.length_octets:
        out["length_octets"] = node.length_octets
    if node.constructed:
        out["children"] = [der_to_json(child) for child in node.children]
    else:
        out["hex"] = node.content.hex()
    return out


def der_from_json(value: object, path: str = "der", depth: int = 0) -> DerNode:
    if depth > 32:
        raise ParamsError(f"{path}: DER nested deeper than 32 levels")
    obj = _obj(value, path)
    ident = _int(_get(obj, "identifier", path), f"{path}.identifier", 0, 255)
    if ident & 0x1F == 0x1F:
        raise ParamsError(f"{path}.identifier: the high-tag-number form is not used in GBCS")
    constructed = bool(ident & 0x20)
    octets = _int(obj.get("length_octets", 0), f"{path}.length_octets", 0, 4)
    if constructed:
        children = tuple(
            der_from_json(child, f"{path}.children[{i}]", depth + 1)
            for i, child in enumerate(_list(obj.get("children", []), f"{path}.children"))
        )
        return DerNode(
            TagClass(ident >> 6), True, ident & 0x1F, children=children, length_octets=octets
        )
    return DerNode(
        TagClass(ident >> 6),
        False,
        ident & 0x1F,
        content=_hex(obj.get("hex", ""), f"{path}.hex"),
        length_octets=octets,
    )


# --- Any payload ----------------------------------------------------------------------------


def payload_to_json(payload: Payload) -> dict[str, object]:
    if isinstance(payload, GbzPayload):
        return {"gbz": gbz_to_json(payload)}
    if isinstance(payload, DerNode):
        return {"der": der_to_json(payload)}
    return {"xdlms": xdlms_to_json(payload)}


_CODECS = dict.fromkeys(("xdlms", "gbz", "der"))


def payload_from_json(value: object, path: str = "payload", counter: int | None = None) -> Payload:
    """A typed payload from ``{"xdlms": ...}``, ``{"gbz": ...}`` or ``{"der": ...}``.

    ``counter`` lets an xDLMS ``invoke_id`` be ``"auto"`` (derived from the counter).
    """
    obj = _obj(value, path)
    name = _single_key(obj, path, _CODECS)
    if name == "xdlms":
        return xdlms_from_json(obj[name], f"{path}.xdlms", counter)
    if name == "gbz":
        return gbz_from_json(obj[name], f"{path}.gbz")
    return der_from_json(obj[name], f"{path}.der")


def encode_payload(payload: Payload) -> bytes:
    """The wire bytes of a typed payload (raises :class:`GbcsEncodeError` subclasses)."""
    try:
        return payload.encode()
    except (ValueError, OverflowError, TypeError) as exc:
        raise ParamsError(f"payload cannot be encoded: {exc}") from None
