"""An APDU for an unpowered card gets an empty vpcd reply (a communication error), not a crash."""

from __future__ import annotations

from smarthydra.card.card import Card
from smarthydra.card.examples import EXAMPLES_PROFILE
from smarthydra.card.memory import MemoryBacking
from smarthydra.card.vpcd import VPCD_POWER_ON, handle_message


def test_apdu_before_power_on_gets_an_empty_reply() -> None:
    card = Card(MemoryBacking(), EXAMPLES_PROFILE)
    assert handle_message(card, bytes.fromhex("00A4040000"), card.power_on) == b""
    handle_message(card, bytes([VPCD_POWER_ON]), card.power_on)
    reply = handle_message(card, bytes.fromhex("00A4040000"), card.power_on)
    assert reply is not None and len(reply) >= 2
