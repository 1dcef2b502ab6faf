"""An Other User's consumption-log request through the DCC, answered by the price-comparison applet.

The Other User sends DUIS 4.17 (Retrieve Daily Consumption Log) to the DCC. The DCC lets it
through only while its consent register holds the consumer's consent (else ``E4``), MACs the
GBCS ECS66 command for the electricity meter and sends it over the WAN to the hub. The hub
routes it over the HAN to the meter as any command (the meter checks the ACB's MAC; the hub
cannot, the MAC key is the meter's); then, instead of whatever the meter answers, the hub
answers with what the price-comparison applet computes at home and seals to the Other User
(13 months of daily figures, clipped to the consent). The meter's answer, if any, is dropped
in the hub: raw data stays at home. The DCC carries the sealed statement back as the response and cannot open it; the
applet refuses again when the consent was revoked at the hub, whatever the DCC's register says.

Answer frame: :data:`ROUTED_TAG` then CBOR ``[format, sealed statement or null, reason]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import cbor2

from smarthydra.gbcs.envelope import decode_message
from smarthydra.gbcs.errors import GbcsError

ROUTED_TAG = b"\xe8HPR"
ROUTED_FORMAT = "hydra-routed-release/1"


class RoutedReleaseError(Exception):
    """A routed-release answer is malformed, or carries a refusal."""


def routed_answer(sealed: bytes | None, reason: str = "") -> bytes:
    return ROUTED_TAG + cbor2.dumps([ROUTED_FORMAT, sealed, reason])


def parse_routed_answer(frame: bytes) -> bytes:
    """The sealed statement in a hub's answer; :class:`RoutedReleaseError` for a refusal."""
    if not frame.startswith(ROUTED_TAG):
        raise RoutedReleaseError("not a routed release")
    try:
        body = cbor2.loads(frame[len(ROUTED_TAG):])
    except Exception as exc:  # cbor2 raises several types for bad input
        raise RoutedReleaseError(f"routed release is not CBOR: {exc}") from None
    if (not isinstance(body, list) or len(body) != 3 or body[0] != ROUTED_FORMAT
            or not isinstance(body[2], str)):
        raise RoutedReleaseError("routed release: expected [format, sealed, reason]")
    if body[1] is None:
        raise RoutedReleaseError(f"the hub released nothing: {body[2]}")
    if not isinstance(body[1], bytes):
        raise RoutedReleaseError("routed release: the statement is not bytes")
    return body[1]


@dataclass
class PriceComparisonRoute:
    """The hub's value-added answer to an Other User's consumption-log read of its meter.

    ``release`` is the host's call of the applet's ROUTED RELEASE (it raises when the applet
    refuses); ``other_users`` maps the EUI-64s of Other Users to their names (as consents
    name them); ``message_codes`` are the GBCS message codes of the read (ECS66).
    """

    meter: bytes
    other_users: Mapping[bytes, str]
    message_codes: frozenset[int]
    release: Callable[[], bytes]
    refusal: type[Exception] = Exception
    released: int = 0
    refused: int = 0

    def answer(self, command: bytes, device_answer: bytes | None) -> bytes | None:
        """What the hub sends back for ``command`` once the meter answered ``device_answer``
        (None: the meter gave no answer; it holds no key of an Other User to encrypt one)."""
        try:
            message = decode_message(command)
        except GbcsError:
            return device_answer
        if (message.recipient != self.meter or message.originator not in self.other_users
                or message.message_code not in self.message_codes):
            return device_answer
        try:
            sealed = self.release()
        except self.refusal as exc:
            self.refused += 1
            return routed_answer(None, f"the price-comparison applet refused: {exc}")
        self.released += 1
        return routed_answer(sealed)


__all__ = ["ROUTED_TAG", "PriceComparisonRoute", "RoutedReleaseError", "parse_routed_answer",
           "routed_answer"]
