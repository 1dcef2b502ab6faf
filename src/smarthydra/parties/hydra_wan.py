"""A party's end of the WAN route to its applet on a hub (:mod:`smarthydra.applets.party_wan`).

:class:`WanPartyLink` is the ``transmit`` of a party's :class:`PartyChannel`: each APDU of the
party's SCP03 session goes as one frame over the WAN (the DCC's leg through the CSP) to the
hub, whose host passes it to the secure element on the party logical channel; the response
comes back the same way. Nothing on the way holds the party's SSD keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from smarthydra.applets.hub import HydraCommandError
from smarthydra.applets.party_wan import (
    PARTY_LOGICAL_CHANNEL,
    PartyFrameError,
    parse_party_answer,
    party_frame,
)
from smarthydra.eui import Eui64
from smarthydra.wan.network import WanError, WanNetwork

NO_ANSWER_SW = 0x6F00  # ISO: no precise diagnosis (the hub did not answer)


class PartyLinkError(HydraCommandError):
    """The WAN carried no usable answer (hub unknown, silent, or a garbled answer)."""


@dataclass
class WanPartyLink:
    """``provider``'s APDUs to the hub ``hub`` over ``wan``, one frame each."""

    wan: WanNetwork
    hub: Eui64
    provider: str
    channel: int = PARTY_LOGICAL_CHANNEL
    frames: int = 0

    def transmit(self, apdu: bytes) -> bytes:
        self.frames += 1
        try:
            answer = self.wan.deliver(self.hub, party_frame(self.provider, apdu))
        except WanError as exc:
            raise PartyLinkError(self.provider, apdu[1] if len(apdu) > 1 else 0, NO_ANSWER_SW,
                                 str(exc)) from None
        if answer is None:
            raise PartyLinkError(self.provider, apdu[1] if len(apdu) > 1 else 0, NO_ANSWER_SW,
                                 "the hub did not answer")
        try:
            return parse_party_answer(answer)
        except PartyFrameError as exc:
            raise PartyLinkError(self.provider, apdu[1] if len(apdu) > 1 else 0, NO_ANSWER_SW,
                                 str(exc)) from None


__all__ = ["PartyLinkError", "WanPartyLink"]
