"""Key derivation and small block-cipher helpers for GlobalPlatform secure channels.

* NIST SP 800-108 KDF in counter mode with AES-CMAC as PRF and a one-byte counter placed between
  two fixed-data blocks, exactly as GP Amendment D section 4.1.5 (SCP03) lays it out:
  ``CMAC(K, label(11 x 00 || constant) || 00 || L(2) || i || context)``.
* ISO/IEC 9797-1 padding method 2 ("80 00 ...").
* Key check values (AES: first 3 bytes of AES(K, 16 x 01); 3DES: of 3DES(K, 8 x 00)).
* 3DES helpers for SCP02 only, over ``cryptography``'s decrepit TripleDES.
* The key-diversification templates GlobalPlatformPro ships (EMV, VISA2, KDF3).
"""

from __future__ import annotations

import hmac
from enum import IntEnum

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from smarthydra.card.gp.errors import ConfigurationError, IncorrectSecureMessagingData
from smarthydra.crypto.primitives import aes_cbc_encrypt, aes_cmac, aes_ecb_encrypt_block

AES_KEY_SIZES = (16, 24, 32)
AES_BLOCK = 16
DES_BLOCK = 8


class DerivationConstant(IntEnum):
    """GP Amendment D table 4-1 data derivation constants."""

    CARD_CRYPTOGRAM = 0x00
    HOST_CRYPTOGRAM = 0x01
    CARD_CHALLENGE = 0x02
    S_ENC = 0x04
    S_MAC = 0x06
    S_RMAC = 0x07


def check_aes_key(key: bytes, what: str = "key") -> bytes:
    if len(key) not in AES_KEY_SIZES:
        raise ConfigurationError(f"{what} must be an AES-128/192/256 key, got {len(key)} bytes")
    return bytes(key)


