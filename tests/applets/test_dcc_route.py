"""The hub's answer to an Other User's consumption-log read: the applet's sealed release.

(The whole path through the real DCC is in tests/sim/test_hydra_dcc.py; it needs the
conformance data. These tests run without it.)"""

from __future__ import annotations

from dataclasses import dataclass, field

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smarthydra.applets import cose
from smarthydra.applets.consent import Consent, DataKind, Granularity
from smarthydra.applets.dcc_route import (
    ROUTED_TAG,
    PriceComparisonRoute,
    RoutedReleaseError,
    parse_routed_answer,
    routed_answer,
)
from smarthydra.applets.hub import HydraCommandError
from smarthydra.eui import Eui64
from smarthydra.gbcs.builder import build_command
from smarthydra.sim.hydra import serve_meter
from smarthydra.wan.network import WanNetwork
from tests.applets.helpers import day, home_with_days

OU = bytes.fromhex("90B3D51F30090000")
METER = bytes.fromhex("00DB123456780001")
ECS66 = 0x0060


def _command(originator: bytes = OU, recipient: bytes = METER, code: int = ECS66) -> bytes:
    return build_command(originator=originator, recipient=recipient, counter=7,
                         message_code=code, payload=b"\x01\x02", acb_z=bytes(32)).encode()


def _route(release: list[bytes]) -> PriceComparisonRoute:
    def give() -> bytes:
        if not release:
            raise HydraCommandError("price-comparison", 0x72, 0x6985, "no consent")
        return release[0]

    return PriceComparisonRoute(METER, {OU: "ou"}, frozenset({ECS66}), give, HydraCommandError)


def test_only_the_other_users_log_read_is_answered_by_the_applet() -> None:
    route = _route([b"sealed"])
    assert parse_routed_answer(route.answer(_command(), None) or b"") == b"sealed"
    # other originators, other devices, other use cases: the device's own answer
    for command in (_command(originator=bytes(8)), _command(recipient=bytes(8)),
                    _command(code=0x0061), b"not gbcs"):
        assert route.answer(command, b"device") == b"device"
    assert route.released == 1


def test_a_refusal_is_answered_without_data() -> None:
    route = _route([])
    answer = route.answer(_command(), b"raw log from the meter")
    assert answer is not None and b"raw log" not in answer
    with pytest.raises(RoutedReleaseError, match="refused"):
        parse_routed_answer(answer)
    assert route.refused == 1


@dataclass
class SilentMeter:
    """A meter on the HAN that gives an Other User no answer (it holds no key of theirs)."""

    eui: Eui64
    heard: list[bytes] = field(default_factory=list)

    def receive(self, wire: bytes) -> bytes | None:
        self.heard.append(wire)
        return None


def test_through_the_hub_with_consent_and_after_revocation() -> None:
    home = home_with_days(20)
    wan = WanNetwork()
    meter = SilentMeter(Eui64(METER))
    ou = home.parties.keys["other-user"].name
    route = serve_meter(home, wan, home.hub_eui, meter, {OU: ou}, frozenset({ECS66}))
    with pytest.raises(RoutedReleaseError):  # no consent yet: the applet refuses
        parse_routed_answer(wan.deliver(home.hub_eui, _command()) or b"")
    home.host.grant_at_ihd(Consent(ou, DataKind.CONSUMPTION, Granularity.DAILY,
                                   day(0).toordinal(), day(60).toordinal()))
    sealed = parse_routed_answer(wan.deliver(home.hub_eui, _command()) or b"")
    assert len(meter.heard) == 2  # the command did go over the HAN to the meter
    opened = home.parties.other_user.open(sealed)
    assert len(opened["data"]) == 20 and opened["last-day"] == day(19).toordinal()
    with pytest.raises(cose.EnvelopeError):
        cose.open_sealed(sealed, home.parties.dcc_keys.agreement)
    home.host.revoke_at_ihd(ou)
    home.live_day(day(20))  # the next cycle
    with pytest.raises(RoutedReleaseError):
        parse_routed_answer(wan.deliver(home.hub_eui, _command()) or b"")
    assert route.released == 1 and route.refused == 2
    # a read by someone else is not answered by the applet
    assert wan.deliver(home.hub_eui, _command(originator=bytes(8))) is None


def test_answer_frames() -> None:
    assert parse_routed_answer(routed_answer(b"x")) == b"x"
    for bad in (b"", ROUTED_TAG + b"\xff", ROUTED_TAG + cbor2.dumps(["x", b"", ""]),
                ROUTED_TAG + cbor2.dumps(["hydra-routed-release/1", 5, ""])):
        with pytest.raises(RoutedReleaseError):
            parse_routed_answer(bad)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_fuzz_routed_answers(body: bytes) -> None:
    try:
        sealed = parse_routed_answer(ROUTED_TAG + body)
    except RoutedReleaseError:
        return
    assert isinstance(sealed, bytes)
