"""ESME and comms-hub use cases end to end: command -> WAN -> hub (virtual terminal, CHF applet,
HAN link security) -> device -> response. Each test checks the device state changed as the
use case says and that the response has the structure of the RTDS response.

Commands are built the way the DCC builds them (general-signing from the party, signed when
critical, MAC'd by the ACB) with the payload of the RTDS command for that use case, or one
built from its parts where the RTDS values (dates, device ids) would not fit this world.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from smarthydra.eui import Eui64
from smarthydra.gbcs import security
from smarthydra.gbcs.axdr import Data, DataType, decode_data_exact, octet_string, structure
from smarthydra.gbcs.envelope import GbcsMessage
from smarthydra.gbcs.rtds import RtdsKeystore, check_message, read_hex_file
from smarthydra.gbcs.utrn import generate_utrn
from smarthydra.gbcs.xdlms import (
    AccessRequest,
    AccessResponse,
    CosemDescriptor,
    RequestKind,
    RequestSpecification,
    decode_xdlms,
)
from smarthydra.premises.esme_model import PaymentMode, SupplyState, cosem_time, gbcs_seconds
from smarthydra.premises.hub import DeviceKind
from smarthydra.premises.usecases import Role
from smarthydra.sim.home import UseCaseDriver, add_ppmid
from smarthydra.sim.world import World, build_world
from tests.conftest import conformance_path
from tests.premises.shapes import payload_shape, rtds_message, shapes_match


@pytest.fixture(scope="module")
def rtds() -> Path:
    return conformance_path("gbcs", "rtds-4.5.0")


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    yield build_world(homes=1, seed=9)


@pytest.fixture
def driver(world: World) -> UseCaseDriver:
    return UseCaseDriver(world)


def _check_shape(ours: GbcsMessage | None, rtds: Path, folder: str, name: str) -> None:
    assert ours is not None, "no response"
    theirs = rtds_message(rtds / folder, name)
    assert shapes_match(payload_shape(ours), payload_shape(theirs)), (
        payload_shape(ours), payload_shape(theirs))


def _send_rtds(driver: UseCaseDriver, world: World, rtds: Path, use_case: str, folder: str,
               stem: str) -> GbcsMessage:
    payload = rtds_message(rtds / folder, f"{stem}_COMMAND_GBCS.HEX").payload
    exchange = driver.send(world.home(0), use_case, payload)
    assert exchange.response is not None
    _check_shape(exchange.response, rtds, folder, f"{stem}_RESPONSE_GBCS.HEX")
    return exchange.response


def _results(message: GbcsMessage) -> list[int]:
    apdu = decode_xdlms(message.payload)
    assert isinstance(apdu, AccessResponse)
    return [r.result for r in apdu.results]


def _decrypt(world: World, message: GbcsMessage) -> Data:
    """Open the sensitive block of a protected-read response as the supplier would."""
    apdu = decode_xdlms(message.payload)
    assert isinstance(apdu, AccessResponse)
    block = apdu.data[0].value[1].value  # type: ignore[index, union-attr]
    assert isinstance(block, bytes)
    esme = world.home(0).esme
    z = world.supplier.keystore.derive_shared_secret("ka", esme.key_agreement_key)
    key = security.encryption_key(z, esme.eui.value, message.originator_counter,
                                  world.supplier.eui.value)
    return decode_data_exact(security.open_sensitive(key, esme.eui.value, block))


def _rtds_plaintext(rtds: Path, folder: str, name: str) -> Data:
    keystore = RtdsKeystore.load(conformance_path("gbcs", "rtds-keystore"))
    check = check_message(name, read_hex_file(rtds / folder / name), keystore)
    return decode_data_exact(check.decrypted[0])


# --- tariffs and prices -----------------------------------------------------------------------


@pytest.mark.parametrize(("use_case", "folder", "stem"), [
    ("ECS01a", "1.1.1_ECS01a", "ECS01a_1.1.1_IMMEDIATE_TOU_SUCCESS"),
    ("ECS01b", "1.2.1_ECS01b", "ECS01b_1.2.1_IMMEDIATE_BLOCK_SUCCESS"),
    ("ECS01c", "1.1.2_ECS01c", "ECS01c_1.1.2_IMMEDIATE_SUCCESS"),
    ("ECS01d", "1.2.2_ECS01d", "ECS01d_1.2.2_IMMEDIATE_SUCCESS"),
])
def test_tariff_and_price_updates(world: World, driver: UseCaseDriver, rtds: Path, use_case: str,
                                  folder: str, stem: str) -> None:
    model = world.home(0).esme.model
    before = model.tariff.updates
    response = _send_rtds(driver, world, rtds, use_case, folder, stem)
    assert all(r == 0 for r in _results(response))
    assert model.tariff.updates > before
    assert not response.is_macd and response.general_signing.is_signed  # critical: signed


def test_ecs01b_sets_the_standing_charge_the_command_carries(world: World, driver: UseCaseDriver,
                                                             rtds: Path) -> None:
    _send_rtds(driver, world, rtds, "ECS01b", "1.2.1_ECS01b", "ECS01b_1.2.1_IMMEDIATE_BLOCK_SUCCESS")
    tariff = world.home(0).esme.model.tariff
    assert tariff.standing_charge == 20000 and tariff.price_scale == -5


# --- payment mode, balance, top-up --------------------------------------------------------------


def test_ecs03_prepayment_mode_then_ecs02_credit_mode(world: World, driver: UseCaseDriver,
                                                       rtds: Path) -> None:
    credit = world.home(0).esme.model.credit
    response = _send_rtds(driver, world, rtds, "ECS03", "1.6_ECS03",
                          "ECS03_1.6_IMMEDIATE_SINGLE_SUCCESS")
    assert _results(response) == [0] * 5
    assert credit.mode is PaymentMode.PREPAYMENT
    assert credit.disablement_threshold == 556677
    _send_rtds(driver, world, rtds, "ECS02", "1.6_ECS02", "ECS02_1.6_IMMEDIATE_SINGLE_SUCCESS")
    assert credit.mode is PaymentMode.CREDIT


def test_ecs04a_adjusts_and_ecs04b_resets_the_meter_balance(world: World, driver: UseCaseDriver,
                                                           rtds: Path) -> None:
    credit = world.home(0).esme.model.credit
    before = credit.meter_balance
    _send_rtds(driver, world, rtds, "ECS04a", "1.5_ECS04a", "ECS04a_1.5_SUCCESS")
    assert credit.meter_balance == before + 1200000
    _send_rtds(driver, world, rtds, "ECS04b", "1.5_ECS04b", "ECS04b_1.5_SUCCESS")
    assert credit.meter_balance == 0 and credit.emergency_credit_balance == 0


def test_cs01a_top_up_with_a_utrn_and_replay_is_refused(world: World, driver: UseCaseDriver,
                                                        rtds: Path) -> None:
    esme = world.home(0).esme
    z = world.supplier.keystore.derive_shared_secret("pp-ka", esme.key_agreement_key)
    utrn = generate_utrn(z, world.supplier.eui.value, esme.eui.value, counter=77, value=1500)
    template = decode_xdlms(rtds_message(rtds / "2.2_CS01a", "CS01a_2.2_SUCCESS_COMMAND_GBCS.HEX")
                            .payload)
    assert isinstance(template, AccessRequest)
    payload = dataclasses.replace(template, data=[octet_string(utrn.encode())]).encode()
    before = esme.model.credit.meter_balance
    exchange = driver.send(world.home(0), "CS01a", payload)
    _check_shape(exchange.response, rtds, "2.2_CS01a", "CS01a_2.2_SUCCESS_RESPONSE_GBCS.HEX")
    assert esme.model.credit.meter_balance == before + 1500 * 1000
    again = driver.send(world.home(0), "CS01a", payload)
    assert again.response is not None and _results(again.response) != [0]
    assert esme.model.credit.meter_balance == before + 1500 * 1000


# --- reads -------------------------------------------------------------------------------------


def test_ecs17b_registers_are_the_meters(world: World, driver: UseCaseDriver, rtds: Path) -> None:
    esme = world.home(0).esme
    esme.consume(1234)
    response = _send_rtds(driver, world, rtds, "ECS17b", "4.1.1_ECS17b",
                          "ECS17b_4.1.1_SINGLE_SUCCESS")
    plain = _decrypt(world, response)
    values = plain.value[0].value  # type: ignore[index, union-attr]
    assert values[0].value == esme.registers.active_import_wh  # type: ignore[index]


def _advance(world: World, days: int) -> None:
    esme = world.home(0).esme
    for _ in range(days):
        for _half_hour in range(48):
            world.clock.advance(dt.timedelta(minutes=30))
            esme.consume(300, 20)
            esme.model.end_of_half_hour(238)
        esme.model.end_of_day()


def _protected_read(world: World, rtds: Path, folder: str, name: str, start: dt.datetime,
                    end: dt.datetime) -> bytes:
    """The RTDS protected-read command, with this meter's ids and a date range of our time."""
    template = decode_xdlms(rtds_message(rtds / folder, name).payload)
    assert isinstance(template, AccessRequest)
    objects, protection = template.data[0].value  # type: ignore[misc]
    obj = objects.value[0].value  # type: ignore[index, union-attr]
    selective = structure(obj[4].value[0], structure(octet_string(cosem_time(start)),  # type: ignore[index]
                                                     octet_string(cosem_time(end))))
    new_obj = structure(*obj[:4], selective)
    data = structure(Data(DataType.ARRAY, [new_obj]), protection)
    return dataclasses.replace(template, data=[data]).encode()


