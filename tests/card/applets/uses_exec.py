"""Refused at load: executes code from the command data."""

from smarthydra.card.applet import APDU, Applet


class Executor(Applet):
    def process(self, apdu: APDU) -> bytes | None:
        exec(apdu.data.decode())
        return None
