"""Parties' secure channels over the WAN to the hub's virtual terminal (party logical channel)."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smarthydra.applets import cose
from smarthydra.applets.hub import (
    BILLING,
    POWER_QUALITY,
    TELEHEALTH,
    ChannelRefused,
    HydraCommandError,
    PartyChannel,
)
from smarthydra.applets.party_wan import (
    PARTY_FRAME_TAG,
    PARTY_LOGICAL_CHANNEL,
    PartyApduPort,
    PartyFrameError,
    parse_party_answer,
    parse_party_frame,
    party_frame,
)
from smarthydra.applets.telehealth import INS_ENROL
from smarthydra.card.apdu import SW
from smarthydra.eui import Eui64
from smarthydra.parties.hydra_wan import PartyLinkError, WanPartyLink
from smarthydra.premises.hub import DeviceKind
from smarthydra.premises.hub_applets import CHF_AID, ChfIns
from smarthydra.sim.hydra import SCALE, WanTap
from tests.applets.helpers import day, home_with_days


def _sw(answer: bytes | None) -> int:
    assert answer is not None
    return int.from_bytes(parse_party_answer(answer)[-2:], "big")


def test_party_commands_travel_over_the_wan_and_the_tap_sees_no_plaintext() -> None:
    home = home_with_days(3)
    tap = WanTap()
    tap.attach(home.parties.wan)
    home.host.parties["distributor"].drop()  # a fresh session: SELECT, INITIALIZE UPDATE, ...
    before = home.hub.vt.relayed
    report = home.host.power_quality(day(2))  # the distributor's command, over the WAN
    opened = home.parties.distributor.open(report)
    assert opened["day"] == day(2).toordinal()
    assert home.hub.vt.relayed > before  # through the hub's virtual terminal
    assert tap.frames and all(f.startswith(PARTY_FRAME_TAG) for f in tap.frames)
    assert tap.leaks([report]) == 0  # the sealed report never crosses in clear
    # the tap does see what is not protected (the SELECT's AID), so the check can fail
    assert tap.leaks([POWER_QUALITY.aid], window=8) > 0
    assert home.links["distributor"].frames > 0


def test_hub_functions_keep_working_beside_party_sessions() -> None:
    home = home_with_days(1)
    home.host.enrol_health_device(bytes.fromhex("00124B0000AA0009"))  # opens a session
    # the CHF on the basic channel and the host on its channel are not disturbed
    assert any(r.kind is DeviceKind.TYPE_2 for r in home.hub.device_log())
    assert home.host.consents() == []
    home.host.enrol_health_device(bytes.fromhex("00124B0000AA000A"))


def test_port_refuses_other_channels_and_manage_channel() -> None:
    home = home_with_days(1)
    hub = home.hub
    # a party cannot reach the CHF on the basic channel
    basic = bytes((0x80, ChfIns.LIST, 0, 0, 0))
    assert _sw(hub.receive_from_wan(party_frame("supplier", basic))) == (
        SW.LOGICAL_CHANNEL_NOT_SUPPORTED)
    select_chf = bytes((0x00, 0xA4, 0x04, 0x00, len(CHF_AID))) + CHF_AID
    assert _sw(hub.receive_from_wan(party_frame("supplier", select_chf))) == (
        SW.LOGICAL_CHANNEL_NOT_SUPPORTED)
    close = bytes((PARTY_LOGICAL_CHANNEL, 0x70, 0x80, PARTY_LOGICAL_CHANNEL))
    assert _sw(hub.receive_from_wan(party_frame("supplier", close))) == SW.INS_NOT_SUPPORTED
    # plain (unprotected) commands reach the applet on the party channel and are refused
    channel = PartyChannel(home.links["telehealth"].transmit, TELEHEALTH,
                           home.setup.channel_keys("telehealth"), channel=PARTY_LOGICAL_CHANNEL)
    channel.client.select(TELEHEALTH.aid)
    plain = channel.client.send(bytes((0x80 | PARTY_LOGICAL_CHANNEL, INS_ENROL, 0, 0, 8))
                                + SCALE)
    assert plain.sw == SW.SECURITY_STATUS_NOT_SATISFIED
    # a frame that is not a party frame's shape is dropped (no answer)
    bad = PARTY_FRAME_TAG + cbor2.dumps(["hydra-party-apdu/1", "supplier", b"\x00"])
    assert hub.receive_from_wan(bad) is None
    assert isinstance(hub.party_port, PartyApduPort) and hub.party_port.refused == 4


def test_wrong_keys_over_the_wan_open_nothing() -> None:
    home = home_with_days(1)
    intruder = PartyChannel(WanPartyLink(home.parties.wan, home.hub_eui, "supplier").transmit,
                            TELEHEALTH, home.setup.channel_keys("supplier"),
                            channel=PARTY_LOGICAL_CHANNEL)
    with pytest.raises(ChannelRefused):
        intruder.call(INS_ENROL, SCALE)
    supplier = PartyChannel(home.links["supplier"].transmit, BILLING,
                            home.setup.channel_keys("supplier"), channel=PARTY_LOGICAL_CHANNEL)
    supplier.open()
    assert supplier.is_open


def test_unknown_or_silent_hub_is_a_specific_error() -> None:
    home = home_with_days(1)
    link = WanPartyLink(home.parties.wan, Eui64(bytes(8)), "distributor")
    channel = PartyChannel(link.transmit, POWER_QUALITY, home.setup.channel_keys("distributor"),
                           channel=PARTY_LOGICAL_CHANNEL)
    with pytest.raises(PartyLinkError):
        channel.call(0x40, day(0).toordinal().to_bytes(4, "big"))
    assert not channel.is_open
    home.parties.wan.disconnect(home.hub_eui)
    with pytest.raises(HydraCommandError):
        home.host.power_quality(day(0))


def test_sealed_payloads_still_only_open_for_their_party() -> None:
    home = home_with_days(2)
    report = home.host.power_quality(day(1))
    with pytest.raises(cose.EnvelopeError):
        cose.open_sealed(report, home.parties.csp_keys.agreement)


def test_frame_round_trip_and_rejections() -> None:
    apdu = bytes((0x82, 0x40, 0, 0, 4, 1, 2, 3, 4))
    assert parse_party_frame(party_frame("agent", apdu)) == ("agent", apdu)
    for bad in (b"", b"\x00" * 8, PARTY_FRAME_TAG + b"\xff\xff",
                PARTY_FRAME_TAG + cbor2.dumps(["hydra-party-apdu/1", "agent"]),
                PARTY_FRAME_TAG + cbor2.dumps(["other/1", "agent", apdu]),
                party_frame("agent", b"\x00\x01")):
        with pytest.raises(PartyFrameError):
            parse_party_frame(bad)
    with pytest.raises(PartyFrameError):
        parse_party_answer(PARTY_FRAME_TAG + cbor2.dumps(["hydra-party-apdu/1", b"\x90"]))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_fuzz_party_frames(body: bytes) -> None:
    try:
        provider, apdu = parse_party_frame(PARTY_FRAME_TAG + body)
    except PartyFrameError:
        return
    assert isinstance(provider, str) and len(apdu) >= 4