@pytest.mark.parametrize(("use_case", "folder", "stem"), [
    ("ECS21a", "4.6.1_ECS21a", "ECS21a_4.6.1_SINGLE_SUCCESS"),
    ("ECS22b", "4.8.1_ECS22b", "ECS22b_4.8.1_SINGLE_SUCCESS"),
])
def test_daily_log_and_profile_reads(world: World, driver: UseCaseDriver, rtds: Path,
                                     use_case: str, folder: str, stem: str) -> None:
    start = world.clock.now()
    _advance(world, 2)
    payload = _protected_read(world, rtds, folder, f"{stem}_COMMAND_GBCS.HEX", start,
                              world.clock.now())
    exchange = driver.send(world.home(0), use_case, payload)
    _check_shape(exchange.response, rtds, folder, f"{stem}_RESPONSE_GBCS.HEX")
    assert exchange.response is not None
    ours = _decrypt(world, exchange.response)
    theirs = _rtds_plaintext(rtds, folder, f"{stem}_RESPONSE_GBCS.HEX")
    from tests.premises.shapes import data_shape

    assert data_shape(ours) == data_shape(theirs)
    contents = ours.value[0].value.contents  # type: ignore[index, union-attr]
    expected_rows = 2 if use_case == "ECS21a" else 96
    row = {"ECS21a": 328, "ECS22b": 8}[use_case]
    assert len(contents) % row == 0 and len(contents) // row >= expected_rows


