"""Payload shapes: what must match between our device responses and the RTDS responses.

Values differ (our meter has its own data); the structure must not: the same xDLMS results,
the same Data types at every level (arrays compared by element shape, compact arrays by type
description), the same GBZ components and ZCL commands, the same DER tags.
"""

from __future__ import annotations

from pathlib import Path

from smarthydra.gbcs.axdr import CompactArray, Data, DataType
from smarthydra.gbcs.der import decode_der, is_der
from smarthydra.gbcs.describe import payload_kind
from smarthydra.gbcs.envelope import GbcsMessage, decode_message
from smarthydra.gbcs.gbz import EncryptedZcl, decode_gbz
from smarthydra.gbcs.rtds import read_hex_file
from smarthydra.gbcs.xdlms import AccessResponse, DataNotification, decode_xdlms


def data_shape(value: Data) -> object:
    if value.type in (DataType.STRUCTURE,) and isinstance(value.value, list):
        return ("structure", tuple(data_shape(v) for v in value.value))
    if value.type is DataType.ARRAY and isinstance(value.value, list):
        return ("array", data_shape(value.value[0]) if value.value else None)
    if isinstance(value.value, CompactArray):
        return ("compact_array", value.value.type_description.hex())
    return value.type.name


def _arrays_match(ours: object, theirs: object) -> bool:
    """Equal shapes, where an empty array matches an array of anything."""
    if isinstance(ours, tuple) and isinstance(theirs, tuple) and len(ours) == len(theirs):
        if ours[:1] == ("array",) and (ours[1] is None or theirs[1] is None):
            return theirs[:1] == ("array",)
        return all(_arrays_match(a, b) for a, b in zip(ours, theirs, strict=True))
    return ours == theirs


def payload_shape(message: GbcsMessage) -> object:
    payload = message.payload
    kind = payload_kind(payload)
    if kind == "xdlms":
        apdu = decode_xdlms(payload)
        if isinstance(apdu, AccessResponse):
            return ("access-response", tuple((r.kind, r.result) for r in apdu.results),
                    tuple(data_shape(d) for d in apdu.data))
        if isinstance(apdu, DataNotification):
            return ("data-notification", data_shape(apdu.body))
        return ("access-request", tuple(s.kind for s in apdu.specifications))
    if kind == "gbz":
        gbz = decode_gbz(payload, alert=message.cra_flag == 3)
        return ("gbz", tuple(
            (c.cluster_id, c.control, c.zcl.frame_control, c.zcl.command_id,
             type(c.body).__name__ if not isinstance(c.body, EncryptedZcl) else "encrypted")
            for c in gbz.components))
    if kind == "der" and is_der(payload):
        return ("der", tuple(node.name for node in decode_der(payload).walk()))
    return ("raw", len(payload))


def shapes_match(ours: object, theirs: object) -> bool:
    return _arrays_match(ours, theirs)


def rtds_message(folder: Path, name: str) -> GbcsMessage:
    return decode_message(read_hex_file(folder / name))


def rtds_command_payload(folder: Path, name: str) -> bytes:
    return rtds_message(folder, name).payload
