"""Deploying a new applet to a fleet of hubs: card issuer, DCC, one-way scripts, receipts.

GlobalPlatform delegated management (Card Specification 2.3.1 §9.2) over the store-and-forward
WAN, with :mod:`smarthydra.card.gp.client`:

1. The application provider has its own supplementary security domain (with Delegated
   Management) on every hub. The **card issuer** approves the new applet by issuing tokens
   (ECDSA, verified by each hub's ISD) for INSTALL [for load] and INSTALL [for install], and
   records what it authorised.
2. For each hub the provider **precomputes** a one-way SCP03 script to its SSD
   (pseudo-random card challenge from the hub's sequence counter, which the issuer's records
   hold): SELECT, INITIALIZE UPDATE, EXTERNAL AUTHENTICATE, INSTALL [for load], LOAD blocks,
   INSTALL [for install and make selectable] - nothing from the card is needed.
3. The **DCC** relays the batch (only from an authorised sender) through the CSP to each hub;
   the hub host plays the script into its secure element and the responses come back. With
   :class:`WanScriptRelay` the batch travels over the DCC's WAN (:class:`WanNetwork`, the
   CSP leg the DCC's service requests use) as one frame per hub, to the hub's
   :class:`CardScriptPort`.
4. The issuer **reconciles**: each hub's ISD answers a delegated operation with a receipt
   (AES-CMAC with the hub's receipt key over counter, card unique data and AIDs). A hub is
   *deployed* when both receipts verify with the counters the issuer expects; *failed* when
   nothing was loaded; *partial* when loaded but not installed.
5. **Rollback**: for partial hubs (or the whole campaign) a DELETE [related] script with an
   issuer delete token, reconciled the same way.

The applet deployed here (:data:`FLEX_SOURCE`) is a post-issuance package run by the card's
sandbox: a demand-flexibility applet that keeps the provider's current event.
"""

from __future__ import annotations

import abc
import hmac
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.card.apdu import SW
from smarthydra.card.card import Card, CardProfile
from smarthydra.card.gp import management as gpm
from smarthydra.card.gp.apdu import ResponseApdu
from smarthydra.card.gp.client import (
    delete_command,
    install_command,
    install_for_load_command,
    load_commands,
    one_way_scp03_script,
    token_signer_for,
)
from smarthydra.card.gp.errors import GpError
from smarthydra.card.gp.keystore import KeyType, SdKey
from smarthydra.card.gp.management import KeyId
from smarthydra.card.gp.profile import IsdSetup, gp_profile, gp_test_keys
from smarthydra.card.gp.scp03 import Scp03StaticKeys
from smarthydra.card.gp.sd import keys_dgi
from smarthydra.card.memory import MemoryBacking
from smarthydra.card.package import AppletPackage
from smarthydra.card.registry import LifeCycle, Privilege, privileges_of
from smarthydra.card.rng import DeterministicRandom
from smarthydra.card.runtime import CardManager
from smarthydra.crypto import primitives
from smarthydra.eui import Eui64
from smarthydra.wan.network import WanError, WanNetwork

Transmit = Callable[[bytes], bytes]

FLEX_PACKAGE_AID = bytes.fromhex("F048594452412000")
FLEX_MODULE_AID = FLEX_PACKAGE_AID + b"\x01"
FLEX_APPLET_AID = bytes.fromhex("F048594452412001")
FLEX_SSD_AID = bytes.fromhex("F04859445241530A")
ISSUER_ID = bytes.fromhex("5348594452")

#: the new service: a demand-flexibility applet, written against the card API only
FLEX_SOURCE = '''
from smarthydra.card.apdu import SW
from smarthydra.card.applet import APDU, Applet, ISOException, PersistentBytes, PersistentInt


class FlexibilityApplet(Applet):
    """Keeps the provider's current demand-flexibility event and counts acceptances."""

    event = PersistentBytes(max_size=16)
    accepted = PersistentInt(size=4)

    def process(self, apdu):
        if apdu.is_selecting:
            return None
        if apdu.ins == 0x10:
            if len(apdu.data) != 8:
                raise ISOException(SW.WRONG_LENGTH)
            self.card.begin_transaction()
            self.event = apdu.data
            self.accepted = self.accepted + 1
            self.card.commit_transaction()
            return None
        if apdu.ins == 0x12:
            return self.event + self.accepted.to_bytes(4, "big")
        raise ISOException(SW.INS_NOT_SUPPORTED)
'''


