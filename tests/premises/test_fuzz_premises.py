"""Nothing from the WAN or the HAN makes the hub, the meters or the hub's applets crash."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smarthydra.card.apdu import CommandAPDU, ResponseAPDU
from smarthydra.gbcs.builder import build_command
from smarthydra.premises.hub_applets import CHF_AID, GPF_AID
from smarthydra.sim.home import GasInstallation, add_gas
from smarthydra.sim.world import World, build_world

_SETTINGS = settings(max_examples=150, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def home() -> tuple[World, GasInstallation]:
    world = build_world(homes=1, seed=51)
    return world, add_gas(world, world.home(0))


@_SETTINGS
@given(st.binary(max_size=300))
def test_random_wan_bytes(home: tuple[World, GasInstallation], raw: bytes) -> None:
    world, _gas = home
    before = world.home(0).esme.snapshot()
    assert world.home(0).hub.receive_from_wan(raw) is None  # no ACB MAC, no answer
    assert world.home(0).esme.snapshot() == before


@_SETTINGS
@given(st.binary(max_size=300))
def test_random_han_frames(home: tuple[World, GasInstallation], raw: bytes) -> None:
    world, _gas = home
    before = world.home(0).esme.snapshot()
    assert world.home(0).hub.receive_from_han(raw) is None
    assert world.home(0).esme.snapshot() == before


@_SETTINGS
@given(st.binary(max_size=200), st.sampled_from([0x0081, 0x0074, 0x0077, 0x007F, 0x000E]))
def test_random_gbz_payloads_reach_the_gas_meter_as_commands(
        home: tuple[World, GasInstallation], payload: bytes, code: int) -> None:
    world, gas = home
    # a well-formed but forged envelope: the gas meter drops it at the MAC check
    wire = build_command(originator=world.supplier.eui.value, recipient=gas.gsme.eui.value,
                         counter=1, message_code=code, payload=payload, acb_z=bytes(32)).wire()
    assert gas.gsme.receive(wire) is None


@_SETTINGS
@given(st.integers(0, 255), st.binary(max_size=80), st.sampled_from([CHF_AID, GPF_AID]))
def test_random_apdus_to_the_hub_applets_get_a_status_word(
        home: tuple[World, GasInstallation], ins: int, data: bytes, aid: bytes) -> None:
    world, _gas = home
    hub = world.home(0).hub
    hub.vt.select(aid)
    raw = hub.card.transmit(CommandAPDU(0x80, ins, 0, 0, data, 256).encode())
    assert ResponseAPDU.parse(raw).sw > 0


@_SETTINGS
@given(st.binary(max_size=120))
def test_authentic_cs08_with_any_payload_answers_without_crashing(
        home: tuple[World, GasInstallation], payload: bytes) -> None:
    """A PPMID command that passes the ACB MAC, with any payload: an answer (a failure result
    unless the payload is CS08's DER NULL), never an exception."""
    from smarthydra.gbcs.builder import build_precommand
    from smarthydra.gbcs.der import decode_der
    from smarthydra.gbcs.envelope import decode_message
    from smarthydra.sim.home import add_ppmid

    world, _gas = home
    ppmid = add_ppmid(world, world.home(0))
    counter = max(ppmid.anti_replay_floor.values(), default=0x1000) + 1
    command = build_precommand(originator=world.dcc.acb.eui.value, recipient=ppmid.eui.value,
                               counter=counter, message_code=0x0129, payload=payload)
    answer = ppmid.receive(world.dcc.acb.mac_command(command, ppmid.key_agreement_key))
    assert answer is not None
    result = decode_der(decode_message(answer).payload).children[1].as_int()
    assert result == (0 if payload == b"\x05\x00" else 1)
