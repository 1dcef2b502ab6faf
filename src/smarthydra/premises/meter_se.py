"""A meter's own secure element: its GBCS keys generated and used inside a card.

:class:`GbcsKeyApplet` holds the meter's key-agreement key (``ka``) and digital-signing key
(``ds``); the private keys never leave it. :class:`SecureElementKeystore` is the
:class:`~smarthydra.crypto.keystore.Keystore` a meter (:class:`ElectricityMeter`,
:class:`GasMeter`) uses, speaking APDUs to the applet: so the same meter code runs with keys in
a software keystore, an HSM or its own secure element.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.card.apdu import SW, CommandAPDU, ResponseAPDU
from smarthydra.card.applet import APDU, Applet, ISOException
from smarthydra.card.card import Card, CardProfile
from smarthydra.card.memory import MemoryBacking
from smarthydra.card.registry import LoadFile
from smarthydra.card.rng import DeterministicRandom
from smarthydra.card.runtime import CardManager
from smarthydra.crypto.keystore import KeyNotFound, Keystore, KeyUsage, KeyUsageError
from smarthydra.crypto.primitives import public_key_from_xy, public_key_to_xy
from smarthydra.premises.hub import AppletRefused, VirtualTerminal

METER_LOAD_FILE_AID = bytes.fromhex("F048594452410100")
KEY_MODULE_AID = bytes.fromhex("F04859445241010001")
KEY_AID = bytes.fromhex("F048594452410101")

_SLOTS = {0: ("ka", KeyUsage.KEY_AGREEMENT), 1: ("ds", KeyUsage.DIGITAL_SIGNATURE)}
_P1 = {label: p1 for p1, (label, _usage) in _SLOTS.items()}


class KeyIns:
    GENERATE = 0x50  # P1: 0 ka, 1 ds -> public key x||y
    PUBLIC = 0x52
    ECDH = 0x54  # P1 0; data: peer x||y -> Z
    SIGN = 0x56  # P1 1; data: message -> r||s (ECDSA-SHA256)


class GbcsKeyApplet(Applet):
    def __init__(self) -> None:
        self.keys = {p1: self.card.ec_key(label) for p1, (label, _usage) in _SLOTS.items()}

    def process(self, apdu: APDU) -> bytes | None:
        if apdu.is_selecting:
            return None
        key = self.keys.get(apdu.p1)
        if key is None:
            raise ISOException(SW.INCORRECT_P1P2, "P1: 0 key agreement, 1 signing")
        if apdu.ins == KeyIns.GENERATE:
            return key.public_key() if key.initialized else key.generate()
        if not key.initialized:
            raise ISOException(SW.CONDITIONS_NOT_SATISFIED, "no key generated yet")
        if apdu.ins == KeyIns.PUBLIC:
            return key.public_key()
        if apdu.ins == KeyIns.ECDH and apdu.p1 == 0:
            return key.ecdh(apdu.data)
        if apdu.ins == KeyIns.SIGN and apdu.p1 == 1:
            return key.sign(apdu.data)
        raise ISOException(SW.CONDITIONS_NOT_SATISFIED, "this key is not for that")


METER_LOAD_FILE = LoadFile(METER_LOAD_FILE_AID, {KEY_MODULE_AID: GbcsKeyApplet}, "meter-keys")


def _personalize(manager: CardManager) -> None:
    if manager.entry(KEY_AID) is None:
        manager.install(METER_LOAD_FILE_AID, KEY_MODULE_AID, KEY_AID)


METER_PROFILE = CardProfile("meter-se", load_files=(METER_LOAD_FILE,), personalize=_personalize)


class SecureElementKeystore(Keystore):
    """The meter's keystore: its GBCS keys in the key applet of its own secure element."""

    def __init__(self, card: Card | None = None, *, seed: bytes = b"meter-se") -> None:
        self.card = card or Card(MemoryBacking(), METER_PROFILE, rng=DeterministicRandom(seed))
        self.card.power_on()
        self.vt = VirtualTerminal(self.card)

    def _p1(self, label: str) -> int:
        if label not in _P1:
            raise KeyNotFound(label)
        return _P1[label]

    def _call(self, ins: int, label: str, data: bytes = b"") -> bytes:
        self.vt.select(KEY_AID)
        response = ResponseAPDU.parse(self.card.transmit(
            CommandAPDU(0x80, ins, self._p1(label), 0, data, 65536).encode()))
        if response.sw == SW.CONDITIONS_NOT_SATISFIED and ins != KeyIns.GENERATE:
            raise KeyNotFound(label)
        if response.sw != SW.OK:
            raise AppletRefused(KEY_AID, ins, response.sw)
        return response.data

    def generate(self, label: str, usage: KeyUsage) -> ec.EllipticCurvePublicKey:
        if _SLOTS[self._p1(label)][1] is not usage:
            raise KeyUsageError(f"slot {label} holds a {_SLOTS[self._p1(label)][1].value} key")
        return public_key_from_xy(self._call(KeyIns.GENERATE, label))

    def import_private_key(self, label: str, key: ec.EllipticCurvePrivateKey,
                           usage: KeyUsage) -> ec.EllipticCurvePublicKey:
        raise KeyUsageError("the meter's keys are generated inside its secure element")

    def public_key(self, label: str) -> ec.EllipticCurvePublicKey:
        return public_key_from_xy(self._call(KeyIns.PUBLIC, label))

    def usage(self, label: str) -> KeyUsage:
        return _SLOTS[self._p1(label)][1]

    def sign(self, label: str, data: bytes) -> bytes:
        if self.usage(label) is not KeyUsage.DIGITAL_SIGNATURE:
            raise KeyUsageError(f"{label} is not a signing key")
        return self._call(KeyIns.SIGN, label, data)

    def derive_shared_secret(self, label: str, peer: ec.EllipticCurvePublicKey) -> bytes:
        if self.usage(label) is not KeyUsage.KEY_AGREEMENT:
            raise KeyUsageError(f"{label} is not a key-agreement key")
        return self._call(KeyIns.ECDH, label, public_key_to_xy(peer))

    def destroy(self, label: str) -> None:
        raise KeyUsageError("the meter's keys live and die with its secure element")

    def labels(self) -> list[str]:
        present = []
        for label in _P1:
            try:
                self.public_key(label)
            except KeyNotFound:
                continue
            present.append(label)
        return present

    def __contains__(self, label: object) -> bool:
        return isinstance(label, str) and label in self.labels()