def _get_with_range(template: AccessRequest, start: dt.datetime, end: dt.datetime) -> bytes:
    specs = []
    for spec in template.specifications:
        if spec.selection is not None:
            items = list(spec.selection.value)  # type: ignore[arg-type]
            items[1] = Data(DataType.DOUBLE_LONG_UNSIGNED, gbcs_seconds(start))
            items[2] = Data(DataType.DOUBLE_LONG_UNSIGNED, gbcs_seconds(end))
            spec = dataclasses.replace(spec, selection=structure(*items))
        specs.append(spec)
    return dataclasses.replace(template, specifications=specs).encode()


def test_ecs23_voltage_data(world: World, driver: UseCaseDriver, rtds: Path) -> None:
    start = world.clock.now()
    _advance(world, 1)
    template = decode_xdlms(rtds_message(rtds / "4.10_ECS23", "ECS23_4.10_SUCCESS_COMMAND_GBCS.HEX")
                            .payload)
    assert isinstance(template, AccessRequest)
    exchange = driver.send(world.home(0), "ECS23", _get_with_range(template, start,
                                                                     world.clock.now()))
    _check_shape(exchange.response, rtds, "4.10_ECS23", "ECS23_4.10_SUCCESS_RESPONSE_GBCS.HEX")
    assert exchange.response is not None
    apdu = decode_xdlms(exchange.response.payload)
    assert isinstance(apdu, AccessResponse)
    profile = apdu.data[4].value
    assert len(profile.contents) >= 48 * 8  # type: ignore[union-attr]
    assert profile.contents[4:8] == (238).to_bytes(4, "big")  # type: ignore[union-attr]


