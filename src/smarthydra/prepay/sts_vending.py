"""An STS vending server whose vending key stays in a keystore (soft, or a PKCS#11 HSM).

The vending key is the secret every meter's decoder key is derived from, so it is the one to
protect. :class:`Pkcs11VendingKey` keeps it in a PKCS#11 token as sensitive, non-extractable
secret-key objects and runs the derivation steps there:

* DKGA-04 (HMAC-SHA-256) runs wholly in the token (``CKM_SHA256_HMAC`` on a generic secret).
  SoftHSM2 refuses HMAC keys shorter than 32 bytes, so a shorter vending key is stored
  zero-padded to 32 bytes: RFC 2104 pads short keys with zeros anyway, so the MAC is the same.
* DKGA-02's DES step runs in the token (``CKM_DES3_ECB`` with K||K||K, i.e. single DES), but
  DKGA-02 ends with an xor of the vending key itself into the result, and PKCS#11 (SoftHSM2
  included) has no mechanism that xors a secret key into output data. So DKGA-02 with an
  HSM-held key is refused with a specific error; vend with DKGA-04 from the HSM, or keep a
  DKGA-02 vending key in a :class:`SoftVendingKey`. This is the documented limitation.

Decoder keys are per meter and must leave the token anyway: no HSM here runs EA07/EA11.
"""

from __future__ import annotations

import abc
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from smarthydra.prepay.errors import PrepayError, StsKeyError
from smarthydra.prepay.sts_algorithms import (
    BaseDate,
    EncryptionAlgorithm,
    KeyGenerationAlgorithm,
    MeterIdentity,
    des_encrypt_block,
    dkga02,
    dkga04,
    hmac_sha256,
)
from smarthydra.prepay.sts_tokens import (
    KEY_CHANGE_SUBCLASSES,
    POWER_MANAGEMENT,
    CreditToken,
    KeyChangeToken1,
    KeyChangeToken2,
    KeyChangeToken3,
    KeyChangeToken4,
    ManagementToken,
    MeterTestToken,
    Token,
    TokenClass,
    encode_token,
    round_up_power,
    tid_for,
)

_HMAC_MIN_KEY = 32


class VendingKey(abc.ABC):
    """Where the vending key lives: the operations key generation needs, never the key."""

    @abc.abstractmethod
    def des_encrypt(self, block: bytes) -> bytes:
        """DES (ECB, one block) under the vending key (DKGA-02)."""

    @abc.abstractmethod
    def hmac_sha256(self, data: bytes) -> bytes:
        """HMAC-SHA-256 under the vending key (DKGA-04)."""

    @abc.abstractmethod
    def dkga02_final_xor(self) -> bytes:
        """The vending key bytes DKGA-02 xors into its result (refused by an HSM key)."""


class SoftVendingKey(VendingKey):
    """A vending key in process memory (tests, development, the CLI's ``--vending-key``)."""

    def __init__(self, value: bytes) -> None:
        if len(value) < 8:
            raise StsKeyError("a vending key is at least 8 bytes")
        self._value = bytes(value)

    def des_encrypt(self, block: bytes) -> bytes:
        if len(self._value) != 8:
            raise StsKeyError("DKGA-02 needs a 64-bit (8-byte) DES vending key")
        return des_encrypt_block(self._value, block)

    def hmac_sha256(self, data: bytes) -> bytes:
        return hmac_sha256(self._value, data)

    def dkga02_final_xor(self) -> bytes:
        if len(self._value) != 8:
            raise StsKeyError("DKGA-02 needs a 64-bit (8-byte) DES vending key")
        return self._value


