"""A dictionary-backed ``Keystore`` for GBCS tests (the real stores live in smarthydra.crypto)."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.crypto import primitives
from smarthydra.crypto.keystore import KeyExists, KeyNotFound, Keystore, KeyUsage, KeyUsageError


class MemoryKeystore(Keystore):
    def __init__(self) -> None:
        self._keys: dict[str, tuple[ec.EllipticCurvePrivateKey, KeyUsage | None]] = {}

    def generate(self, label: str, usage: KeyUsage) -> ec.EllipticCurvePublicKey:
        return self.import_private_key(label, primitives.generate_private_key(), usage)

    def import_private_key(
        self, label: str, key: ec.EllipticCurvePrivateKey, usage: KeyUsage
    ) -> ec.EllipticCurvePublicKey:
        if label in self._keys:
            raise KeyExists(label)
        self._keys[label] = (key, usage)
        return key.public_key()

    def _get(self, label: str) -> tuple[ec.EllipticCurvePrivateKey, KeyUsage | None]:
        try:
            return self._keys[label]
        except KeyError:
            raise KeyNotFound(label) from None

    def public_key(self, label: str) -> ec.EllipticCurvePublicKey:
        return self._get(label)[0].public_key()

    def usage(self, label: str) -> KeyUsage:
        usage = self._get(label)[1]
        return usage if usage is not None else KeyUsage.DIGITAL_SIGNATURE

    def sign(self, label: str, data: bytes) -> bytes:
        key, usage = self._get(label)
        if usage is KeyUsage.KEY_AGREEMENT:
            raise KeyUsageError(f"{label} is a key-agreement key")
        return primitives.ecdsa_sign(key, data)

    def derive_shared_secret(self, label: str, peer: ec.EllipticCurvePublicKey) -> bytes:
        key, usage = self._get(label)
        if usage is KeyUsage.DIGITAL_SIGNATURE:
            raise KeyUsageError(f"{label} is a signing key")
        return primitives.ecdh(key, peer)

    def destroy(self, label: str) -> None:
        self._get(label)
        del self._keys[label]

    def labels(self) -> list[str]:
        return sorted(self._keys)
