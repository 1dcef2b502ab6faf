"""The DCC's transform from a DUIS service request to the GBCS the device expects.

One entry per service request variant carried end to end. The mapping is deterministic: the
RequestID counter becomes the GBCS originator counter, the sender the originator, the target
device the recipient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from smarthydra.duis.request import ServiceRequest
from smarthydra.gbcs.builder import build_precommand
from smarthydra.gbcs.envelope import GeneralSigning
from smarthydra.gbcs.esme_payloads import (
    MESSAGE_CODE_ECS17B,
    MESSAGE_CODE_ECS43,
    open_load_switch_command,
    read_import_registers_command,
)


class TransformError(Exception):
    """The DCC cannot express this request in GBCS (unknown SRV, bad parameters)."""


@dataclass(frozen=True)
class UseCaseMapping:
    use_case: str
    message_code: int
    payload: Callable[[ServiceRequest], bytes]


def _ecs17b(request: ServiceRequest) -> bytes:
    rid = request.request_id
    return read_import_registers_command(rid.counter, rid.originator.value, rid.target.value)


def _ecs43(request: ServiceRequest) -> bytes:
    return open_load_switch_command(request.request_id.counter)


# Service reference variant -> GBCS use case for an ESME target.
ESME_MAPPINGS: dict[str, UseCaseMapping] = {
    "4.1.1": UseCaseMapping("ECS17b", MESSAGE_CODE_ECS17B, _ecs17b),
    "7.2": UseCaseMapping("ECS43", MESSAGE_CODE_ECS43, _ecs43),
}


def supported_variants() -> frozenset[str]:
    return frozenset(ESME_MAPPINGS)


def to_general_signing(
    request: ServiceRequest, *, precommand: bool = False
) -> tuple[UseCaseMapping, GeneralSigning]:
    """The unsigned general-signing APDU.

    A non-critical command ends with signature length ``00``; a pre-command for the user to
    sign ends at the payload, as the RTDS PRECOMMAND files do.
    """
    mapping = ESME_MAPPINGS.get(request.service_reference_variant)
    if mapping is None:
        raise TransformError(
            f"service request variant {request.service_reference_variant} has no GBCS mapping yet"
        )
    rid = request.request_id
    general_signing = build_precommand(
        originator=rid.originator.value,
        recipient=rid.target.value,
        counter=rid.counter,
        message_code=mapping.message_code,
        payload=mapping.payload(request),
        signature_field=not precommand,
    )
    return mapping, general_signing