def flex_package() -> AppletPackage:
    return AppletPackage.build(FLEX_SOURCE, aid=FLEX_PACKAGE_AID, name="flexibility",
                               applets={"FlexibilityApplet": (FLEX_MODULE_AID,)})


@dataclass(frozen=True)
class HubKeys:
    """What the issuer holds per hub: the provider SSD's keys and the ISD's receipt key."""

    ssd: Scp03StaticKeys
    receipt: bytes
    card_unique_data: bytes


def fleet_card(index: int, token_key: ec.EllipticCurvePublicKey, keys: HubKeys) -> Card:
    """A hub secure element ready for delegated management by the flexibility provider."""
    image = keys.card_unique_data[len(ISSUER_ID):]
    setup = IsdSetup(keys=[*gp_test_keys(), SdKey.ec_public(0x01, KeyId.TOKEN, token_key),
                           SdKey(0x01, KeyId.RECEIPT, KeyType.AES, keys.receipt)],
                     issuer_id=ISSUER_ID, card_image_number=image)
    base = gp_profile(setup, name="hydra-fleet")
    base_personalise = base.personalize

    def personalize(manager: CardManager) -> None:
        if base_personalise is not None:
            base_personalise(manager)
        if manager.entry(FLEX_SSD_AID) is None:
            manager.install(gpm.SD_PACKAGE_AID, gpm.SD_MODULE_AID, FLEX_SSD_AID,
                            privileges=privileges_of(Privilege.SECURITY_DOMAIN,
                                                     Privilege.DELEGATED_MANAGEMENT),
                            life_cycle=LifeCycle.PERSONALIZED, associated_sd=setup.aid)
            manager.forward_data(FLEX_SSD_AID, keys_dgi([
                SdKey(keys.ssd.kvn, kid, KeyType.AES, key) for kid, key in (
                    (KeyId.ENC, keys.ssd.enc), (KeyId.MAC, keys.ssd.mac),
                    (KeyId.DEK, keys.ssd.dek))]))

    card = Card(MemoryBacking(), CardProfile(base.name, base.load_files, personalize,
                                             base.config, base.resolver),
                rng=DeterministicRandom(b"fleet" + index.to_bytes(4, "big")))
    card.power_on()
    return card


@dataclass
class ScriptDelivery:
    hub: str
    purpose: str  # deploy / rollback
    apdus: list[bytes]


@dataclass
class HubOutcome:
    hub: str
    purpose: str
    status_words: list[int]
    data: list[bytes]

    @property
    def complete(self) -> bool:
        return all(sw == SW.OK for sw in self.status_words)


class RelayRefused(Exception):
    """The DCC refused a script batch (unknown sender or hub)."""


class _ScriptRelay(abc.ABC):
    """What the relays share: they admit a batch only from an authorised sender and for known
    hubs, deliver each script whole, and report each hub's response APDUs."""

    hubs: Mapping[str, object]
    authorised: frozenset[str]
    delivered: int

    @abc.abstractmethod
    def _play(self, delivery: ScriptDelivery) -> Iterable[bytes]:
        """The hub's response APDUs to ``delivery``'s script (none if it did not answer)."""

    def submit(self, sender: str, batch: Sequence[ScriptDelivery]) -> list[HubOutcome]:
        if sender not in self.authorised:
            raise RelayRefused(f"{sender} may not send card-management scripts")
        unknown = [d.hub for d in batch if d.hub not in self.hubs]
        if unknown:
            raise RelayRefused(f"unknown hubs: {', '.join(unknown[:3])}")
        outcomes = []
        for delivery in batch:
            parsed = [ResponseApdu.parse(raw) for raw in self._play(delivery)]
            self.delivered += 1
            outcomes.append(HubOutcome(delivery.hub, delivery.purpose, [r.sw for r in parsed],
                                       [r.data for r in parsed]))
        return outcomes