class Pkcs11VendingKey(VendingKey):
    """A vending key held in a PKCS#11 token under ``label`` (see the module notes)."""

    def __init__(self, session: Any, label: str) -> None:
        import pkcs11
        from pkcs11 import KeyType, ObjectClass

        self._session = session
        self.label = label
        self._pkcs11 = pkcs11
        try:
            self._hmac_key = session.get_key(ObjectClass.SECRET_KEY, KeyType.GENERIC_SECRET,
                                             label=f"{label}/hmac")
        except (pkcs11.NoSuchKey, pkcs11.MultipleObjectsReturned):
            raise StsKeyError(f"no vending key {label!r} in the token") from None
        try:
            self._des_key: Any = session.get_key(ObjectClass.SECRET_KEY, KeyType.DES3,
                                                 label=f"{label}/des")
        except pkcs11.NoSuchKey:
            self._des_key = None

    @staticmethod
    def create(session: Any, label: str, value: bytes) -> Pkcs11VendingKey:
        """Import ``value`` into the token as sensitive, non-extractable key objects."""
        from pkcs11 import Attribute, KeyType, ObjectClass

        if len(value) < 8:
            raise StsKeyError("a vending key is at least 8 bytes")
        common = {
            Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.TOKEN: True,
            Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.PRIVATE: True,
        }
        padded = value + bytes(max(0, _HMAC_MIN_KEY - len(value)))
        session.create_object({**common, Attribute.KEY_TYPE: KeyType.GENERIC_SECRET,
                               Attribute.VALUE: padded, Attribute.SIGN: True,
                               Attribute.LABEL: f"{label}/hmac"})
        if len(value) == 8:
            session.create_object({**common, Attribute.KEY_TYPE: KeyType.DES3,
                                   Attribute.VALUE: value * 3, Attribute.ENCRYPT: True,
                                   Attribute.LABEL: f"{label}/des"})
        return Pkcs11VendingKey(session, label)

    def des_encrypt(self, block: bytes) -> bytes:
        from pkcs11 import Mechanism

        if self._des_key is None:
            raise StsKeyError(f"vending key {self.label!r} has no DES part (not 8 bytes)")
        return bytes(self._des_key.encrypt(block, mechanism=Mechanism.DES3_ECB))

    def hmac_sha256(self, data: bytes) -> bytes:
        from pkcs11 import Mechanism

        return bytes(self._hmac_key.sign(data, mechanism=Mechanism.SHA256_HMAC))

    def dkga02_final_xor(self) -> bytes:
        raise StsKeyError(
            "DKGA-02 xors the vending key itself into the decoder key, which a PKCS#11 token "
            "cannot do without revealing it: use DKGA-04 with an HSM-held vending key"
        )


@dataclass(frozen=True)
class Vend:
    digits: str
    token: Token

    @property
    def grouped(self) -> str:
        return "-".join(self.digits[i: i + 4] for i in range(0, 20, 4))


@dataclass(frozen=True)
class KeyChange:
    """The key change tokens for one meter, in entry order, and the key they install."""

    tokens: tuple[Vend, ...]  # 1st and 2nd section (EA07); 1st to 4th section (EA11)
    new_key: bytes


def parse_amount_tenths(amount: str | Decimal) -> int:
    try:
        tenths = Decimal(amount) * 10
    except InvalidOperation:
        raise PrepayError(f"{amount!r} is not a number") from None
    if tenths != tenths.to_integral_value():
        raise PrepayError(f"{amount} has a finer resolution than 0.1")
    return int(tenths)


