"""Refused at load: declares more persistent storage than an applet's quota."""

from smarthydra.card.applet import Applet, PersistentArrayField, PersistentBytes


class Hog(Applet):
    table = PersistentArrayField(60000)
    blob = PersistentBytes(max_size=1_000_000)
