"""Keys inside the card: applets hold handles, the key material never comes out.

A key lives in an NVM cell of its applet (so key changes are journalled like any other
write). Handles offer the operations only: P-256 generation, ECDSA, ECDH, AES blocks and
CBC, AES-CMAC. There is no method that returns private or secret key material.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.card.firewall import CardObject
from smarthydra.crypto import primitives

if TYPE_CHECKING:
    from smarthydra.card.runtime import CardServices

# P-256 group order: a private scalar is 1..n-1
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
AES_KEY_SIZES = (16, 24, 32)


class KeyError_(Exception):
    """A key handle was used wrongly (uninitialised key, wrong size, bad peer point)."""


class KeyHandle(CardObject):
    def __init__(self, services: CardServices, cell: str) -> None:
        self._services = services
        self._cell = cell

    def _material(self) -> bytes:
        raw = self._services._runtime.nvm.read(self._cell)
        if raw is None:
            raise KeyError_("the key is not initialised")
        return raw

    @property
    def initialized(self) -> bool:
        return self._services._runtime.nvm.read(self._cell) is not None

    def clear(self) -> None:
        """Erase the key (a persistent write)."""
        self._services._runtime.nvm.write(self._cell, None)


class EcKeyHandle(KeyHandle):
    """A P-256 key pair held by an applet."""

    def _private(self) -> ec.EllipticCurvePrivateKey:
        return self._services._runtime.private_key_for(self._material())

    def generate(self) -> bytes:
        """Generate a new key pair with the card's RNG; returns the public key ``x || y``."""
        while True:  # rejection sampling: a uniform scalar in 1..n-1
            scalar = self._services._runtime.rng.random_bytes(32)
            if 0 < int.from_bytes(scalar, "big") < P256_ORDER:
                break
        self._services._runtime.nvm.write(self._cell, scalar)
        return self.public_key()

    def import_private(self, scalar: bytes) -> bytes:
        """Personalise with a given private scalar; returns the public key ``x || y``."""
        try:
            primitives.private_key_from_scalar(scalar)
        except primitives.InvalidKey as exc:
            raise KeyError_(str(exc)) from None
        self._services._runtime.nvm.write(self._cell, bytes(scalar))
        return self.public_key()

    def public_key(self) -> bytes:
        return primitives.public_key_to_xy(self._private().public_key())

    def sign(self, data: bytes) -> bytes:
        """ECDSA-SHA256; the 64-byte ``r || s``."""
        return primitives.ecdsa_sign(self._private(), bytes(data))

    def ecdh(self, peer_xy: bytes) -> bytes:
        """Static ECDH with a peer public key (``x || y`` or ``04 || x || y``); returns Z."""
        try:
            peer = primitives.public_key_from_xy(bytes(peer_xy))
        except primitives.InvalidKey as exc:
            raise KeyError_(str(exc)) from None
        return primitives.ecdh(self._private(), peer)


class AesKeyHandle(KeyHandle):
    """An AES-128/192/256 key held by an applet."""

    def set_key(self, key: bytes) -> None:
        if len(key) not in AES_KEY_SIZES:
            raise KeyError_(f"an AES key is 16, 24 or 32 bytes, got {len(key)}")
        self._services._runtime.nvm.write(self._cell, bytes(key))

    def generate(self, size: int = 16) -> None:
        if size not in AES_KEY_SIZES:
            raise KeyError_(f"an AES key is 16, 24 or 32 bytes, got {size}")
        self._services._runtime.nvm.write(self._cell, self._services._runtime.rng.random_bytes(size))

    @property
    def size(self) -> int:
        return len(self._material())

    def encrypt_block(self, block: bytes) -> bytes:
        return self._crypto(lambda k: primitives.aes_ecb_encrypt_block(k, bytes(block)))

    def cbc_encrypt(self, iv: bytes, data: bytes) -> bytes:
        return self._crypto(lambda k: primitives.aes_cbc_encrypt(k, bytes(iv), bytes(data)))

    def cbc_decrypt(self, iv: bytes, data: bytes) -> bytes:
        return self._crypto(lambda k: primitives.aes_cbc_decrypt(k, bytes(iv), bytes(data)))

    def cmac(self, data: bytes) -> bytes:
        return self._crypto(lambda k: primitives.aes_cmac(k, bytes(data)))

    def _crypto(self, operation: Callable[[bytes], bytes]) -> bytes:
        try:
            return operation(self._material())
        except (primitives.CryptoError, ValueError) as exc:
            raise KeyError_(str(exc)) from None