@pytest.mark.parametrize(("use_case", "folder", "stem"), [
    ("ECS35a", "6.13_ECS35a", "ECS35a_6.13_SUCCESS"),
    ("ECS35b", "6.13_ECS35b", "ECS35b_6.13_SUCCESS"),
])
def test_event_and_security_logs(world: World, driver: UseCaseDriver, rtds: Path, use_case: str,
                                 folder: str, stem: str) -> None:
    model = world.home(0).esme.model
    start = world.clock.now() - dt.timedelta(days=30)
    model.log_event(0x8F01)
    model.security_events.append(dataclasses.replace(model.event_log[-1], code=0x8F02))
    template = decode_xdlms(rtds_message(rtds / folder, f"{stem}_COMMAND_GBCS.HEX").payload)
    assert isinstance(template, AccessRequest)
    exchange = driver.send(world.home(0), use_case,
                           _get_with_range(template, start, world.clock.now()))
    _check_shape(exchange.response, rtds, folder, f"{stem}_RESPONSE_GBCS.HEX")
    assert exchange.response is not None
    apdu = decode_xdlms(exchange.response.payload)
    assert isinstance(apdu, AccessResponse)
    contents = apdu.data[0].value.contents  # type: ignore[union-attr]
    code = 0x8F01 if use_case == "ECS35a" else 0x8F02
    assert code.to_bytes(2, "big") in contents


# --- supply ------------------------------------------------------------------------------------


def test_supply_disable_arm_enable_and_status(world: World, driver: UseCaseDriver,
                                              rtds: Path) -> None:
    esme = world.home(0).esme
    _send_rtds(driver, world, rtds, "ECS43", "7.2_ECS43", "ECS43_7.2_SUCCESS")
    assert esme.supply is SupplyState.DISABLED
    status = _send_rtds(driver, world, rtds, "ECS45", "7.4_ECS45", "ECS45_7.4_SUCCESS")
    apdu = decode_xdlms(status.payload)
    assert isinstance(apdu, AccessResponse) and apdu.data[0].value == 0
    _send_rtds(driver, world, rtds, "ECS44", "7.3_ECS44", "ECS44_7.3_SUCCESS")
    assert esme.supply is SupplyState.ARMED
    assert esme.model.consumer_press_button() and esme.supply is SupplyState.ENABLED
    _send_rtds(driver, world, rtds, "ECS43", "7.2_ECS43", "ECS43_7.2_SUCCESS")
    _send_rtds(driver, world, rtds, "ECS42", "7.1_ECS42", "ECS42_7.1_SUCCESS")
    assert esme.supply is SupplyState.ENABLED
    status = _send_rtds(driver, world, rtds, "ECS45", "7.4_ECS45", "ECS45_7.4_SUCCESS")
    apdu = decode_xdlms(status.payload)
    assert isinstance(apdu, AccessResponse) and apdu.data[0].value == 1


# --- configuration and clock -------------------------------------------------------------------


