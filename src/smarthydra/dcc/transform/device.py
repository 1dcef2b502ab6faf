"""Device types the DCC addresses, as the smart metering inventory records them."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


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


# GBCS DeviceType (join commands and device log entries): the code each device type has.
GBCS_DEVICE_TYPE_CODES: dict[DeviceType, int] = {
    DeviceType.GSME: 0,
    DeviceType.ESME: 1,
    DeviceType.CHF: 2,
    DeviceType.GPF: 3,
    DeviceType.HCALCS: 4,
    DeviceType.PPMID: 5,
    DeviceType.IHD: 6,  # a type 2 device
}


@dataclass(frozen=True)
class InventoryDevice:
    """What the inventory records about a device other than the target (a join's other
    device, an entry of a device log): its type and its key-agreement certificate."""

    device_type: DeviceType
    key_agreement_certificate: bytes | None = None


@dataclass(frozen=True)
class HanBackup:
    """A comms hub's backup of its HAN, as the DCC keeps it to restore on a replacement hub
    (8.12.1, CCS03): the network's extended PAN id and each device log entry's EUI-64 with
    its 16-byte key (the CHF's restore_PAN)."""

    extended_pan_id: bytes
    entries: tuple[tuple[bytes, bytes], ...]

    def __post_init__(self) -> None:
        if len(self.extended_pan_id) != 8:
            raise ValueError("an extended PAN id is 8 bytes")
        for eui, key in self.entries:
            if len(eui) != 8 or len(key) != 16:
                raise ValueError("a HAN backup entry is an 8-byte EUI and a 16-byte key")


@dataclass(frozen=True)
class Inventory:
    """The parts of the smart metering inventory the transform reads: devices by EUI, the
    device logs (joined devices, in order) of comms hubs and gas proxies, and the HAN
    backups of comms hubs."""

    devices: dict[bytes, InventoryDevice]
    device_logs: dict[bytes, tuple[bytes, ...]]
    han_backups: dict[bytes, HanBackup] = field(default_factory=dict)

    def device(self, eui: bytes) -> InventoryDevice | None:
        return self.devices.get(eui)

    def device_log(self, eui: bytes) -> tuple[bytes, ...] | None:
        return self.device_logs.get(eui)

    def han_backup(self, hub: bytes) -> HanBackup | None:
        return self.han_backups.get(hub)


NO_INVENTORY = Inventory({}, {})
