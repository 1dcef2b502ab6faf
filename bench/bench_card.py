"""Secure element: APDU round trips per second in process, across a process boundary and
through pcscd + vpcd, with raw ``cryptography`` ECDSA signing as the in-run baseline; and
GlobalPlatform content management: load + install + delete cycles of a restricted applet
package per second over SCP03 at full security level."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

from bench.baseline import calls_per_second
from smarthydra.card.apdu import CommandAPDU
from smarthydra.card.card import Card
from smarthydra.card.examples import COUNTER_AID, EXAMPLES_PROFILE, SIGNER_AID
from smarthydra.card.memory import MemoryBacking
from smarthydra.card.rng import DeterministicRandom
from smarthydra.card.transport import InProcessTransport, ProcessTransport
from smarthydra.card.vpcd import VpcdBridge
from smarthydra.crypto import primitives

READ = CommandAPDU(0x80, 0x12, 0, 0, ne=256).encode()
ADD = CommandAPDU(0x80, 0x10, 0, 0, b"\x00\x00\x00\x01", ne=256).encode()
SIGN = CommandAPDU(0x80, 0x24, 0, 0, b"meter reading", ne=256).encode()


def _vpcd_rate(seconds: float) -> dict[str, object]:
    try:
        from smartcard.System import readers
    except ImportError:
        return {"skipped": "pyscard not installed"}
    try:
        names = [str(r) for r in readers()]
    except Exception as exc:
        return {"skipped": f"pcscd not reachable: {exc}"}
    if "Virtual PCD 00 00" not in names:
        return {"skipped": "no vpcd reader (run .ci/pcsc-setup.sh)"}
    card = Card(MemoryBacking(), EXAMPLES_PROFILE, rng=DeterministicRandom(b"bench"))
    bridge = VpcdBridge(InProcessTransport(card))
    thread = threading.Thread(target=bridge.serve_forever, daemon=True)
    thread.start()
    try:
        bridge.connected.wait(10)
        reader = next(r for r in readers() if str(r) == "Virtual PCD 00 00")
        connection = reader.createConnection()
        for _ in range(100):
            try:
                connection.connect()
                break
            except Exception:
                time.sleep(0.1)
        command = list(READ)
        rate = calls_per_second(lambda: connection.transmit(command), seconds)
        connection.disconnect()
        return {"apdu_per_s": round(rate, 1)}
    finally:
        bridge.stop()
        thread.join(10)


_NOTE = """
from smarthydra.card.applet import Applet, PersistentBytes


class NoteApplet(Applet):
    note = PersistentBytes(max_size=64)

    def install(self, params):
        self.note = params
"""


def _gp_cycle_rate(seconds: float) -> dict[str, object]:
    from smarthydra.card.gp.client import GpClient
    from smarthydra.card.gp.profile import gp_profile
    from smarthydra.card.gp.scp03 import Scp03StaticKeys
    from smarthydra.card.package import AppletPackage

    aid, module = bytes.fromhex("F0534847A0"), bytes.fromhex("F0534847A001")
    block = AppletPackage.build(_NOTE, aid=aid, name="note",
                                applets={"NoteApplet": (module,)}).encode()
    card = Card(MemoryBacking(), gp_profile(), rng=DeterministicRandom(b"bench-gp"))
    card.power_on()
    client = GpClient(card.transmit)
    client.select()
    client.open_scp03(Scp03StaticKeys.test_keys(), security_level=0x33)

    def cycle() -> None:
        client.load(aid, block)
        client.install(aid, module, module + b"\x01", params=b"x")
        client.delete(aid, related=True)

    rate = calls_per_second(cycle, seconds)
    return {"load_install_delete_per_s": round(rate, 1), "load_file_bytes": len(block)}


def run(quick: bool) -> dict[str, object]:
    seconds = 0.3 if quick else 2.0
    key = primitives.generate_private_key()
    raw_sign = calls_per_second(lambda: primitives.ecdsa_sign(key, b"meter reading"), seconds)

    card = Card(MemoryBacking(), EXAMPLES_PROFILE, rng=DeterministicRandom(b"bench"))
    card.power_on()
    in_read = calls_per_second(lambda: card.transmit(READ), seconds)
    in_add = calls_per_second(lambda: card.transmit(ADD), seconds)
    card.transmit(CommandAPDU(0x00, 0xA4, 4, 0, SIGNER_AID).encode())
    card.transmit(CommandAPDU(0x80, 0x20, 0, 0, ne=256).encode())
    in_sign = calls_per_second(lambda: card.transmit(SIGN), seconds)

    with tempfile.TemporaryDirectory() as directory:
        transport = ProcessTransport(Path(directory) / "card.img")
        transport.power_on()
        transport.transmit(CommandAPDU(0x00, 0xA4, 4, 0, COUNTER_AID).encode())
        proc_read = calls_per_second(lambda: transport.transmit(READ), seconds)
        # fsynced image writes
        proc_add = calls_per_second(lambda: transport.transmit(ADD), seconds)
        transport.close()

    vpcd = _vpcd_rate(seconds)
    gp = _gp_cycle_rate(seconds)
    return {
        "gp_content_management": gp,
        "baseline_raw_ecdsa_sign_per_s": round(raw_sign, 1),
        "in_process": {
            "read_apdu_per_s": round(in_read, 1),
            "transactional_add_apdu_per_s": round(in_add, 1),
            "sign_apdu_per_s": round(in_sign, 1),
            "sign_apdu_vs_raw_ecdsa": round(in_sign / raw_sign, 3),
        },
        "process_boundary": {
            "read_apdu_per_s": round(proc_read, 1),
            "durable_add_apdu_per_s": round(proc_add, 1),
            "read_vs_in_process": round(proc_read / in_read, 3),
        },
        "vpcd_pcsc": vpcd,
    }
