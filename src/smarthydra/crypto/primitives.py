"""Cryptographic primitives used across smarthydra, all over the ``cryptography`` package.

Nothing here is a new construction: P-256 ECDSA and ECDH, the NIST SP 800-56A single-step
key-derivation function with SHA-256, AES-GCM (with the truncated tags GBCS uses) and AES-CMAC.
Signatures travel in the fixed-width ``r || s`` form GBCS and GlobalPlatform use; conversion to
and from DER happens here so that callers never see DER.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import cmac, hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

CURVE = ec.SECP256R1()
COORDINATE_SIZE = 32
RAW_SIGNATURE_SIZE = 64


class CryptoError(Exception):
    """Base class for cryptographic failures that callers are expected to handle."""


class InvalidKey(CryptoError):
    """Key material is malformed or not on the expected curve."""


class AuthenticationFailed(CryptoError):
    """An AEAD tag or MAC did not verify."""


# --- P-256 keys -----------------------------------------------------------------------------


def generate_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(CURVE)


def private_key_from_scalar(scalar: bytes) -> ec.EllipticCurvePrivateKey:
    if len(scalar) != COORDINATE_SIZE:
        raise InvalidKey(f"a P-256 private scalar is {COORDINATE_SIZE} bytes, got {len(scalar)}")
    try:
        return ec.derive_private_key(int.from_bytes(scalar, "big"), CURVE)
    except ValueError as exc:
        raise InvalidKey(f"not a valid P-256 private scalar: {exc}") from None


def public_key_from_xy(xy: bytes) -> ec.EllipticCurvePublicKey:
    """Load a public key given as the 64-byte ``x || y`` (or 65-byte ``04 || x || y``)."""
    if len(xy) == 2 * COORDINATE_SIZE:
        xy = b"\x04" + xy
    if len(xy) != 2 * COORDINATE_SIZE + 1 or xy[0] != 0x04:
        raise InvalidKey("a P-256 public key is x||y (64 bytes) or 04||x||y (65 bytes)")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(CURVE, xy)
    except ValueError as exc:
        raise InvalidKey(f"point is not on P-256: {exc}") from None


def public_key_to_xy(key: ec.EllipticCurvePublicKey) -> bytes:
    """The 64-byte ``x || y`` form of a P-256 public key."""
    numbers = key.public_numbers()
    return numbers.x.to_bytes(COORDINATE_SIZE, "big") + numbers.y.to_bytes(COORDINATE_SIZE, "big")


# --- ECDSA ----------------------------------------------------------------------------------


def der_to_raw_signature(der: bytes) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(COORDINATE_SIZE, "big") + s.to_bytes(COORDINATE_SIZE, "big")


def raw_to_der_signature(raw: bytes) -> bytes:
    if len(raw) != RAW_SIGNATURE_SIZE:
        raise InvalidKey(f"a raw P-256 signature is {RAW_SIGNATURE_SIZE} bytes, got {len(raw)}")
    r = int.from_bytes(raw[:COORDINATE_SIZE], "big")
    s = int.from_bytes(raw[COORDINATE_SIZE:], "big")
    return encode_dss_signature(r, s)


def ecdsa_sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """ECDSA-SHA256 over ``data``; returns the 64-byte ``r || s``."""
    return der_to_raw_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))


def ecdsa_verify(key: ec.EllipticCurvePublicKey, data: bytes, signature: bytes) -> bool:
    """Verify a 64-byte ``r || s`` ECDSA-SHA256 signature. Never raises on a bad signature."""
    if len(signature) != RAW_SIGNATURE_SIZE:
        return False
    try:
        key.verify(raw_to_der_signature(signature), data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


# --- ECDH and key derivation ----------------------------------------------------------------


def ecdh(key: ec.EllipticCurvePrivateKey, peer: ec.EllipticCurvePublicKey) -> bytes:
    """Static-static ECDH: the 32-byte shared secret Z (the x coordinate)."""
    return key.exchange(ec.ECDH(), peer)


def kdf_single_step_sha256(z: bytes, other_info: bytes, length: int = 16) -> bytes:
    """NIST SP 800-56A single-step KDF with SHA-256: ``H(counter || Z || OtherInfo)...``."""
    out = b""
    counter = 1
    while len(out) < length:
        out += hashlib.sha256(counter.to_bytes(4, "big") + z + other_info).digest()
        counter += 1
    return out[:length]


# --- AES ------------------------------------------------------------------------------------


def aes_gcm_encrypt(
    key: bytes, iv: bytes, plaintext: bytes, aad: bytes, tag_length: int = 16
) -> tuple[bytes, bytes]:
    """AES-GCM encryption; returns ``(ciphertext, tag)``, the tag cut to ``tag_length``."""
    if 8 <= len(iv) <= 128:
        # The one-shot AEAD API is about five times faster than the streaming Cipher API.
        sealed = AESGCM(key).encrypt(iv, plaintext, aad)
        return sealed[:-16], sealed[-16:][:tag_length]
    encryptor = Cipher(algorithms.AES(key), modes.GCM(iv)).encryptor()
    encryptor.authenticate_additional_data(aad)
    ciphertext = encryptor.update(plaintext) + encryptor.finalize()
    return ciphertext, encryptor.tag[:tag_length]


def aes_gcm_decrypt(key: bytes, iv: bytes, ciphertext: bytes, aad: bytes, tag: bytes) -> bytes:
    """AES-GCM decryption with a possibly truncated tag (GBCS uses 12 bytes)."""
    if not 12 <= len(tag) <= 16:
        raise AuthenticationFailed(f"GCM tag length {len(tag)} is outside 12..16")
    try:
        decryptor = Cipher(
            algorithms.AES(key), modes.GCM(iv, tag, min_tag_length=len(tag))
        ).decryptor()
        decryptor.authenticate_additional_data(aad)
        return decryptor.update(ciphertext) + decryptor.finalize()
    except InvalidTag:
        raise AuthenticationFailed("AES-GCM tag does not verify") from None


def gmac(key: bytes, iv: bytes, aad: bytes, tag_length: int = 12) -> bytes:
    """GMAC: AES-GCM over an empty plaintext, tag truncated."""
    return aes_gcm_encrypt(key, iv, b"", aad, tag_length)[1]


def gmac_verify(key: bytes, iv: bytes, aad: bytes, tag: bytes) -> bool:
    return hmac.compare_digest(gmac(key, iv, aad, len(tag)), tag)


def aes_cmac(key: bytes, data: bytes) -> bytes:
    mac = cmac.CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def aes_cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-CBC without padding (callers pad as their protocol says)."""
    if len(data) % 16:
        raise CryptoError("AES-CBC input must be a multiple of 16 bytes")
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def aes_cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    if len(data) % 16:
        raise CryptoError("AES-CBC input must be a multiple of 16 bytes")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def aes_ecb_encrypt_block(key: bytes, block: bytes) -> bytes:
    if len(block) != 16:
        raise CryptoError("one AES block is 16 bytes")
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()
