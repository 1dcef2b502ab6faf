"""Refused at load: evaluates code from the command data."""

from smarthydra.card.applet import APDU, Applet


class Evaluator(Applet):
    def process(self, apdu: APDU) -> bytes | None:
        return str(eval(apdu.data.decode())).encode()
