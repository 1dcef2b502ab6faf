"""The energy-management agent's applet: finer data or insights, only under consent.

Each cycle the hub asks the applet to release a day range. The meter-data applet decides:
without a consent for the agent the request is refused (6985) and nothing is sealed; with
one, the view is clipped to the consent's days and aggregated to its granularity. If the
consent is for insights, the applet turns the day's data into the insights of
:func:`~.release.insights` and only those leave the card.

Commands (CLA 80, over the agent's secure channel): ``52`` RELEASE ``first day(4) || last day(4)`` (P1 00 consumption,
01 insights) -> sealed statement.
"""

from __future__ import annotations

from smarthydra.applets.base import HydraApplet, day_range, not_now
from smarthydra.applets.consent import DataKind
from smarthydra.applets.release import insights
from smarthydra.card.apdu import SW
from smarthydra.card.applet import APDU, ISOException

INS_RELEASE = 0x52


class ConsentedReleaseApplet(HydraApplet):
    """Releases consented data to its party (shared by the agent and price comparison)."""

    required_settings = frozenset({"hub", "party", "party-ka", "meter-data"})

    def release(self, kind: DataKind, first: int, last: int) -> bytes:
        service = self.card.lookup_shareable(self.settings["meter-data"], 0)
        if service is None:
            raise not_now("the meter-data applet refused")
        consent, first, last, data = service.consented(kind.value, first, last)
        body = insights(data) if kind is DataKind.INSIGHTS else data
        return self.seal({"type": kind.value, "hub": self.hub, "consent": consent,
                          "first-day": first, "last-day": last, "granularity": consent[2],
                          "data": body})


class EnergyAgentApplet(ConsentedReleaseApplet):
    role = "energy-agent"
    party_commands = frozenset({INS_RELEASE})
    source_modules = (*HydraApplet.source_modules, "smarthydra.applets.release")

    def command(self, apdu: APDU, data: bytes) -> bytes | None:
        if apdu.ins == INS_RELEASE:
            if apdu.p1 not in (0, 1):
                raise ISOException(SW.INCORRECT_P1P2)
            first, last = day_range(data)
            kind = DataKind.INSIGHTS if apdu.p1 == 1 else DataKind.CONSUMPTION
            return self.release(kind, first, last)
        raise ISOException(SW.INS_NOT_SUPPORTED)
