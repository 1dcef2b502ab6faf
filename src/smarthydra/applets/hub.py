"""The Hydra hub secure element with its value-added applets, and the host's view of it.

:func:`hydra_vas_profile` builds the card image: a GlobalPlatform card (issuer security
domain from :mod:`smarthydra.card.gp.profile`), one supplementary security domain per
application provider, each with its own SCP03 keys, and one load file per applet (so each
applet is its own firewall context), installed under its provider's SSD:

============== ================ ======================= ==============================
applet         SSD (provider)   party it seals to       reads from meter data
============== ================ ======================= ==============================
meter data     ISD (issuer)     - (consent receipts)    -
billing        supplier         supplier                half hours, for the bill
audit          ombudsman        ombudsman               half hours, for a dispute
power quality  distributor      distributor             voltages
energy agent   agent            agent                   under consent
price compar.  other user       other user (via DCC)    under consent
telehealth     telehealth       telehealth provider     nothing
============== ================ ======================= ==============================

:class:`HydraHost` is the hub host's reader for these applets (SELECT, then the applet's
commands with extended Le), and what the hub's virtual terminal does for WAN and HAN
messages bound for them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cbor2

from smarthydra.applets import cose
from smarthydra.applets.agent import INS_RELEASE as INS_AGENT_RELEASE
from smarthydra.applets.agent import EnergyAgentApplet
from smarthydra.applets.audit import INS_DISPUTE, AuditApplet
from smarthydra.applets.base import CLA, INS_PUBLIC_KEY, HydraApplet, source_hash
from smarthydra.applets.billing import INS_CLOSE_PERIOD, INS_SET_TARIFF, BillingApplet
from smarthydra.applets.consent import Consent, LogEntry
from smarthydra.applets.power_quality import INS_REPORT, PowerQualityApplet
from smarthydra.applets.price_comparison import INS_RELEASE as INS_PC_RELEASE
from smarthydra.applets.price_comparison import PriceComparisonApplet
from smarthydra.applets.telehealth import INS_READING, HealthReading, TelehealthApplet
from smarthydra.applets.vault import (
    INS_CONSENTS,
    INS_GRANT,
    INS_PUSH_DAY,
    INS_READ_LOG,
    INS_REVOKE,
    LOG_PAGE,
    SLOTS,
    MeterDataApplet,
)
from smarthydra.card.apdu import SW, CommandAPDU, ResponseAPDU
from smarthydra.card.card import Card, CardProfile
from smarthydra.card.gp.keystore import KeyType, SdKey
from smarthydra.card.gp.management import ISD_AID, SD_MODULE_AID, SD_PACKAGE_AID, KeyId
from smarthydra.card.gp.profile import IsdSetup, gp_profile
from smarthydra.card.gp.sd import keys_dgi
from smarthydra.card.memory import MemoryBacking
from smarthydra.card.registry import LifeCycle, LoadFile, Privilege, privileges_of
from smarthydra.card.rng import DeterministicRandom, RandomSource
from smarthydra.card.runtime import CardManager

AID_PREFIX = bytes.fromhex("F04859445241")  # "HYDRA" under a proprietary RID
SSD_KVN = 0x30


@dataclass(frozen=True)
class AppletSlot:
    """Where one value-added applet lives: its load file, module, instance and SSD."""

    name: str
    number: int
    ssd: str  # provider name, or "" for the issuer security domain

    @property
    def load_file_aid(self) -> bytes:
        return AID_PREFIX + bytes((self.number, 0x00))

    @property
    def module_aid(self) -> bytes:
        return self.load_file_aid + b"\x01"

    @property
    def aid(self) -> bytes:
        return AID_PREFIX + bytes((self.number, 0x01))


METER_DATA = AppletSlot("meter-data", 0x10, "")
BILLING = AppletSlot("billing", 0x11, "supplier")
AUDIT = AppletSlot("audit", 0x12, "ombudsman")
POWER_QUALITY = AppletSlot("power-quality", 0x13, "distributor")
AGENT = AppletSlot("energy-agent", 0x14, "agent")
PRICE_COMPARISON = AppletSlot("price-comparison", 0x15, "other-user")
TELEHEALTH = AppletSlot("telehealth", 0x16, "telehealth")
SLOTS_BY_NAME = {s.name: s for s in (METER_DATA, BILLING, AUDIT, POWER_QUALITY, AGENT,
                                     PRICE_COMPARISON, TELEHEALTH)}
PROVIDERS = ("supplier", "ombudsman", "distributor", "agent", "other-user", "telehealth")


def ssd_aid(provider: str) -> bytes:
    return AID_PREFIX + b"\x53" + bytes((PROVIDERS.index(provider) + 1,))


@dataclass(frozen=True)
class PartyPublic:
    """What the card needs of a party: its name, signing key and key-agreement key (x||y)."""

    name: str
    signing: bytes
    agreement: bytes


@dataclass(frozen=True)
class HydraSetup:
    """Everything the card issuer personalises into one hub's secure element."""

    hub: str
    meter: str
    parties: dict[str, PartyPublic]  # by provider name (see PROVIDERS)
    ssd_keys: dict[str, bytes]  # SCP03 static key per provider (K-ENC = K-MAC = K-DEK)
    telehealth_devices: tuple[bytes, ...] = ()
    classes: dict[str, type[HydraApplet]] = field(default_factory=lambda: {
        "meter-data": MeterDataApplet, "billing": BillingApplet, "audit": AuditApplet,
        "power-quality": PowerQualityApplet, "energy-agent": EnergyAgentApplet,
        "price-comparison": PriceComparisonApplet, "telehealth": TelehealthApplet,
    })
    isd: IsdSetup = field(default_factory=IsdSetup)

    def party(self, provider: str) -> PartyPublic:
        return self.parties[provider]

    def install_params(self, slot: AppletSlot) -> bytes:
        """The CBOR install parameters of one applet."""
        cls = self.classes[slot.name]
        provider = slot.ssd or "supplier"  # the meter-data applet takes supplier instructions
        party = self.party(provider)
        settings: dict[str, Any] = {
            "hub": self.hub, "party": party.name, "party-ka": party.agreement,
            "party-sig": party.signing, "source-sha256": source_hash(cls),
            "meter": self.meter, "meter-data": METER_DATA.aid,
        }
        if slot is METER_DATA:
            settings["clients"] = {
                BILLING.aid: ["billing", self.party("supplier").name],
                AUDIT.aid: ["audit", self.party("ombudsman").name],
                POWER_QUALITY.aid: ["pq", self.party("distributor").name],
                AGENT.aid: ["agent", self.party("agent").name],
                PRICE_COMPARISON.aid: ["pricecomp", self.party("other-user").name],
            }
        if slot is BILLING:
            settings["audit"] = AUDIT.aid
        if slot is AUDIT:
            settings["billing"] = BILLING.aid
        if slot is TELEHEALTH:
            settings["devices"] = list(self.telehealth_devices)
        return cose.canonical(settings)

    def load_files(self) -> list[LoadFile]:
        return [LoadFile(s.load_file_aid, {s.module_aid: self.classes[s.name]}, s.name)
                for s in SLOTS_BY_NAME.values()]


