"""The audit applet: justifies a disputed bill without giving the supplier any raw data.

When the consumer disputes a bill (at the in-home display), the applet takes the bill the
billing applet made for that period (through :class:`~.billing.BillingRecords`, shared with
this applet only) and recomputes it independently from the meter-data applet's half-hourly
data. It answers two things:

* a **justification** sealed to the ombudsman (the party of this applet): the tariff, the
  energy and cost per band or block, the standing charge and the recomputed total - enough
  to check the bill, and still not the half-hourly profile;
* a **verdict** for the supplier (COSE_Sign1, not sealed: it carries no personal data):
  the period, the billed amount and whether the recomputation agrees.

Commands (CLA 80, over the ombudsman's secure channel): ``30`` DISPUTE ``first day(4) || last day(4)`` -> CBOR
``[sealed justification, signed verdict]``.
"""

from __future__ import annotations

import datetime as dt

from smarthydra.applets import cose
from smarthydra.applets.base import HydraApplet, day_range, not_now
from smarthydra.applets.tariff import bill, tariff_from_payload
from smarthydra.card.apdu import SW
from smarthydra.card.applet import APDU, ISOException

INS_DISPUTE = 0x30


class AuditApplet(HydraApplet):
    role = "audit"
    party_commands = frozenset({INS_DISPUTE})
    source_modules = (*HydraApplet.source_modules, "smarthydra.applets.tariff")
    required_settings = frozenset({"hub", "party", "party-ka", "meter", "meter-data",
                                   "billing"})

    def dispute(self, data: bytes) -> bytes:
        first, last = day_range(data)
        records = self.card.lookup_shareable(self.settings["billing"], 0)
        meter_data = self.card.lookup_shareable(self.settings["meter-data"], 0)
        if records is None or meter_data is None:
            raise not_now("the billing or meter-data applet refused")
        record = records.bill_record(first, last)
        tariff = tariff_from_payload(record["tariff"])
        breakdown = bill(tariff, meter_data.half_hours(first, last))
        agrees = breakdown.amount_pence == record["amount"]
        period = [dt.date.fromordinal(first).isoformat(), dt.date.fromordinal(last).isoformat()]
        justification = self.seal({
            "type": "bill-justification", "hub": self.hub, "meter": str(self.settings["meter"]),
            "period": period, "billed-pence": record["amount"], "tariff": record["tariff"],
            "breakdown": breakdown.to_payload(), "agrees": agrees,
        })
        verdict = self.sign_statement({
            "type": "bill-verdict", "hub": self.hub, "meter": str(self.settings["meter"]),
            "period": period, "billed-pence": record["amount"], "agrees": agrees,
        })
        return cose.canonical([justification, verdict])

    def command(self, apdu: APDU, data: bytes) -> bytes | None:
        if apdu.ins == INS_DISPUTE:
            return self.dispute(data)
        raise ISOException(SW.INS_NOT_SUPPORTED)
