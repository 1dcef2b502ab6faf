"""The meter's own defences: tampered, replayed, unMAC'd or misdirected commands change nothing."""

from __future__ import annotations

import pytest

from smarthydra.duis.request import CommandVariant, ServiceRequest, SignedPreCommand
from smarthydra.gbcs.builder import build_command, mac_message_z, sign_precommand
from smarthydra.gbcs.envelope import decode_message
from smarthydra.gbcs.esme_payloads import (
    MESSAGE_CODE_ECS17B,
    MESSAGE_CODE_ECS43,
    open_load_switch_command,
    read_import_registers_command,
)
from smarthydra.premises.esme import DropReason, SupplyState
from smarthydra.sim.world import World, build_world


@pytest.fixture
def world() -> World:
    return build_world(2, seed=7)


def _capture(world: World) -> list[bytes]:
    frames: list[bytes] = []
    world.wan.tap = lambda hub, frame: frames.append(frame)
    return frames


def _signed_disable_command(world: World) -> bytes:
    """A genuine 7.2 command for home 0, as the ACB would send it, not yet delivered."""
    home = world.home(0)
    rid = world.supplier.next_request_id(home.esme.eui)
    pre = world.dcc.submit(
        ServiceRequest(rid, world.supplier.eui, "IS", "7.2", CommandVariant.CRITICAL_TRANSFORM)
    )
    assert pre.ok and pre.gbcs is not None
    signed = sign_precommand(pre.gbcs, keystore=world.supplier.keystore, label="ds")
    device = world.dcc.inventory.device(home.esme.eui)
    assert device is not None
    return world.dcc.acb.mac_command(signed, device.key_agreement_key)


def _read_command(world: World) -> bytes:
    home = world.home(0)
    rid = world.supplier.next_request_id(home.esme.eui)
    payload = read_import_registers_command(
        rid.counter, world.supplier.eui.value, home.esme.eui.value
    )
    device = world.dcc.inventory.device(home.esme.eui)
    assert device is not None
    z = world.dcc.acb._keystore.derive_shared_secret("acb-ka", device.key_agreement_key)
    return build_command(
        originator=world.supplier.eui.value,
        recipient=home.esme.eui.value,
        counter=rid.counter,
        message_code=MESSAGE_CODE_ECS17B,
        payload=payload,
        acb_z=z,
    ).wire()


@pytest.mark.parametrize("kind", ["disable", "read"])
def test_every_single_byte_tamper_is_dropped_and_changes_nothing(world: World, kind: str) -> None:
    esme = world.home(0).esme
    wire = _signed_disable_command(world) if kind == "disable" else _read_command(world)
    before = esme.snapshot()
    for position in range(len(wire)):
        for flip in (0x01, 0x80):
            tampered = bytearray(wire)
            tampered[position] ^= flip
            assert esme.receive(bytes(tampered)) is None, f"byte {position} ^ {flip:#x} accepted"
            assert esme.snapshot() == before
    # truncations and extensions too
    for cut in range(len(wire)):
        assert esme.receive(wire[:cut]) is None
    assert esme.receive(wire + b"\x00") is None
    assert esme.snapshot() == before
    # and the genuine command still works afterwards
    assert esme.receive(wire) is not None
    if kind == "disable":
        assert esme.supply is SupplyState.DISABLED


def test_replay_is_dropped_and_changes_nothing(world: World) -> None:
    esme = world.home(0).esme
    wire = _signed_disable_command(world)
    assert esme.receive(wire) is not None
    assert esme.supply is SupplyState.DISABLED
    esme.supply = SupplyState.ENABLED  # the consumer re-arms and closes the switch
    before = esme.snapshot()
    assert esme.receive(wire) is None
    assert esme.snapshot() == before
    assert esme.security_log[-1].reason is DropReason.REPLAY


def test_command_without_the_acb_mac_is_dropped(world: World) -> None:
    """A supplier bypassing the DCC: a MAC made with its own key, or the bare signed command."""
    home = world.home(0)
    esme = home.esme
    wire = _signed_disable_command(world)
    signed = decode_message(wire).general_signing
    before = esme.snapshot()
    z = world.supplier.keystore.derive_shared_secret("ka", esme.key_agreement_key)
    assert esme.receive(mac_message_z(signed, z).wire()) is None
    assert esme.receive(signed.wire()) is None  # no general-ciphering at all
    assert esme.snapshot() == before
    assert [e.reason for e in esme.security_log[-2:]] == [
        DropReason.MAC_INVALID,
        DropReason.MALFORMED,
    ]


