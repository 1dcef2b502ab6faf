"""Exceptions for the GlobalPlatform secure channel code, each carrying an ISO 7816 status word.

Every failure a card or a host can meet while handling secure-channel bytes is one of these, so
that a card runtime can turn it into the status word it names and a host can report it plainly.
"""

from __future__ import annotations

SW_OK = 0x9000
SW_AUTHENTICATION_FAILED = 0x6300
SW_WRONG_LENGTH = 0x6700
SW_SECURITY_STATUS_NOT_SATISFIED = 0x6982
SW_INCORRECT_SM_DATA_OBJECTS = 0x6988
SW_CONDITIONS_NOT_SATISFIED = 0x6985
SW_WRONG_DATA = 0x6A80
SW_INCORRECT_P1P2 = 0x6A86
SW_REFERENCED_DATA_NOT_FOUND = 0x6A88
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00


class GpError(Exception):
    """Base class: a secure-channel failure with the status word that reports it."""

    default_sw = SW_WRONG_DATA

    def __init__(self, message: str, sw: int | None = None) -> None:
        super().__init__(message)
        self.sw: int = self.default_sw if sw is None else sw

    @property
    def sw_bytes(self) -> bytes:
        return self.sw.to_bytes(2, "big")

    def __str__(self) -> str:
        return f"{super().__str__()} (SW {self.sw:04X})"


class MalformedApdu(GpError):
    """The bytes are not a well-formed short command or response APDU."""

    default_sw = SW_WRONG_LENGTH


class SecurityStatusNotSatisfied(GpError):
    """A MAC did not verify, or no secure channel is open for a protected command."""

    default_sw = SW_SECURITY_STATUS_NOT_SATISFIED


class IncorrectSecureMessagingData(GpError):
    """The secure messaging data is malformed: too short, bad block length, bad padding."""

    default_sw = SW_INCORRECT_SM_DATA_OBJECTS


class AuthenticationFailed(GpError):
    """A card or host cryptogram (or an SCP11 receipt) does not match."""

    default_sw = SW_AUTHENTICATION_FAILED


class ConditionsNotSatisfied(GpError):
    """The command is out of sequence (e.g. EXTERNAL AUTHENTICATE before INITIALIZE UPDATE)."""

    default_sw = SW_CONDITIONS_NOT_SATISFIED


class WrongData(GpError):
    """The command data field is malformed (a bad TLV, a bad key, a bad certificate)."""

    default_sw = SW_WRONG_DATA


class IncorrectParameters(GpError):
    """P1/P2 are invalid (e.g. an unsupported security level)."""

    default_sw = SW_INCORRECT_P1P2


class ReferencedDataNotFound(GpError):
    """The key version or key identifier named in P1/P2 does not exist."""

    default_sw = SW_REFERENCED_DATA_NOT_FOUND


class ConfigurationError(ValueError):
    """A programming error: keys of the wrong size, an impossible security level, and so on."""
