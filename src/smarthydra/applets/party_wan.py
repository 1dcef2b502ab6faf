"""Party APDUs over the WAN: the frame a party's secure-channel APDU travels in, and the hub's port.

A party (the supplier, the distributor, the telehealth provider, ...) drives its applet over
its own GlobalPlatform SCP03 session with its supplementary security domain
(:class:`smarthydra.applets.hub.PartyChannel`). In the deployed system each of its APDUs goes
as one WAN frame to the hub (through the DCC and the CSP), where the hub's host hands it, as
received, to the secure element on the logical channel kept for party traffic, and sends the
card's response back the same way. The host, the DCC and the CSP see only what the frame
holds: the provider's name, the APDU header and SCP03-protected data (C-DECRYPTION, C-MAC;
responses R-ENCRYPTION, R-MAC).

Frame: :data:`PARTY_FRAME_TAG` then CBOR ``[format, provider, APDU]``; answer:
:data:`PARTY_FRAME_TAG` then CBOR ``[format, response APDU]``.

The port refuses (``6881``, logical channel not supported) any APDU not on its channel, and
MANAGE CHANNEL (``6D00``), so a party can neither reach the hub's own functions on the basic
channel nor close the party channel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cbor2

from smarthydra.card.apdu import SW, CommandAPDU

PARTY_FRAME_TAG = b"\xe7HPC"
PARTY_FRAME_FORMAT = "hydra-party-apdu/1"
#: the logical channel a hub keeps for its parties' sessions (the hub host keeps 0 and 1)
PARTY_LOGICAL_CHANNEL = 2
MAX_APDU = 4 + 3 + 65535 + 3  # an extended APDU at most

Relay = Callable[[bytes], bytes]


class PartyFrameError(Exception):
    """A party frame or its answer is malformed."""


def party_frame(provider: str, apdu: bytes) -> bytes:
    """The WAN frame carrying one of ``provider``'s APDUs to a hub."""
    return PARTY_FRAME_TAG + cbor2.dumps([PARTY_FRAME_FORMAT, provider, apdu])


def _cbor(frame: bytes) -> object:
    if not frame.startswith(PARTY_FRAME_TAG):
        raise PartyFrameError("not a party frame")
    try:
        return cbor2.loads(frame[len(PARTY_FRAME_TAG):])
    except Exception as exc:  # cbor2 raises several types for bad input
        raise PartyFrameError(f"party frame is not CBOR: {exc}") from None


def parse_party_frame(frame: bytes) -> tuple[str, bytes]:
    """(provider, APDU) of a party frame."""
    body = _cbor(frame)
    if (not isinstance(body, list) or len(body) != 3 or body[0] != PARTY_FRAME_FORMAT
            or not isinstance(body[1], str) or not isinstance(body[2], bytes)):
        raise PartyFrameError("party frame: expected [format, provider, APDU]")
    if not 4 <= len(body[2]) <= MAX_APDU:
        raise PartyFrameError("party frame: APDU length out of range")
    return body[1], body[2]


def party_answer(response: bytes) -> bytes:
    return PARTY_FRAME_TAG + cbor2.dumps([PARTY_FRAME_FORMAT, response])


def parse_party_answer(frame: bytes) -> bytes:
    """The card's response APDU from a hub's answer frame."""
    body = _cbor(frame)
    if (not isinstance(body, list) or len(body) != 2 or body[0] != PARTY_FRAME_FORMAT
            or not isinstance(body[1], bytes) or len(body[1]) < 2):
        raise PartyFrameError("party answer: expected [format, response APDU]")
    return body[1]


def _channel_of(cla: int) -> int | None:
    """The logical channel an ISO CLA byte names (None for a CLA with no channel coding)."""
    if cla == 0xFF:
        return None
    if cla & 0x40:
        return 4 + (cla & 0x0F)
    return cla & 0x03


@dataclass
class PartyApduPort:
    """The hub host's end of the party route: each APDU goes to the secure element unchanged.

    ``relay`` is the hub's virtual terminal (:meth:`smarthydra.premises.hub.VirtualTerminal
    .relay`); :meth:`open` opens the party logical channel on the card (once, at start-up).
    """

    relay: Relay
    channel: int = PARTY_LOGICAL_CHANNEL
    relayed: int = 0
    refused: int = 0
    is_open: bool = False

    def open(self) -> None:
        response = self.relay(CommandAPDU(0x00, 0x70, 0x00, self.channel, b"", 0).encode())
        if response[-2:] != SW.OK.to_bytes(2, "big"):
            raise PartyFrameError(f"the card refused logical channel {self.channel}: "
                                  f"SW {response[-2:].hex().upper()}")
        self.is_open = True

    @staticmethod
    def accepts(message: bytes) -> bool:
        return message.startswith(PARTY_FRAME_TAG)

    def receive_from_wan(self, message: bytes) -> bytes | None:
        """Answer a party frame with the card's response; drop a malformed one (None)."""
        try:
            _provider, apdu = parse_party_frame(message)
        except PartyFrameError:
            self.refused += 1
            return None
        if not self.is_open or _channel_of(apdu[0]) != self.channel:
            self.refused += 1
            return party_answer(SW.LOGICAL_CHANNEL_NOT_SUPPORTED.to_bytes(2, "big"))
        if apdu[0] & 0x80 == 0 and apdu[1] == 0x70:  # MANAGE CHANNEL (interindustry CLA)
            self.refused += 1
            return party_answer(SW.INS_NOT_SUPPORTED.to_bytes(2, "big"))
        self.relayed += 1
        return party_answer(self.relay(apdu))


__all__ = ["PARTY_FRAME_TAG", "PARTY_LOGICAL_CHANNEL", "PartyApduPort", "PartyFrameError",
           "parse_party_answer", "parse_party_frame", "party_answer", "party_frame"]
