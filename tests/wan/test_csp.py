"""The CSP: per-region caps, the limit on hubs online at once, its own anomaly counter; and the
durable DCC carrying its WAN queue through it."""

from __future__ import annotations

import datetime as dt

import pytest

from smarthydra.clock import FixedClock
from smarthydra.eui import Eui64
from smarthydra.wan.csp import (
    CommsServiceProvider,
    CspAnomaly,
    RegionLimits,
    Throttled,
    TooManyOnline,
)
from smarthydra.wan.network import UnknownHub, WanNetwork

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class Hub:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def receive_from_wan(self, message: bytes) -> bytes | None:
        self.frames.append(message)
        return b"ok:" + message


def _csp(**kwargs: object) -> tuple[CommsServiceProvider, FixedClock, list[Eui64], list[Hub]]:
    clock = FixedClock(T0)
    network = WanNetwork()
    euis = [Eui64(bytes([0, 0xDB, 0, 0, 0, 0, 0, i])) for i in range(1, 6)]
    hubs = [Hub() for _ in euis]
    for eui, hub in zip(euis, hubs, strict=True):
        network.connect(eui, hub)
    return CommsServiceProvider(network, clock, **kwargs), clock, euis, hubs  # type: ignore[arg-type]


def test_region_cap_throttles_and_refills_on_the_clock() -> None:
    csp, clock, euis, _hubs = _csp(regions={"north": RegionLimits(2.0, 2)})
    assert csp.send(euis[0], "north", b"1") == b"ok:1"
    csp.send(euis[0], "north", b"2")
    with pytest.raises(Throttled):
        csp.send(euis[0], "north", b"3")
    csp.send(euis[1], "south", b"x")  # another region has its own cap
    clock.advance(dt.timedelta(seconds=0.5))
    assert csp.send(euis[0], "north", b"3") == b"ok:3"


def test_queues_drain_in_order_within_caps() -> None:
    csp, clock, euis, hubs = _csp(regions={"north": RegionLimits(1.0, 1)})
    for i in range(3):
        csp.enqueue(euis[0], "north", bytes([i]))
    csp.enqueue(euis[1], "south", b"s")
    first = csp.pump()
    assert [(d.region, d.frame) for d in first] == [("north", b"\x00"), ("south", b"s")]
    assert csp.queued("north") == 2
    clock.advance(dt.timedelta(seconds=1))
    assert [d.frame for d in csp.pump()] == [b"\x01"]
    assert hubs[0].frames == [b"\x00", b"\x01"]


def test_limit_on_hubs_online_at_once() -> None:
    csp, clock, euis, _hubs = _csp(max_online=2, session=dt.timedelta(seconds=30))
    csp.send(euis[0], "r", b"a")
    csp.send(euis[1], "r", b"b")
    with pytest.raises(TooManyOnline):
        csp.send(euis[2], "r", b"c")
    csp.send(euis[0], "r", b"again")  # already online
    clock.advance(dt.timedelta(seconds=31))
    assert csp.online() == 0
    assert csp.send(euis[2], "r", b"c") == b"ok:c"


def test_csp_anomaly_counter_holds_a_flooded_hub() -> None:
    csp, clock, euis, _hubs = _csp(anomaly_limit=3, anomaly_window=dt.timedelta(minutes=1))
    for i in range(3):
        csp.send(euis[0], "r", bytes([i]))
    with pytest.raises(CspAnomaly):
        csp.send(euis[0], "r", b"x")
    with pytest.raises(CspAnomaly):
        csp.send(euis[0], "r", b"x")
    assert csp.anomalies == 2
    csp.send(euis[1], "r", b"other hubs are unaffected")
    clock.advance(dt.timedelta(minutes=1, seconds=1))
    assert csp.send(euis[0], "r", b"x") == b"ok:x"


def test_unknown_hub_is_dropped_from_the_queue() -> None:
    csp, _, _, _ = _csp()
    stranger = Eui64(b"\x01" * 8)
    csp.enqueue(stranger, "r", b"z")
    [delivery] = csp.pump()
    assert delivery.response is None and csp.queued() == 0
    with pytest.raises(UnknownHub):
        csp.send(stranger, "r", b"z")


def test_durable_dcc_carries_its_wan_queue_through_the_csp() -> None:
    from tests.dcc.dccboxed_helpers import boxed

    setup = boxed()
    hub = Hub()
    setup.profile.dcc.wan.connect(Eui64.parse("00DB1234567890A1"), hub)
    csp = CommsServiceProvider(
        setup.profile.dcc.wan, setup.clock, default_limits=RegionLimits(1.0, 1)
    )
    setup.profile.gateway.wan_send = csp.send
    from smarthydra.dcc.gateway import Endpoint

    for _ in range(2):
        setup.profile.gateway.handle(Endpoint.SEND, setup.request())
    # Both were queued for the WAN as they were accepted; one is carried (cap 1/s).
    assert setup.profile.gateway.work() == 1
    assert len(setup.profile.store.queued_frames()) == 1
    setup.clock.advance(dt.timedelta(seconds=1))
    assert setup.profile.gateway.work() == 1
    assert len(hub.frames) == 2