class VendingServer:
    """Vends tokens for meters with one vending key, key generation and algorithm."""

    def __init__(self, key: VendingKey, dkga: KeyGenerationAlgorithm,
                 algorithm: EncryptionAlgorithm, base_date: BaseDate,
                 random_nibble: Callable[[], int] | None = None) -> None:
        if dkga is KeyGenerationAlgorithm.DKGA02 and algorithm is EncryptionAlgorithm.MISTY1:
            raise StsKeyError("DKGA-02 makes 64-bit keys; EA11 (MISTY1) needs DKGA-04")
        self.key = key
        self.dkga = dkga
        self.algorithm = algorithm
        self.base_date = base_date
        self._random = random_nibble or (lambda: secrets.randbelow(16))

    def decoder_key(self, meter: MeterIdentity, base_date: BaseDate | None = None) -> bytes:
        if self.dkga is KeyGenerationAlgorithm.DKGA02:
            return dkga02(meter, self.key.des_encrypt, self.key.dkga02_final_xor())
        return dkga04(meter, base_date or self.base_date, self.algorithm, self.key.hmac_sha256)

    def _rnd(self, random: int | None) -> int:
        value = self._random() if random is None else random
        if not 0 <= value <= 15:
            raise PrepayError(f"RND {value} is outside 0..15")
        return value

    def build(self, token_class: int, subclass: int, amount: str | Decimal, issued: datetime,
              random: int | None = None, manufacturer: int = 0) -> Token:
        """The token for the CLI's (class, subclass, amount) triple; AMOUNT's meaning follows
        the class: credit in the natural unit, a management value, or a test control field."""
        if token_class == TokenClass.CREDIT:
            return CreditToken(subclass, tid_for(issued, self.base_date),
                               parse_amount_tenths(amount), rnd=self._rnd(random))
        if token_class == TokenClass.TEST:
            return MeterTestToken(subclass, control=_integer(amount), manufacturer=manufacturer)
        if token_class == TokenClass.MANAGEMENT:
            if subclass in KEY_CHANGE_SUBCLASSES:
                raise PrepayError("key change tokens come as a set: use `sts key-change`")
            value = _integer(amount)
            if subclass in POWER_MANAGEMENT:
                # a limit the token cannot carry exactly is rounded up, as IEC 62055-41 does
                value = round_up_power(value)
            return ManagementToken(subclass, tid_for(issued, self.base_date), value,
                                   rnd=self._rnd(random))
        raise PrepayError(f"token class {token_class} is not 0, 1 or 2")

    def vend(self, meter: MeterIdentity, token: Token) -> Vend:
        return Vend(encode_token(token, self.decoder_key(meter), self.algorithm), token)

    def key_change(self, old: MeterIdentity, new: MeterIdentity, *, ken: int = 255,
                   rollover: bool = False) -> KeyChange:
        """The key change tokens moving a meter from ``old``'s decoder key to ``new``'s.

        A 64-bit (EA07) key needs tokens 1 and 2; a 128-bit (EA11) key also tokens 3 and 4,
        which carry the new supply group code too. All are encrypted under the old key. With
        ``rollover`` the new key is derived for the next base date and the RO bit tells the
        meter to clear its TID memory (the base-date rollover path).
        """
        if not 0 <= ken <= 255:
            raise PrepayError(f"key expiry number {ken} is outside 0..255")
        old_key = self.decoder_key(old)
        new_base = self.base_date.next() if rollover else self.base_date
        new_key = self.decoder_key(new, new_base)
        words = [int.from_bytes(new_key[i: i + 4], "big") for i in range(0, len(new_key), 4)]
        sections: list[Token] = [
            KeyChangeToken1(kenho=ken >> 4, krn=new.krn, ro=int(rollover), kt=new.kt,
                            nkho=words[0]),
            KeyChangeToken2(kenlo=ken & 0xF, ti=new.ti, nklo=words[-1]),
        ]
        if self.algorithm is EncryptionAlgorithm.MISTY1:
            sgc = int(new.sgc)
            sections += [KeyChangeToken3(sgclo=sgc & 0xFFF, nkmo2=words[1]),
                         KeyChangeToken4(sgcho=sgc >> 12, nkmo1=words[2])]
        tokens = tuple(Vend(encode_token(t, old_key, self.algorithm), t) for t in sections)
        return KeyChange(tokens, new_key)


def _integer(amount: str | Decimal) -> int:
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise PrepayError(f"{amount!r} is not a number") from None
    if value != value.to_integral_value() or value < 0:
        raise PrepayError(f"{amount} must be a non-negative whole number for this token class")
    return int(value)
