"""Deploying a new applet to many hubs: tokens, one-way scripts via the DCC, receipts, rollback."""

from __future__ import annotations

import dataclasses

import pytest

from smarthydra.card.apdu import CommandAPDU, ResponseAPDU
from smarthydra.card.card import Card
from smarthydra.parties.hydra_deploy import (
    FLEX_APPLET_AID,
    DeploymentCampaign,
    Fleet,
    RelayRefused,
    flex_package,
)


def _flex(card: Card, ins: int, data: bytes = b"") -> ResponseAPDU:
    card.transmit(CommandAPDU(0x00, 0xA4, 0x04, 0x00, FLEX_APPLET_AID, 256).encode())
    return ResponseAPDU.parse(card.transmit(CommandAPDU(0x80, ins, 0, 0, data, 256).encode()))


def _campaign(count: int) -> tuple[Fleet, DeploymentCampaign]:
    fleet = Fleet.build(count)
    return fleet, DeploymentCampaign(fleet.issuer_token_key, flex_package(), fleet.records)


def test_deploy_reconcile_and_use() -> None:
    fleet, campaign = _campaign(12)
    outcomes = fleet.relay().submit("flex-provider", campaign.deploy_scripts(list(fleet.cards)))
    result = campaign.reconcile(outcomes)
    assert sorted(result.deployed) == sorted(fleet.cards) and not result.bad_receipts
    assert all(r.state == "installed" for r in fleet.records.values())
    card = fleet.cards["hub-00003"]
    assert _flex(card, 0x10, bytes(range(8))).sw == 0x9000
    assert _flex(card, 0x12).data == bytes(range(8)) + (1).to_bytes(4, "big")


def test_failures_are_found_and_rolled_back() -> None:
    fleet, campaign = _campaign(6)
    scripts = campaign.deploy_scripts(list(fleet.cards))
    # hub 1: a LOAD block damaged on the way (its C-MAC fails: nothing is loaded)
    scripts[0].apdus[4] = scripts[0].apdus[4][:-3] + b"\x00\x00\x00"
    # hub 2: the INSTALL damaged: loaded but not installed
    scripts[1].apdus[-1] = scripts[1].apdus[-1][:-3] + b"\x00\x00\x00"
    relay = fleet.relay()
    result = campaign.reconcile(relay.submit("flex-provider", scripts))
    assert result.failed == ["hub-00001"] and result.partial == ["hub-00002"]
    assert len(result.deployed) == 4
    # the rollback path: remove the partial load, then deploy again where it failed
    rolled = campaign.reconcile(relay.submit("flex-provider",
                                             campaign.rollback_scripts(result.partial)))
    assert rolled.removed == ["hub-00002"]
    again = campaign.reconcile(relay.submit(
        "flex-provider", campaign.deploy_scripts(["hub-00001", "hub-00002"])))
    assert sorted(again.deployed) == ["hub-00001", "hub-00002"]
    # and the whole campaign can be withdrawn
    withdrawn = campaign.reconcile(relay.submit("flex-provider",
                                                campaign.rollback_scripts(list(fleet.cards))))
    assert len(withdrawn.removed) == 6
    select = CommandAPDU(0x00, 0xA4, 0x04, 0x00, FLEX_APPLET_AID, 256).encode()
    assert ResponseAPDU.parse(fleet.cards["hub-00004"].transmit(select)).sw == 0x6A82  # gone


def test_forged_or_replayed_receipts_detected() -> None:
    fleet, campaign = _campaign(2)
    outcomes = fleet.relay().submit("flex-provider", campaign.deploy_scripts(list(fleet.cards)))
    forged = dataclasses.replace(outcomes[0], data=[*outcomes[0].data[:-1],
                                                    bytes(len(outcomes[0].data[-1]))])
    result = campaign.reconcile([forged, outcomes[1]])
    assert result.bad_receipts == ["hub-00001"] and result.deployed == ["hub-00002"]
    assert campaign.reconcile([outcomes[1]]).bad_receipts == ["hub-00002"]  # replayed


def test_replayed_script_refused_by_the_card() -> None:
    fleet, campaign = _campaign(1)
    scripts = campaign.deploy_scripts(list(fleet.cards))
    relay = fleet.relay()
    relay.submit("flex-provider", scripts)
    replay = relay.submit("flex-provider", scripts)[0]
    assert replay.status_words[2] != 0x9000  # EXTERNAL AUTHENTICATE: the counter moved on


def test_relay_refuses_strangers() -> None:
    fleet, campaign = _campaign(1)
    with pytest.raises(RelayRefused):
        fleet.relay().submit("mallory", campaign.deploy_scripts(list(fleet.cards)))
    scripts = campaign.deploy_scripts(list(fleet.cards))
    scripts[0].hub = "hub-99999"
    with pytest.raises(RelayRefused):
        fleet.relay().submit("flex-provider", scripts)


@pytest.mark.slow
def test_thousand_hubs() -> None:
    fleet, campaign = _campaign(1000)
    result = campaign.reconcile(fleet.relay().submit(
        "flex-provider", campaign.deploy_scripts(list(fleet.cards))))
    assert len(result.deployed) == 1000


def test_scripts_travel_over_the_dccs_wan() -> None:
    from smarthydra.parties.hydra_deploy import CardScriptPort, ScriptDelivery, script_frame
    from smarthydra.wan.network import WanNetwork

    fleet, campaign = _campaign(8)
    frames: list[bytes] = []
    wan = WanNetwork(tap=lambda hub, frame: frames.append(frame))
    relay = fleet.wan_relay(wan)
    with pytest.raises(RelayRefused):
        relay.submit("someone-else", [ScriptDelivery("hub-00001", "deploy", [b"\x00"])])
    result = campaign.reconcile(relay.submit("flex-provider",
                                             campaign.deploy_scripts(list(fleet.cards))))
    assert sorted(result.deployed) == sorted(fleet.cards) and not result.bad_receipts
    assert wan.statistics.delivered == 8 and wan.statistics.answered == 8
    # the CSP carries C-DECRYPTION-protected LOAD blocks: the applet source is not on the wire
    assert all(b"FlexibilityApplet" not in frame for frame in frames)
    assert _flex(fleet.cards["hub-00005"], 0x10, bytes(8)).sw == 0x9000
    # a frame that is not a card script is dropped by the hub's port
    port = CardScriptPort(fleet.cards["hub-00001"])
    for junk in (b"", b"\xff", script_frame([])[:-1], b"\x82\x61x\x01"):
        assert port.receive_from_wan(junk) is None
    assert port.played == 0
