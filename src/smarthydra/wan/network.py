"""The communication service provider's WAN: carries GBCS bytes between the DCC and hubs.

The WAN knows hubs only by their EUI-64 and a delivery endpoint; it does not look inside the
GBCS. Per-region throughput caps and the CSP's own anomaly checks hang off this class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from smarthydra.eui import Eui64


class HubEndpoint(Protocol):
    """Anything that accepts a GBCS message from the WAN and may answer with one."""

    def receive_from_wan(self, message: bytes) -> bytes | None: ...


class WanError(Exception):
    """A frame could not be delivered."""


class UnknownHub(WanError):
    def __init__(self, hub: Eui64) -> None:
        super().__init__(f"no communications hub {hub} is connected to this WAN")
        self.hub = hub


@dataclass
class WanStatistics:
    delivered: int = 0
    answered: int = 0
    unanswered: int = 0
    bytes_down: int = 0
    bytes_up: int = 0


@dataclass
class WanNetwork:
    """In-process WAN. ``tap`` sees every frame (for attack scenarios and tests)."""

    _hubs: dict[Eui64, HubEndpoint] = field(default_factory=dict)
    statistics: WanStatistics = field(default_factory=WanStatistics)
    tap: Callable[[Eui64, bytes], None] | None = None
    #: sees every answer a hub sends back (the CSP's view of the uplink)
    uplink_tap: Callable[[Eui64, bytes], None] | None = None

    def connect(self, hub: Eui64, endpoint: HubEndpoint) -> None:
        self._hubs[hub] = endpoint

    def disconnect(self, hub: Eui64) -> None:
        self._hubs.pop(hub, None)

    def deliver(self, hub: Eui64, message: bytes) -> bytes | None:
        endpoint = self._hubs.get(hub)
        if endpoint is None:
            raise UnknownHub(hub)
        if self.tap is not None:
            self.tap(hub, message)
        self.statistics.delivered += 1
        self.statistics.bytes_down += len(message)
        response = endpoint.receive_from_wan(message)
        if response is None:
            self.statistics.unanswered += 1
        else:
            self.statistics.answered += 1
            self.statistics.bytes_up += len(response)
            if self.uplink_tap is not None:
                self.uplink_tap(hub, response)
        return response
