"""IEC 62055-41 token data: the 66-bit token, its fields, CRC and the 20-digit decimal form.

A token is 2 class bits and a 64-bit block. From the most significant end the block holds the
subclass (4 bits), the class-specific fields (44 bits) and a CRC-16 (16 bits). The CRC covers
the class (as one byte) and the 48 bits above it. Class 0 and 2 blocks are encrypted with the
decoder key; class 1 is sent in clear. After encryption the two class bits are swapped into
bits 28 and 27 of the block, and the two bits displaced go to the top (bits 65 and 64).

Layouts (field widths from the most significant end, below the 4-bit subclass):

* class 0 (TransferCredit): RND 4, TID 24, transfer amount 16;
* class 2, subclasses 0, 1, 2, 5, 6, 7 (set maximum power limit, clear credit, set tariff
  rate, clear tamper, set maximum phase power unbalance limit, set water meter factor):
  RND 4, TID 24, value 16 (MPL in W, register, rate, pad, MPPUL in W, factor). The maximum
  power limit and the maximum phase power unbalance limit use the transfer amount's 2-bit
  exponent / 14-bit mantissa form over whole watts (confirmed by the STS 531-1-0-04 CTSA12 and
  CTSA13 vectors: 16384 W is exponent 1 mantissa 0, 18201624 W the largest value);
* class 2, subclass 3 (key change token 1, Set1stSectionDecoderKey): KENHO 4, KRN 4, RO 1,
  reserved 1, KT 2, NKHO 32;
* class 2, subclass 4 (key change token 2, Set2ndSectionDecoderKey): KENLO 4, TI 8, NKLO 32;
* class 2, subclass 8 (key change token 3, Set3rdSectionDecoderKey): SGCLO 12, NKMO2 32;
* class 2, subclass 9 (key change token 4, Set4thSectionDecoderKey): SGCHO 12, NKMO1 32;
* class 1 subclass 0 (InitiateMeterTest/Display 1): control 36, manufacturer code 8;
  subclass 1 (InitiateMeterTest/Display 2): control 28, manufacturer code 16.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from smarthydra.prepay.errors import (
    AmountNotRepresentable,
    TidOutOfRange,
    TokenClassUnsupported,
    TokenCrcError,
    TokenFormatError,
)
from smarthydra.prepay.sts_algorithms import (
    BaseDate,
    EncryptionAlgorithm,
    decrypt_block,
    encrypt_block,
)

TID_BITS = 24
TID_LIMIT = 1 << TID_BITS


class TokenClass(enum.IntEnum):
    CREDIT = 0
    TEST = 1
    MANAGEMENT = 2


class CreditSubclass(enum.IntEnum):
    ELECTRICITY = 0
    WATER = 1
    GAS = 2
    TIME = 3
    ELECTRICITY_CURRENCY = 4
    WATER_CURRENCY = 5
    GAS_CURRENCY = 6
    TIME_CURRENCY = 7


class ManagementSubclass(enum.IntEnum):
    SET_MAXIMUM_POWER_LIMIT = 0
    CLEAR_CREDIT = 1
    SET_TARIFF_RATE = 2
    KEY_CHANGE_1 = 3
    KEY_CHANGE_2 = 4
    CLEAR_TAMPER = 5
    SET_MAXIMUM_PHASE_POWER_UNBALANCE_LIMIT = 6
    SET_WATER_METER_FACTOR = 7
    KEY_CHANGE_3 = 8
    KEY_CHANGE_4 = 9


#: management subclasses whose 44 bits are RND, TID and a 16-bit value
TIMED_MANAGEMENT = frozenset({0, 1, 2, 5, 6, 7})
#: management subclasses whose 16-bit value is a power in watts, in the transfer amount form
POWER_MANAGEMENT = frozenset({0, 6})
#: the key change token subclasses, in section order (1st, 2nd, 3rd, 4th)
KEY_CHANGE_SUBCLASSES = (3, 4, 8, 9)


def crc16(data: bytes) -> int:
    """CRC-16 with polynomial x^16+x^15+x^2+1 (reflected 0xA001), initial 0xFFFF, the two
    result bytes swapped, as IEC 62055-41 places it in the token."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return ((crc & 0xFF) << 8) | (crc >> 8)


def _crc_for(token_class: int, upper48: int) -> int:
    return crc16(bytes((token_class,)) + upper48.to_bytes(6, "big"))


# --- transfer amount: 2-bit exponent, 14-bit mantissa --------------------------------------

_MANTISSA = 1 << 14
_POW10 = (1, 10, 100, 1000)


