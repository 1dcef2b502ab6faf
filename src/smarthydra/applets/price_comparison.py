"""The price-comparison applet: 13 months of consumption to an Other User, only with consent.

The Other User (a price-comparison service) is a DCC user; what the applet seals to it goes
through the DCC, which forwards it only while its own register (fed by the consent receipts
of the meter-data applet) holds a consent for that user. The applet asks the meter-data
applet for the 13 months up to the last day pushed; the consent fixes the granularity
(daily for a price comparison) and clips the days.

Commands (CLA 80): ``70`` RELEASE (no data, over the Other User's secure channel) -> sealed
statement; ``72`` ROUTED RELEASE (no data, from the hub host) -> the same sealed statement, when
the Other User's consumption-log request (DUIS 4.17, GBCS ECS66) came through the DCC to the
hub (:mod:`.dcc_route`). Either way the meter-data applet's consent decides, the release is
sealed to the Other User alone and logged for the consumer; the host gains nothing it can read.
"""

from __future__ import annotations

from smarthydra.applets.agent import ConsentedReleaseApplet
from smarthydra.applets.base import HydraApplet, not_now
from smarthydra.applets.consent import DataKind
from smarthydra.card.apdu import SW
from smarthydra.card.applet import APDU, ISOException

INS_RELEASE = 0x70
INS_ROUTED_RELEASE = 0x72
THIRTEEN_MONTHS = 396  # days


class PriceComparisonApplet(ConsentedReleaseApplet):
    role = "price-comparison"
    party_commands = frozenset({INS_RELEASE})
    source_modules = (*HydraApplet.source_modules, "smarthydra.applets.agent",
                      "smarthydra.applets.release")

    def command(self, apdu: APDU, data: bytes) -> bytes | None:
        if apdu.ins in (INS_RELEASE, INS_ROUTED_RELEASE):
            service = self.card.lookup_shareable(self.settings["meter-data"], 0)
            if service is None:
                raise not_now("the meter-data applet refused")
            today = service.today()
            if today <= 0:
                raise not_now("no data yet")
            return self.release(DataKind.CONSUMPTION, max(1, today - THIRTEEN_MONTHS + 1), today)
        raise ISOException(SW.INS_NOT_SUPPORTED)