@pytest.mark.parametrize(("use_case", "folder", "stem", "group"), [
    ("ECS25a", "6.22_ECS25a", "ECS25a_6.22_SUCCESS", "0-30"),
    ("ECS25b", "6.22_ECS25b", "ECS25b_6.22_SUCCESS", "0-33"),
])
def test_alert_configuration(world: World, driver: UseCaseDriver, rtds: Path, use_case: str,
                             folder: str, stem: str, group: str) -> None:
    from smarthydra.gbcs.envelope import decode_message
    from smarthydra.premises.usecases import Role

    template = rtds_message(rtds / folder, f"{stem}_COMMAND_GBCS.HEX").payload
    role = Role.NETWORK_OPERATOR if use_case == "ECS25b" else None
    exchange = driver.send(world.home(0), use_case, template, role=role)
    _check_shape(exchange.response, rtds, folder, f"{stem}_RESPONSE_GBCS.HEX")
    sent = decode_xdlms(decode_message(exchange.command).payload)
    assert isinstance(sent, AccessRequest)
    filters = world.home(0).esme.model.alert_filters
    assert filters[sent.specifications[0].descriptor.instance_id] == sent.data[0].value


def test_ecs70_clock(world: World, driver: UseCaseDriver, rtds: Path) -> None:
    model = world.home(0).esme.model
    now = world.clock.now()
    template = decode_xdlms(rtds_message(rtds / "6.11_ECS70", "ECS70_6.11_SUCCESS_COMMAND_GBCS.HEX")
                            .payload)
    assert isinstance(template, AccessRequest)
    window = structure(octet_string(bytes.fromhex("ffffffffffffffffff8000ff")),
                       octet_string(cosem_time(now - dt.timedelta(minutes=5))),
                       octet_string(cosem_time(now + dt.timedelta(minutes=5))))
    data = list(template.data)
    data[1] = window
    exchange = driver.send(world.home(0), "ECS70",
                           dataclasses.replace(template, data=data).encode())
    _check_shape(exchange.response, rtds, "6.11_ECS70", "ECS70_6.11_SUCCESS_RESPONSE_GBCS.HEX")
    assert exchange.response is not None
    apdu = decode_xdlms(exchange.response.payload)
    assert isinstance(apdu, AccessResponse)
    assert apdu.data[3].value == cosem_time(model.now())
    assert model.clock_base == 5


# --- the comms hub function -----------------------------------------------------------------------


def _chf_request(method: int, kind: RequestKind, value: Data, counter: int) -> AccessRequest:
    return AccessRequest(
        0x20000000 | counter,
        None,
        [RequestSpecification(kind, CosemDescriptor(104, bytes.fromhex("00001E0300FF"), method))],
        [value],
    )


