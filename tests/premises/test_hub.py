"""The Hydra hub: install codes and link keys, the CHF applet, the virtual terminal's routing,
and HAN messages from devices that are not in the device log (dropped, logged, no change)."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smarthydra.card.apdu import SW
from smarthydra.clock import FixedClock
from smarthydra.eui import Eui64
from smarthydra.gbcs.esme_payloads import read_import_registers_command
from smarthydra.premises.han import (
    HanFrame,
    HanLink,
    HanSecurityError,
    aes_mmo_hash,
    crc16_x25,
    link_key_from_install_code,
    protect,
    unprotect,
    with_crc,
)
from smarthydra.premises.hub import AppletRefused, CommsHub, DeviceKind
from smarthydra.premises.hub_applets import CHF_AID, GPF_AID, ChfIns
from smarthydra.sim.world import World, build_world

CLOCK = FixedClock(dt.datetime(2026, 3, 1, tzinfo=dt.UTC))


class Echo:
    """A HAN device that answers every message with its reverse."""

    def __init__(self, eui: Eui64) -> None:
        self.eui = eui
        self.received: list[bytes] = []

    def receive(self, wire: bytes) -> bytes | None:
        self.received.append(wire)
        return wire[::-1]


# --- install codes and link keys (ZigBee test vectors) ---------------------------------------


def test_install_code_crc_and_link_key_match_the_zigbee_vector() -> None:
    code = bytes.fromhex("83FED3407A939723A5C639B26916D505")
    assert with_crc(code).hex().upper().endswith("C3B5")
    assert crc16_x25(code) == 0xB5C3
    assert link_key_from_install_code(code).hex().upper() == "66B6900981E1EE3CA4206B6B861C02BB"


def test_aes_mmo_hash_vector() -> None:
    assert aes_mmo_hash(bytes.fromhex("C0")).hex().upper() == "AE3A102A28D43EE0D4A09E22788B206C"


def test_bad_install_code_length_is_refused() -> None:
    with pytest.raises(HanSecurityError):
        link_key_from_install_code(b"\x01\x02\x03")


def test_han_frame_round_trip_and_tamper() -> None:
    key = bytes(range(16))
    frame = protect(key, b"A" * 8, 7, b"hello")
    assert unprotect(key, HanFrame.decode(frame)) == b"hello"
    tampered = frame[:-1] + bytes([frame[-1] ^ 1])
    with pytest.raises(HanSecurityError):
        unprotect(key, HanFrame.decode(tampered))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_han_frame_parser_never_crashes(raw: bytes) -> None:
    link = HanLink(b"B" * 8, bytes(16))
    with contextlib.suppress(HanSecurityError):
        link.open(raw, b"A" * 8)


# --- the hub ---------------------------------------------------------------------------------------


def _hub() -> CommsHub:
    return CommsHub(Eui64.parse("00DB123456780042"), CLOCK)


def test_join_whitelists_and_routes_through_the_chf_applet() -> None:
    hub = _hub()
    device = Echo(Eui64.parse("00DB1234567890B0"))
    hub.join(device, bytes.fromhex("83FED3407A939723A5C639B26916D505"), DeviceKind.IHD)
    assert [(r.eui, r.kind) for r in hub.device_log()] == [(device.eui, DeviceKind.IHD)]
    apdus = hub.vt.apdus.get(CHF_AID, 0)
    assert hub.han_exchange(device.eui, b"ping") == b"gnip"
    assert device.received == [b"ping"]
    assert hub.vt.apdus[CHF_AID] == apdus + 2  # sealed and opened by the applet


def test_the_applet_keeps_link_keys_and_refuses_unknown_devices() -> None:
    hub = _hub()
    with pytest.raises(AppletRefused) as refused:
        hub.vt.call(CHF_AID, ChfIns.PROTECT, bytes(8) + b"x")
    assert refused.value.sw == SW.REFERENCED_DATA_NOT_FOUND
    with pytest.raises(AppletRefused):
        hub.vt.call(CHF_AID, 0x7E)  # no such instruction
    assert hub.vt.call(GPF_AID, ChfIns.PUBLIC_KA) != hub.vt.call(CHF_AID, ChfIns.PUBLIC_KA)


def test_ccs01_for_a_device_already_in_the_log_changes_nothing() -> None:
    hub = _hub()
    eui = Eui64.parse("00DB1234567890B1")
    assert hub.add_to_device_log(eui, DeviceKind.ESME, bytes(16))
    assert not hub.add_to_device_log(eui, DeviceKind.GSME, bytes(range(16)))
    assert [(r.eui, r.kind) for r in hub.device_log()] == [(eui, DeviceKind.ESME)]


def test_device_log_survives_a_power_cycle_of_the_secure_element() -> None:
    hub = _hub()
    eui = Eui64.parse("00DB1234567890B2")
    hub.add_to_device_log(eui, DeviceKind.PPMID, bytes(16))
    hub.card.power_off()
    hub.card.power_on()
    hub.vt._selected = None
    assert hub.in_device_log(eui)


def test_removed_devices_go_to_the_historic_log() -> None:
    hub = _hub()
    eui = Eui64.parse("00DB1234567890B3")
    hub.add_to_device_log(eui, DeviceKind.CAD, bytes(16))
    assert hub.remove_from_device_log(eui)
    assert not hub.in_device_log(eui)
    assert [r.eui for r in hub.historic_device_log()] == [eui]
    assert not hub.remove_from_device_log(eui)


# --- injected HAN messages (acceptance) -----------------------------------------------------------


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(homes=1, seed=3)


def _read_command(world: World) -> bytes:
    from smarthydra.gbcs.builder import build_command

    esme = world.home(0).esme
    counter = 1 << 50
    payload = read_import_registers_command(counter, world.supplier.eui.value, esme.eui.value)
    return build_command(originator=world.supplier.eui.value, recipient=esme.eui.value,
                         counter=counter, message_code=0x0027, payload=payload,
                         acb_z=bytes(32)).wire()


def test_a_han_message_from_a_device_not_in_the_log_changes_nothing(world: World) -> None:
    hub = world.home(0).hub
    esme = world.home(0).esme
    before = (esme.snapshot(), [(r.eui, r.kind) for r in hub.device_log()], len(hub.alerts))
    intruder = HanLink(Eui64.parse("00DBFFFFFFFF0001").value, link_key_from_install_code(bytes(16)))
    frame = intruder.seal(_read_command(world))
    assert hub.receive_from_han(frame) is None
    assert "source not in device log" in hub.log[-1].event
    after = (esme.snapshot(), [(r.eui, r.kind) for r in hub.device_log()], len(hub.alerts))
    assert after == before


def test_a_han_message_failing_link_security_is_dropped(world: World) -> None:
    hub = world.home(0).hub
    esme = world.home(0).esme
    before = esme.snapshot()
    # claims to be the meter, but keyed with a guessed link key
    forged = HanLink(esme.eui.value, link_key_from_install_code(b"\x00" * 16)).seal(b"\x01" * 40)
    assert hub.receive_from_han(forged) is None
    assert "MIC does not verify" in hub.log[-1].event
    # a genuine frame replayed
    attachment = hub.han[esme.eui]
    genuine = attachment.link.seal(b"\x02" * 40)
    hub.receive_from_han(genuine)
    assert hub.receive_from_han(genuine) is None
    assert "replayed" in hub.log[-1].event
    assert esme.snapshot() == before


def test_a_wan_message_for_a_device_not_in_the_log_is_dropped(world: World) -> None:
    hub = world.home(0).hub
    from smarthydra.gbcs.builder import build_command

    stranger = Eui64.parse("00DBFFFFFFFF0002")
    wire = build_command(originator=world.supplier.eui.value, recipient=stranger.value, counter=5,
                         message_code=0x0027, payload=b"\x00", acb_z=bytes(32)).wire()
    assert world.wan.deliver(hub.eui, wire) is None
    assert hub.log[-1].event == "dropped: recipient not in device log"
