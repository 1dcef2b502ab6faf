"""Refused at load: imports card internals that are not part of the applet API."""

from smarthydra.card.applet import APDU, Applet
from smarthydra.card.runtime import Runtime


class Internals(Applet):
    def process(self, apdu: APDU) -> bytes | None:
        return repr(Runtime).encode()