def _offset(exponent: int) -> int:
    return sum(_MANTISSA * _POW10[n - 1] for n in range(1, exponent + 1))


def encode_amount(tenths: int) -> int:
    """Encode a transfer amount given in tenths of the unit (0.1 kWh, ...) as 16 bits."""
    if tenths < 0:
        raise AmountNotRepresentable(f"negative amount {tenths / 10}")
    for exponent in range(4):
        rest = tenths - _offset(exponent)
        if rest < 0:
            break
        mantissa, remainder = divmod(rest, _POW10[exponent])
        if mantissa < _MANTISSA:
            if remainder:
                lower = Decimal(tenths - remainder) / 10
                raise AmountNotRepresentable(
                    f"{Decimal(tenths) / 10} cannot be carried exactly; nearest below is {lower}"
                )
            return (exponent << 14) | mantissa
    raise AmountNotRepresentable(f"{Decimal(tenths) / 10} exceeds the largest transfer amount")


def decode_amount(raw: int) -> int:
    """The amount in tenths of the unit carried by a 16-bit transfer amount."""
    exponent, mantissa = raw >> 14, raw & (_MANTISSA - 1)
    return mantissa * _POW10[exponent] + _offset(exponent)


MAX_AMOUNT_TENTHS = decode_amount(0xFFFF)
#: the largest power limit a class 2 token carries: 18 201 624 W
MAX_POWER_WATTS = decode_amount(0xFFFF)


def encode_power(watts: int) -> int:
    """Encode an exactly representable power in watts (MPL, MPPUL) as 16 bits."""
    try:
        return encode_amount(watts)
    except AmountNotRepresentable:
        raise AmountNotRepresentable(
            f"{watts} W is not a value a power limit token can carry; "
            f"the next one up is {round_up_power(watts)} W"
        ) from None


def decode_power(raw: int) -> int:
    return decode_amount(raw)


