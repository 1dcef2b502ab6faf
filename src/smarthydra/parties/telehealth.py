"""The telehealth provider: the only party that can open what the telehealth applet seals."""

from __future__ import annotations

from dataclasses import dataclass

from smarthydra.applets.telehealth import HealthReading
from smarthydra.parties.hydra import CardIssuer, HydraParty, PartyKeys, StatementRejected


@dataclass(frozen=True)
class ReceivedReading:
    hub: str
    device: bytes
    reading: HealthReading


class TelehealthProvider(HydraParty):
    def __init__(self, keys: PartyKeys, issuer: CardIssuer) -> None:
        super().__init__(keys, issuer, "telehealth")
        self.readings: list[ReceivedReading] = []

    def receive(self, sealed: bytes) -> ReceivedReading:
        payload = self.open(sealed)
        try:
            if payload["type"] != "health-reading":
                raise StatementRejected("not a health reading")
            received = ReceivedReading(
                str(payload["hub"]), bytes(payload["device"]),
                HealthReading(str(payload["kind"]), int(payload["value"]),
                              str(payload["unit"]), int(payload["time"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise StatementRejected(f"malformed reading: {exc}") from None
        self.readings.append(received)
        return received
