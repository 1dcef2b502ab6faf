"""The smart metering inventory and the DCC's user register.

The inventory knows every device (type, SMI status, hub, MPxN, its key-agreement public key
from its device certificate) and who is registered for each MPxN from which date. The user
register knows every DCC user, its roles and their status, and its SMKI signing key.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.dcc.transform.device import HanBackup
from smarthydra.eui import Eui64


class DeviceType(enum.Enum):
    ESME = "ESME"
    GSME = "GSME"
    COMMS_HUB = "CHF"
    GAS_PROXY = "GPF"
    PPMID = "PPMID"
    IHD = "IHD"
    HCALCS = "HCALCS"
    SAPC = "SAPC"


class SmiStatus(enum.Enum):
    PENDING = "Pending"
    WHITELISTED = "Whitelisted"
    INSTALLED_NOT_COMMISSIONED = "InstalledNotCommissioned"
    COMMISSIONED = "Commissioned"
    DECOMMISSIONED = "Decommissioned"
    SUSPENDED = "Suspended"
    WITHDRAWN = "Withdrawn"


class InventoryError(Exception):
    """An inventory or user-register change that cannot be made."""


@dataclass
class DeviceRecord:
    eui: Eui64
    device_type: DeviceType
    hub: Eui64
    mpxn: str
    key_agreement_key: ec.EllipticCurvePublicKey
    smi_status: SmiStatus = SmiStatus.COMMISSIONED
    # DUIS ESMEVariant of an ESME: A single element, B twin element, C polyphase.
    esme_variant: str = "A"
    # The device's key-agreement certificate (DER), which a method C join (8.7, CS03C)
    # sends to the device's partner; None where the DCC only holds the key.
    key_agreement_certificate: bytes | None = None


@dataclass(frozen=True)
class Registration:
    """Who holds ``role`` for an MPxN from ``effective_from`` (until superseded)."""

    mpxn: str
    role: str
    party: Eui64
    effective_from: datetime


class SmartMeteringInventory:
    def __init__(self) -> None:
        self._devices: dict[Eui64, DeviceRecord] = {}
        self._registrations: dict[tuple[str, str], list[Registration]] = {}
        # Device logs (joined devices, in order) of comms hubs and gas proxies, and each comms
        # hub's HAN backup (from its CS14 alerts): what a restore on a replacement sends.
        self._device_logs: dict[Eui64, tuple[Eui64, ...]] = {}
        self._han_backups: dict[Eui64, HanBackup] = {}

    def add_device(self, record: DeviceRecord) -> None:
        if record.eui in self._devices:
            raise InventoryError(f"device {record.eui} is already in the inventory")
        self._devices[record.eui] = record

    def device(self, eui: Eui64) -> DeviceRecord | None:
        return self._devices.get(eui)

    def devices(self) -> list[DeviceRecord]:
        return list(self._devices.values())

    def region(self, eui: Eui64) -> str:
        """The CSP region whose WAN reaches the device (one region in memory)."""
        return "central"

    def set_status(self, eui: Eui64, status: SmiStatus) -> None:
        record = self._devices.get(eui)
        if record is None:
            raise InventoryError(f"device {eui} is not in the inventory")
        record.smi_status = status

    def set_device_log(self, eui: Eui64, entries: tuple[Eui64, ...]) -> None:
        """Record the device log of comms hub or gas proxy ``eui`` (replacing any before)."""
        self._device_logs[eui] = tuple(entries)

    def device_log(self, eui: Eui64) -> tuple[Eui64, ...] | None:
        return self._device_logs.get(eui)

    def device_logs(self) -> dict[Eui64, tuple[Eui64, ...]]:
        return dict(self._device_logs)

    def record_han_backup(self, hub: Eui64, backup: HanBackup) -> None:
        """Keep comms hub ``hub``'s latest HAN backup (replacing any before)."""
        self._han_backups[hub] = backup

    def han_backup(self, hub: Eui64) -> HanBackup | None:
        return self._han_backups.get(hub)

    def register(self, registration: Registration) -> None:
        history = self._registrations.setdefault((registration.mpxn, registration.role), [])
        history.append(registration)
        history.sort(key=lambda r: r.effective_from)

    def registered_party(self, mpxn: str, role: str, at: datetime) -> Eui64 | None:
        """The party registered in ``role`` for ``mpxn`` on date ``at``."""
        current: Eui64 | None = None
        for registration in self._registrations.get((mpxn, role), []):
            if registration.effective_from <= at:
                current = registration.party
        return current


class UserStatus(enum.Enum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


@dataclass
class DccUser:
    """A DCC user: one EUI-64, some user roles, each with its own status and signing key."""

    eui: Eui64
    name: str
    roles: dict[str, UserStatus]
    signing_key: ec.EllipticCurvePublicKey
    status: UserStatus = UserStatus.ACTIVE
    # Per service request variant: (max requests, window in seconds) the user set for itself.
    thresholds: dict[str, tuple[int, float]] = field(default_factory=dict)


class UserRegister:
    def __init__(self) -> None:
        self._users: dict[Eui64, DccUser] = {}

    def add(self, user: DccUser) -> None:
        if user.eui in self._users:
            raise InventoryError(f"user {user.eui} is already registered")
        self._users[user.eui] = user

    def get(self, eui: Eui64) -> DccUser | None:
        return self._users.get(eui)

    def users(self) -> list[DccUser]:
        return list(self._users.values())