def kdf_counter_cmac(key: bytes, prefix: bytes, suffix: bytes, length: int) -> bytes:
    """SP 800-108 counter-mode KDF, PRF AES-CMAC, 8-bit counter between ``prefix`` and ``suffix``.

    Returns ``length`` bytes: ``CMAC(K, prefix || 01 || suffix) || CMAC(K, prefix || 02 || ...)``.
    """
    check_aes_key(key)
    if length <= 0:
        raise ConfigurationError("KDF output length must be positive")
    blocks = -(-length // AES_BLOCK)
    if blocks > 0xFF:
        raise ConfigurationError("KDF output too long for an 8-bit counter")
    out = b"".join(aes_cmac(key, prefix + bytes((i,)) + suffix) for i in range(1, blocks + 1))
    return out[:length]


def scp03_kdf(key: bytes, constant: int, context: bytes, length_bits: int) -> bytes:
    """GP Amendment D 4.1.5 data derivation (also used by SCP11 for nothing but SCP03 keys)."""
    if length_bits <= 0 or length_bits % 8 or length_bits > 0xFFFF:
        raise ConfigurationError(f"SCP03 KDF output length {length_bits} bits is not supported")
    prefix = bytes(11) + bytes((constant,)) + b"\x00" + length_bits.to_bytes(2, "big")
    return kdf_counter_cmac(key, prefix, context, length_bits // 8)


# --- padding ---------------------------------------------------------------------------------


def pad80(data: bytes, block: int = AES_BLOCK) -> bytes:
    """ISO/IEC 9797-1 method 2: always append 80, then zeros to a whole block."""
    padded = data + b"\x80"
    return padded + bytes(-len(padded) % block)


def unpad80(data: bytes, block: int = AES_BLOCK) -> bytes:
    """Strip method-2 padding; a missing 80 marker or a bad length is a secure messaging error.

    More zero bytes than one block are accepted, as GlobalPlatformPro and pySim accept them and
    at least one public card emulation (Samsung OpenSCP) sends them.
    """
    if not data or len(data) % block:
        raise IncorrectSecureMessagingData(f"padded data must be whole {block}-byte blocks")
    stripped = data.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80:
        raise IncorrectSecureMessagingData("bad ISO 9797-1 method 2 padding")
    return stripped[:-1]


# --- key check values ------------------------------------------------------------------------


def kcv_aes(key: bytes) -> bytes:
    """GP Amendment D 7.2.2: first 3 bytes of AES(K, 16 x 01)."""
    return aes_ecb_encrypt_block(check_aes_key(key), b"\x01" * AES_BLOCK)[:3]


def kcv_3des(key: bytes) -> bytes:
    """First 3 bytes of 3DES-ECB(K, 8 x 00)."""
    return des3_ecb_encrypt(key, bytes(DES_BLOCK))[:3]


# --- 3DES (SCP02 and SCP01-era diversification only) -----------------------------------------


def _des3_key(key: bytes) -> bytes:
    """Expand 1- and 2-key forms to the 24-byte K1 K2 K3 form ``cryptography`` prefers."""
    if len(key) == 8:
        return bytes(key) * 3
    if len(key) == 16:
        return bytes(key) + bytes(key[:8])
    if len(key) == 24:
        return bytes(key)
    raise ConfigurationError(f"a DES/3DES key is 8, 16 or 24 bytes, got {len(key)}")


def des3_ecb_encrypt(key: bytes, data: bytes) -> bytes:
    if len(data) % DES_BLOCK:
        raise ConfigurationError("3DES-ECB input must be whole 8-byte blocks")
    enc = Cipher(TripleDES(_des3_key(key)), modes.ECB()).encryptor()
    return enc.update(data) + enc.finalize()


def des3_cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    if len(data) % DES_BLOCK:
        raise ConfigurationError("3DES-CBC input must be whole 8-byte blocks")
    enc = Cipher(TripleDES(_des3_key(key)), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def des_ecb_encrypt(key8: bytes, data: bytes) -> bytes:
    """Single DES, expressed as TripleDES with K1 = K2 = K3."""
    if len(key8) != 8:
        raise ConfigurationError("a single-DES key is 8 bytes")
    return des3_ecb_encrypt(key8, data)


def mac_3des(key: bytes, data: bytes, iv: bytes = bytes(8)) -> bytes:
    """ISO 9797-1 MAC algorithm 1 with 3DES (full triple-DES CBC-MAC), method 2 padding."""
    return des3_cbc_encrypt(key, iv, pad80(data, DES_BLOCK))[-DES_BLOCK:]


def mac_retail(key16: bytes, data: bytes, iv: bytes = bytes(8)) -> bytes:
    """ISO 9797-1 MAC algorithm 3 ("retail MAC"): single-DES CBC, final block 3DES."""
    if len(key16) != 16:
        raise ConfigurationError("the retail MAC key is a 16-byte 3DES key")
    padded = pad80(data, DES_BLOCK)
    chain = iv
    for offset in range(0, len(padded) - DES_BLOCK, DES_BLOCK):
        block = bytes(
            a ^ b for a, b in zip(chain, padded[offset : offset + DES_BLOCK], strict=True)
        )
        chain = des_ecb_encrypt(key16[:8], block)
    last = bytes(a ^ b for a, b in zip(chain, padded[-DES_BLOCK:], strict=True))
    return des3_ecb_encrypt(key16, last)


# --- diversification templates (as GlobalPlatformPro names them) ------------------------------


class KeyPurpose(IntEnum):
    ENC = 1
    MAC = 2
    DEK = 3


def diversify_emv(master: bytes, kdd: bytes, purpose: KeyPurpose) -> bytes:
    """EMV CPS diversification: 3DES(master, KDD[4:10] F0 k || KDD[4:10] 0F k)."""
    _check_kdd(kdd)
    data = kdd[4:10] + bytes((0xF0, purpose)) + kdd[4:10] + bytes((0x0F, purpose))
    return des3_ecb_encrypt(master, data)


def diversify_visa2(master: bytes, kdd: bytes, purpose: KeyPurpose) -> bytes:
    """VISA2 diversification: 3DES(master, KDD[0:2] KDD[4:8] F0 k || KDD[0:2] KDD[4:8] 0F k)."""
    _check_kdd(kdd)
    part = kdd[0:2] + kdd[4:8]
    data = part + bytes((0xF0, purpose)) + part + bytes((0x0F, purpose))
    return des3_ecb_encrypt(master, data)


def diversify_kdf3(master: bytes, kdd: bytes, purpose: KeyPurpose) -> bytes:
    """GlobalPlatformPro "kdf3": counter-mode CMAC KDF, input ``i || 00 00 00 k 00 || KDD``."""
    _check_kdd(kdd)
    return kdf_counter_cmac(master, b"", bytes((0, 0, 0, purpose, 0)) + kdd, len(master))


def _check_kdd(kdd: bytes) -> None:
    if len(kdd) != 10:
        raise ConfigurationError(f"key diversification data is 10 bytes, got {len(kdd)}")


def scp01_session_key(static_key: bytes, host_challenge: bytes, card_challenge: bytes) -> bytes:
    """SCP01 session key: 3DES-ECB over card[4:8] host[0:4] card[0:4] host[4:8]."""
    data = card_challenge[4:8] + host_challenge[0:4] + card_challenge[0:4] + host_challenge[4:8]
    return des3_ecb_encrypt(static_key, data)


def constant_time_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def aes_cbc_zero_iv(key: bytes, data: bytes) -> bytes:
    """AES-CBC with a zero IV (key encryption with the DEK, GP Amendment D 7.2.2)."""
    return aes_cbc_encrypt(key, bytes(AES_BLOCK), data)
