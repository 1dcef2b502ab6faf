"""The meter-data applet: raw data stays here, consent is kept and enforced here.

The hub host pushes each day's half-hourly import (Wh) and supply voltage (V) from the
electricity meter. The applet keeps the last :data:`HH_DAYS` days of half-hourly data, the
last :data:`DAILY_DAYS` daily totals, the consumer's consent contracts and the release log.

Other applets reach the data only through :class:`MeterDataService`, a shareable interface
handed to the applet AIDs named in the install parameters, each with a role that fixes what
it may read:

========== =================== ============================================================
role       party               may read
========== =================== ============================================================
billing    the supplier        half-hourly import of days in the ring (to make the bill)
audit      the ombudsman       half-hourly import (to justify a disputed bill)
pq         the distributor     voltages only
agent      its consent party   consumption / insights under consent only
pricecomp  its consent party   consumption under consent only
========== =================== ============================================================

Every view is logged. Consent-bound views are refused (``ConsentRequired``, 6985 to the
party's applet) without a consent covering the party, kind and days; a view is aggregated to
the consent's granularity, and clipped to its days. Consent changes answer with a receipt
signed by this applet, which the hub forwards to the DCC (for its own enforcement on the
price-comparison route).

Commands (CLA 80): ``10`` PUSH DAY ``day(4) || import 48x2 || voltage 48x2``; ``12`` GRANT,
``14`` REVOKE (P1 00: from the in-home display, data = CBOR consent / party name; P1 01:
through the supplier, data = a COSE_Sign1 by the supplier of ``{"seq", "op", "consent" |
"party"}``); ``16`` READ LOG (P1 P2 = first entry) -> CBOR list; ``18`` CONSENTS -> CBOR list.
"""

from __future__ import annotations

from typing import Any

import cbor2

from smarthydra.applets import cose
from smarthydra.applets.base import HydraApplet, decode_cbor, not_now, u32, wrong_data
from smarthydra.applets.consent import Consent, DataKind, Granularity, LogEntry
from smarthydra.applets.release import aggregate
from smarthydra.card.apdu import SW
from smarthydra.card.applet import APDU, ISOException, PersistentBytes, PersistentInt
from smarthydra.card.firewall import Shareable

HH_DAYS = 40
DAILY_DAYS = 400
SLOTS = 48
MAX_LOG = 1500
LOG_PAGE = 200

INS_PUSH_DAY = 0x10
INS_GRANT = 0x12
INS_REVOKE = 0x14
INS_READ_LOG = 0x16
INS_CONSENTS = 0x18

ROLES = frozenset({"billing", "audit", "pq", "agent", "pricecomp"})
CONSENT_ROLES = frozenset({"agent", "pricecomp"})
ROLE_OUTPUT = {"billing": ("bill", "period"), "audit": ("bill-justification", "band-totals"),
               "pq": ("power-quality", "daily-summary")}


class ConsentRequired(ISOException):
    """No consent covers what an applet asked for (6985)."""

    def __init__(self, message: str) -> None:
        super().__init__(SW.CONDITIONS_NOT_SATISFIED, message)


class MeterDataService(Shareable):
    """What the data applet shares; every method checks the calling applet's role."""

    interface = frozenset({"half_hours", "voltages", "consented", "today"})

    def __init__(self, owner: MeterDataApplet) -> None:
        self._owner = owner

    def _role(self, allowed: frozenset[str]) -> tuple[str, str]:
        caller = self._owner.card.previous_context_aid()
        role = self._owner.role_of(caller)
        if role is None or role[0] not in allowed:
            raise ISOException(SW.SECURITY_STATUS_NOT_SATISFIED, "this applet may not read that")
        return role

    def today(self) -> int:
        return self._owner.today

    def half_hours(self, first: int, last: int) -> list[list[int]]:
        role, party = self._role(frozenset({"billing", "audit"}))
        days = self._owner.hh_days(first, last)
        data, granularity = ROLE_OUTPUT[role]
        self._owner.log(LogEntry(self._owner.today, "released", party, data, granularity,
                                 first, last, role))
        return days

    def voltages(self, day: int) -> list[int]:
        role, party = self._role(frozenset({"pq"}))
        volts = self._owner.voltage_day(day)
        data, granularity = ROLE_OUTPUT[role]
        self._owner.log(LogEntry(self._owner.today, "released", party, data, granularity,
                                 day, day, role))
        return volts

    def consented(self, kind: str, first: int, last: int) -> tuple[list[Any], int, int, list[Any]]:
        """(consent, first, last, data): half-hourly days for insights, else aggregated."""
        role, party = self._role(CONSENT_ROLES)
        wanted = DataKind.parse(kind)
        today = self._owner.today
        consent = self._owner.consent_for(party, wanted, today)
        if consent is None:
            self._owner.log(LogEntry(today, "refused", party, wanted.value, "-", first, last,
                                     role))
            raise ConsentRequired(f"no consent for {party} to have {wanted.value}")
        first, last = max(first, consent.first_day), min(last, consent.last_day)
        if first > last:
            raise ConsentRequired("the consent covers none of those days")
        if consent.granularity <= Granularity.HOURLY or wanted is DataKind.INSIGHTS:
            days = self._owner.hh_days(first, last)
        else:
            first = max(first, today - DAILY_DAYS + 1)
            days = [[total] for total in self._owner.daily_totals(first, last)]
        if wanted is DataKind.INSIGHTS:
            data: list[Any] = days
        elif consent.granularity <= Granularity.HOURLY:
            data = aggregate(first, days, consent.granularity)
        elif consent.granularity is Granularity.DAILY:
            data = [d[0] for d in days]
        else:
            data = aggregate(first, [[d[0]] + [0] * (SLOTS - 1) for d in days],
                             Granularity.MONTHLY)
        self._owner.log(LogEntry(today, "released", party, wanted.value,
                                 consent.granularity.label, first, last, role))
        return consent.to_payload(), first, last, data


