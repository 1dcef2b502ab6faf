"""Refused at load: imports a module outside the card API."""

import os

from smarthydra.card.applet import APDU, Applet


class Leaky(Applet):
    def process(self, apdu: APDU) -> bytes | None:
        return os.environ.get("HOME", "").encode()
