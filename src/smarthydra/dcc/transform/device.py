"""Device types the DCC addresses, as the smart metering inventory records them."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class DeviceType(enum.Enum):
    ESME = "ESME"  # electricity smart meter
    GSME = "GSME"  # gas smart meter (reached through the gas proxy function)
    CHF = "CHF"  # communications hub function
    GPF = "GPF"  # gas proxy function (holds the gas meter's mirror)
    PPMID = "PPMID"  # prepayment meter interface device
    HCALCS = "HCALCS"  # HAN-connected auxiliary load control switch
    IHD = "IHD"  # in-home display (type 2 device)
    SAPC = "SAPC"  # standalone auxiliary proportional controller


class EsmeVariant(enum.Enum):
    """DUIS ESMEVariant: which ESME use case variants apply."""

    SINGLE_ELEMENT = "A"
    TWIN_ELEMENT = "B"
    POLYPHASE = "C"


@dataclass(frozen=True)
class Target:
    """What the DCC's inventory says about the request's target device."""

    device_type: DeviceType
    esme_variant: EsmeVariant = EsmeVariant.SINGLE_ELEMENT
    # The device implements the earlier GBCS use cases that later versions superseded
    # (e.g. ECS26d, not ECS26l, for its billing calendar): the DCC sends what it understands.
    legacy: bool = False