def test_command_for_another_meter_is_useless(world: World) -> None:
    """The ACB MAC for one meter does not open another: retargeting breaks the MAC."""
    other = world.home(1).esme
    wire = bytearray(_signed_disable_command(world))
    wire[wire.index(world.home(0).esme.eui.value)] ^= 0  # same bytes; now swap the recipient
    start = bytes(wire).index(world.home(0).esme.eui.value)
    wire[start : start + 8] = other.eui.value
    before = other.snapshot()
    assert other.receive(bytes(wire)) is None
    assert other.snapshot() == before
    assert other.security_log[-1].reason is DropReason.MAC_INVALID


def test_unsigned_or_wrongly_signed_critical_command_is_dropped(world: World) -> None:
    esme = world.home(0).esme
    device = world.dcc.inventory.device(esme.eui)
    assert device is not None
    counter = 5000
    payload = open_load_switch_command(counter)
    acb_z = world.dcc.acb._keystore.derive_shared_secret("acb-ka", device.key_agreement_key)
    unsigned = build_command(
        originator=world.supplier.eui.value,
        recipient=esme.eui.value,
        counter=counter,
        message_code=MESSAGE_CODE_ECS43,
        payload=payload,
        acb_z=acb_z,
    )
    assert esme.receive(unsigned.wire()) is None
    assert esme.security_log[-1].reason is DropReason.SIGNATURE_MISSING
    # signed by the network operator, not the supplier, but claiming to be from the supplier
    pre = decode_message(unsigned.wire()).general_signing.with_signature(None)
    forged = sign_precommand(pre, keystore=world.network_operator.keystore, label="ds")
    assert esme.receive(mac_message_z(forged, acb_z).wire()) is None
    assert esme.security_log[-1].reason is DropReason.SIGNATURE_INVALID
    assert esme.supply is SupplyState.ENABLED


def test_network_operator_read_is_served_but_disable_is_refused_by_the_meter(world: World) -> None:
    """Even if the DCC were bypassed with the ACB's help, the meter checks the role itself."""
    esme = world.home(0).esme
    result = world.network_operator.read_import_registers(world.dcc, esme.eui)
    assert result.registers is not None
    assert result.registers.active_import_wh == esme.registers.active_import_wh
    device = world.dcc.inventory.device(esme.eui)
    assert device is not None
    counter = 9000
    rid_eui = world.network_operator.eui.value
    from smarthydra.gbcs.builder import build_precommand

    pre = build_precommand(
        originator=rid_eui,
        recipient=esme.eui.value,
        counter=counter,
        message_code=MESSAGE_CODE_ECS43,
        payload=open_load_switch_command(counter),
    )
    signed = sign_precommand(pre, keystore=world.network_operator.keystore, label="ds")
    wire = world.dcc.acb.mac_command(signed, device.key_agreement_key)
    response = esme.receive(wire)
    assert response is not None  # answered, with a refusal
    assert esme.supply is SupplyState.ENABLED
    from smarthydra.gbcs.esme_payloads import action_result

    assert action_result(decode_message(response).payload) == 0x03


def test_signed_precommand_must_match_what_the_dcc_issued(world: World) -> None:
    esme = world.home(0).esme
    rid = world.supplier.next_request_id(esme.eui)
    pre = world.dcc.submit(
        ServiceRequest(rid, world.supplier.eui, "IS", "7.2", CommandVariant.CRITICAL_TRANSFORM)
    )
    assert pre.gbcs is not None
    altered = bytearray(pre.gbcs)
    altered[-1] ^= 0x01  # change the script selector
    signed = sign_precommand(bytes(altered), keystore=world.supplier.keystore, label="ds")
    response = world.dcc.submit_signed(
        SignedPreCommand(
            rid,
            world.supplier.eui,
            "IS",
            "7.2",
            CommandVariant.CRITICAL_SIGNED_TO_DEVICE,
            signed.wire(),
        )
    )
    assert response.code.value == "E11"
    assert "differs" in response.detail
    assert esme.supply is SupplyState.ENABLED
