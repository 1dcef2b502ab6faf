"""SCP03 wrapped command/response pairs per second at full security (C-MAC, C-DECRYPTION, R-MAC,
R-ENCRYPTION), next to raw AES-CMAC calls per second measured in the same run.

One "pair" is: host wraps a command, card unwraps it, card wraps a response, host unwraps it,
with 32 bytes of command data and 64 bytes of response data (a typical GET STATUS / STORE DATA).
Each pair costs 4 AES-CMACs, 4 AES-CBC passes and 4 single-block ICV encryptions, plus APDU
parsing; in Python the per-call setup of ``cryptography`` cipher objects dominates, so the ratio
to raw CMAC calls is well below 1/4.

``on_card_*``: the same at full security level through the whole card: the host wraps a
GET DATA (card recognition data), the card runtime unwraps it in the issuer security domain's
secure channel layer, the SD answers, the layer wraps the answer, the host unwraps it.
"""

from __future__ import annotations

import time

from smarthydra.card.card import Card
from smarthydra.card.gp.client import GpClient
from smarthydra.card.gp.profile import gp_profile
from smarthydra.card.gp.scp03 import (
    Scp03CardConfig,
    Scp03CardSession,
    Scp03HostSession,
    Scp03StaticKeys,
)
from smarthydra.card.memory import MemoryBacking
from smarthydra.card.rng import DeterministicRandom
from smarthydra.crypto.primitives import aes_cmac

AID = bytes.fromhex("A000000151000000")


def _rate(fn: object, seconds: float) -> float:
    assert callable(fn)
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(50):
            fn()
        count += 50
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def _session(key_size: int, s_mode: int) -> tuple[Scp03HostSession, Scp03CardSession]:
    key = bytes(range(key_size))
    keys = Scp03StaticKeys(key, key, key)
    card = Scp03CardSession(Scp03CardConfig(aid=AID, key_sets=(keys,)))
    host = Scp03HostSession(keys, host_challenge=bytes(s_mode), s_mode=s_mode, aid=AID)
    host.process_initialize_update_response(card.initialize_update(host.initialize_update()))
    card.external_authenticate(host.external_authenticate(0x33))
    host.mark_authenticated()
    return host, card


def run(quick: bool) -> dict[str, object]:
    seconds = 0.3 if quick else 2.0
    command = bytes.fromhex("80E2900020") + bytes(range(32))
    response = bytes(range(64))
    cmac_key, cmac_data = bytes(16), bytes(48)

    cmac_rate = _rate(lambda: aes_cmac(cmac_key, cmac_data), seconds)
    results: dict[str, object] = {"baseline_aes_cmac_per_s": round(cmac_rate)}
    for key_size, s_mode in ((16, 8), (16, 16), (32, 8)):
        host, card = _session(key_size, s_mode)

        def pair(host: Scp03HostSession = host, card: Scp03CardSession = card) -> None:
            card.unwrap_command(host.wrap(command))
            host.unwrap(card.wrap_response(response, 0x9000))

        rate = _rate(pair, seconds)
        name = f"scp03_aes{key_size * 8}_s{s_mode}_sl33"
        results[f"{name}_pairs_per_s"] = round(rate)
        results[f"{name}_pairs_per_cmac"] = round(rate / cmac_rate, 4)
    client = _on_card_client()
    get_data = bytes.fromhex("80CA006600")

    def on_card() -> None:
        if client.send(get_data).sw != 0x9000:
            raise RuntimeError("the card refused GET DATA")

    rate = _rate(on_card, seconds)
    results["on_card_scp03_aes128_s8_sl33_pairs_per_s"] = round(rate)
    results["on_card_scp03_aes128_s8_sl33_pairs_per_cmac"] = round(rate / cmac_rate, 4)
    return results


def _on_card_client() -> GpClient:
    card = Card(MemoryBacking(), gp_profile(), rng=DeterministicRandom(b"bench"))
    card.power_on()
    client = GpClient(card.transmit)
    client.select()
    client.open_scp03(Scp03StaticKeys.test_keys(), security_level=0x33)
    return client


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=False), indent=2))
