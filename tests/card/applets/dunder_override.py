"""Refused at load: redefines attribute lookup to get around the firewall."""

from smarthydra.card.applet import Applet


class Sneaky(Applet):
    def __getattribute__(self, name: str) -> object:
        return 0
