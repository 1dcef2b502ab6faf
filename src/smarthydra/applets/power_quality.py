"""The distributor's power-quality applet: voltage and outages, no consumption pattern.

Each day the applet reads only the day's voltages from the meter-data applet (its role
allows nothing else) and seals the summary of :func:`~.release.power_quality` to the
distributor: extremes, mean, half hours outside the statutory limits, half hours without
supply. No consumption, no times of day, no household identity beyond the hub.

Commands (CLA 80, over the distributor's secure channel): ``40`` REPORT ``day(4)`` -> sealed power-quality statement.
"""

from __future__ import annotations

from smarthydra.applets.base import HydraApplet, not_now, u32
from smarthydra.applets.release import power_quality
from smarthydra.card.apdu import SW
from smarthydra.card.applet import APDU, ISOException

INS_REPORT = 0x40


class PowerQualityApplet(HydraApplet):
    role = "power-quality"
    party_commands = frozenset({INS_REPORT})
    source_modules = (*HydraApplet.source_modules, "smarthydra.applets.release")
    required_settings = frozenset({"hub", "party", "party-ka", "meter-data"})

    def report(self, data: bytes) -> bytes:
        if len(data) != 4:
            raise ISOException(SW.WRONG_LENGTH, "a day is 4 bytes")
        day = u32(data)
        service = self.card.lookup_shareable(self.settings["meter-data"], 0)
        if service is None:
            raise not_now("the meter-data applet refused")
        summary = power_quality(day, service.voltages(day))
        return self.seal({"type": "power-quality", "hub": self.hub, **summary})

    def command(self, apdu: APDU, data: bytes) -> bytes | None:
        if apdu.ins == INS_REPORT:
            return self.report(data)
        raise ISOException(SW.INS_NOT_SUPPORTED)
