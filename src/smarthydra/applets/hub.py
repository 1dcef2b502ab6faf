"""The Hydra hub secure element with its value-added applets, and the host's view of it.

:func:`hydra_vas_profile` builds the card image: a GlobalPlatform card (issuer security
domain from :mod:`smarthydra.card.gp.profile`), one supplementary security domain per
application provider, each with its own SCP03 keys, and one load file per applet (so each
applet is its own firewall context), installed under its provider's SSD. The billing applet
is not in the image: the supplier loads it after issuance (:func:`billing_package`, the exact
text of :mod:`.billing_card`) through its SSD, which holds DAP Verification with the
supplier's key and Delegated Management under the card issuer's tokens; the card runs it
restricted (:mod:`smarthydra.card.sandbox`).

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
messages bound for them. The host itself only feeds data in (the meter's days, consent at
the in-home display, health devices' readings); every command a party drives travels in
that party's own GlobalPlatform secure channel (:class:`PartyChannel`: SCP03 with the keys
of the party's SSD, opened through the applet), which the hub merely relays: deployed, as WAN
frames to the hub's virtual terminal on the party logical channel
(:mod:`smarthydra.applets.party_wan`, :mod:`smarthydra.parties.hydra_wan`); in process (the
host's :meth:`HydraHost.relay`) only as a test double. The applets are multi-selectable, so
the host feeds data in on its own logical channel while a party's session stays open.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import cbor2

from smarthydra.applets import cose
from smarthydra.applets.agent import INS_RELEASE as INS_AGENT_RELEASE
from smarthydra.applets.agent import EnergyAgentApplet
from smarthydra.applets.audit import INS_DISPUTE, AuditApplet
from smarthydra.applets.base import CLA, INS_APPEND, INS_PUBLIC_KEY, HydraApplet, source_hash
from smarthydra.applets.billing import INS_CLOSE_PERIOD, INS_SET_TARIFF, BillingApplet
from smarthydra.applets.consent import Consent, LogEntry
from smarthydra.applets.power_quality import INS_REPORT, PowerQualityApplet
from smarthydra.applets.price_comparison import INS_RELEASE as INS_PC_RELEASE
from smarthydra.applets.price_comparison import INS_ROUTED_RELEASE, PriceComparisonApplet
from smarthydra.applets.telehealth import (
    INS_ENROL,
    INS_READING,
    HealthReading,
    TelehealthApplet,
)
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
from smarthydra.card.gp.apdu import CommandApdu
from smarthydra.card.gp.client import GpClient, GpCommandError
from smarthydra.card.gp.errors import GpError
from smarthydra.card.gp.keystore import KeyType, SdKey
from smarthydra.card.gp.management import ISD_AID, SD_MODULE_AID, SD_PACKAGE_AID, KeyId
from smarthydra.card.gp.profile import IsdSetup, gp_profile
from smarthydra.card.gp.scp03 import Scp03StaticKeys
from smarthydra.card.gp.sd import keys_dgi
from smarthydra.card.memory import MemoryBacking
from smarthydra.card.package import AppletPackage
from smarthydra.card.registry import LifeCycle, LoadFile, Privilege, privileges_of
from smarthydra.card.rng import DeterministicRandom, RandomSource
from smarthydra.card.runtime import CardManager
from smarthydra.crypto import primitives

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


DAP_KVN = 0x01
TOKEN_KVN = 0x01


@functools.cache
def billing_package() -> AppletPackage:
    """The billing applet as it is published and loaded: :mod:`.billing_card`'s exact text."""
    source = resources.files("smarthydra.applets").joinpath("billing_card.py").read_text(
        encoding="utf-8")
    return AppletPackage.build(source, aid=BILLING.load_file_aid, name="hydra-billing",
                               applets={"BillingApplet": (BILLING.module_aid,)})


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
    #: billing as a post-issuance restricted load file (supplier's DAP, issuer's tokens),
    #: not in the card image; False puts ``classes["billing"]`` in ROM instead
    post_issuance_billing: bool = True
    issuer_token: bytes = b""  # the card issuer's token-verification key x || y

    def party(self, provider: str) -> PartyPublic:
        return self.parties[provider]

    def install_params(self, slot: AppletSlot) -> bytes:
        """The CBOR install parameters of one applet."""
        provider = slot.ssd or "supplier"  # the meter-data applet takes supplier instructions
        party = self.party(provider)
        settings: dict[str, Any] = {
            "hub": self.hub, "party": party.name, "party-ka": party.agreement,
            "party-sig": party.signing, "source-sha256": self.source_of(slot),
            "meter": self.meter, "meter-data": METER_DATA.aid,
            "sd": ssd_aid(slot.ssd) if slot.ssd else self.isd.aid,
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

    def source_of(self, slot: AppletSlot) -> bytes:
        """The published source hash of the code that runs as ``slot``."""
        if slot is BILLING and self.post_issuance_billing:
            return billing_package().manifest.source_hash
        return source_hash(self.classes[slot.name])

    def rom_slots(self) -> list[AppletSlot]:
        return [s for s in SLOTS_BY_NAME.values()
                if not (s is BILLING and self.post_issuance_billing)]

    def channel_keys(self, provider: str) -> Scp03StaticKeys:
        """The SCP03 key set of ``provider``'s SSD (what that party, and only it, holds)."""
        key = self.ssd_keys[provider]
        return Scp03StaticKeys(key, key, key, SSD_KVN)

    def load_files(self) -> list[LoadFile]:
        return [LoadFile(s.load_file_aid, {s.module_aid: self.classes[s.name]}, s.name)
                for s in self.rom_slots()]


def personalise_hydra(setup: HydraSetup, manager: CardManager) -> None:
    """Install the SSDs and applets that are missing (safe on every power-up)."""
    isd = manager.entry(setup.isd.aid)
    if setup.issuer_token and isd is not None and not any(
            e.aid != setup.isd.aid and e.is_security_domain for e in manager.entries()):
        # the card issuer's token key, for the delegated management of post-issuance loads
        manager.forward_data(setup.isd.aid, keys_dgi([SdKey.ec_public(
            TOKEN_KVN, KeyId.TOKEN, primitives.public_key_from_xy(setup.issuer_token))]))
    for provider in PROVIDERS:
        aid = ssd_aid(provider)
        if manager.entry(aid) is None:
            loads_billing = provider == "supplier" and setup.post_issuance_billing
            privileges = privileges_of(Privilege.SECURITY_DOMAIN, *(
                (Privilege.DELEGATED_MANAGEMENT, Privilege.DAP_VERIFICATION)
                if loads_billing else ()))
            manager.install(SD_PACKAGE_AID, SD_MODULE_AID, aid, privileges=privileges,
                            life_cycle=LifeCycle.PERSONALIZED, associated_sd=setup.isd.aid)
            key = setup.ssd_keys[provider]
            manager.forward_data(aid, keys_dgi([
                SdKey(SSD_KVN, kid, KeyType.AES, key) for kid in (KeyId.ENC, KeyId.MAC,
                                                                   KeyId.DEK)]))
            if loads_billing:  # the supplier approves what its SSD loads with its DAP
                manager.forward_data(aid, keys_dgi([SdKey.ec_public(
                    DAP_KVN, KeyId.DAP,
                    primitives.public_key_from_xy(setup.party("supplier").signing))]))
    for slot in setup.rom_slots():
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


Transmit = Callable[[bytes], bytes]
SEGMENT = 200  # plain bytes per command under C-DECRYPTION (+ padding + C-MAC <= 255)
PARTY_SECURITY_LEVEL = 0x33  # C-MAC, C-DECRYPTION, R-MAC, R-ENCRYPTION


class ChannelRefused(HydraCommandError):
    """The party could not open its secure channel (wrong keys, or the applet refused)."""


class PartyChannel:
    """A party's end of its secure channel to its applet on one hub (GP SCP03 via its SSD).

    ``transmit`` carries raw APDUs to the card (the hub relays them; over the WAN in the
    deployed system). The session is opened through the applet (SELECT, INITIALIZE UPDATE,
    EXTERNAL AUTHENTICATE) and reopened whenever it was lost (another selection on the
    channel ends it). Command data longer than :data:`SEGMENT` goes in APPEND segments, each
    protected on its own.
    """

    def __init__(self, transmit: Transmit, slot: AppletSlot, keys: Scp03StaticKeys, *,
                 channel: int = 0, security_level: int = PARTY_SECURITY_LEVEL) -> None:
        self.slot = slot
        self.keys = keys
        self.security_level = security_level
        self.client = GpClient(transmit, channel)
        self.sessions = 0

    @property
    def is_open(self) -> bool:
        return self.client.session is not None

    def drop(self) -> None:
        """Forget the session (the card ended it: something else was selected)."""
        self.client.session = None

    def open(self) -> None:
        try:
            self.client.select(self.slot.aid)
            self.client.open_scp03(self.keys, security_level=self.security_level,
                                   sd_aid=ssd_aid(self.slot.ssd) if self.slot.ssd else None)
        except GpCommandError as exc:
            self.drop()
            raise ChannelRefused(self.slot.name, 0xA4, exc.sw, str(exc)) from None
        except GpError as exc:
            self.drop()
            raise ChannelRefused(self.slot.name, 0x82, exc.sw, str(exc)) from None
        except HydraCommandError:  # the transport (the WAN) carried no answer
            self.drop()
            raise
        self.sessions += 1

    def call(self, ins: int, data: bytes = b"", p1: int = 0, p2: int = 0) -> bytes:
        if not self.is_open:
            self.open()
        segments = [data[i:i + SEGMENT] for i in range(0, len(data), SEGMENT)] or [b""]
        try:
            for n, segment in enumerate(segments[:-1]):
                response = self.client.send(CommandApdu(CLA, INS_APPEND, n & 0xFF, 0, segment,
                                                        None).to_bytes())
                if response.sw != SW.OK:
                    raise HydraCommandError(self.slot.name, INS_APPEND, response.sw)
            response = self.client.send(CommandApdu(CLA, ins, p1, p2, segments[-1],
                                                    0x00).to_bytes())
        except GpError as exc:  # a response that does not verify ends the session
            self.drop()
            raise HydraCommandError(self.slot.name, ins, exc.sw, str(exc)) from None
        except HydraCommandError:  # the transport (the WAN) carried no answer
            self.drop()
            raise
        if response.sw != SW.OK:
            raise HydraCommandError(self.slot.name, ins, response.sw)
        return response.data


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
        self.parties: dict[str, PartyChannel] = {}
        self._active: PartyChannel | None = None

    @classmethod
    def build(cls, setup: HydraSetup, rng: RandomSource | None = None) -> HydraHost:
        card = Card(MemoryBacking(), hydra_vas_profile(setup),
                    rng=rng or DeterministicRandom(b"hydra-vas" + setup.hub.encode()))
        return cls(card)

    def _send(self, command: CommandAPDU) -> ResponseAPDU:
        self.apdus += 1
        return ResponseAPDU.parse(self.card.transmit(command.encode()))

    # --- the parties' channels, relayed --------------------------------------------------

    def relay(self, command: bytes) -> bytes:
        """Pass a party's APDU to the card unchanged (the hub cannot read a protected one)."""
        self._selected = None
        self.apdus += 1
        return self.card.transmit(command)

    def connect(self, provider: str, keys: Scp03StaticKeys, transmit: Transmit | None = None,
                channel: int | None = None) -> PartyChannel:
        """Register the channel through which ``provider`` (holding ``keys``) drives its
        applet; the party-driven helpers below use it. ``transmit`` is the party's route to
        the card (deployed: :class:`smarthydra.parties.hydra_wan.WanPartyLink` over the WAN,
        on the hub's party logical ``channel``); without one the APDUs are relayed in
        process on this host's channel (a test double)."""
        slot = next(s for s in SLOTS_BY_NAME.values() if s.ssd == provider)
        party = PartyChannel(transmit or self.relay, slot, keys,
                             channel=self.channel if channel is None else channel)
        self.parties[provider] = party
        return party

    def party_call(self, slot: AppletSlot, ins: int, data: bytes = b"", p1: int = 0,
                   p2: int = 0) -> bytes:
        """A party's command, through that party's channel (plain, and so refused, without)."""
        channel = self.parties.get(slot.ssd)
        if channel is None:
            return self.call(slot, ins, data, p1, p2)
        if self._active is not channel:
            if self._active is not None:
                self._active.drop()
            channel.drop()
            self._active = channel
        return channel.call(ins, data, p1, p2)

    def call(self, slot: AppletSlot, ins: int, data: bytes = b"", p1: int = 0, p2: int = 0
             ) -> bytes:
        if self._active is not None and self._active.client.channel == self.channel:
            self._active.drop()  # selecting on the party's channel ends its session
            self._active = None
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
        self.party_call(BILLING, INS_SET_TARIFF, message)

    def close_period(self, first: dt.date, last: dt.date) -> bytes:
        return self.party_call(BILLING, INS_CLOSE_PERIOD, _range(first, last))

    def dispute(self, first: dt.date, last: dt.date) -> tuple[bytes, bytes]:
        justification, verdict = cbor2.loads(self.party_call(AUDIT, INS_DISPUTE,
                                                             _range(first, last)))
        return justification, verdict

    def power_quality(self, day: dt.date) -> bytes:
        return self.party_call(POWER_QUALITY, INS_REPORT, day.toordinal().to_bytes(4, "big"))

    def agent_release(self, first: dt.date, last: dt.date, insights: bool = False) -> bytes:
        return self.party_call(AGENT, INS_AGENT_RELEASE, _range(first, last),
                               p1=1 if insights else 0)

    def price_comparison(self) -> bytes:
        return self.party_call(PRICE_COMPARISON, INS_PC_RELEASE)

    def routed_price_comparison(self) -> bytes:
        """The sealed 13 months, for an Other User's request the DCC routed to this hub."""
        return self.call(PRICE_COMPARISON, INS_ROUTED_RELEASE)

    def enrol_health_device(self, device: bytes) -> None:
        self.party_call(TELEHEALTH, INS_ENROL, device)

    def health_reading(self, device: bytes, reading: HealthReading) -> bytes:
        return self.call(TELEHEALTH, INS_READING, device + reading.encode())


def _range(first: dt.date, last: dt.date) -> bytes:
    return first.toordinal().to_bytes(4, "big") + last.toordinal().to_bytes(4, "big")


__all__ = ["ISD_AID", "ChannelRefused", "HydraHost", "HydraSetup", "PartyChannel",
           "PartyPublic", "hydra_vas_profile"]
