"""ECDSA and ECDH rates: raw ``cryptography``, the soft keystore, and a SoftHSM2 token.

Ratios are against raw ``cryptography`` measured in the same run.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from bench.baseline import calls_per_second
from smarthydra.crypto import primitives, softhsm
from smarthydra.crypto.keystore import Keystore, KeyUsage
from smarthydra.crypto.softstore import SoftKeystore


def _rate(operation: Callable[[], object], seconds: float) -> float:
    """Calls per second after one untimed call (first-use costs left out)."""
    return calls_per_second(operation, seconds, warm_up=True)


def _store_rates(store: Keystore, seconds: float) -> dict[str, float]:
    store.generate("bench-ds", KeyUsage.DIGITAL_SIGNATURE)
    store.generate("bench-ka", KeyUsage.KEY_AGREEMENT)
    peer = primitives.generate_private_key().public_key()
    message = bytes(200)
    return {
        "sign_per_s": _rate(lambda: store.sign("bench-ds", message), seconds),
        "ecdh_per_s": _rate(lambda: store.derive_shared_secret("bench-ka", peer), seconds),
    }


def run(quick: bool) -> dict[str, object]:
    seconds = 0.2 if quick else 1.5
    key = ec.generate_private_key(ec.SECP256R1())
    peer = ec.generate_private_key(ec.SECP256R1()).public_key()
    message = bytes(200)
    der_signature = key.sign(message, ec.ECDSA(hashes.SHA256()))
    raw_signature = primitives.der_to_raw_signature(der_signature)
    baseline = {
        "sign_per_s": _rate(lambda: key.sign(message, ec.ECDSA(hashes.SHA256())), seconds),
        "verify_per_s": _rate(
            lambda: key.public_key().verify(der_signature, message, ec.ECDSA(hashes.SHA256())),
            seconds,
        ),
        "ecdh_per_s": _rate(lambda: key.exchange(ec.ECDH(), peer), seconds),
    }
    public = key.public_key()
    primitives_verify = _rate(
        lambda: primitives.ecdsa_verify(public, message, raw_signature), seconds
    )
    results: dict[str, object] = {
        "cryptography": baseline,
        "primitives_verify_per_s": primitives_verify,
        "primitives_verify_ratio": primitives_verify / baseline["verify_per_s"],
    }

    def with_ratios(rates: dict[str, float]) -> dict[str, float]:
        return rates | {
            "sign_ratio": rates["sign_per_s"] / baseline["sign_per_s"],
            "ecdh_ratio": rates["ecdh_per_s"] / baseline["ecdh_per_s"],
        }

    results["soft_keystore"] = with_ratios(_store_rates(SoftKeystore(None, b""), seconds))

    reason = softhsm.unavailable_reason()
    if reason is not None:
        results["pkcs11_softhsm"] = {"skipped": reason}
        return results
    from smarthydra.crypto.pkcs11store import Pkcs11Keystore

    with tempfile.TemporaryDirectory() as directory:
        token = softhsm.init_token(Path(directory), "bench", "123456", "12345678")
        softhsm.activate(token)
        with Pkcs11Keystore(token.module_path, "bench", "123456") as hsm:
            results["pkcs11_softhsm"] = with_ratios(_store_rates(hsm, seconds))
    return results
