"""Shared set-up for the prepayment tests: a vending server and a meter identity."""

from __future__ import annotations

from datetime import UTC, datetime

from smarthydra.prepay.sts_algorithms import (
    BaseDate,
    EncryptionAlgorithm,
    KeyGenerationAlgorithm,
    MeterIdentity,
)
from smarthydra.prepay.sts_meter import MeterState
from smarthydra.prepay.sts_vending import SoftVendingKey, VendingServer

VK_DES = bytes.fromhex("abababababababab")
VK_HMAC = bytes(range(1, 21))
PAN = "600727000000000009"
OTHER_PAN = "600727000000000017"
METER = MeterIdentity(PAN, "123456", 1, 1, 2)


def server(dkga: str = "02", ea: str = "07", base: int = 1993) -> VendingServer:
    key = SoftVendingKey(VK_DES if dkga == "02" else VK_HMAC)
    counter = iter(range(10**6))
    return VendingServer(key, KeyGenerationAlgorithm(dkga), EncryptionAlgorithm(ea),
                         BaseDate(base), random_nibble=lambda: next(counter) % 16)


def meter_state(vending: VendingServer, meter: MeterIdentity = METER) -> MeterState:
    return MeterState(decoder_key=vending.decoder_key(meter), algorithm=vending.algorithm,
                      base_date=vending.base_date, krn=meter.krn, kt=meter.kt, ti=meter.ti)


def at(year: int, month: int = 6, day: int = 1, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)
