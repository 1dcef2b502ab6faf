"""The card registry: load files, applet instances, life cycles and privileges.

Entries are kept in NVM cells (so installing and deleting are journalled like everything
else). Life-cycle bytes and the 3-byte privileges follow GlobalPlatform Card Specification
2.3.1 (§11.1.1, table 6-1) so that a GlobalPlatform layer can use them as they are.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cbor2

if TYPE_CHECKING:
    from smarthydra.card.applet import Applet

APP_PREFIX = "r/app/"
LOAD_FILE_PREFIX = "r/lf/"
LOAD_FILE_DATA_PREFIX = "lfd/"
CARD_LIFE_CYCLE_CELL = "r/card"
MIN_AID = 5
MAX_AID = 16


class RegistryError(Exception):
    """A registry operation is not allowed (unknown AID, duplicate, bad life-cycle value)."""


class LifeCycle(enum.IntEnum):
    # load files
    LOADED = 0x01
    # applications and security domains
    INSTALLED = 0x03
    SELECTABLE = 0x07
    PERSONALIZED = 0x0F  # security domains
    LOCKED = 0x80  # bit added to the current state
    # the card
    OP_READY = 0x01
    INITIALIZED = 0x07
    SECURED = 0x0F
    CARD_LOCKED = 0x7F
    TERMINATED = 0xFF


class Privilege(enum.IntEnum):
    """GlobalPlatform privileges as 24-bit masks over the 3 privilege bytes."""

    SECURITY_DOMAIN = 0x800000
    DAP_VERIFICATION = 0xC00000
    DELEGATED_MANAGEMENT = 0xA00000
    CARD_LOCK = 0x100000
    CARD_TERMINATE = 0x080000
    CARD_RESET = 0x040000  # default selected on the basic channel
    CVM_MANAGEMENT = 0x020000
    MANDATED_DAP = 0xC10000
    TRUSTED_PATH = 0x008000
    AUTHORIZED_MANAGEMENT = 0x004000
    TOKEN_VERIFICATION = 0x002000
    GLOBAL_DELETE = 0x001000
    GLOBAL_LOCK = 0x000800
    GLOBAL_REGISTRY = 0x000400
    FINAL_APPLICATION = 0x000200
    GLOBAL_SERVICE = 0x000100
    RECEIPT_GENERATION = 0x000080
    CIPHERED_LOAD_FILE_DATA_BLOCK = 0x000040
    CONTACTLESS_ACTIVATION = 0x000020
    CONTACTLESS_SELF_ACTIVATION = 0x000010


def has_privilege(privileges: bytes, privilege: Privilege) -> bool:
    mask = int(privilege)
    return int.from_bytes(privileges, "big") & mask == mask


def privileges_of(*privileges: Privilege) -> bytes:
    value = 0
    for privilege in privileges:
        value |= int(privilege)
    return value.to_bytes(3, "big")


def check_aid(aid: bytes, what: str = "AID") -> None:
    if not MIN_AID <= len(aid) <= MAX_AID:
        raise RegistryError(f"{what} must be {MIN_AID}..{MAX_AID} bytes, got {len(aid)}")


@dataclass(frozen=True)
class LoadFile:
    """Applet code: a package AID (one firewall context) and its applet classes by module AID."""

    aid: bytes
    modules: Mapping[bytes, type[Applet]]
    name: str = ""

    def __post_init__(self) -> None:
        check_aid(self.aid, "load file AID")
        for module in self.modules:
            check_aid(module, "module AID")


@dataclass(frozen=True)
class LoadFileEntry:
    aid: bytes
    life_cycle: int
    associated_sd: bytes | None
    rom: bool

    def encode(self) -> bytes:
        return cbor2.dumps([self.life_cycle, self.associated_sd, self.rom])

    @staticmethod
    def decode(aid: bytes, raw: bytes) -> LoadFileEntry:
        life_cycle, associated_sd, rom = cbor2.loads(raw)
        return LoadFileEntry(aid, int(life_cycle), associated_sd, bool(rom))

    @property
    def cell(self) -> str:
        return LOAD_FILE_PREFIX + self.aid.hex()


@dataclass(frozen=True)
class RegistryEntry:
    """An applet instance (or security domain) in the registry."""

    aid: bytes
    load_file_aid: bytes
    module_aid: bytes
    life_cycle: int
    privileges: bytes
    associated_sd: bytes | None

    def __post_init__(self) -> None:
        if len(self.privileges) != 3:
            raise RegistryError(f"privileges are 3 bytes, got {len(self.privileges)}")
        if not 0 <= self.life_cycle <= 0xFF:
            raise RegistryError(f"a life-cycle state is one byte, got {self.life_cycle}")

    def encode(self) -> bytes:
        return cbor2.dumps(
            [self.load_file_aid, self.module_aid, self.life_cycle, self.privileges,
             self.associated_sd]
        )

    @staticmethod
    def decode(aid: bytes, raw: bytes) -> RegistryEntry:
        load_file_aid, module_aid, life_cycle, privileges, associated_sd = cbor2.loads(raw)
        return RegistryEntry(aid, load_file_aid, module_aid, int(life_cycle), privileges,
                             associated_sd)

    @property
    def cell(self) -> str:
        return APP_PREFIX + self.aid.hex()

    @property
    def selectable(self) -> bool:
        return self.life_cycle & 0x07 == 0x07 and not self.life_cycle & LifeCycle.LOCKED

    @property
    def locked(self) -> bool:
        return bool(self.life_cycle & LifeCycle.LOCKED)

    def has(self, privilege: Privilege) -> bool:
        return has_privilege(self.privileges, privilege)

    @property
    def is_security_domain(self) -> bool:
        return self.has(Privilege.SECURITY_DOMAIN)