def personalise_hydra(setup: HydraSetup, manager: CardManager) -> None:
    """Install the SSDs and applets that are missing (safe on every power-up)."""
    for provider in PROVIDERS:
        aid = ssd_aid(provider)
        if manager.entry(aid) is None:
            manager.install(SD_PACKAGE_AID, SD_MODULE_AID, aid,
                            privileges=privileges_of(Privilege.SECURITY_DOMAIN),
                            life_cycle=LifeCycle.PERSONALIZED, associated_sd=setup.isd.aid)
            key = setup.ssd_keys[provider]
            manager.forward_data(aid, keys_dgi([
                SdKey(SSD_KVN, kid, KeyType.AES, key) for kid in (KeyId.ENC, KeyId.MAC,
                                                                   KeyId.DEK)]))
    for slot in SLOTS_BY_NAME.values():
        if manager.entry(slot.aid) is None:
            manager.install(slot.load_file_aid, slot.module_aid, slot.aid,
                            params=setup.install_params(slot),
                            associated_sd=ssd_aid(slot.ssd) if slot.ssd else setup.isd.aid)


def hydra_vas_profile(setup: HydraSetup) -> CardProfile:
    base = gp_profile(setup.isd, name="hydra-vas", load_files=setup.load_files())
    base_personalise = base.personalize

    def personalize(manager: CardManager) -> None:
        if base_personalise is not None:
            base_personalise(manager)
        personalise_hydra(setup, manager)

    return CardProfile(base.name, base.load_files, personalize, base.config, base.resolver)


class HydraCommandError(Exception):
    """An applet answered a status word other than 9000."""

    def __init__(self, applet: str, ins: int, sw: int, reason: str = "") -> None:
        detail = f" ({reason})" if reason else ""
        super().__init__(f"{applet} INS {ins:02X}: SW {sw:04X}{detail}")
        self.applet, self.ins, self.sw = applet, ins, sw