class MeterDataApplet(HydraApplet):
    role = "meter-data"
    source_modules = (*HydraApplet.source_modules, "smarthydra.applets.consent",
                      "smarthydra.applets.release")
    required_settings = frozenset({"hub", "party", "party-ka", "party-sig", "clients"})

    hh_ring = PersistentBytes(max_size=HH_DAYS * SLOTS * 2)
    volt_ring = PersistentBytes(max_size=HH_DAYS * SLOTS * 2)
    hh_index = PersistentBytes(max_size=HH_DAYS * 4)
    daily_ring = PersistentBytes(max_size=DAILY_DAYS * 8)
    latest = PersistentInt(size=4)
    consents_raw = PersistentBytes(max_size=4096)
    log_raw = PersistentBytes(max_size=65535)
    supplier_seq = PersistentInt(size=4)

    def __init__(self) -> None:
        super().__init__()
        self.service = MeterDataService(self)

    def install(self, params: bytes) -> None:
        super().install(params)
        clients = self.settings.get("clients")
        if not isinstance(clients, dict) or not all(
            isinstance(aid, bytes) and isinstance(v, list) and len(v) == 2 and v[0] in ROLES
            for aid, v in clients.items()
        ):
            raise wrong_data("clients is {aid: [role, party]}")
        self.hh_ring = bytes(HH_DAYS * SLOTS * 2)
        self.volt_ring = bytes(HH_DAYS * SLOTS * 2)
        self.hh_index = bytes(HH_DAYS * 4)
        self.daily_ring = bytes(DAILY_DAYS * 8)

    # --- sharing ------------------------------------------------------------------------

    def role_of(self, aid: bytes | None) -> tuple[str, str] | None:
        clients = self.settings.get("clients", {})
        entry = clients.get(aid) if aid is not None else None
        return None if entry is None else (str(entry[0]), str(entry[1]))

    def get_shareable(self, client_aid: bytes | None, parameter: int) -> Shareable | None:
        if parameter != 0 or self.role_of(client_aid) is None:
            return None
        return self.service

    # --- storage ----------------------------------------------------------------------

    @property
    def today(self) -> int:
        return self.latest

    def _ring_slot(self, day: int) -> int | None:
        slot = day % HH_DAYS
        stored = int.from_bytes(self.hh_index[slot * 4:slot * 4 + 4], "big")
        return slot if stored == day else None

    def hh_days(self, first: int, last: int) -> list[list[int]]:
        ring = self.hh_ring
        days = []
        for day in range(first, last + 1):
            slot = self._ring_slot(day)
            if slot is None:
                raise not_now(f"no half-hourly data for day {day}")
            raw = ring[slot * SLOTS * 2:(slot + 1) * SLOTS * 2]
            days.append([int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)])
        return days

    def voltage_day(self, day: int) -> list[int]:
        slot = self._ring_slot(day)
        if slot is None:
            raise not_now(f"no voltage data for day {day}")
        raw = self.volt_ring[slot * SLOTS * 2:(slot + 1) * SLOTS * 2]
        return [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]

    def daily_totals(self, first: int, last: int) -> list[int]:
        ring = self.daily_ring
        out = []
        for day in range(first, last + 1):
            at = (day % DAILY_DAYS) * 8
            if int.from_bytes(ring[at:at + 4], "big") != day:
                raise not_now(f"no daily total for day {day}")
            out.append(int.from_bytes(ring[at + 4:at + 8], "big"))
        return out

    def push_day(self, data: bytes) -> None:
        if len(data) != 4 + SLOTS * 4:
            raise ISOException(SW.WRONG_LENGTH, "day(4) || 48 imports(2) || 48 voltages(2)")
        day = u32(data)
        if day <= 0 or (self.latest and day <= self.latest - HH_DAYS):
            raise wrong_data("day is older than the ring")
        imports = data[4:4 + SLOTS * 2]
        volts = data[4 + SLOTS * 2:]
        slot = day % HH_DAYS
        span = slice(slot * SLOTS * 2, (slot + 1) * SLOTS * 2)
        # data first, index last: a torn push leaves the old day's index, never a mix
        ring = bytearray(self.hh_ring)
        ring[span] = imports
        self.hh_ring = bytes(ring)
        vring = bytearray(self.volt_ring)
        vring[span] = volts
        self.volt_ring = bytes(vring)
        index = bytearray(self.hh_index)
        index[slot * 4:slot * 4 + 4] = day.to_bytes(4, "big")
        self.hh_index = bytes(index)
        total = sum(int.from_bytes(imports[i:i + 2], "big") for i in range(0, len(imports), 2))
        daily = bytearray(self.daily_ring)
        at = (day % DAILY_DAYS) * 8
        daily[at:at + 8] = day.to_bytes(4, "big") + total.to_bytes(4, "big")
        self.daily_ring = bytes(daily)
        if day > self.latest:
            self.latest = day

    # --- consent and log ---------------------------------------------------------------

    def consents(self) -> list[Consent]:
        raw = self.consents_raw
        return [Consent.from_payload(c) for c in cbor2.loads(raw)] if raw else []

    def consent_for(self, party: str, kind: DataKind, day: int) -> Consent | None:
        for consent in self.consents():
            if consent.party == party and consent.data is kind and consent.covers(day):
                return consent
        return None

    def log(self, entry: LogEntry) -> None:
        entries = cbor2.loads(self.log_raw) if self.log_raw else []
        entries.append(entry.to_payload())
        encoded = cose.canonical(entries[-MAX_LOG:])
        while len(encoded) > 65535:  # keep the newest entries that fit
            entries = entries[len(entries) // 10 + 1:]
            encoded = cose.canonical(entries)
        self.log_raw = encoded

    def _instruction(self, apdu: APDU, data: bytes, op: str) -> tuple[Any, str]:
        if apdu.p1 == 0x00:
            return decode_cbor(data, "consent"), "ihd"
        if apdu.p1 == 0x01:
            payload = self.verify_from_party(data)
            if not isinstance(payload, dict) or payload.get("op") != op:
                raise wrong_data(f"supplier instruction is not a {op}")
            seq = payload.get("seq")
            if not isinstance(seq, int) or seq <= self.supplier_seq:
                raise ISOException(SW.SECURITY_STATUS_NOT_SATISFIED, "replayed instruction")
            self.supplier_seq = seq
            return payload.get("consent" if op == "grant" else "party"), "supplier"
        raise ISOException(SW.INCORRECT_P1P2)

    def _receipt(self, op: str, body: Any) -> bytes:
        return self.sign_statement({"type": "consent-receipt", "hub": self.hub, "op": op,
                                    "consent": body, "day": self.today})

    def grant(self, apdu: APDU, data: bytes) -> bytes:
        payload, via = self._instruction(apdu, data, "grant")
        consent = Consent.from_payload(payload)
        # a new contract for the same party and data replaces (limits) the old one
        kept = [c for c in self.consents()
                if not (c.party == consent.party and c.data is consent.data)]
        self.consents_raw = cose.canonical([c.to_payload() for c in [*kept, consent]])
        self.log(LogEntry(self.today, "granted", consent.party, consent.data.value,
                          consent.granularity.label, consent.first_day, consent.last_day, via))
        return self._receipt("grant", consent.to_payload())

    def revoke(self, apdu: APDU, data: bytes) -> bytes:
        party, via = self._instruction(apdu, data, "revoke")
        if not isinstance(party, str):
            raise wrong_data("revoke names a party")
        before = self.consents()
        kept = [c for c in before if c.party != party]
        if len(kept) == len(before):
            raise ISOException(SW.REFERENCED_DATA_NOT_FOUND, f"no consent for {party}")
        self.consents_raw = cose.canonical([c.to_payload() for c in kept])
        self.log(LogEntry(self.today, "revoked", party, "all", "-", 0, 0, via))
        return self._receipt("revoke", party)

    def command(self, apdu: APDU, data: bytes) -> bytes | None:
        if apdu.ins == INS_PUSH_DAY:
            self.push_day(data)
            return None
        if apdu.ins == INS_GRANT:
            return self.grant(apdu, data)
        if apdu.ins == INS_REVOKE:
            return self.revoke(apdu, data)
        if apdu.ins == INS_READ_LOG:
            start = (apdu.p1 << 8) | apdu.p2
            entries = cbor2.loads(self.log_raw) if self.log_raw else []
            return cose.canonical(entries[start:start + LOG_PAGE])
        if apdu.ins == INS_CONSENTS:
            return self.consents_raw or cose.canonical([])
        raise ISOException(SW.INS_NOT_SUPPORTED)
