"""Gas use cases from a DUIS request: the DCC's transform (to a GSME or GPF target), the
supplier's signature for critical ones, the ACB MAC, then WAN -> hub -> gas proxy -> HAN ->
gas meter (or the GPF's copy) -> response with the RTDS response's structure.

The in-process DCC service delivers to ESMEs only so far, so these tests call the DCC's
transform and ACB themselves, in the order the DCC does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from smarthydra.dcc.transform import transform
from smarthydra.gbcs.builder import sign_precommand
from smarthydra.gbcs.envelope import GbcsMessage, decode_general_signing, decode_message
from smarthydra.gbcs.rtds import RtdsKeystore, read_hex_file
from smarthydra.premises.gpf import push_mirror
from smarthydra.premises.gsme import ValveState
from smarthydra.sim.home import GasInstallation, add_gas
from smarthydra.sim.world import World, build_world
from tests.conftest import conformance_path
from tests.premises.shapes import payload_shape, rtds_message, shapes_match

derive = pytest.importorskip("tests.dcc.test_transform_rtds").derive_request


@pytest.fixture(scope="module")
def rtds() -> Path:
    return conformance_path("gbcs", "rtds-4.5.0")


@pytest.fixture(scope="module")
def keystore() -> RtdsKeystore:
    return RtdsKeystore.load(conformance_path("gbcs", "rtds-keystore"))


@pytest.fixture(scope="module")
def setup() -> Iterator[tuple[World, GasInstallation]]:
    world = build_world(homes=1, seed=61)
    yield world, add_gas(world, world.home(0))


def _via_dcc(setup: tuple[World, GasInstallation], rtds: Path, keystore: RtdsKeystore, srv: str,
             use_case: str, folder: str, stem: str) -> GbcsMessage:
    world, gas = setup
    critical = (rtds / folder / f"{stem}_PRECOMMAND_GBCS.HEX").exists()
    name = f"{stem}_PRECOMMAND_GBCS.HEX" if critical else f"{stem}_COMMAND_GBCS.HEX"
    raw = read_hex_file(rtds / folder / name)
    gs = decode_general_signing(raw) if critical else decode_message(raw).general_signing
    try:
        derived = derive(srv, use_case, gs, keystore, critical, name)
    except Exception as exc:
        pytest.skip(f"DUIS request derivation (tests.dcc.test_transform_rtds) failed: {exc!r}")
    assert derived is not None
    to_gpf = derived.target.device_type.name == "GPF"
    target = gas.gpf.eui if to_gpf else gas.gsme.eui
    request = dataclasses.replace(derived.request,
                                  request_id=world.supplier.next_request_id(target))
    transformed = transform(request, derived.target, issued_at=world.clock.now())
    assert transformed.use_case == use_case and transformed.critical == critical
    command = transformed.general_signing
    if critical:
        command = sign_precommand(command, keystore=world.supplier.keystore, label="ds")
    record = world.dcc.inventory.device(target)
    assert record is not None
    answer = world.wan.deliver(world.home(0).hub.eui,
                               world.dcc.acb.mac_command(command, record.key_agreement_key))
    assert answer is not None, world.home(0).hub.log[-1]
    message = decode_message(answer)
    theirs = rtds_message(rtds / folder, f"{stem}_RESPONSE_GBCS.HEX")
    assert shapes_match(payload_shape(message), payload_shape(theirs)), (
        payload_shape(message), payload_shape(theirs))
    assert message.originator == target.value
    return message


def test_valve_and_status(setup: tuple[World, GasInstallation], rtds: Path,
                          keystore: RtdsKeystore) -> None:
    _world, gas = setup
    _via_dcc(setup, rtds, keystore, "7.2", "GCS32", "7.2_GCS32", "GCS32_7.2_SUCCESS")
    assert gas.gsme.gas.valve is ValveState.OFF
    _via_dcc(setup, rtds, keystore, "7.3", "GCS39", "7.3_GCS39", "GCS39_7.3_SUCCESS")
    assert gas.gsme.gas.valve is ValveState.ARMED
    _via_dcc(setup, rtds, keystore, "7.4", "GCS33", "7.4_GCS33", "GCS33_7.4_SUCCESS")


def test_balance_and_payment_mode(setup: tuple[World, GasInstallation], rtds: Path,
                                  keystore: RtdsKeystore) -> None:
    _world, gas = setup
    before = gas.gsme.gas.meter_balance
    _via_dcc(setup, rtds, keystore, "1.5", "GCS40a", "1.5_GCS40a", "GCS40a_1.5_SUCCESS")
    assert gas.gsme.gas.meter_balance != before
    gas.gsme.gas.payment_mode_prepayment = True
    _via_dcc(setup, rtds, keystore, "1.6", "GCS02", "1.6_GCS02", "GCS02_1.6_IMMEDIATE_SUCCESS")
    assert gas.gsme.gas.payment_mode_prepayment is False


def test_reads_from_the_gpf_copy_and_the_gas_meter(setup: tuple[World, GasInstallation],
                                                   rtds: Path, keystore: RtdsKeystore) -> None:
    world, gas = setup
    world.clock.advance(dt.timedelta(days=1))  # a fresh read budget
    for _ in range(48):
        world.clock.advance(dt.timedelta(minutes=30))
        gas.gsme.consume(25)
        gas.gsme.end_of_half_hour()
        push_mirror(world.home(0).hub, gas.gsme)
    answered = gas.proxy.answered_from_copy
    _via_dcc(setup, rtds, keystore, "4.1.1", "GCS13a", "4.1.1_GCS13a",
             "GCS13a_4.1.1_SUCCESS_RELIABLE_GPF")
    assert gas.proxy.answered_from_copy == answered + 1 and gas.gpf.last_reliable
    _via_dcc(setup, rtds, keystore, "4.8.1", "GCS17", "4.8.1_GCS17", "GCS17_4.8.1_SUCCESS")
    _via_dcc(setup, rtds, keystore, "4.10", "GCS18", "4.10_GCS18", "GCS18_4.10_SUCCESS")


def test_clock_synchronisation(setup: tuple[World, GasInstallation], rtds: Path,
                               keystore: RtdsKeystore) -> None:
    message = _via_dcc(setup, rtds, keystore, "6.11", "GCS28", "6.11_GCS28", "GCS28_6.11_SUCCESS")
    # the RTDS validity window is in 2014-2015: outside it the meter refuses to change its clock
    assert message.payload.endswith(bytes.fromhex("020101"))


def test_hub_device_log_from_duis_8_11(setup: tuple[World, GasInstallation], rtds: Path,
                                       keystore: RtdsKeystore) -> None:
    """SRV 8.11: the DCC sends CCS01 / CCS02 in its own name to the comms hub."""
    from smarthydra.dcc.transform import DccOriginator
    from smarthydra.eui import Eui64
    from smarthydra.sim.home import UseCaseDriver

    world, _gas = setup
    hub = world.home(0).hub
    newcomer = Eui64.parse("00DB1234567890F5")
    for use_case, stem, parameters in (
        ("CCS01", "CCS01_8.11_SUCCESS", {
            "DeviceID": "00-DB-12-34-56-78-90-F5", "RequestType": "Add",
            "AddDeviceToCHFWhitelist": {"JoinTimePeriod": "90",
                                        "InstallCode": "83FED3407A939723A5C639B26916D505"}}),
        ("CCS02", "CCS02_8.11_SUCCESS", {"DeviceID": "00-DB-12-34-56-78-90-F5",
                                         "RequestType": "Remove"}),
    ):
        folder = "8.11_CCS01" if use_case == "CCS01" else "8.11_CCS02"
        raw = read_hex_file(rtds / folder / f"{stem}_COMMAND_GBCS.HEX")
        gs = decode_message(raw).general_signing
        try:
            derived = derive("8.11", use_case, gs, keystore, False, f"{stem}_COMMAND_GBCS.HEX")
        except Exception as exc:
            pytest.skip(f"DUIS request derivation failed: {exc!r}")
        assert derived is not None
        request = dataclasses.replace(derived.request, parameters=parameters,
                                      request_id=world.supplier.next_request_id(hub.eui))
        counter = UseCaseDriver(world).next_acb_counter()
        transformed = transform(request, derived.target,
                                dcc=DccOriginator(world.dcc.acb.eui.value, counter),
                                issued_at=world.clock.now())
        alerts = len(hub.alerts)
        answer = world.wan.deliver(hub.eui, world.dcc.acb.mac_command(
            transformed.general_signing, hub.key_agreement_key))
        assert answer is not None, hub.log[-1]
        theirs = rtds_message(rtds / folder, f"{stem}_RESPONSE_GBCS.HEX")
        assert shapes_match(payload_shape(decode_message(answer)), payload_shape(theirs))
        assert hub.in_device_log(newcomer) is (use_case == "CCS01")
        assert len(hub.alerts) == alerts + 1  # CS14 on every change
