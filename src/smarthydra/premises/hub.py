"""The communications hub: WAN on one side, the home area network on the other.

The comms hub function keeps the device log (the HAN whitelist): a message from the WAN for a
device not in the log is dropped and logged, and so is anything from the HAN that does not
come from a logged device. Routing reads only the recipient system title; the devices do all
the GBCS security checks themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from smarthydra.clock import Clock
from smarthydra.eui import Eui64
from smarthydra.gbcs.envelope import parse_mac_header
from smarthydra.gbcs.errors import GbcsError


class HanDevice(Protocol):
    eui: Eui64

    def receive(self, wire: bytes) -> bytes | None: ...


@dataclass(frozen=True)
class HubLogEntry:
    at: datetime
    event: str
    device: bytes | None


@dataclass
class CommsHub:
    eui: Eui64
    clock: Clock
    device_log: dict[Eui64, HanDevice] = field(default_factory=dict)
    log: list[HubLogEntry] = field(default_factory=list)

    def join(self, device: HanDevice) -> None:
        """Add a device to the device log (CCS01 will drive this with install codes)."""
        self.device_log[device.eui] = device
        self.log.append(HubLogEntry(self.clock.now(), "device added to log", device.eui.value))

    def remove(self, eui: Eui64) -> None:
        if self.device_log.pop(eui, None) is not None:
            self.log.append(HubLogEntry(self.clock.now(), "device removed from log", eui.value))

    def receive_from_wan(self, message: bytes) -> bytes | None:
        try:
            recipient = parse_mac_header(message).recipient
        except GbcsError as exc:
            self.log.append(
                HubLogEntry(self.clock.now(), f"dropped malformed WAN frame: {exc}", None)
            )
            return None
        device = self.device_log.get(Eui64(recipient))
        if device is None:
            self.log.append(
                HubLogEntry(self.clock.now(), "dropped: recipient not in device log", recipient)
            )
            return None
        return device.receive(message)