def test_ccs01_ccs02_ccs03_device_log(world: World, driver: UseCaseDriver, rtds: Path) -> None:
    home = world.home(0)
    hub = home.hub
    gas = Eui64.parse("00DB1234567890C1")
    install_code = bytes.fromhex("83FED3407A939723A5C639B26916D505")
    template = decode_xdlms(rtds_message(rtds / "8.11_CCS01", "CCS01_8.11_SUCCESS_COMMAND_GBCS.HEX")
                            .payload)
    assert isinstance(template, AccessRequest)
    add = dataclasses.replace(template, data=[
        structure(octet_string(gas.value), Data(DataType.ENUM, DeviceKind.GSME),
                  octet_string(install_code), Data(DataType.ENUM, 0)),
        *template.data[1:],
    ])
    alerts = len(hub.alerts)
    exchange = driver.send(home, "CCS01", add.encode(), target=hub.eui,
                           target_key=hub.key_agreement_key)
    _check_shape(exchange.response, rtds, "8.11_CCS01", "CCS01_8.11_SUCCESS_RESPONSE_GBCS.HEX")
    assert hub.in_device_log(gas)
    assert len(hub.alerts) == alerts + 1  # CS14 on every change
    _check_shape(_alert(hub.alerts[-1]), rtds, "NA_CS14", "CS14_NA_8F12_ALERT_GBCS.HEX")

    removal = _chf_request(2, RequestKind.ACTION, octet_string(gas.value), 0x517)
    exchange = driver.send(home, "CCS02", removal.encode(), target=hub.eui,
                           target_key=hub.key_agreement_key)
    _check_shape(exchange.response, rtds, "8.11_CCS02", "CCS02_8.11_SUCCESS_RESPONSE_GBCS.HEX")
    assert not hub.in_device_log(gas)
    assert gas in [r.eui for r in hub.historic_device_log()]
    assert len(hub.alerts) == alerts + 2

    from smarthydra.premises.han import link_key_from_install_code

    restore = _chf_request(5, RequestKind.ACTION, structure(
        octet_string(bytes(8)),
        Data(DataType.ARRAY, [structure(octet_string(gas.value),
                                        octet_string(link_key_from_install_code(install_code)))]),
    ), 0x518)
    exchange = driver.send(home, "CCS03", restore.encode(), target=hub.eui,
                           target_key=hub.key_agreement_key)
    _check_shape(exchange.response, rtds, "8.12.1_CCS03", "CCS03_8.12.1_SUCCESS_RESPONSE_GBCS.HEX")
    assert hub.in_device_log(gas)


def _alert(wire: bytes) -> GbcsMessage:
    from smarthydra.gbcs.envelope import decode_message

    return decode_message(wire)


def test_a_hub_command_not_macd_by_the_acb_is_dropped(world: World) -> None:
    hub = world.home(0).hub
    from smarthydra.gbcs.builder import build_command

    forged = build_command(originator=world.dcc.acb.eui.value, recipient=hub.eui.value,
                           counter=1 << 40, message_code=0x0002,
                           payload=_chf_request(2, RequestKind.ACTION,
                                                octet_string(world.home(0).esme.eui.value),
                                                1).encode(),
                           acb_z=bytes(32))
    before = hub.device_log()
    assert world.wan.deliver(hub.eui, forged.wire()) is None
    assert hub.device_log() == before
    assert "ACB MAC does not verify" in hub.log[-1].event


# --- join, unjoin, firmware -----------------------------------------------------------------------


def test_cs03a1_join_then_cs04ac_unjoin(world: World, driver: UseCaseDriver, rtds: Path) -> None:
    esme = world.home(0).esme
    joined = _send_rtds(driver, world, rtds, "CS03A1", "8.7.1_CS03A1", "CS03A1_8.7.1_SUCCESS")
    assert joined.payload == bytes.fromhex("020100")
    other = bytes.fromhex("00db12345678909a")
    assert esme.joined.devices == {other: 4}
    from smarthydra.premises.der_cases import der_octets

    unjoin = der_octets(other).encode()
    exchange = driver.send(world.home(0), "CS04AC", unjoin)
    _check_shape(exchange.response, rtds, "8.8.1_CS04ACCritical",
                 "CS04ACCritical_8.8.1_SUCCESS_RESPONSE_GBCS.HEX")
    assert exchange.response is not None and exchange.response.payload == bytes.fromhex("020100")
    assert esme.joined.devices == {}


def test_cs06_activates_firmware_the_hub_distributed(world: World, driver: UseCaseDriver,
                                                    rtds: Path) -> None:
    from smarthydra.premises.der_cases import (
        FirmwareImage,
        der_integer,
        der_octets,
        der_sequence,
    )

    home = world.home(0)
    image = FirmwareImage(bytes.fromhex("0123abce"), b"new meter firmware" * 100)
    command = der_sequence(der_octets(image.hash), der_integer(1000)).encode()
    refused = driver.send(home, "CS06", command)
    assert refused.response is not None and home.esme.firmware.version != image.version
    assert home.hub.distribute_firmware(image, DeviceKind.ESME) == 1
    exchange = driver.send(home, "CS06", command)
    _check_shape(exchange.response, rtds, "11.3_CS06", "CS06_11.3_IMMEDIATE_SUCCESS_RESPONSE_GBCS.HEX")
    assert home.esme.firmware.version == image.version


