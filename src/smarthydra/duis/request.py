"""DUIS service requests as typed objects: RequestID, command variants, the request itself.

The XML form (schema validation and XMLDSig) builds on these objects; the DCC's decisions are
made on them, so the in-process path and the HTTPS path share every check.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from smarthydra.eui import Eui64, InvalidEui64

MAX_COUNTER = (1 << 64) - 1


class RequestIdError(ValueError):
    """A RequestID that does not follow ``originator:target:counter``."""


@dataclass(frozen=True)
class RequestId:
    """``originatorEUI:targetEUI:counter``; the counter becomes the GBCS originator counter."""

    originator: Eui64
    target: Eui64
    counter: int

    def __post_init__(self) -> None:
        if not 0 <= self.counter <= MAX_COUNTER:
            raise RequestIdError(f"RequestID counter {self.counter} is outside 0..2^64-1")

    @classmethod
    def parse(cls, text: str) -> RequestId:
        parts = text.strip().split(":")
        if len(parts) != 3:
            raise RequestIdError(f"RequestID {text!r} is not originator:target:counter")
        try:
            originator, target = Eui64.parse(parts[0]), Eui64.parse(parts[1])
        except InvalidEui64 as exc:
            raise RequestIdError(f"RequestID {text!r}: {exc}") from None
        if not (parts[2].isascii() and parts[2].isdigit()):
            raise RequestIdError(f"RequestID {text!r}: counter must be decimal digits")
        return cls(originator, target, int(parts[2]))

    def __str__(self) -> str:
        # Asked for many times per request (keys, audit, XML); made once.
        text: str | None = self.__dict__.get("_text")
        if text is None:
            text = f"{self.originator.hyphenated}:{self.target.hyphenated}:{self.counter}"
            object.__setattr__(self, "_text", text)
        return text


class CommandVariant(enum.IntEnum):
    """DUIS command variants: where the GBCS goes and who gets the response."""

    NON_CRITICAL_TO_DEVICE = 1  # DCC sends to the device, response to the user
    NON_CRITICAL_RETURN_GBCS = 2  # DCC returns the GBCS to the user for local delivery
    NON_CRITICAL_BOTH = 3  # both of the above
    CRITICAL_TRANSFORM = 4  # DCC returns the pre-command for the user to sign
    CRITICAL_SIGNED_TO_DEVICE = 5  # a signed pre-command, sent to the device
    CRITICAL_SIGNED_RETURN_GBCS = 6
    CRITICAL_SIGNED_BOTH = 7
    NON_DEVICE = 8

    @property
    def is_critical(self) -> bool:
        return 4 <= self.value <= 7

    @property
    def carries_signed_precommand(self) -> bool:
        return 5 <= self.value <= 7


@dataclass(frozen=True)
class ServiceRequest:
    """A user's request to the DCC, as the DCC sees it after transport checks.

    ``sender`` is the DCC user whose certificate signed the request (for XML, the XMLDSig
    signer; in process, the party object); ``role`` is the user role the request is sent in.
    ``parameters`` are the body values for the service request variant.
    """

    request_id: RequestId
    sender: Eui64
    role: str
    service_reference_variant: str
    command_variant: CommandVariant
    parameters: dict[str, object] = field(default_factory=dict)
    execution_datetime: datetime | None = None


@dataclass(frozen=True)
class SignedPreCommand:
    """CV 5-7: the general-signing bytes of a pre-command with the user's signature added."""

    request_id: RequestId
    sender: Eui64
    role: str
    service_reference_variant: str
    command_variant: CommandVariant
    gbcs: bytes
