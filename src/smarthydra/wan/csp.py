"""The communications service provider: per-region queues to hubs with throughput caps, a limit
on hubs online at once, and the CSP's own anomaly counter.

Each region drains its FIFO queue at most ``frames_per_second`` (a token bucket of ``burst``
frames, refilled on the injected clock). A hub is *online* from its first frame until
``session`` has passed without traffic; no more than ``max_online`` hubs are online at once,
so a hub beyond that waits its turn. Independently of the DCC, the CSP counts frames per hub
in a sliding window: a hub sent more than ``anomaly_limit`` frames in ``anomaly_window`` gets
no more until the window passes, and each such refusal increments :attr:`anomalies`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from smarthydra.clock import Clock
from smarthydra.eui import Eui64
from smarthydra.wan.network import WanError, WanNetwork


class Throttled(WanError):
    """The region's throughput cap is reached for now."""


class TooManyOnline(WanError):
    """The limit on hubs online at once is reached and this hub is not one of them."""


class CspAnomaly(WanError):
    """The CSP's own anomaly check holds traffic to this hub."""


@dataclass(frozen=True)
class RegionLimits:
    frames_per_second: float = 50.0
    burst: int = 50

    def __post_init__(self) -> None:
        if self.frames_per_second <= 0 or self.burst < 1:
            raise ValueError("a region needs a positive rate and a burst of at least one frame")


@dataclass
class _Bucket:
    tokens: float
    at: datetime


@dataclass(frozen=True)
class Delivery:
    hub: Eui64
    region: str
    frame: bytes
    response: bytes | None


@dataclass
class CommsServiceProvider:
    network: WanNetwork
    clock: Clock
    regions: dict[str, RegionLimits] = field(default_factory=dict)
    default_limits: RegionLimits = field(default_factory=RegionLimits)
    max_online: int = 10_000
    session: timedelta = timedelta(seconds=30)
    anomaly_limit: int = 100
    anomaly_window: timedelta = timedelta(minutes=1)
    anomalies: int = 0
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _online: dict[Eui64, datetime] = field(default_factory=dict)  # hub -> last traffic
    _recent: dict[Eui64, deque[datetime]] = field(default_factory=dict)
    _queues: dict[str, deque[tuple[Eui64, bytes]]] = field(default_factory=dict)

    # --- admission ------------------------------------------------------------------------------

    def _limits(self, region: str) -> RegionLimits:
        return self.regions.get(region, self.default_limits)

    def _take_token(self, region: str, now: datetime) -> bool:
        limits = self._limits(region)
        bucket = self._buckets.setdefault(region, _Bucket(float(limits.burst), now))
        elapsed = max(0.0, (now - bucket.at).total_seconds())
        bucket.tokens = min(float(limits.burst), bucket.tokens + elapsed * limits.frames_per_second)
        bucket.at = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def online(self) -> int:
        now = self.clock.now()
        for hub in [h for h, last in self._online.items() if now - last >= self.session]:
            del self._online[hub]
        return len(self._online)

    def _admit(self, hub: Eui64, region: str, now: datetime) -> None:
        recent = self._recent.setdefault(hub, deque())
        while recent and recent[0] <= now - self.anomaly_window:
            recent.popleft()
        if len(recent) >= self.anomaly_limit:
            self.anomalies += 1
            raise CspAnomaly(
                f"hub {hub} had {len(recent)} frames in {self.anomaly_window}; holding traffic"
            )
        if hub not in self._online and self.online() >= self.max_online:
            raise TooManyOnline(f"{self.max_online} hubs are online; {hub} waits")
        if not self._take_token(region, now):
            raise Throttled(f"region {region} is at its cap of {self._limits(region).frames_per_second}/s")
        recent.append(now)
        self._online[hub] = now

    # --- sending ---------------------------------------------------------------------------------

    def send(self, hub: Eui64, region: str, frame: bytes) -> bytes | None:
        """Carry one frame now, or raise a :class:`WanError` saying why not (it may be retried)."""
        self._admit(hub, region, self.clock.now())
        response = self.network.deliver(hub, frame)
        self._online[hub] = self.clock.now()
        return response

    def enqueue(self, hub: Eui64, region: str, frame: bytes) -> None:
        self._queues.setdefault(region, deque()).append((hub, frame))

    def queued(self, region: str | None = None) -> int:
        if region is not None:
            return len(self._queues.get(region, ()))
        return sum(len(q) for q in self._queues.values())

    def pump(self) -> list[Delivery]:
        """Drain each region's queue as far as its cap and the online limit allow, in order.

        A frame that cannot go yet stays at the head of its region's queue; one that the WAN
        cannot deliver at all (unknown hub) is dropped from the queue and reported with no
        response.
        """
        delivered: list[Delivery] = []
        for region, queue in self._queues.items():
            while queue:
                hub, frame = queue[0]
                try:
                    response = self.send(hub, region, frame)
                except (Throttled, TooManyOnline, CspAnomaly):
                    break
                except WanError:
                    queue.popleft()
                    delivered.append(Delivery(hub, region, frame, None))
                    continue
                queue.popleft()
                delivered.append(Delivery(hub, region, frame, response))
        return delivered
