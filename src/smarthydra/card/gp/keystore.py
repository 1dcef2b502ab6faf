"""A security domain's keys and the PUT KEY data field (GP CS 2.3.1 11.8, Amendments D and F).

Keys are addressed by (key version number, key identifier). Types follow GP table 11-16:
``88`` AES, ``B0`` ECC public key, ``B1`` ECC private key, ``F0`` ECC key parameters
reference (00 = P-256), ``A1``/``A0`` RSA public modulus/exponent.

PUT KEY data field: new KVN, then one key data block per key::

    type | length | value  [ F0 | 01 | 00 ]  (ECC keys: the curve reference follows)
                           [ A0 | len | e ]  (RSA keys: the exponent follows the modulus)
    KCV length | KCV

AES key values are ``key length (1) || key encrypted with the DEK`` (AES-CBC, zero ICV, 80-padded
when the key is not a whole number of blocks); ECC private scalars are encrypted with the DEK
(32 bytes, no padding). The KCV of an AES key is AES(key, 16 x 01)[:3]; ECC and RSA keys have
none (KCV length 00). ``dek=None`` means the values travel in clear (only for personalisation
data that is itself protected by C-DECRYPTION).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from smarthydra.card.gp.certificates import load_point, point_bytes
from smarthydra.card.gp.errors import WrongData
from smarthydra.card.gp.kdf import AES_BLOCK, kcv_aes, pad80, unpad80
from smarthydra.crypto.primitives import aes_cbc_decrypt, aes_cbc_encrypt, private_key_from_scalar

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class KeyType(IntEnum):
    AES = 0x88
    EC_PUBLIC = 0xB0
    EC_PRIVATE = 0xB1
    EC_PARAMETERS = 0xF0
    RSA_EXPONENT = 0xA0
    RSA_MODULUS = 0xA1


@dataclass(frozen=True)
class SdKey:
    """One key: AES secret, ECC point or scalar (P-256), or RSA public (modulus, exponent)."""

    kvn: int
    kid: int
    key_type: KeyType
    value: bytes
    exponent: bytes = b""  # RSA only

    def __post_init__(self) -> None:
        if not (0 <= self.kvn <= 0xFF and 0 <= self.kid <= 0x7F):
            raise WrongData("key version is one byte and key identifier 0..7F")
        if self.key_type is KeyType.AES and len(self.value) not in (16, 24, 32):
            raise WrongData(f"an AES key is 16, 24 or 32 bytes, got {len(self.value)}")
        if self.key_type is KeyType.EC_PRIVATE and (
            len(self.value) != 32 or not 0 < int.from_bytes(self.value, "big") < P256_ORDER
        ):
            raise WrongData("a P-256 private key is a 32-byte scalar in 1..n-1")
        if self.key_type is KeyType.EC_PUBLIC:
            load_point(ec.SECP256R1(), self.value)  # raises WrongData when not on the curve

    @property
    def length(self) -> int:
        return len(self.value)

    def kcv(self) -> bytes:
        return kcv_aes(self.value) if self.key_type is KeyType.AES else b""

    def ec_private_key(self) -> ec.EllipticCurvePrivateKey:
        if self.key_type is not KeyType.EC_PRIVATE:
            raise WrongData(f"key {self.kvn:02X}/{self.kid:02X} is not an ECC private key")
        return private_key_from_scalar(self.value)

    def public_key(self) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
        if self.key_type is KeyType.EC_PUBLIC:
            return load_point(ec.SECP256R1(), self.value)
        if self.key_type is KeyType.EC_PRIVATE:
            return self.ec_private_key().public_key()
        if self.key_type is KeyType.RSA_MODULUS:
            try:
                return rsa.RSAPublicNumbers(
                    int.from_bytes(self.exponent, "big"), int.from_bytes(self.value, "big")
                ).public_key()
            except ValueError as exc:
                raise WrongData(f"bad RSA public key: {exc}") from None
        raise WrongData(f"key {self.kvn:02X}/{self.kid:02X} has no public key")

    # key information template entry (GET DATA E0, C0 tag): KID KVN type length
    def information(self) -> bytes:
        length = len(self.value)
        if length > 0xFF:
            return bytes((self.kid, self.kvn, self.key_type, 0x00)) + length.to_bytes(2, "big")
        return bytes((self.kid, self.kvn, self.key_type, length))

    def to_list(self) -> list[object]:
        return [self.kvn, self.kid, int(self.key_type), self.value, self.exponent]

    @classmethod
    def from_list(cls, raw: list[object]) -> SdKey:
        kvn, kid, key_type, value, exponent = raw
        assert isinstance(kvn, int) and isinstance(kid, int) and isinstance(key_type, int)
        assert isinstance(value, bytes) and isinstance(exponent, bytes)
        return cls(kvn, kid, KeyType(key_type), value, exponent)

    @classmethod
    def ec_private(cls, kvn: int, kid: int, key: ec.EllipticCurvePrivateKey) -> SdKey:
        return cls(kvn, kid, KeyType.EC_PRIVATE, key.private_numbers().private_value.to_bytes(32,
                                                                                            "big"))

    @classmethod
    def ec_public(cls, kvn: int, kid: int, key: ec.EllipticCurvePublicKey) -> SdKey:
        return cls(kvn, kid, KeyType.EC_PUBLIC, point_bytes(key))

    @classmethod
    def rsa_public(cls, kvn: int, kid: int, key: rsa.RSAPublicKey) -> SdKey:
        numbers = key.public_numbers()
        return cls(kvn, kid, KeyType.RSA_MODULUS,
                   numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big"),
                   numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big"))


def encode_keys(keys: Iterable[SdKey]) -> bytes:
    return cbor2.dumps([k.to_list() for k in sorted(keys, key=lambda k: (k.kvn, k.kid))])


def decode_keys(raw: bytes) -> list[SdKey]:
    if not raw:
        return []
    return [SdKey.from_list(item) for item in cbor2.loads(raw)]


# --- PUT KEY data field -----------------------------------------------------------------


def _component(key_type: int, value: bytes) -> bytes:
    if len(value) > 0xFF:
        return bytes((key_type, 0x82)) + len(value).to_bytes(2, "big") + value
    if len(value) > 0x7F:
        return bytes((key_type, 0x81, len(value))) + value
    return bytes((key_type, len(value))) + value


def encode_key_block(key: SdKey, dek: bytes | None) -> bytes:
    """One key data block of PUT KEY (with its KCV)."""
    if key.key_type is KeyType.AES:
        secret = key.value if dek is None else aes_cbc_encrypt(
            dek, bytes(AES_BLOCK),
            key.value if len(key.value) % AES_BLOCK == 0 else pad80(key.value))
        kcv = key.kcv()
        return (_component(KeyType.AES, bytes((len(key.value),)) + secret)
                + bytes((len(kcv),)) + kcv)
    if key.key_type is KeyType.EC_PRIVATE:
        secret = key.value if dek is None else aes_cbc_encrypt(dek, bytes(AES_BLOCK), key.value)
        return _component(KeyType.EC_PRIVATE, secret) + _component(KeyType.EC_PARAMETERS,
                                                                   b"\x00") + b"\x00"
    if key.key_type is KeyType.EC_PUBLIC:
        return _component(KeyType.EC_PUBLIC, key.value) + _component(KeyType.EC_PARAMETERS,
                                                                     b"\x00") + b"\x00"
    return (_component(KeyType.RSA_MODULUS, key.value)
            + _component(KeyType.RSA_EXPONENT, key.exponent) + b"\x00")


def encode_put_key(new_kvn: int, keys: Iterable[SdKey], dek: bytes | None) -> bytes:
    return bytes((new_kvn,)) + b"".join(encode_key_block(k, dek) for k in keys)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def byte(self) -> int:
        if self.offset >= len(self.data):
            raise WrongData("PUT KEY data ends early")
        self.offset += 1
        return self.data[self.offset - 1]

    def take(self, n: int) -> bytes:
        if self.offset + n > len(self.data):
            raise WrongData("PUT KEY data ends early")
        self.offset += n
        return self.data[self.offset - n : self.offset]

    def length(self) -> int:
        first = self.byte()
        if first < 0x80:
            return first
        if first == 0x81:
            return self.byte()
        if first == 0x82:
            return int.from_bytes(self.take(2), "big")
        raise WrongData(f"PUT KEY: bad length byte {first:02X}")

    def peek(self) -> int | None:
        return self.data[self.offset] if self.offset < len(self.data) else None

    @property
    def done(self) -> bool:
        return self.offset >= len(self.data)


def _decrypt(dek: bytes | None, value: bytes) -> bytes:
    if dek is None:
        return value
    if not value or len(value) % AES_BLOCK:
        raise WrongData("an encrypted key is whole AES blocks")
    return aes_cbc_decrypt(dek, bytes(AES_BLOCK), value)


def decode_put_key(data: bytes, first_kid: int, dek: bytes | None) -> tuple[int, list[SdKey]]:
    """Parse a PUT KEY data field; keys get consecutive identifiers from ``first_kid``.

    Raises :class:`WrongData` (6A80) for anything malformed, including a wrong KCV.
    """
    reader = _Reader(bytes(data))
    new_kvn = reader.byte()
    if not 0x01 <= new_kvn <= 0x7F:
        raise WrongData(f"key version {new_kvn:02X} is outside 01..7F")
    keys: list[SdKey] = []
    kid = first_kid
    while not reader.done:
        key_type = reader.byte()
        value = reader.take(reader.length())
        if key_type == KeyType.AES:
            if not value:
                raise WrongData("AES key block is empty")
            if dek is not None and len(value) % AES_BLOCK == 0:
                # no key-length byte: the encrypted key alone, as Yubico's yubikit (and
                # the YubiKey) send it. GP's form (length byte + whole blocks) is never a
                # whole number of blocks, so the two cannot be confused.
                value = bytes((len(value),)) + value
            length, secret = value[0], _decrypt(dek, value[1:])
            if length not in (16, 24, 32) or len(secret) < length:
                raise WrongData("AES key length is 16, 24 or 32")
            if len(secret) != length:
                secret = unpad80(secret) if dek is not None else secret
            key = SdKey(new_kvn, kid, KeyType.AES, secret[:length])
        elif key_type in (KeyType.EC_PRIVATE, KeyType.EC_PUBLIC):
            plain = _decrypt(dek, value) if key_type == KeyType.EC_PRIVATE else value
            if reader.peek() == KeyType.EC_PARAMETERS:
                reader.byte()
                if reader.take(reader.length()) != b"\x00":
                    raise WrongData("only the P-256 curve (parameter reference 00) is supported")
            key = SdKey(new_kvn, kid, KeyType(key_type), plain)
        elif key_type == KeyType.RSA_MODULUS:
            exponent = b""
            if reader.peek() == KeyType.RSA_EXPONENT:
                reader.byte()
                exponent = reader.take(reader.length())
            if not exponent:
                raise WrongData("an RSA public key needs its exponent (A0)")
            key = SdKey(new_kvn, kid, KeyType.RSA_MODULUS, value, exponent)
            key.public_key()
        else:
            raise WrongData(f"key type {key_type:02X} is not supported")
        kcv = reader.take(reader.byte())
        if kcv and kcv != key.kcv()[: len(kcv)]:
            raise WrongData(f"key check value of key {kid:02X} does not match")
        keys.append(key)
        kid += 1
        if kid > 0x7F:
            raise WrongData("too many keys in one PUT KEY")
    if not keys:
        raise WrongData("PUT KEY carries no key")
    return new_kvn, keys
