"""The DCC's transform from a DUIS service request to the GBCS the device expects.

Data-driven: :mod:`.table` maps each service request variant and device type to a use case
and says which DUIS body elements fill which leaves of that use case's payload template
(:mod:`.payload`, templates generated from the RTDS by :mod:`.generate`). Shapes a template
cannot hold are built in code: repeated DUIS elements as COSEM arrays (:mod:`.items`,
:mod:`.tariff`: calendars, schedules, tariffs), DER payloads (:mod:`.codecs`: CS02b, CS06,
CS02a/f) and ZCL command sequences for the gas meter (:mod:`.gas`: tariffs, prices, the
prepayment configuration); alert filters and gas event configuration (:mod:`.alerts`); joins
and device log restores, which carry what the :class:`Inventory` records (:mod:`.joins`).
"""

from __future__ import annotations

from smarthydra.dcc.transform.device import (
    DeviceType,
    EsmeVariant,
    Inventory,
    InventoryDevice,
    Target,
)
from smarthydra.dcc.transform.engine import DccOriginator, Transformed, transform
from smarthydra.dcc.transform.spec import TransformError
from smarthydra.dcc.transform.table import MAPPINGS
from smarthydra.duis.request import ServiceRequest
from smarthydra.gbcs.envelope import GeneralSigning

__all__ = [
    "MAPPINGS",
    "DccOriginator",
    "DeviceType",
    "EsmeVariant",
    "Inventory",
    "InventoryDevice",
    "Target",
    "TransformError",
    "Transformed",
    "supported_variants",
    "to_general_signing",
    "transform",
]


def supported_variants() -> frozenset[str]:
    return frozenset(MAPPINGS)


def to_general_signing(
    request: ServiceRequest,
    *,
    precommand: bool = False,
    target: Target | None = None,
) -> tuple[Transformed, GeneralSigning]:
    """The unsigned general-signing APDU (the older entry point :mod:`..service` uses).

    ``precommand`` asks for the pre-command form (ending at the payload) of a critical use
    case; without it a critical use case keeps its signature-length field. The target
    defaults to an ESME, the only device the in-process DCC delivered to so far.
    """
    result = transform(
        request,
        target or Target(DeviceType.ESME),
        check_variant=False,
        precommand_signature_field=not precommand,
    )
    return result, result.general_signing
