"""Refused at load: reads a file (``open`` is not available to applets)."""

from smarthydra.card.applet import APDU, Applet


class Reader(Applet):
    def process(self, apdu: APDU) -> bytes | None:
        with open("/etc/passwd", "rb") as handle:
            return handle.read(200)
