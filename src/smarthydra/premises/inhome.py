"""In-home devices on the HAN: displays, the consumer's own access device, the prepayment
interface, and telehealth devices.

All of them talk only to the hub, only over link-secured HAN frames, and only once they are in
the CHF device log:

- :class:`InHomeDisplay` and :class:`ConsumerAccessDevice` ask for the consumer's own data
  (demand now, today's energy and cost, balance, gas) - served locally by the hub from the
  meters, never from the DCC. The CAD also keeps a history the consumer can export.
- :class:`PrepaymentInterface` (PPMID) shows the balance, lets the consumer accept emergency
  credit and enter a top-up code (UTRN) for the electricity meter; with GBCS keys
  (:class:`~smarthydra.premises.ppmid.Ppmid`) it also answers CS08 / CS06 from the WAN.
- :class:`WeighingScale` and :class:`BloodPressureMonitor` send readings that the hub passes
  to the health service's endpoint - not to the energy supplier or the DCC.

Application frames (inside the HAN security): a 4-byte tag, then the body.
"""

from __future__ import annotations

import datetime as dt
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from smarthydra.eui import Eui64
from smarthydra.premises.han import HanLink, HanSecurityError

CONSUMER_DATA_TAG = b"\xe2CAD"
PPMID_TAG = b"\xe3PPM"
HEALTH_TAG = b"\xe4HLT"

PPMID_EMERGENCY_CREDIT = 0x01
PPMID_TOP_UP = 0x02


@dataclass(frozen=True)
class ConsumerData:
    """What a display shows: the consumer's own data, from the meters in this home."""

    at: dt.datetime
    demand_w: int
    import_today_kwh: float
    cost_today_gbp: float
    meter_balance_gbp: float
    supply: str
    payment_mode: str
    gas_m3: float | None
    gas_reliable: bool | None

    def encode(self) -> bytes:
        fields = dict(self.__dict__, at=self.at.isoformat())
        return json.dumps(fields, sort_keys=True).encode()

    @classmethod
    def decode(cls, raw: bytes) -> ConsumerData:
        try:
            fields = json.loads(raw)
            fields["at"] = dt.datetime.fromisoformat(fields["at"])
            return cls(**fields)
        except (ValueError, TypeError, KeyError) as exc:
            raise HanSecurityError(f"consumer data does not decode: {exc}") from None


@dataclass(frozen=True)
class HealthReading:
    device: Eui64
    kind: str  # "weight" or "blood pressure"
    at: dt.datetime
    values: tuple[int, ...]  # weight in grams; systolic, diastolic (mmHg), pulse (bpm)

    def encode(self) -> bytes:
        kind = 1 if self.kind == "weight" else 2
        return struct.pack(">BI", kind, int(self.at.timestamp())) + b"".join(
            struct.pack(">I", v) for v in self.values)

    @classmethod
    def decode(cls, device: Eui64, raw: bytes) -> HealthReading:
        if len(raw) < 5 or (len(raw) - 5) % 4:
            raise HanSecurityError("malformed health reading")
        kind, stamp = struct.unpack(">BI", raw[:5])
        if kind not in (1, 2):
            raise HanSecurityError("unknown health reading kind")
        values = tuple(struct.unpack(">I", raw[i : i + 4])[0] for i in range(5, len(raw), 4))
        return cls(device, "weight" if kind == 1 else "blood pressure",
                   dt.datetime.fromtimestamp(stamp, dt.UTC), values)


class HanClient:
    """What every in-home device has: its EUI and its end of the HAN link with the hub."""

    def __init__(self, eui: Eui64) -> None:
        self.eui = eui
        self.link: HanLink | None = None
        self.hub_eui: bytes | None = None

    def receive(self, wire: bytes) -> bytes | None:
        """A device without GBCS keys takes no GBCS commands from the WAN (a PPMID with them
        does: :class:`smarthydra.premises.ppmid.Ppmid`)."""
        return None

    def pair(self, link: HanLink, hub_eui: bytes) -> None:
        self.link, self.hub_eui = link, hub_eui

    def _send(self, hub_receive: Callable[[bytes], bytes | None], body: bytes) -> bytes | None:
        if self.link is None or self.hub_eui is None:
            raise HanSecurityError("not joined to a hub")
        answer = hub_receive(self.link.seal(body))
        if answer is None:
            return None
        return self.link.open(answer, self.hub_eui)


class InHomeDisplay(HanClient):
    def __init__(self, eui: Eui64) -> None:
        super().__init__(eui)
        self.shown: ConsumerData | None = None

    def refresh(self, hub_receive: Callable[[bytes], bytes | None]) -> ConsumerData | None:
        answer = self._send(hub_receive, CONSUMER_DATA_TAG)
        self.shown = ConsumerData.decode(answer) if answer is not None else None
        return self.shown


class ConsumerAccessDevice(InHomeDisplay):
    """The consumer's own device: the same data, kept as a history the consumer owns."""

    def __init__(self, eui: Eui64) -> None:
        super().__init__(eui)
        self.history: list[ConsumerData] = []

    def refresh(self, hub_receive: Callable[[bytes], bytes | None]) -> ConsumerData | None:
        data = super().refresh(hub_receive)
        if data is not None:
            self.history.append(data)
        return data

    def export_csv(self) -> str:
        lines = ["time,demand_w,import_today_kwh,cost_today_gbp,balance_gbp"]
        lines += [f"{d.at.isoformat()},{d.demand_w},{d.import_today_kwh:.3f},"
                  f"{d.cost_today_gbp:.2f},{d.meter_balance_gbp:.2f}" for d in self.history]
        return "\n".join(lines) + "\n"


class PrepaymentInterface(InHomeDisplay):
    def accept_emergency_credit(self, hub_receive: Callable[[bytes], bytes | None]) -> bool:
        return self._send(hub_receive, PPMID_TAG + bytes([PPMID_EMERGENCY_CREDIT])) == b"\x01"

    def enter_top_up(self, hub_receive: Callable[[bytes], bytes | None], utrn: str) -> bool:
        body = PPMID_TAG + bytes([PPMID_TOP_UP]) + utrn.encode("ascii")
        return self._send(hub_receive, body) == b"\x01"


@dataclass
class _HealthDevice(HanClient):
    eui: Eui64
    sent: list[HealthReading] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.eui)

    def _report(self, hub_receive: Callable[[bytes], bytes | None], reading: HealthReading) -> bool:
        self.sent.append(reading)
        return self._send(hub_receive, HEALTH_TAG + reading.encode()) == b"\x01"


class WeighingScale(_HealthDevice):
    def weigh(self, hub_receive: Callable[[bytes], bytes | None], grams: int,
              at: dt.datetime) -> bool:
        return self._report(hub_receive, HealthReading(self.eui, "weight", at, (grams,)))


class BloodPressureMonitor(_HealthDevice):
    def measure(self, hub_receive: Callable[[bytes], bytes | None], systolic: int,
                diastolic: int, pulse: int, at: dt.datetime) -> bool:
        return self._report(hub_receive, HealthReading(
            self.eui, "blood pressure", at, (systolic, diastolic, pulse)))
