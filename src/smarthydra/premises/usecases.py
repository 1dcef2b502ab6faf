"""The GBCS use cases the premises devices serve: message code, criticality, who may send.

Facts from GBCS (message codes and the critical / non-critical category of each use case);
the remote-party roles follow the DUIS eligibility of the matching service request.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.IntEnum):
    """GBCS remote party roles (trust-anchor cells)."""

    ROOT = 0
    RECOVERY = 1
    SUPPLIER = 2
    NETWORK_OPERATOR = 3
    ACCESS_CONTROL_BROKER = 4
    TRANSITIONAL_COS = 5
    WAN_PROVIDER = 6


class Target(enum.Enum):
    ESME = "ESME"
    GSME = "GSME"
    CHF = "CHF"
    PPMID = "PPMID"


@dataclass(frozen=True)
class UseCase:
    name: str
    code: int
    target: Target
    critical: bool
    roles: frozenset[Role]


_S = frozenset({Role.SUPPLIER})
_SN = frozenset({Role.SUPPLIER, Role.NETWORK_OPERATOR})
_ACB = frozenset({Role.ACCESS_CONTROL_BROKER})

_TABLE = [
    # ESME
    UseCase("ECS01a", 0x0019, Target.ESME, True, _S),
    UseCase("ECS01b", 0x00A2, Target.ESME, True, _S),
    UseCase("ECS01c", 0x00B7, Target.ESME, True, _S),
    UseCase("ECS01d", 0x00C7, Target.ESME, True, _S),
    UseCase("ECS02", 0x001A, Target.ESME, True, _S),
    UseCase("ECS03", 0x001B, Target.ESME, True, _S),
    UseCase("ECS04a", 0x001C, Target.ESME, True, _S),
    UseCase("ECS04b", 0x00B3, Target.ESME, True, _S),
    UseCase("ECS08", 0x001F, Target.ESME, True, _S),
    # ECS08 for meters of later GBCS versions: the same settings, the maximum meter balance
    # through attribute 4 of 0-0:94.44.2.20 (ECS08 wrote attribute 2).
    UseCase("ECS08a", 0x00DE, Target.ESME, True, _S),
    UseCase("CS01a", 0x0007, Target.ESME, False, _S),
    UseCase("ECS17b", 0x0027, Target.ESME, False, _SN),
    UseCase("ECS21a", 0x0033, Target.ESME, False, _S),
    UseCase("ECS22b", 0x0037, Target.ESME, False, _SN),
    UseCase("ECS23", 0x0039, Target.ESME, False, _SN),
    UseCase("ECS25a", 0x00AC, Target.ESME, False, _S),
    UseCase("ECS25b", 0x00B0, Target.ESME, False, frozenset({Role.NETWORK_OPERATOR})),
    UseCase("ECS35a", 0x0048, Target.ESME, False, _SN),
    UseCase("ECS35b", 0x0049, Target.ESME, False, _SN),
    UseCase("ECS42", 0x004F, Target.ESME, True, _S),
    UseCase("ECS43", 0x0050, Target.ESME, True, _S),
    UseCase("ECS44", 0x0051, Target.ESME, True, _S),
    UseCase("ECS45", 0x0052, Target.ESME, False, _SN),
    UseCase("ECS70", 0x0062, Target.ESME, True, _S),
    UseCase("CS03A1", 0x000D, Target.ESME, True, _S),
    UseCase("CS04AC", 0x000F, Target.ESME, True, _S),
    UseCase("CS06", 0x0012, Target.ESME, True, _S),
    UseCase("ECS52", 0x0059, Target.ESME, False, _SN),
    # GSME (through the gas proxy function)
    UseCase("GCS01a", 0x006B, Target.GSME, True, _S),
    UseCase("GCS01b", 0x00A3, Target.GSME, True, _S),
    UseCase("GCS02", 0x006C, Target.GSME, True, _S),
    UseCase("GCS03", 0x006D, Target.GSME, True, _S),
    UseCase("GCS05", 0x006F, Target.GSME, True, _S),
    UseCase("GCS40a", 0x0086, Target.GSME, True, _S),
    UseCase("GCS40b", 0x00B4, Target.GSME, True, _S),
    UseCase("GCS40c", 0x00C0, Target.GSME, True, _S),
    UseCase("GCS40d", 0x00C2, Target.GSME, True, _S),
    UseCase("GCS13a", 0x0074, Target.GSME, False, _SN),
    UseCase("GCS16a", 0x0077, Target.GSME, False, _S),
    UseCase("GCS17", 0x0078, Target.GSME, False, _SN),
    UseCase("GCS18", 0x0079, Target.GSME, False, _SN),
    UseCase("GCS20", 0x00AD, Target.GSME, False, _S),
    UseCase("GCS28", 0x007F, Target.GSME, True, _S),
    UseCase("GCS32", 0x0081, Target.GSME, True, _S),
    UseCase("GCS33", 0x0082, Target.GSME, False, _SN),
    UseCase("GCS39", 0x0085, Target.GSME, True, _S),
    UseCase("CS03B", 0x000E, Target.GSME, False, _S),
    UseCase("CS04B", 0x0010, Target.GSME, False, _S),
    # Communications hub function
    UseCase("CCS01", 0x0001, Target.CHF, False, _ACB),
    UseCase("CCS02", 0x0002, Target.CHF, False, _ACB),
    UseCase("CCS03", 0x0003, Target.CHF, False, _ACB),
    # Prepayment interface device: read its firmware version (SRV 11.2 to a PPMID / HCALCS),
    # sent by the DCC in its own name
    UseCase("CS08", 0x0129, Target.PPMID, False, _ACB),
]

BY_CODE: dict[int, UseCase] = {u.code: u for u in _TABLE}
BY_NAME: dict[str, UseCase] = {u.name: u for u in _TABLE}


def use_case(code: int) -> UseCase | None:
    return BY_CODE.get(code)


def for_target(target: Target) -> list[UseCase]:
    return [u for u in _TABLE if u.target is target]
