"""The parties' side of consent at the DCC: checking the hubs' consent receipts.

The register is the DCC's own (:mod:`smarthydra.dcc.consent`): it gates Other Users' service
requests (DUIS ``E4`` without a recorded consent) and the price-comparison statements the hubs
seal to them. What it needs from the parties is the check of a receipt: a signed statement of
the hub's meter-data applet, whose key the card issuer certified.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smarthydra.applets.hub import METER_DATA
from smarthydra.clock import Clock
from smarthydra.dcc.consent import (
    ConsentNotRecorded,
    DccConsentRegister,
    ReceiptRejected,
    ReceiptVerifier,
)
from smarthydra.parties.hydra import CardIssuer, verify_statement


def receipt_verifier(issuer: CardIssuer) -> ReceiptVerifier:
    """Verify a consent receipt with the meter-data applet key the issuer certified."""

    def verify(receipt: bytes, hub: str) -> Mapping[str, Any]:
        return verify_statement(receipt, issuer.certificate(hub, METER_DATA.aid),
                                issuer.public_key, applet="meter-data")

    return verify


def consent_register(issuer: CardIssuer, clock: Clock) -> DccConsentRegister:
    return DccConsentRegister(clock, receipt_verifier(issuer))


__all__ = ["ConsentNotRecorded", "DccConsentRegister", "ReceiptRejected", "consent_register",
           "receipt_verifier"]
