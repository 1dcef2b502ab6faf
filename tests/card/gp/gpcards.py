"""Shared fixtures for the GlobalPlatform card tests: cards, keys, a small applet package."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.card.card import Card, CardProfile
from smarthydra.card.gp.client import GpClient
from smarthydra.card.gp.profile import gp_test_profile
from smarthydra.card.gp.scp03 import Scp03StaticKeys
from smarthydra.card.memory import Backing, MemoryBacking, PowerCutInjector
from smarthydra.card.package import AppletPackage
from smarthydra.card.rng import DeterministicRandom
from smarthydra.crypto.primitives import private_key_from_scalar

NOTE_PACKAGE_AID = bytes.fromhex("F0534847A0")
NOTE_MODULE_AID = bytes.fromhex("F0534847A001")
NOTE_APP_AID = bytes.fromhex("F0534847A00101")

#: a post-issuance applet: keeps a note set by personalisation (STORE DATA) or command 10
NOTE_SOURCE = '''
from smarthydra.card.apdu import SW
from smarthydra.card.applet import APDU, Applet, ISOException, PersistentBytes


class NoteApplet(Applet):
    note = PersistentBytes(max_size=64)

    def install(self, params):
        self.note = params

    def process_data(self, data):
        self.note = data
        return b""

    def process(self, apdu):
        if apdu.is_selecting:
            return None
        if apdu.ins == 0x10:
            self.note = apdu.data
            return None
        if apdu.ins == 0x12:
            return self.note
        raise ISOException(SW.INS_NOT_SUPPORTED)
'''


def note_package(aid: bytes = NOTE_PACKAGE_AID, module: bytes = NOTE_MODULE_AID,
                 source: str = NOTE_SOURCE) -> AppletPackage:
    return AppletPackage.build(source, aid=aid, name="note", applets={"NoteApplet": (module,)})


SCP11_SCALAR = bytes.fromhex("1f" * 31 + "01")


def scp11_key() -> ec.EllipticCurvePrivateKey:
    return private_key_from_scalar(SCP11_SCALAR)


def gp_card(profile: CardProfile | None = None, backing: Backing | None = None,
            seed: bytes = b"gp-tests", injector: PowerCutInjector | None = None) -> Card:
    card = Card(backing if backing is not None else MemoryBacking(),
                profile or gp_test_profile(scp11_key()), rng=DeterministicRandom(seed),
                injector=injector)
    card.power_on()
    return card


def scp03_client(card: Card, level: int = 0x33, s_mode: int = 8) -> GpClient:
    client = GpClient(card.transmit)
    client.select()
    client.open_scp03(Scp03StaticKeys.test_keys(), security_level=level, s_mode=s_mode)
    return client
