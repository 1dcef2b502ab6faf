"""Prepayment token rates: STS vend (key generation + token) and decode, per algorithm,
against raw single-DES and AES block rates from ``cryptography`` in the same run; UTRN
generate/verify; GB top-ups end to end (vend with the supplier's prepayment top-up key, SRV 2.2
through the DCC, WAN, hub, ESME check and credit, response checked) against one ECDH.
The end-to-end part needs the DUIS matrix from the conformance data and is skipped without it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bench.baseline import calls_per_second
from smarthydra.crypto import primitives
from smarthydra.gbcs.utrn import generate_utrn, verify_utrn
from smarthydra.prepay.sts_algorithms import (
    BaseDate,
    EncryptionAlgorithm,
    KeyGenerationAlgorithm,
    MeterIdentity,
)
from smarthydra.prepay.sts_tokens import CreditToken, decode_token, tid_for
from smarthydra.prepay.sts_vending import SoftVendingKey, VendingServer

CONFORMANCE = Path(
    os.environ.get(
        "SMARTHYDRA_CONFORMANCE",
        Path(__file__).resolve().parents[1].parent / "shared" / "conformance",
    )
)


def _gb_top_ups(seconds: float) -> dict[str, float] | str:
    if not (CONFORMANCE / "duis" / "service-request-matrix.json").is_file():
        return "skipped: no DUIS matrix in the conformance data"
    from smarthydra.eui import Eui64
    from smarthydra.premises.esme_model import PaymentMode
    from smarthydra.prepay.gb_topup import TopUpAgent, TopUpStatus, UtrnVendor
    from smarthydra.sim.world import build_world

    world = build_world(homes=1, seed=5, conformance=CONFORMANCE)
    esme = world.home(0).esme
    esme.model.credit.mode = PaymentMode.PREPAYMENT

    def device_ka(eui: Eui64) -> EllipticCurvePublicKey | None:
        keys = world.supplier.devices(eui)
        return None if keys is None else keys.key_agreement_key

    # the meter's KA key from its SMKI device certificates, validated on every look-up
    vendor = UtrnVendor(world.supplier.eui, world.supplier.keystore, world.clock, device_ka)
    agent = TopUpAgent(vendor, "IS", world.dcc.submit, world.supplier.next_request_id)

    def top_up() -> None:
        if agent.top_up(esme.eui, 100).status is not TopUpStatus.ACCEPTED:
            raise RuntimeError("a top-up was refused")

    ka = world.supplier.keystore
    return {
        "vend_per_s": _rate(partial(vendor.vend, esme.eui, 100), seconds),
        "top_ups_via_dcc_per_s": _rate(top_up, seconds),
        "supplier_ecdh_per_s": _rate(
            partial(ka.derive_shared_secret, "pp-ka", esme.key_agreement_key), seconds),
    }


def _rate(operation: Callable[[], object], seconds: float) -> float:
    """Calls per second after one untimed call (first-use costs left out)."""
    return calls_per_second(operation, seconds, warm_up=True)


def run(quick: bool) -> dict[str, object]:
    seconds = 0.2 if quick else 1.0
    block = bytes(8)
    des = Cipher(TripleDES(bytes.fromhex("abababababababab") * 3), modes.ECB())
    aes = Cipher(algorithms.AES(bytes(16)), modes.ECB())
    baseline = {
        "des_block_per_s": _rate(lambda: des.encryptor().update(block), seconds),
        "aes_block_per_s": _rate(lambda: aes.encryptor().update(bytes(16)), seconds),
    }
    meter = MeterIdentity("600727000000000009", "123456", 1, 1, 2)
    token = CreditToken(0, tid_for(datetime(2024, 1, 1, tzinfo=UTC), BaseDate.Y2014), 1234)
    sts: dict[str, dict[str, float]] = {}
    for dkga, ea, key in (("02", "07", bytes.fromhex("abababababababab")),
                          ("04", "07", bytes(range(20))), ("04", "11", bytes(range(20)))):
        server = VendingServer(SoftVendingKey(key), KeyGenerationAlgorithm(dkga),
                               EncryptionAlgorithm(ea), BaseDate.Y2014, lambda: 0)
        decoder_key = server.decoder_key(meter)
        digits = server.vend(meter, token).digits
        vend_rate = _rate(partial(server.vend, meter, token), seconds)
        decode_rate = _rate(partial(decode_token, digits, decoder_key, server.algorithm), seconds)
        sts[f"dkga{dkga}_ea{ea}"] = {
            "vend_per_s": vend_rate,
            "decode_per_s": decode_rate,
            "decode_vs_raw_des_block": decode_rate / baseline["des_block_per_s"],
        }
    supplier, device = primitives.generate_private_key(), primitives.generate_private_key()
    z = primitives.ecdh(supplier, device.public_key())
    ids = (bytes.fromhex("90b3d51f30010000"), bytes.fromhex("00db1234567890a0"))
    utrn = generate_utrn(z, *ids, counter=1, value=1000)
    return {
        "baseline": baseline,
        "sts": sts,
        "utrn": {
            "generate_per_s_given_z": _rate(lambda: generate_utrn(z, *ids, 1, 1000), seconds),
            "verify_per_s_given_z": _rate(lambda: verify_utrn(utrn, z, *ids), seconds),
            "ecdh_per_s": _rate(lambda: primitives.ecdh(supplier, device.public_key()), seconds),
        },
        "gb_top_up": _gb_top_ups(seconds),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=2))
