"""Errors of the prepayment package: each refusal has its own class and a reason code."""

from __future__ import annotations


class PrepayError(Exception):
    """Base class of every prepayment failure."""

    #: a short stable code scripts can rely on (CLI JSON ``reason``)
    reason = "error"


class StsKeyError(PrepayError):
    """A key, key identity or key-generation parameter is not usable."""

    reason = "key"


class TokenRefused(PrepayError):
    """A token the meter (or decoder) will not accept."""

    reason = "refused"


class TokenFormatError(TokenRefused):
    """Not 20 decimal digits, or larger than 66 bits."""

    reason = "format"


class TokenCrcError(TokenRefused):
    """The CRC does not match: a mistyped digit, or a token for another meter/key."""

    reason = "crc"


class TokenClassUnsupported(TokenRefused):
    reason = "unsupported-class"


class TokenUsed(TokenRefused):
    """The TID is in the meter's TID memory: this token was already accepted."""

    reason = "used"


class TokenOld(TokenRefused):
    """The TID is older than every TID the meter remembers, or older than its key."""

    reason = "old"


class TokenKeyExpired(TokenRefused):
    """The TID is later than the decoder key's expiry (KEN)."""

    reason = "key-expired"


class TokenOverflow(TokenRefused):
    """Accepting the credit would overflow the credit register."""

    reason = "overflow"


class AmountNotRepresentable(PrepayError):
    """An amount the 16-bit exponent/mantissa transfer amount cannot carry exactly."""

    reason = "amount"


class TidOutOfRange(PrepayError):
    """An issue time before the base date or past its 24-bit TID rollover."""

    reason = "tid-range"