class HydraHost:
    """The hub host's access to the value-added applets, by APDU only.

    With ``own_channel`` the host opens a logical channel of its own (MANAGE CHANNEL), so it
    can share the secure element with the hub's other functions (which use the basic channel).
    """

    def __init__(self, card: Card, *, own_channel: bool = False) -> None:
        self.card = card
        self.card.power_on()
        self._selected: bytes | None = None
        self.apdus = 0
        self.channel = 0
        if own_channel:
            response = self._send(CommandAPDU(0x00, 0x70, 0x00, 0x00, b"", 1))
            if response.sw != SW.OK or len(response.data) != 1 or not 0 < response.data[0] < 4:
                raise HydraCommandError("card", 0x70, response.sw, "no logical channel free")
            self.channel = response.data[0]

    @classmethod
    def build(cls, setup: HydraSetup, rng: RandomSource | None = None) -> HydraHost:
        card = Card(MemoryBacking(), hydra_vas_profile(setup),
                    rng=rng or DeterministicRandom(b"hydra-vas" + setup.hub.encode()))
        return cls(card)

    def _send(self, command: CommandAPDU) -> ResponseAPDU:
        self.apdus += 1
        return ResponseAPDU.parse(self.card.transmit(command.encode()))

    def call(self, slot: AppletSlot, ins: int, data: bytes = b"", p1: int = 0, p2: int = 0
             ) -> bytes:
        if self._selected != slot.aid:
            response = self._send(CommandAPDU(self.channel, 0xA4, 0x04, 0x00, slot.aid, 0))
            if response.sw != SW.OK:
                self._selected = None
                raise HydraCommandError(slot.name, 0xA4, response.sw)
            self._selected = slot.aid
        response = self._send(CommandAPDU(CLA | self.channel, ins, p1, p2, data, 65536))
        if response.sw != SW.OK:
            reason = self.card.runtime.last_error if response.sw == SW.UNKNOWN else ""
            raise HydraCommandError(slot.name, ins, response.sw, reason)
        return response.data

    # --- data in -------------------------------------------------------------------------

    def public_key(self, slot: AppletSlot) -> bytes:
        return self.call(slot, INS_PUBLIC_KEY)

    def push_day(self, day: dt.date, import_wh: Sequence[int], voltage_v: Sequence[int]) -> None:
        if len(import_wh) != SLOTS or len(voltage_v) != SLOTS:
            raise ValueError("a day is 48 half hours")
        data = day.toordinal().to_bytes(4, "big")
        data += b"".join(min(max(v, 0), 0xFFFF).to_bytes(2, "big") for v in import_wh)
        data += b"".join(min(max(v, 0), 0xFFFF).to_bytes(2, "big") for v in voltage_v)
        self.call(METER_DATA, INS_PUSH_DAY, data)

    # --- consent (in-home display or supplier) ---------------------------------------------

    def grant_at_ihd(self, consent: Consent) -> bytes:
        return self.call(METER_DATA, INS_GRANT, cose.canonical(consent.to_payload()), p1=0)

    def revoke_at_ihd(self, party: str) -> bytes:
        return self.call(METER_DATA, INS_REVOKE, cose.canonical(party), p1=0)

    def grant_via_supplier(self, instruction: bytes) -> bytes:
        return self.call(METER_DATA, INS_GRANT, instruction, p1=1)

    def revoke_via_supplier(self, instruction: bytes) -> bytes:
        return self.call(METER_DATA, INS_REVOKE, instruction, p1=1)

    def consents(self) -> list[Consent]:
        return [Consent.from_payload(c) for c in cbor2.loads(self.call(METER_DATA,
                                                                        INS_CONSENTS))]

    def release_log(self) -> list[LogEntry]:
        """The consumer-readable log, as the in-home display reads it (paged)."""
        entries: list[LogEntry] = []
        while True:
            page = cbor2.loads(self.call(METER_DATA, INS_READ_LOG, p1=len(entries) >> 8,
                                         p2=len(entries) & 0xFF))
            entries.extend(LogEntry.from_payload(e) for e in page)
            if len(page) < LOG_PAGE:
                return entries

    # --- what leaves for the parties -------------------------------------------------------

    def set_tariff(self, message: bytes) -> None:
        self.call(BILLING, INS_SET_TARIFF, message)

    def close_period(self, first: dt.date, last: dt.date) -> bytes:
        return self.call(BILLING, INS_CLOSE_PERIOD, _range(first, last))

    def dispute(self, first: dt.date, last: dt.date) -> tuple[bytes, bytes]:
        justification, verdict = cbor2.loads(self.call(AUDIT, INS_DISPUTE, _range(first, last)))
        return justification, verdict

    def power_quality(self, day: dt.date) -> bytes:
        return self.call(POWER_QUALITY, INS_REPORT, day.toordinal().to_bytes(4, "big"))

    def agent_release(self, first: dt.date, last: dt.date, insights: bool = False) -> bytes:
        return self.call(AGENT, INS_AGENT_RELEASE, _range(first, last), p1=1 if insights else 0)

    def price_comparison(self) -> bytes:
        return self.call(PRICE_COMPARISON, INS_PC_RELEASE)

    def health_reading(self, device: bytes, reading: HealthReading) -> bytes:
        return self.call(TELEHEALTH, INS_READING, device + reading.encode())


def _range(first: dt.date, last: dt.date) -> bytes:
    return first.toordinal().to_bytes(4, "big") + last.toordinal().to_bytes(4, "big")


__all__ = ["ISD_AID", "HydraHost", "HydraSetup", "PartyPublic", "hydra_vas_profile"]