@dataclass
class DccScriptRelay(_ScriptRelay):
    """The DCC (and CSP) leg: store-and-forward delivery of scripts to hubs, answers back."""

    hubs: dict[str, Transmit]
    authorised: frozenset[str]
    delivered: int = 0

    def _play(self, delivery: ScriptDelivery) -> Iterable[bytes]:
        transmit = self.hubs[delivery.hub]
        # the hub plays the whole script, as received
        return (transmit(apdu) for apdu in delivery.apdus)


SCRIPT_FRAME = "hydra-card-script/1"
MAX_SCRIPT_APDUS = 1024


def script_frame(apdus: Sequence[bytes]) -> bytes:
    """One WAN frame carrying a card script: ``[format, [APDU, ...]]`` in CBOR."""
    return cbor2.dumps([SCRIPT_FRAME, list(apdus)])


@dataclass
class CardScriptPort:
    """The hub's end of the card-script route: plays a relayed script into its secure element
    and answers the responses (the secure channel inside is the provider's, end to end)."""

    card: Card
    played: int = 0

    def receive_from_wan(self, message: bytes) -> bytes | None:
        try:
            kind, apdus = cbor2.loads(message)
        except Exception:  # cbor2 raises several types; a bad frame is dropped
            return None
        if (kind != SCRIPT_FRAME or not isinstance(apdus, list)
                or len(apdus) > MAX_SCRIPT_APDUS or not all(isinstance(a, bytes) for a in apdus)):
            return None
        self.played += 1
        return cbor2.dumps([self.card.transmit(apdu) for apdu in apdus])


@dataclass
class WanScriptRelay(_ScriptRelay):
    """The DCC leg over its WAN: one frame per hub, responses back the same way."""

    wan: WanNetwork
    hubs: dict[str, Eui64]
    authorised: frozenset[str]
    delivered: int = 0

    def _play(self, delivery: ScriptDelivery) -> Iterable[bytes]:
        try:
            answer = self.wan.deliver(self.hubs[delivery.hub], script_frame(delivery.apdus))
        except WanError:
            return []
        if answer is None:
            return []
        try:
            responses = cbor2.loads(answer)
        except Exception:  # a garbled answer counts as no answer
            return []
        return responses if isinstance(responses, list) else []


@dataclass
class Reconciliation:
    deployed: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)  # loaded, not installed
    failed: list[str] = field(default_factory=list)  # nothing loaded
    bad_receipts: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, int]:
        return {k: len(v) for k, v in vars(self).items()}


@dataclass
class HubRecord:
    keys: HubKeys
    sequence_counter: int = 0  # the provider SSD's SCP03 counter
    receipt_counter: int = -1  # last confirmation counter seen
    state: str = "absent"  # absent / loaded / installed