def round_up_power(watts: int) -> int:
    """The smallest power (W) a token can carry that is not below ``watts``.

    The STS 531-1-0-04 CTSA12/CTSA13 vectors carry 20000 W as 20004 W and 180223 W as
    180224 W, i.e. a limit is rounded up to the next value the 16 bits can hold, never down.
    """
    if watts < 0:
        raise AmountNotRepresentable(f"negative power {watts} W")
    for exponent in range(4):
        rest = watts - _offset(exponent)
        mantissa = -(-rest // _POW10[exponent])  # ceiling division
        # below exponent 3 a mantissa of 2^14 is exactly the next exponent's mantissa 0
        largest = _MANTISSA if exponent < 3 else _MANTISSA - 1
        if rest >= 0 and mantissa <= largest:
            return _offset(exponent) + mantissa * _POW10[exponent]
    raise AmountNotRepresentable(f"{watts} W exceeds the largest power limit {MAX_POWER_WATTS} W")


# --- TID -----------------------------------------------------------------------------------


def base_datetime(base_date: BaseDate) -> datetime:
    return datetime(base_date.value, 1, 1, tzinfo=UTC)


def tid_for(issued: datetime, base_date: BaseDate) -> int:
    """Minutes from the base date (UTC) to the issue time, as the 24-bit TID."""
    if issued.tzinfo is None:
        issued = issued.replace(tzinfo=UTC)
    minutes = int((issued - base_datetime(base_date)).total_seconds() // 60)
    if minutes < 0:
        raise TidOutOfRange(f"{issued.isoformat()} is before the {base_date.value} base date")
    if minutes >= TID_LIMIT:
        raise TidOutOfRange(
            f"{issued.isoformat()} is past the {base_date.value} base date's TID rollover "
            f"({issued_at(TID_LIMIT - 1, base_date).isoformat()}): move the meter to the next "
            "base date with key change tokens"
        )
    return minutes


def issued_at(tid: int, base_date: BaseDate) -> datetime:
    return base_datetime(base_date) + timedelta(minutes=tid)


# --- token payloads ------------------------------------------------------------------------


@dataclass(frozen=True)
class CreditToken:
    subclass: int
    tid: int
    amount_tenths: int  # exact amount in tenths of the natural unit
    rnd: int = 0
    token_class: int = TokenClass.CREDIT

    @property
    def amount(self) -> Decimal:
        return Decimal(self.amount_tenths) / 10


@dataclass(frozen=True)
class ManagementToken:
    """A class 2 token carrying RND, TID and a 16-bit value (MPL, register, rate, ...).

    ``value`` is in watts for the power limits (subclasses 0 and 6), which the 16 bits carry
    in the exponent/mantissa form; for the other subclasses it is the raw 16-bit field.
    """

    subclass: int
    tid: int
    value: int
    rnd: int = 0
    token_class: int = TokenClass.MANAGEMENT


@dataclass(frozen=True)
class KeyChangeToken1:
    kenho: int  # key expiry number, high nibble
    krn: int  # new key revision number
    ro: int  # rollover: 1 = the meter clears its TID memory (base-date rollover)
    kt: int  # new key type
    nkho: int  # new key, high-order 32 bits
    subclass: int = ManagementSubclass.KEY_CHANGE_1
    token_class: int = TokenClass.MANAGEMENT


@dataclass(frozen=True)
class KeyChangeToken2:
    kenlo: int
    ti: int  # new tariff index
    nklo: int  # new key, low-order 32 bits
    subclass: int = ManagementSubclass.KEY_CHANGE_2
    token_class: int = TokenClass.MANAGEMENT


@dataclass(frozen=True)
class KeyChangeToken3:
    sgclo: int  # new supply group code, low-order 12 bits
    nkmo2: int  # new 128-bit key, bytes 4..7
    subclass: int = ManagementSubclass.KEY_CHANGE_3
    token_class: int = TokenClass.MANAGEMENT


@dataclass(frozen=True)
class KeyChangeToken4:
    sgcho: int  # new supply group code, high-order 12 bits
    nkmo1: int  # new 128-bit key, bytes 8..11
    subclass: int = ManagementSubclass.KEY_CHANGE_4
    token_class: int = TokenClass.MANAGEMENT


KeyChangeToken = KeyChangeToken1 | KeyChangeToken2 | KeyChangeToken3 | KeyChangeToken4


@dataclass(frozen=True)
class MeterTestToken:
    subclass: int  # 0: 36-bit control + 8-bit manufacturer; 1: 28-bit control + 16-bit
    control: int
    manufacturer: int
    token_class: int = TokenClass.TEST


Token = CreditToken | ManagementToken | KeyChangeToken | MeterTestToken


def _check(name: str, value: int, bits: int) -> int:
    if not 0 <= value < (1 << bits):
        raise TokenFormatError(f"{name} {value} does not fit {bits} bits")
    return value


def _fields(token: Token) -> int:
    """The 44 bits below the subclass."""
    if isinstance(token, CreditToken):
        if not 0 <= token.subclass <= 15:
            raise TokenFormatError(f"subclass {token.subclass} is outside 0..15")
        return (_check("RND", token.rnd, 4) << 40 | _check("TID", token.tid, 24) << 16
                | encode_amount(token.amount_tenths))
    if isinstance(token, ManagementToken):
        if token.subclass not in TIMED_MANAGEMENT:
            raise TokenClassUnsupported(f"class 2 subclass {token.subclass} has no 16-bit value")
        value = (encode_power(token.value) if token.subclass in POWER_MANAGEMENT
                 else _check("value", token.value, 16))
        return _check("RND", token.rnd, 4) << 40 | _check("TID", token.tid, 24) << 16 | value
    if isinstance(token, KeyChangeToken1):
        return (_check("KENHO", token.kenho, 4) << 40 | _check("KRN", token.krn, 4) << 36
                | _check("RO", token.ro, 1) << 35 | _check("KT", token.kt, 2) << 32
                | _check("NKHO", token.nkho, 32))
    if isinstance(token, KeyChangeToken2):
        return (_check("KENLO", token.kenlo, 4) << 40 | _check("TI", token.ti, 8) << 32
                | _check("NKLO", token.nklo, 32))
    if isinstance(token, KeyChangeToken3):
        return _check("SGCLO", token.sgclo, 12) << 32 | _check("NKMO2", token.nkmo2, 32)
    if isinstance(token, KeyChangeToken4):
        return _check("SGCHO", token.sgcho, 12) << 32 | _check("NKMO1", token.nkmo1, 32)
    if token.subclass == 0:
        return _check("control", token.control, 36) << 8 | _check("manufacturer", token.manufacturer, 8)
    if token.subclass == 1:
        return (_check("control", token.control, 28) << 16
                | _check("manufacturer", token.manufacturer, 16))
    raise TokenClassUnsupported(f"class 1 subclass {token.subclass} is not defined")


def _parse(token_class: int, subclass: int, fields: int) -> Token:
    if token_class == TokenClass.CREDIT:
        return CreditToken(subclass, tid=(fields >> 16) & 0xFFFFFF,
                           amount_tenths=decode_amount(fields & 0xFFFF), rnd=fields >> 40)
    if token_class == TokenClass.MANAGEMENT:
        if subclass in TIMED_MANAGEMENT:
            value = fields & 0xFFFF
            if subclass in POWER_MANAGEMENT:
                value = decode_power(value)
            return ManagementToken(subclass, tid=(fields >> 16) & 0xFFFFFF, value=value,
                                   rnd=fields >> 40)
        if subclass == ManagementSubclass.KEY_CHANGE_1:
            return KeyChangeToken1(kenho=fields >> 40, krn=(fields >> 36) & 0xF,
                                   ro=(fields >> 35) & 1, kt=(fields >> 32) & 3,
                                   nkho=fields & 0xFFFFFFFF)
        if subclass == ManagementSubclass.KEY_CHANGE_2:
            return KeyChangeToken2(kenlo=fields >> 40, ti=(fields >> 32) & 0xFF,
                                   nklo=fields & 0xFFFFFFFF)
        if subclass == ManagementSubclass.KEY_CHANGE_3:
            return KeyChangeToken3(sgclo=fields >> 32, nkmo2=fields & 0xFFFFFFFF)
        if subclass == ManagementSubclass.KEY_CHANGE_4:
            return KeyChangeToken4(sgcho=fields >> 32, nkmo1=fields & 0xFFFFFFFF)
        raise TokenClassUnsupported(f"class 2 subclass {subclass} is not supported")
    if subclass == 0:
        return MeterTestToken(0, control=fields >> 8, manufacturer=fields & 0xFF)
    if subclass == 1:
        return MeterTestToken(1, control=fields >> 16, manufacturer=fields & 0xFFFF)
    raise TokenClassUnsupported(f"class 1 subclass {subclass} is not defined")


# --- the 66-bit token and its 20 digits ----------------------------------------------------


def token_fields(token: Token) -> int:
    """The 44 class-specific bits of ``token`` (below the subclass)."""
    return _fields(token)


def parse_fields(token_class: int, subclass: int, fields: int) -> Token:
    """The token whose class, subclass and 44 class-specific bits are given."""
    if not 0 <= fields < 1 << 44:
        raise TokenFormatError("token fields are 44 bits")
    return _parse(token_class, subclass, fields)


def data_block(token: Token) -> int:
    """The 64-bit block before encryption: subclass, fields, CRC."""
    upper48 = (token.subclass & 0xF) << 44 | _fields(token)
    return upper48 << 16 | _crc_for(int(token.token_class), upper48)


def _transpose(token_class: int, block: int) -> int:
    b28, b27 = (block >> 28) & 1, (block >> 27) & 1
    block &= ~((1 << 28) | (1 << 27))
    block |= ((token_class >> 1) & 1) << 28 | (token_class & 1) << 27
    return b28 << 65 | b27 << 64 | block


def _untranspose(number: int) -> tuple[int, int]:
    block = number & ((1 << 64) - 1)
    token_class = ((block >> 28) & 1) << 1 | (block >> 27) & 1
    block &= ~((1 << 28) | (1 << 27))
    block |= ((number >> 65) & 1) << 28 | ((number >> 64) & 1) << 27
    return token_class, block


def encode_token(token: Token, key: bytes, algorithm: EncryptionAlgorithm) -> str:
    """The 20-digit token for ``token`` under decoder ``key`` (class 1 is not encrypted)."""
    block = data_block(token)
    if token.token_class != TokenClass.TEST:
        block = encrypt_block(algorithm, key, block)
    return f"{_transpose(int(token.token_class), block):020d}"


def parse_digits(digits: str) -> int:
    cleaned = digits.replace(" ", "").replace("-", "")
    if len(cleaned) != 20 or not cleaned.isascii() or not cleaned.isdigit():
        raise TokenFormatError(f"a token is 20 decimal digits, got {digits!r}")
    number = int(cleaned)
    if number >= 1 << 66:
        raise TokenFormatError("the number is larger than a 66-bit token")
    return number


def token_class_of(digits: str) -> int:
    return _untranspose(parse_digits(digits))[0]


def decode_token(digits: str, key: bytes, algorithm: EncryptionAlgorithm) -> Token:
    """Decrypt and check a 20-digit token; raises a :class:`TokenRefused` subclass."""
    token_class, block = _untranspose(parse_digits(digits))
    if token_class == 3:
        raise TokenClassUnsupported("token class 3 is reserved")
    if token_class != TokenClass.TEST:
        block = decrypt_block(algorithm, key, block)
    upper48 = block >> 16
    if _crc_for(token_class, upper48) != block & 0xFFFF:
        raise TokenCrcError(
            "CRC mismatch: a digit is wrong, or the token is for another meter or key"
        )
    return _parse(token_class, upper48 >> 44, upper48 & ((1 << 44) - 1))