def test_cs08_reads_the_ppmid_firmware_version(world: World, driver: UseCaseDriver,
                                               rtds: Path) -> None:
    """CS08 goes through the hub (device log, HAN link) to the PPMID, which answers the ACB."""
    ppmid = add_ppmid(world, world.home(0))
    payload = rtds_message(rtds / "11.2_CS08", "CS08_11.2_SUCCESS_COMMAND_GBCS.HEX").payload
    exchange = driver.send(world.home(0), "CS08", payload, target=ppmid.eui,
                           role=Role.ACCESS_CONTROL_BROKER)
    _check_shape(exchange.response, rtds, "11.2_CS08", "CS08_11.2_SUCCESS_RESPONSE_GBCS.HEX")
    assert exchange.response is not None
    assert ppmid.firmware.version in exchange.response.payload


def test_ecs01a_immediate_applies_prices_and_switching_times(world: World, driver: UseCaseDriver,
                                                            rtds: Path) -> None:
    tariff = world.home(0).esme.model.tariff
    _send_rtds(driver, world, rtds, "ECS01a", "1.1.1_ECS01a", "ECS01a_1.1.1_IMMEDIATE_TOU_SUCCESS")
    assert tariff.tou_switching == [(0, 1), (7 * 60, 2)]  # day profile 1: 00:00 and 07:00
    assert tariff.tou_prices[:3] == [2121, 3127, 4744]
    assert tariff.standing_charge == 20000


def test_ecs01a_future_dated_waits_for_its_activation_time() -> None:
    world = build_world(homes=1, seed=12)
    rtds = conformance_path("gbcs", "rtds-4.5.0")
    model = world.home(0).esme.model
    before = list(model.tariff.tou_prices)
    payload = rtds_message(rtds / "1.1.1_ECS01a",
                           "ECS01a_1.1.1_FUTURE_DATED_TOU_BLOCK_SUCCESS_COMMAND_GBCS.HEX").payload
    exchange = UseCaseDriver(world).send(world.home(0), "ECS01a", payload)
    _check_shape(exchange.response, rtds, "1.1.1_ECS01a",
                 "ECS01a_1.1.1_FUTURE_DATED_TOU_BLOCK_SUCCESS_RESPONSE_GBCS.HEX")
    assert model.tariff.tou_prices == before and model.scheduled
    world.clock.current = dt.datetime(2030, 1, 15, 9, 0, 1, tzinfo=dt.UTC)
    model.consume(10)
    assert model.tariff.tou_prices != before and not model.scheduled


def test_ecs08_prepayment_configuration(world: World, driver: UseCaseDriver, rtds: Path) -> None:
    model = world.home(0).esme.model
    response = _send_rtds(driver, world, rtds, "ECS08", "2.1_ECS08", "ECS08_2.1_IMMEDIATE_SUCCESS")
    assert all(r == 0 for r in _results(response))
    sent = decode_xdlms(rtds_message(rtds / "2.1_ECS08",
                                     "ECS08_2.1_IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX").payload)
    assert isinstance(sent, AccessRequest)
    limit = next(d for spec, d in zip(sent.specifications, sent.data, strict=True)
                 if spec.descriptor.obis == "0-0:94.44.128.2" and spec.descriptor.index == 4)
    assert model.credit.emergency_credit_limit == limit.value


def test_ecs01a_block_tariff_sets_thresholds(world: World, driver: UseCaseDriver,
                                             rtds: Path) -> None:
    tariff = world.home(0).esme.model.tariff
    _send_rtds(driver, world, rtds, "ECS01a", "1.1.1_ECS01a", "ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS")
    assert tariff.block_thresholds_wh[0] == [10000, 20000]
