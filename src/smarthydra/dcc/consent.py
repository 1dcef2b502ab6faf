"""Consent at the DCC: an Other User reaches a consumer's meter only under a recorded consent.

The consumer grants, limits and revokes consent at the in-home display or through the
supplier; the hub's meter-data applet keeps it and answers every change with a receipt it
signs (:mod:`smarthydra.applets.vault`). The hub sends the receipt to the DCC, which checks it
with a verifier it is given (the applet key certified by the card issuer; the check lives with
the parties, :mod:`smarthydra.parties.consent`, so this layer does not depend on them) and
keeps the latest consent per (MPxN, party).

The register enforces it twice:

* on service requests, as the :attr:`DataCommsCompany.consent_check` hook: an Other User (a
  role with no registration to a meter point) passes the DCC's device-ownership check for a
  device only while a consent of that user (by name) covers today for the device's MPxN; else
  the request is refused with DUIS ``E4`` (the sender is not authorised for that device) and
  the refusal is audited;
* on the value-added route, :meth:`forward`: a statement the hub's price-comparison applet
  sealed to an Other User travels through the DCC, which can read only its envelope (sender
  and recipient) and forwards it only while the same consent is recorded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from smarthydra.applets import cose
from smarthydra.applets.consent import Consent, ConsentError
from smarthydra.clock import Clock
from smarthydra.dcc.inventory import DccUser, DeviceRecord

#: (receipt bytes, hub name) -> the verified receipt payload; raises on a bad receipt
ReceiptVerifier = Callable[[bytes, str], Mapping[str, Any]]


class ConsentNotRecorded(Exception):
    """The DCC holds no consent for this party and meter point: nothing goes through."""


class ReceiptRejected(Exception):
    """A consent receipt is not a receipt, or does not verify."""


@dataclass
class ConsentRecord:
    consent: Consent
    hub: str
    recorded: dt.datetime


@dataclass
class DccConsentRegister:
    """The DCC's consent register, fed by the hubs' signed receipts."""

    clock: Clock
    verify: ReceiptVerifier
    hubs: dict[str, str] = field(default_factory=dict)  # hub name -> MPxN it serves
    consents: dict[tuple[str, str], ConsentRecord] = field(default_factory=dict)
    audit: list[str] = field(default_factory=list)
    forwarded: int = 0
    refused: int = 0

    def enrol_hub(self, hub: str, mpxn: str) -> None:
        """Which meter point a Hydra hub's receipts speak for (from the inventory)."""
        self.hubs[hub] = mpxn

    def record(self, receipt: bytes, hub: str) -> Consent | str:
        """Apply a receipt from ``hub``: the consent granted, or the party whose was revoked."""
        mpxn = self.hubs.get(hub)
        if mpxn is None:
            raise ReceiptRejected(f"{hub} is not a hub the DCC knows")
        try:
            payload = self.verify(receipt, hub)
        except Exception as exc:  # the verifier's own rejection types
            raise ReceiptRejected(f"consent receipt: {exc}") from None
        if payload.get("type") != "consent-receipt" or payload.get("hub") != hub:
            raise ReceiptRejected("not a consent receipt of that hub")
        now = self.clock.now()
        if payload.get("op") == "grant":
            try:
                consent = Consent.from_payload(payload.get("consent"))
            except (ConsentError, TypeError, ValueError) as exc:
                raise ReceiptRejected(f"malformed consent: {exc}") from None
            self.consents[(mpxn, consent.party)] = ConsentRecord(consent, hub, now)
            self.audit.append(f"{now.isoformat()} {mpxn}: {consent.describe()}")
            return consent
        if payload.get("op") == "revoke":
            party = str(payload.get("consent"))
            self.consents.pop((mpxn, party), None)
            self.audit.append(f"{now.isoformat()} {mpxn}: consent of {party} revoked")
            return party
        raise ReceiptRejected(f"unknown consent operation {payload.get('op')!r}")

    def covering(self, mpxn: str, party: str, day: int | None = None) -> Consent | None:
        record = self.consents.get((mpxn, party))
        today = self.clock.now().date().toordinal() if day is None else day
        if record is None or not record.consent.covers(today):
            return None
        return record.consent

    # --- the service-request gate (DataCommsCompany.consent_check) ----------------------

    def check(self, user: DccUser, device: DeviceRecord) -> str | None:
        """None when ``user`` may reach ``device``; else why not (the DCC answers E4)."""
        if self.covering(device.mpxn, user.name) is None:
            self.refused += 1
            reason = f"no consent of {user.name} recorded for MPxN {device.mpxn}"
            self.audit.append(f"{self.clock.now().isoformat()} refused: {reason}")
            return reason
        return None

    # --- the value-added route ----------------------------------------------------------

    def forward(self, sealed: bytes, deliver: Callable[[bytes], object],
                day: int | None = None) -> None:
        """Forward a hub's sealed statement to an Other User if a recorded consent covers
        ``day`` (default today); raises :class:`ConsentNotRecorded` (and delivers nothing)
        otherwise."""
        try:
            header = cose.sealed_header(sealed)
        except cose.EnvelopeError as exc:
            self.refused += 1
            raise ConsentNotRecorded(f"not a sealed statement: {exc}") from None
        hub = header.sender.rsplit("/", 1)[0]
        mpxn = self.hubs.get(hub)
        if mpxn is None or self.covering(mpxn, header.recipient, day) is None:
            self.refused += 1
            self.audit.append(f"{self.clock.now().isoformat()} {hub}: refused a release to "
                              f"{header.recipient} (no consent)")
            raise ConsentNotRecorded(f"no consent of {header.recipient} recorded for {hub}")
        self.forwarded += 1
        deliver(sealed)
