"""The tariff/billing applet: the supplier gets one signed figure per billing period.

This is the in-image (ROM) form, used when a hub is personalised with
``post_issuance_billing=False``; hubs normally run :mod:`.billing_card`, the same applet as a
restricted post-issuance load file whose source hash the supplier approves.

The supplier sends its tariff signed (COSE_Sign1 of :func:`~.tariff.tariff_payload` plus
``"seq"``); the applet keeps it. At the end of a period the hub asks for the bill: the
applet reads the period's half-hourly import from the meter-data applet, prices it with
:func:`~.tariff.bill` and answers a **bill statement** sealed to the supplier. The statement
is a COSE_Sign1 (ES256, key generated in this applet and certified by the card issuer) over
the canonical CBOR map::

    {"type": "bill", "hub": tstr, "meter": tstr,
     "period": [first ISO date, last ISO date],
     "tariff": tariff id, "tariff-version": uint, "tariff-sha256": bstr,
     "amount-pence": uint, "currency": "GBP",
     "applet": bstr (instance AID), "source-sha256": bstr (published source hash)}

The supplier verifies the signature with the certified key, that the certified source hash
is one of the tariff applets it approved, and that the tariff is the one it sent. It never
sees a half-hourly figure. The applet keeps its last bills (with their tariff) for the audit
applet, which it alone may read through :class:`BillingRecords`.

Commands (CLA 80, all over the supplier's secure channel): ``20`` SET TARIFF (COSE_Sign1 by the supplier); ``22`` CLOSE PERIOD
``first day(4) || last day(4)`` -> sealed bill statement; ``24`` TARIFF -> the tariff's id.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import cbor2

from smarthydra.applets import cose
from smarthydra.applets.base import HydraApplet, day_range, not_now, wrong_data
from smarthydra.applets.tariff import Tariff, bill, tariff_from_payload, tariff_payload
from smarthydra.card.apdu import SW
from smarthydra.card.applet import APDU, ISOException, PersistentBytes, PersistentInt
from smarthydra.card.firewall import Shareable

INS_SET_TARIFF = 0x20
INS_CLOSE_PERIOD = 0x22
INS_TARIFF = 0x24
KEEP_BILLS = 13


class BillingRecords(Shareable):
    """The bills made, with their tariff: shared with the audit applet only."""

    interface = frozenset({"bill_record"})

    def __init__(self, owner: BillingApplet) -> None:
        self._owner = owner

    def bill_record(self, first: int, last: int) -> dict[str, Any]:
        if self._owner.card.previous_context_aid() != self._owner.settings.get("audit"):
            raise ISOException(SW.SECURITY_STATUS_NOT_SATISFIED, "only the audit applet")
        for record in self._owner.records():
            if record["first"] == first and record["last"] == last:
                return dict(record)
        raise ISOException(SW.REFERENCED_DATA_NOT_FOUND, "no bill for that period")


class BillingApplet(HydraApplet):
    role = "billing"
    party_commands = frozenset({INS_SET_TARIFF, INS_CLOSE_PERIOD, INS_TARIFF})
    source_modules = (*HydraApplet.source_modules, "smarthydra.applets.tariff")
    required_settings = frozenset({"hub", "party", "party-ka", "party-sig", "meter",
                                   "meter-data"})

    tariff_raw = PersistentBytes(max_size=2048)
    tariff_seq = PersistentInt(size=4)
    bills_raw = PersistentBytes(max_size=KEEP_BILLS * 1024)

    def __init__(self) -> None:
        super().__init__()
        self.records_service = BillingRecords(self)

    def get_shareable(self, client_aid: bytes | None, parameter: int) -> Shareable | None:
        if client_aid is not None and client_aid == self.settings.get("audit"):
            return self.records_service
        return None

    def tariff(self) -> Tariff:
        if not self.tariff_raw:
            raise not_now("no tariff yet")
        return tariff_from_payload(cbor2.loads(self.tariff_raw))

    def records(self) -> list[dict[str, Any]]:
        return list(cbor2.loads(self.bills_raw)) if self.bills_raw else []

    def set_tariff(self, data: bytes) -> None:
        payload = self.verify_from_party(data)
        if not isinstance(payload, dict) or not isinstance(payload.get("seq"), int):
            raise wrong_data("a tariff message is a tariff with seq")
        if payload["seq"] <= self.tariff_seq:
            raise ISOException(SW.SECURITY_STATUS_NOT_SATISFIED, "replayed tariff")
        tariff = tariff_from_payload({k: v for k, v in payload.items() if k != "seq"})
        self.card.begin_transaction()
        self.tariff_raw = tariff.encode()
        self.tariff_seq = payload["seq"]
        self.card.commit_transaction()

    def close_period(self, data: bytes) -> bytes:
        first, last = day_range(data)
        tariff = self.tariff()
        service = self.card.lookup_shareable(self.settings["meter-data"], 0)
        if service is None:
            raise not_now("the meter-data applet refused")
        breakdown = bill(tariff, service.half_hours(first, last))
        statement = {
            "type": "bill", "hub": self.hub, "meter": str(self.settings["meter"]),
            "period": [dt.date.fromordinal(first).isoformat(),
                       dt.date.fromordinal(last).isoformat()],
            "tariff": tariff.tariff_id, "tariff-version": tariff.version,
            "tariff-sha256": tariff.digest, "amount-pence": breakdown.amount_pence,
            "currency": "GBP", "applet": self.aid,
            "source-sha256": self.settings.get("source-sha256", b""),
        }
        records = [r for r in self.records() if (r["first"], r["last"]) != (first, last)]
        records.append({"first": first, "last": last, "tariff": tariff_payload(tariff),
                        "amount": breakdown.amount_pence})
        self.bills_raw = cose.canonical(records[-KEEP_BILLS:])
        return self.seal(statement)

    def command(self, apdu: APDU, data: bytes) -> bytes | None:
        if apdu.ins == INS_SET_TARIFF:
            self.set_tariff(data)
            return None
        if apdu.ins == INS_CLOSE_PERIOD:
            return self.close_period(data)
        if apdu.ins == INS_TARIFF:
            return self.tariff().tariff_id.encode()
        raise ISOException(SW.INS_NOT_SUPPORTED)
