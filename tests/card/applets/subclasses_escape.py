"""Refused at load: the classic walk from a literal to every class in the interpreter."""

from smarthydra.card.applet import APDU, Applet


class Escaper(Applet):
    def process(self, apdu: APDU) -> bytes | None:
        for cls in ().__class__.__base__.__subclasses__():
            if cls.__name__ == "Popen":
                return b"found"
        return None
