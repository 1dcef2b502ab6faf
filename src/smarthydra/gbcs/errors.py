"""Exceptions raised by the GBCS codecs and security functions.

Every malformed input gives a :class:`GbcsDecodeError` subclass whose message names the field
and the offset, so a device or an engineer can tell exactly what was wrong with a frame.
"""

from __future__ import annotations


class GbcsError(Exception):
    """Base class for every GBCS failure."""


class GbcsDecodeError(GbcsError):
    """The bytes are not a well-formed GBCS message (or part of one)."""


class Truncated(GbcsDecodeError):
    """The input ended before a field it announced."""


class UnexpectedTag(GbcsDecodeError):
    """A tag byte is not the one the grammar requires at this position."""


class BadLength(GbcsDecodeError):
    """A length field is malformed (bad BER form) or has a value the field cannot take."""


class BadField(GbcsDecodeError):
    """A field is well-framed but its value is not allowed (unknown CRA flag, ...)."""


class TrailingBytes(GbcsDecodeError):
    """Bytes remain after a complete structure."""


class SegmentedMessage(GbcsDecodeError):
    """The input is a general-block-transfer (GBT) segment, not a whole GBCS message."""


class GbcsEncodeError(GbcsError):
    """A value cannot be represented on the wire (wrong size, out of range, ...)."""


class GbcsSecurityError(GbcsError):
    """A MAC, signature or payload-encryption operation could not be carried out."""


class MacInvalid(GbcsSecurityError):
    """The MAC on a message does not verify."""


class SignatureMissing(GbcsSecurityError):
    """A signature was required but the message is unsigned."""


class DecryptionFailed(GbcsSecurityError):
    """A sensitive payload did not decrypt (wrong key or tampered ciphertext)."""
