"""The telehealth applet: health readings from HAN devices, end to end to the provider.

Health devices (a weighing scale, a blood-pressure monitor) join the hub's HAN; the hub
routes their frames to this applet, which accepts readings only from the devices enrolled
in its install parameters, and seals each reading to the telehealth provider's
key-agreement key. Neither the hub host, the CSP, the DCC, the supplier nor any other applet
holds a key that opens it: the applet has no route to the meter-data applet and the
meter-data applet gives it nothing.

A reading is CBOR ``{"kind": tstr, "value": int, "unit": tstr, "time": int}``.

The provider enrols the devices it gave the patient over its own secure channel (the
telehealth SSD's); a reading from any other device is refused.

Commands (CLA 80): ``60`` READING ``device EUI-64(8) || CBOR reading`` -> sealed statement
(from the hub, which routes the HAN device's frame); ``62`` ENROL ``device EUI-64(8)``
(the provider, over its secure channel).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smarthydra.applets import cose
from smarthydra.applets.base import HydraApplet, decode_cbor, wrong_data
from smarthydra.card.apdu import SW
from smarthydra.card.applet import APDU, ISOException, PersistentBytes, PersistentInt

INS_READING = 0x60
INS_ENROL = 0x62
MAX_DEVICES = 16
KINDS = {"weight": "g", "systolic": "mmHg", "diastolic": "mmHg", "pulse": "bpm",
         "spo2": "%", "glucose": "mg/dL"}


@dataclass(frozen=True)
class HealthReading:
    kind: str
    value: int
    unit: str
    time: int  # POSIX seconds

    def encode(self) -> bytes:
        return cose.canonical({"kind": self.kind, "value": self.value, "unit": self.unit,
                               "time": self.time})


def parse_reading(data: bytes) -> HealthReading:
    reading: Any = decode_cbor(data, "reading")
    if not isinstance(reading, dict) or set(reading) != {"kind", "value", "unit", "time"}:
        raise wrong_data("a reading is {kind, value, unit, time}")
    kind, value, unit, time = reading["kind"], reading["value"], reading["unit"], reading["time"]
    if KINDS.get(kind) != unit or not isinstance(value, int) or not isinstance(time, int):
        raise wrong_data("unknown reading kind or unit")
    return HealthReading(kind, value, unit, time)


class TelehealthApplet(HydraApplet):
    role = "telehealth"
    required_settings = frozenset({"hub", "party", "party-ka"})
    party_commands = frozenset({INS_ENROL})

    readings = PersistentInt(size=4)
    enrolled = PersistentBytes(max_size=8 * MAX_DEVICES)

    def devices(self) -> list[bytes]:
        installed = [d for d in self.settings.get("devices", []) if isinstance(d, bytes)]
        raw = self.enrolled
        return installed + [raw[i:i + 8] for i in range(0, len(raw), 8)]

    def enrol(self, data: bytes) -> None:
        if len(data) != 8:
            raise ISOException(SW.WRONG_LENGTH, "a device is its EUI-64")
        if data in self.devices():
            return
        if len(self.enrolled) >= 8 * MAX_DEVICES:
            raise ISOException(SW.NOT_ENOUGH_MEMORY, "no room for another device")
        self.enrolled = self.enrolled + data

    def reading(self, data: bytes) -> bytes:
        if len(data) < 9:
            raise ISOException(SW.WRONG_LENGTH, "device EUI-64 and a reading")
        device, reading = data[:8], parse_reading(data[8:])
        if device not in self.devices():
            raise ISOException(SW.SECURITY_STATUS_NOT_SATISFIED, "device is not enrolled")
        self.readings = (self.readings + 1) % 2**32
        return self.seal({"type": "health-reading", "hub": self.hub, "device": device,
                          "kind": reading.kind, "value": reading.value, "unit": reading.unit,
                          "time": reading.time, "n": self.readings})

    def command(self, apdu: APDU, data: bytes) -> bytes | None:
        if apdu.ins == INS_READING:
            return self.reading(data)
        if apdu.ins == INS_ENROL:
            self.enrol(data)
            return None
        raise ISOException(SW.INS_NOT_SUPPORTED)
