"""Keys inside the card: applets hold handles, the key material never comes out.

A key lives in an NVM cell of its applet (so key changes are journalled like any other
write). Handles offer the operations only: P-256 generation, ECDSA, ECDH, AES blocks and
CBC, AES-CMAC. There is no method that returns private or secret key material.
"""

from __future__ import annotations

import hashlib
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

    def agree_aes(self, peer_xy: bytes, other_info: bytes, target: AesKeyHandle,
                  length: int = 16) -> None:
        """ECDH with a peer, then the NIST SP 800-56A single-step KDF (SHA-256) over ``Z``
        and ``other_info`` into the AES key handle ``target``: ``Z`` stays in the card."""
        z = self.ecdh(peer_xy)
        if length not in AES_KEY_SIZES:
            raise KeyError_(f"an AES key is 16, 24 or 32 bytes, got {length}")
        target.set_key(primitives.kdf_single_step_sha256(z, bytes(other_info), length))


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

    def gcm_encrypt(self, iv: bytes, plaintext: bytes, aad: bytes) -> bytes:
        """AES-GCM with a 12-byte IV; the ciphertext followed by the 16-byte tag."""
        def encrypt(key: bytes) -> bytes:
            ciphertext, tag = primitives.aes_gcm_encrypt(key, bytes(iv), bytes(plaintext),
                                                         bytes(aad), 16)
            return ciphertext + tag
        return self._crypto(encrypt)

    def gcm_decrypt(self, iv: bytes, data: bytes, aad: bytes) -> bytes:
        """Open ``ciphertext || tag`` (16-byte tag); KeyError_ when it does not authenticate."""
        raw = bytes(data)
        if len(raw) < 16:
            raise KeyError_("GCM data is shorter than its tag")
        return self._crypto(lambda k: primitives.aes_gcm_decrypt(k, bytes(iv), raw[:-16],
                                                                 bytes(aad), raw[-16:]))

    def _crypto(self, operation: Callable[[bytes], bytes]) -> bytes:
        try:
            return operation(self._material())
        except (primitives.CryptoError, ValueError) as exc:
            raise KeyError_(str(exc)) from None



class CardCrypto:
    """Keyless operations the card offers applets: SHA-256 and ECDSA verification with a
    public key given as ``x || y`` (restricted code cannot import ``cryptography``)."""

    @staticmethod
    def sha256(data: bytes) -> bytes:
        return hashlib.sha256(bytes(data)).digest()

    @staticmethod
    def ecdsa_verify(public_xy: bytes, data: bytes, signature: bytes) -> bool:
        """ECDSA-SHA256 with P-256, signature ``r || s``; False for any bad input."""
        try:
            key = primitives.public_key_from_xy(bytes(public_xy))
        except (primitives.InvalidKey, ValueError, TypeError):
            return False
        return primitives.ecdsa_verify(key, bytes(data), bytes(signature))

    @staticmethod
    def is_p256_point(public_xy: bytes) -> bool:
        try:
            primitives.public_key_from_xy(bytes(public_xy))
        except (primitives.InvalidKey, ValueError, TypeError):
            return False
        return True
