"""Restricted applets: APDUs per second for the same applet source run restricted (a
post-issuance package under the sandbox) and as ordinary ROM code, in the same run.

The applet is the purse used by the sandbox tests (tests/card/applets/purse.py): READ is a
plain command, CREDIT a transactional persistent update, CHECKSUM a loop over 255 data bytes
(every step metered when restricted).
"""

from __future__ import annotations

import time
import types
from pathlib import Path

from bench.baseline import calls_per_second
from smarthydra.card.apdu import CommandAPDU
from smarthydra.card.card import Card, CardProfile
from smarthydra.card.firewall import RUNTIME_CONTEXT, entered
from smarthydra.card.memory import MemoryBacking
from smarthydra.card.package import AppletPackage
from smarthydra.card.registry import LoadFile
from smarthydra.card.rng import DeterministicRandom
from smarthydra.card.sandbox import load_restricted, package_resolver, register_package

SOURCE = Path(__file__).resolve().parent.parent / "tests" / "card" / "applets" / "purse.py"
LF, MODULE, INSTANCE = (bytes.fromhex(h) for h in ("F0534859A0", "F0534859A001",
                                                   "F0534859A00101"))
SELECT = CommandAPDU(0x00, 0xA4, 0x04, 0x00, INSTANCE).encode()
COMMANDS = {
    "read": CommandAPDU(0x80, 0x34, 0, 0, ne=256).encode(),
    "credit": CommandAPDU(0x80, 0x30, 0, 0, b"\x00\x00\x00\x00", ne=256).encode(),
    "checksum_255_bytes": CommandAPDU(0x80, 0x36, 0, 0, bytes(range(255)), ne=256).encode(),
}


def _card(restricted: bool, source: str) -> Card:
    if restricted:
        card = Card(MemoryBacking(), CardProfile("bench", resolver=package_resolver()),
                    rng=DeterministicRandom(b"bench"))
        card.power_on()
        package = AppletPackage.build(source, aid=LF, name="purse",
                                      applets={"PurseApplet": [MODULE]})
        with entered(RUNTIME_CONTEXT, None):
            register_package(card.manager, package)
    else:
        module = types.ModuleType("bench_purse_rom")
        exec(compile(source, str(SOURCE), "exec"), module.__dict__)
        rom = LoadFile(LF, {MODULE: module.PurseApplet}, "purse")
        card = Card(MemoryBacking(), CardProfile("bench", load_files=(rom,)),
                    rng=DeterministicRandom(b"bench"))
        card.power_on()
    with entered(RUNTIME_CONTEXT, None):
        card.manager.install(LF, MODULE, INSTANCE)
    assert card.transmit(SELECT)[-2:] == b"\x90\x00"
    return card


def run(quick: bool) -> dict[str, object]:
    if not SOURCE.exists():
        return {"skipped": f"{SOURCE} not found"}
    source = SOURCE.read_text()
    seconds = 0.2 if quick else 1.5
    cards = {"rom": _card(False, source), "restricted": _card(True, source)}
    results: dict[str, object] = {}
    for name, command in COMMANDS.items():
        rates = {}
        for kind, card in cards.items():
            response = card.transmit(command)
            assert response[-2:] == b"\x90\x00", (kind, name, response.hex())
            rates[kind] = calls_per_second(lambda c=card, cmd=command: c.transmit(cmd), seconds)
        results[name] = {
            "rom_apdus_per_s": round(rates["rom"], 1),
            "restricted_apdus_per_s": round(rates["restricted"], 1),
            "restricted_to_rom_ratio": round(rates["restricted"] / rates["rom"], 3),
        }
    load_start = time.perf_counter()
    loads = 0
    package = AppletPackage.build(source, aid=LF, name="purse", applets={"PurseApplet": [MODULE]})
    while time.perf_counter() - load_start < seconds:
        load_restricted(package)
        loads += 1
    results["package_loads_per_s_cached_compile"] = round(
        loads / (time.perf_counter() - load_start), 1)
    return results