class DeploymentCampaign:
    """The card issuer's and the provider's view of one applet roll-out."""

    def __init__(self, issuer_token_key: ec.EllipticCurvePrivateKey, package: AppletPackage,
                 records: dict[str, HubRecord], *, instance_aid: bytes = FLEX_APPLET_AID,
                 module_aid: bytes = FLEX_MODULE_AID, ssd_aid: bytes = FLEX_SSD_AID) -> None:
        self.package = package
        self.block = package.encode()
        self.records = records
        self.instance_aid, self.module_aid, self.ssd_aid = instance_aid, module_aid, ssd_aid
        signer = token_signer_for(issuer_token_key)
        # the issuer's authorisation: one token per operation, recorded
        self.authorised = {
            "load": install_for_load_command(package.aid, sd_aid=ssd_aid,
                                             block_hash=gpm.load_file_data_block_hash(self.block),
                                             token_signer=signer),
            "install": install_command(package.aid, module_aid, instance_aid,
                                       token_signer=signer),
            "delete": delete_command(package.aid, related=True, token_signer=signer),
        }

    def _script(self, hub: str, commands: list[bytes], purpose: str) -> ScriptDelivery:
        record = self.records[hub]
        apdus = one_way_scp03_script(record.keys.ssd, sd_aid=self.ssd_aid,
                                     sequence_counter=record.sequence_counter, commands=commands,
                                     security_level=0x03, host_challenge=os.urandom(8))
        record.sequence_counter += 1
        return ScriptDelivery(hub, purpose, apdus)

    def deploy_scripts(self, hubs: Sequence[str]) -> list[ScriptDelivery]:
        commands = [self.authorised["load"], *load_commands(gpm.LoadFile({}, self.block)),
                    self.authorised["install"]]
        return [self._script(hub, commands, "deploy") for hub in hubs]

    def rollback_scripts(self, hubs: Sequence[str]) -> list[ScriptDelivery]:
        return [self._script(hub, [self.authorised["delete"]], "rollback") for hub in hubs]

    def _receipt_ok(self, record: HubRecord, data: bytes, aids: list[bytes]) -> bool:
        try:
            confirmation = gpm.Confirmation.parse(data)
        except GpError:
            return False
        if confirmation is None or confirmation.card_unique_data != record.keys.card_unique_data:
            return False
        if confirmation.counter <= record.receipt_counter:
            return False  # replayed or out of order
        expected = gpm.receipt(record.keys.receipt, confirmation.counter,
                               record.keys.card_unique_data, aids)
        if not hmac.compare_digest(expected, confirmation.receipt):
            return False
        record.receipt_counter = confirmation.counter
        return True

    def reconcile(self, outcomes: Sequence[HubOutcome]) -> Reconciliation:
        result = Reconciliation()
        load_aids = [self.package.aid, self.ssd_aid]
        install_aids = [self.package.aid, self.instance_aid]
        for outcome in outcomes:
            record = self.records[outcome.hub]
            if outcome.purpose == "rollback":
                if outcome.complete and self._receipt_ok(record, outcome.data[-1],
                                                         [self.package.aid]):
                    record.state = "absent"
                    result.removed.append(outcome.hub)
                else:
                    result.bad_receipts.append(outcome.hub)
                continue
            words, data = outcome.status_words, outcome.data
            install_at = len(words) - 1
            load_end = install_at - 1  # the last LOAD block carries the load receipt
            loaded = len(words) > load_end >= 0 and words[load_end] == SW.OK and all(
                sw == SW.OK for sw in words[:load_end])
            if loaded and not self._receipt_ok(record, data[load_end], load_aids):
                result.bad_receipts.append(outcome.hub)
                continue
            if loaded:
                record.state = "loaded"
            installed = loaded and words[install_at] == SW.OK
            if installed and self._receipt_ok(record, data[install_at], install_aids):
                record.state = "installed"
                result.deployed.append(outcome.hub)
            elif installed:
                result.bad_receipts.append(outcome.hub)
            elif loaded:
                result.partial.append(outcome.hub)
            else:
                result.failed.append(outcome.hub)
        return result


@dataclass
class Fleet:
    """Hubs with the issuer's records of them, for deployment runs (tests, demo, benchmark)."""

    cards: dict[str, Card]
    records: dict[str, HubRecord]
    issuer_token_key: ec.EllipticCurvePrivateKey

    @classmethod
    def build(cls, count: int, seed: bytes = b"fleet") -> Fleet:
        token_key = primitives.private_key_from_scalar(
            primitives.kdf_single_step_sha256(seed, b"token", 32))
        cards, records = {}, {}
        for index in range(count):
            material = primitives.kdf_single_step_sha256(seed + index.to_bytes(4, "big"),
                                                         b"hub keys", 32)
            keys = HubKeys(Scp03StaticKeys(material[:16], material[:16], material[:16], 0x30),
                           material[16:], ISSUER_ID + (index + 1).to_bytes(5, "big"))
            name = f"hub-{index + 1:05d}"
            cards[name] = fleet_card(index, token_key.public_key(), keys)
            records[name] = HubRecord(keys)
        return cls(cards, records, token_key)

    def relay(self, authorised: frozenset[str] = frozenset({"flex-provider"})) -> DccScriptRelay:
        return DccScriptRelay({name: card.transmit for name, card in self.cards.items()},
                              authorised)

    def wan_relay(self, wan: WanNetwork,
                  authorised: frozenset[str] = frozenset({"flex-provider"})) -> WanScriptRelay:
        """Connect each hub's card-script port to ``wan`` and relay over it."""
        hubs = {}
        for index, (name, card) in enumerate(self.cards.items()):
            eui = Eui64(bytes.fromhex("00DB5C00") + (index + 1).to_bytes(4, "big"))
            wan.connect(eui, CardScriptPort(card))
            hubs[name] = eui
        return WanScriptRelay(wan, hubs, authorised)
