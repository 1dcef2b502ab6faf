"""Serving an ESME's xDLMS requests, including GBCS protected reads (data-protection objects).

A protected read (ECS17b, ECS21a, ECS22b, ...) is an ACTION on a data-protection object
(class 30) whose parameter names the objects to read and the protection to apply; the meter
reads them, encodes ``structure(value, ...)``, encrypts it to the requester and answers with
the protection parameters (originator and recipient swapped) and the sealed block.
Everything else goes to the COSEM server of the model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from smarthydra.gbcs.axdr import Data, DataType, octet_string, structure
from smarthydra.gbcs.errors import GbcsDecodeError
from smarthydra.gbcs.esme_payloads import ImportRegisters
from smarthydra.gbcs.xdlms import (
    AccessRequest,
    AccessResponse,
    DataAccessResult,
    RequestKind,
    ResponseSpecification,
    decode_xdlms,
)
from smarthydra.premises.cosem import CosemError, obis
from smarthydra.premises.esme_model import EsmeModel, _range

DATA_PROTECTION_CLASS = 30
IMPORT_REGISTERS = (1, obis("0-0:94.44.34.10"), 2)
DAILY_READ_LOG = (7, obis("0-0:98.1.9.255"), 2)
HALF_HOUR_PROFILE = (7, obis("0-0:99.1.0.255"), 2)


@dataclass(frozen=True)
class Answer:
    payload: bytes
    executed: bool  # the request changed or read the meter (not refused outright)


def _refusal(invoke_id: int, kind: RequestKind, result: int) -> bytes:
    return AccessResponse(invoke_id, None, [Data(DataType.NULL_DATA)],
                          [ResponseSpecification(kind, result)]).encode()


def serve(model: EsmeModel, payload: bytes, meter: bytes, seal: Callable[[bytes], bytes],
          counter: int = 0) -> Answer:
    try:
        request = decode_xdlms(payload)
    except GbcsDecodeError:
        return Answer(_refusal(0x20000000 | (counter & 0xFFFFFF), RequestKind.ACTION,
                               DataAccessResult.TYPE_UNMATCHED), False)
    if not isinstance(request, AccessRequest) or not request.specifications:
        return Answer(_refusal(0x20000000 | (counter & 0xFFFFFF), RequestKind.ACTION,
                               DataAccessResult.TYPE_UNMATCHED), False)
    first = request.specifications[0]
    if first.kind is RequestKind.ACTION and first.descriptor.class_id == DATA_PROTECTION_CLASS:
        try:
            data = _protected_read(model, request.data[0], seal)
        except CosemError as exc:
            return Answer(_refusal(request.invoke_id, RequestKind.ACTION, exc.result), False)
        response = AccessResponse(request.invoke_id, None, [data],
                                  [ResponseSpecification(RequestKind.ACTION, 0)])
        return Answer(response.encode(), True)
    response = model.server.handle(request)
    executed = any(r.result == DataAccessResult.SUCCESS for r in response.results)
    return Answer(response.encode(), executed)


def _items(value: Data, what: str) -> list[Data]:
    if value.type not in (DataType.STRUCTURE, DataType.ARRAY) or not isinstance(value.value, list):
        raise CosemError(DataAccessResult.TYPE_UNMATCHED, f"{what} is not a structure/array")
    return value.value


def _protected_read(model: EsmeModel, parameter: Data, seal: Callable[[bytes], bytes]) -> Data:
    objects, protection = _items(parameter, "protection parameter")[:2]
    values: list[Data] = []
    for entry in _items(objects, "protected objects"):
        fields = _items(entry, "protected object")
        if len(fields) < 3:
            raise CosemError(DataAccessResult.TYPE_UNMATCHED, "protected object descriptor")
        class_id, logical_name, index = (f.value for f in fields[:3])
        if not (isinstance(class_id, int) and isinstance(logical_name, bytes)
                and isinstance(index, int)):
            raise CosemError(DataAccessResult.TYPE_UNMATCHED, "protected object descriptor")
        key = (class_id, logical_name, index)
        selector: int | None = None
        selection: Data | None = None
        if len(fields) >= 5 and fields[4].type is DataType.STRUCTURE:
            access = _items(fields[4], "selective access")
            # selector 0: no selective access (the whole value)
            if len(access) == 2 and isinstance(access[0].value, int) and access[0].value:
                selector = access[0].value
                bounds = _items(access[1], "selective access parameters")
                selection = structure(Data(DataType.NULL_DATA), *bounds)
        values.append(_read(model, key, selector, selection))
    plaintext = structure(*values).encode()
    # The answer carries the protection parameters back with originator and recipient swapped.
    answered: list[Data] = []
    for item in _items(protection, "protection parameters"):
        kind, params = _items(item, "protection parameter")[:2]
        fields = list(_items(params, "protection fields"))
        if len(fields) >= 3:
            fields[1], fields[2] = fields[2], fields[1]
        answered.append(structure(kind, structure(*fields)))
    return structure(Data(DataType.ARRAY, answered), octet_string(seal(plaintext)))


def _read(model: EsmeModel, key: tuple[int, bytes, int], selector: int | None,
          selection: Data | None) -> Data:
    if key == IMPORT_REGISTERS:
        regs = model.registers
        inner = ImportRegisters(regs.active_import_wh & 0xFFFFFFFF,
                                regs.reactive_import_varh & 0xFFFFFFFF).to_data().value
        assert isinstance(inner, list)
        return inner[0]
    if key == DAILY_READ_LOG:
        start, end = _range(selector, selection)
        return model.daily_read_log(start, end)
    if key == HALF_HOUR_PROFILE:
        start, end = _range(selector, selection)
        return model.half_hour_profile(start, end)
    attribute = model.server.attributes.get(key)
    if attribute is None or attribute.get is None:
        raise CosemError(DataAccessResult.OBJECT_UNDEFINED, f"cannot protect-read {key}")
    return attribute.get(selector, selection)
