"""Shared helpers for the card tests."""

from __future__ import annotations

from smarthydra.card.apdu import CommandAPDU, ResponseAPDU
from smarthydra.card.card import Card, CardProfile
from smarthydra.card.examples import COUNTER_AID, EXAMPLES_PROFILE
from smarthydra.card.memory import Backing, MemoryBacking, PowerCutInjector
from smarthydra.card.rng import DeterministicRandom


def example_card(
    backing: Backing | None = None,
    injector: PowerCutInjector | None = None,
    profile: CardProfile = EXAMPLES_PROFILE,
    seed: bytes = b"card-tests",
) -> Card:
    card = Card(backing if backing is not None else MemoryBacking(), profile,
                rng=DeterministicRandom(seed), injector=injector)
    card.power_on()
    return card


def send(card: Card, cla: int, ins: int, p1: int = 0, p2: int = 0, data: bytes = b"",
         ne: int = 0) -> ResponseAPDU:
    return ResponseAPDU.parse(card.transmit(CommandAPDU(cla, ins, p1, p2, data, ne).encode()))


def select(card: Card, aid: bytes, channel_cla: int = 0x00) -> ResponseAPDU:
    return send(card, channel_cla, 0xA4, 0x04, 0x00, aid)


def counter_state(card: Card) -> tuple[int, int]:
    select(card, COUNTER_AID)
    response = send(card, 0x80, 0x12, ne=256)
    assert response.sw == 0x9000, hex(response.sw)
    return int.from_bytes(response.data[:4], "big"), int.from_bytes(response.data[4:8], "big")
