"""Refused at load: the module body never finishes."""

from smarthydra.card.applet import Applet

while True:
    pass


class Never(Applet):
    pass
