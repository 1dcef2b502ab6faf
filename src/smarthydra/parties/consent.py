"""The DCC's side of consent: a register of the consumer's consents, fed by signed receipts,
and the price-comparison route that forwards only what a recorded consent covers.

The meter-data applet answers every grant and revocation with a receipt it signs (its key
certified by the card issuer). The hub sends the receipt to the DCC, which verifies it and
keeps the latest state per (hub, party). A sealed statement from a hub to an Other User goes
through :meth:`DccConsentRegister.forward`: the DCC can read only the envelope's header
(sender and recipient), and forwards it only while the register holds a consent of that
party for that hub; otherwise it is refused and nothing reaches the Other User.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from smarthydra.applets import cose
from smarthydra.applets.consent import Consent
from smarthydra.applets.hub import METER_DATA
from smarthydra.parties.hydra import CardIssuer, StatementRejected, verify_statement


class ConsentNotRecorded(Exception):
    """The DCC holds no consent for this party and hub: the message is not forwarded."""


@dataclass
class DccConsentRegister:
    issuer: CardIssuer
    consents: dict[tuple[str, str], Consent] = field(default_factory=dict)
    forwarded: int = 0
    refused: int = 0
    audit: list[str] = field(default_factory=list)

    def record(self, receipt: bytes, hub: str) -> None:
        """Apply a consent receipt from ``hub``'s meter-data applet."""
        payload = verify_statement(receipt, self.issuer.certificate(hub, METER_DATA.aid),
                                   self.issuer.public_key, applet="meter-data")
        if payload.get("type") != "consent-receipt":
            raise StatementRejected("not a consent receipt")
        if payload["op"] == "grant":
            consent = Consent.from_payload(payload["consent"])
            self.consents[(hub, consent.party)] = consent
            self.audit.append(f"{hub}: {consent.describe()}")
        elif payload["op"] == "revoke":
            self.consents.pop((hub, str(payload["consent"])), None)
            self.audit.append(f"{hub}: consent of {payload['consent']} revoked")
        else:
            raise StatementRejected(f"unknown consent operation {payload['op']!r}")

    def forward(self, sealed: bytes, day: int, deliver: Callable[[bytes], object]) -> None:
        """Forward a hub's sealed statement to an Other User if a consent covers ``day``."""
        try:
            header = cose.sealed_header(sealed)
        except cose.EnvelopeError as exc:
            self.refused += 1
            raise ConsentNotRecorded(f"not a sealed statement: {exc}") from None
        hub = header.sender.rsplit("/", 1)[0]
        consent = self.consents.get((hub, header.recipient))
        if consent is None or not consent.covers(day):
            self.refused += 1
            self.audit.append(f"{hub}: refused a release to {header.recipient} (no consent)")
            raise ConsentNotRecorded(f"no consent of {header.recipient} recorded for {hub}")
        self.forwarded += 1
        deliver(sealed)
