"""Device-side payload helpers: the xDLMS response a meter or hub sends to a command.

:func:`access_response` answers any access-request (one result per request, in order).
:func:`data_protection_response` answers the sensitive reads (ECS17b, ECS19, ECS21b, ...):
each is an ACTION on the data-protection object (class 30) whose data ends with the
requester's protection parameters; the answer carries the same protection parameters with
the device as originator and the response's recipient as recipient, followed by the
protected attributes, which :func:`smarthydra.gbcs.usecase.build_response` encrypts from the
plaintext values. Byte-exact against the RTDS sensitive responses.
"""

from __future__ import annotations

from collections.abc import Sequence

from smarthydra.gbcs.axdr import Data, DataType
from smarthydra.gbcs.envelope import SYSTEM_TITLE_SIZE
from smarthydra.gbcs.errors import GbcsEncodeError
from smarthydra.gbcs.sensitive import is_protection_parameters
from smarthydra.gbcs.usecase import UseCaseError, UseCaseParams
from smarthydra.gbcs.xdlms import (
    AccessRequest,
    AccessResponse,
    DataAccessResult,
    RequestKind,
    ResponseSpecification,
)

DATA_PROTECTION_CLASS = 30
# Result kinds in an access-response mirror the request kinds (selection folds into get/set).
_RESULT_KIND = {
    RequestKind.GET: RequestKind.GET,
    RequestKind.SET: RequestKind.SET,
    RequestKind.ACTION: RequestKind.ACTION,
    RequestKind.GET_WITH_SELECTION: RequestKind.GET,
    RequestKind.SET_WITH_SELECTION: RequestKind.SET,
}


def access_response(
    request: AccessRequest,
    data: Sequence[Data],
    results: Sequence[int] | None = None,
    *,
    date_time: bytes | None = None,
) -> AccessResponse:
    """The access-response to ``request``: same invoke id, ``data`` as given, and one result
    per request (all success unless ``results`` says otherwise)."""
    wanted = (
        list(results)
        if results is not None
        else [DataAccessResult.SUCCESS] * len(request.specifications)
    )
    if len(wanted) != len(request.specifications):
        raise GbcsEncodeError(f"{len(wanted)} results for {len(request.specifications)} requests")
    return AccessResponse(
        request.invoke_id,
        date_time,
        list(data),
        [
            ResponseSpecification(_RESULT_KIND[spec.kind], int(result))
            for spec, result in zip(request.specifications, wanted, strict=True)
        ],
    )


def _answer_parameters(parameters: Data, device: bytes, recipient: bytes) -> Data:
    """The requester's protection parameters with originator and recipient replaced."""
    answered: list[Data] = []
    assert isinstance(parameters.value, list)
    for item in parameters.value:
        assert isinstance(item.value, list)
        protection_type, options = item.value
        fields = options.value
        if not isinstance(fields, list) or len(fields) < 3:
            raise UseCaseError("protection options carry transaction id, originator, recipient")
        replaced = [
            fields[0],
            Data(DataType.OCTET_STRING, device),
            Data(DataType.OCTET_STRING, recipient),
            *fields[3:],
        ]
        answered.append(
            Data(DataType.STRUCTURE, [protection_type, Data(DataType.STRUCTURE, replaced)])
        )
    return Data(DataType.ARRAY, answered)


def data_protection_response(
    request: AccessRequest,
    *,
    device: bytes,
    recipient: bytes,
    plaintexts: Sequence[bytes],
    date_time: bytes | None = None,
) -> UseCaseParams:
    """The parameters of a sensitive response: one protected answer per data-protection
    request, with ``plaintexts`` (the A-XDR encoding of the protected values, in order) to
    be encrypted by :func:`~smarthydra.gbcs.usecase.build_response`."""
    for title, what in ((device, "device"), (recipient, "recipient")):
        if len(title) != SYSTEM_TITLE_SIZE:
            raise GbcsEncodeError(f"{what} system title must be 8 bytes")
    answers: list[Data] = []
    for spec, item in zip(request.specifications, request.data, strict=True):
        items = item.value
        if (
            spec.kind is not RequestKind.ACTION
            or spec.descriptor.class_id != DATA_PROTECTION_CLASS
            or item.type is not DataType.STRUCTURE
            or not isinstance(items, list)
            or not items
            or not is_protection_parameters(items[-1])
        ):
            raise UseCaseError(
                "each request must be an ACTION on the data-protection object (class 30) "
                "ending with protection parameters"
            )
        answers.append(
            Data(
                DataType.STRUCTURE,
                [
                    _answer_parameters(items[-1], device, recipient),
                    Data(DataType.OCTET_STRING, b""),  # filled by the encryption
                ],
            )
        )
    if len(plaintexts) != len(answers):
        raise UseCaseError(f"{len(plaintexts)} plaintexts for {len(answers)} protected answers")
    return UseCaseParams(
        payload=access_response(request, answers, date_time=date_time),
        sensitive=tuple(plaintexts),
    )
