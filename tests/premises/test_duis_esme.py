"""Electricity use cases of issue #9 on the full DUIS path: a DUIS request written as XML from
its XSD-shaped body -> the DataCommsCompany (checks, transform to the ESME's GBCS, pre-command
signed by the supplier for critical services, ACB MAC) -> WAN -> Hydra hub (virtual terminal,
CHF applet, HAN link security) -> ESME -> GBCS response -> DUIS ResponseMessage (schema-valid)
-> parsed with our GBCS parser, MAC or signature checked, structure compared with the RTDS
response of the same use case, and the meter's state checked as the use case says.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from smarthydra.gbcs import security
from smarthydra.gbcs.axdr import Data, decode_data_exact
from smarthydra.gbcs.envelope import GbcsMessage
from smarthydra.gbcs.xdlms import AccessResponse, decode_xdlms
from smarthydra.premises.der_cases import FirmwareImage
from smarthydra.premises.esme_model import PaymentMode, SupplyState
from smarthydra.premises.hub import DeviceKind
from smarthydra.sim.world import World, build_world
from tests.conftest import CONFORMANCE, conformance_path
from tests.premises.duis_helpers import (
    CREDIT_MODE,
    DuisOutcome,
    DuisPath,
    electricity_block_prices,
    electricity_prepay_configuration,
    electricity_tou_tariff,
    prepayment_mode,
    read_log_period,
    secondary_prices,
    secondary_tou_tariff,
    xs_datetime,
)
from tests.premises.shapes import payload_shape, rtds_message, shapes_match


@pytest.fixture(scope="module")
def rtds() -> Path:
    return conformance_path("gbcs", "rtds-4.5.0")


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    conformance_path("duis", "service-request-matrix.json")
    yield build_world(homes=1, seed=21, conformance=CONFORMANCE)


@pytest.fixture(scope="module")
def duis(world: World) -> DuisPath:
    return DuisPath.load(world, conformance_path("duis"))


def _like_rtds(outcome: DuisOutcome, rtds: Path, folder: str, name: str) -> GbcsMessage:
    theirs = rtds_message(rtds / folder, name)
    ours = outcome.message
    assert shapes_match(payload_shape(ours), payload_shape(theirs)), (
        payload_shape(ours), payload_shape(theirs))
    assert ours.message_code == theirs.message_code
    return ours


def _results(message: GbcsMessage) -> list[int]:
    apdu = decode_xdlms(message.payload)
    assert isinstance(apdu, AccessResponse)
    return [r.result for r in apdu.results]


def _decrypt(world: World, message: GbcsMessage) -> Data:
    """The sensitive block of a protected read, opened as the supplier would."""
    apdu = decode_xdlms(message.payload)
    assert isinstance(apdu, AccessResponse)
    block = apdu.data[0].value[1].value  # type: ignore[index, union-attr]
    assert isinstance(block, bytes)
    esme = world.home(0).esme
    z = world.supplier.keystore.derive_shared_secret("ka", esme.key_agreement_key)
    key = security.encryption_key(z, esme.eui.value, message.originator_counter,
                                  world.supplier.eui.value)
    return decode_data_exact(security.open_sensitive(key, esme.eui.value, block))


def _advance(world: World, days: int, *, import_wh: int = 300) -> None:
    esme = world.home(0).esme
    for _ in range(days):
        for _half_hour in range(48):
            world.clock.advance(dt.timedelta(minutes=30))
            esme.consume(import_wh, 20)
            esme.model.end_of_half_hour(238)
        esme.model.end_of_day()


# --- tariffs and prices (ECS01a-d) ---------------------------------------------------------------


def test_ecs01a_tou_tariff(world: World, duis: DuisPath, rtds: Path) -> None:
    tariff = world.home(0).esme.model.tariff
    outcome = duis.send("1.1.1", world.home(0).esme.eui,
                        electricity_tou_tariff([1500, 3200], standing_charge=25000))
    _like_rtds(outcome, rtds, "1.1.1_ECS01a", "ECS01a_1.1.1_IMMEDIATE_TOU_SUCCESS_RESPONSE_GBCS.HEX")
    assert not outcome.message.is_macd and outcome.message.general_signing.is_signed
    assert all(r == 0 for r in _results(outcome.message))
    assert tariff.tou_switching == [(0, 0), (7 * 60, 1)]  # TOU rates 1 and 2 (0-based)
    assert tariff.tou_prices[:2] == [1500, 3200] and tariff.standing_charge == 25000


def test_ecs01a_future_dated_waits_for_its_time(world: World, duis: DuisPath,
                                                rtds: Path) -> None:
    model = world.home(0).esme.model
    when = world.clock.now() + dt.timedelta(hours=2)
    before = list(model.tariff.tou_prices)
    outcome = duis.send("1.1.1", world.home(0).esme.eui,
                        electricity_tou_tariff([1700, 3400], standing_charge=26000),
                        execution=when)
    _like_rtds(outcome, rtds, "1.1.1_ECS01a",
               "ECS01a_1.1.1_FUTURE_DATED_TOU_BLOCK_SUCCESS_RESPONSE_GBCS.HEX")
    assert model.tariff.tou_prices == before and model.scheduled
    world.clock.advance(dt.timedelta(hours=2, seconds=1))
    model.consume(10)
    assert model.tariff.tou_prices[:2] == [1700, 3400] and not model.scheduled


def test_ecs01b_block_prices(world: World, duis: DuisPath, rtds: Path) -> None:
    tariff = world.home(0).esme.model.tariff
    outcome = duis.send("1.2.1", world.home(0).esme.eui,
                        electricity_block_prices([2361, 4289, 6566], standing_charge=21000))
    _like_rtds(outcome, rtds, "1.2.1_ECS01b", "ECS01b_1.2.1_IMMEDIATE_BLOCK_SUCCESS_RESPONSE_GBCS.HEX")
    assert tariff.standing_charge == 21000 and tariff.price_scale == -5


def test_ecs01c_and_ecs01d_secondary_element(world: World, duis: DuisPath, rtds: Path) -> None:
    tariff = world.home(0).esme.model.tariff
    updates = tariff.updates
    outcome = duis.send("1.1.2", world.home(0).esme.eui,
                        secondary_tou_tariff([10100, 0, 12300, 13400]))
    _like_rtds(outcome, rtds, "1.1.2_ECS01c", "ECS01c_1.1.2_IMMEDIATE_SUCCESS_RESPONSE_GBCS.HEX")
    assert tariff.updates > updates
    updates = tariff.updates
    outcome = duis.send("1.2.2", world.home(0).esme.eui, secondary_prices([1010, 1120, 1230, 1340]))
    _like_rtds(outcome, rtds, "1.2.2_ECS01d", "ECS01d_1.2.2_IMMEDIATE_SUCCESS_RESPONSE_GBCS.HEX")
    assert tariff.updates > updates


# --- balance, payment mode, prepayment configuration, top-up -------------------------------------


def test_ecs04a_adjusts_and_ecs04b_resets_the_balance(world: World, duis: DuisPath,
                                                     rtds: Path) -> None:
    credit = world.home(0).esme.model.credit
    before = credit.meter_balance
    outcome = duis.send("1.5", world.home(0).esme.eui,
                        {"PrepaymentMode": {"AdjustMeterBalance": "1200000"}})
    _like_rtds(outcome, rtds, "1.5_ECS04a", "ECS04a_1.5_SUCCESS_RESPONSE_GBCS.HEX")
    assert _results(outcome.message) == [0] and credit.meter_balance == before + 1200000
    outcome = duis.send("1.5", world.home(0).esme.eui, {"PrepaymentMode": {"ResetMeterBalance": {}}})
    _like_rtds(outcome, rtds, "1.5_ECS04b", "ECS04b_1.5_SUCCESS_RESPONSE_GBCS.HEX")
    assert credit.meter_balance == 0 and credit.emergency_credit_balance == 0


def test_ecs03_prepayment_then_ecs02_credit(world: World, duis: DuisPath, rtds: Path) -> None:
    credit = world.home(0).esme.model.credit
    outcome = duis.send("1.6", world.home(0).esme.eui, prepayment_mode(556677))
    _like_rtds(outcome, rtds, "1.6_ECS03", "ECS03_1.6_IMMEDIATE_SINGLE_SUCCESS_RESPONSE_GBCS.HEX")
    assert credit.mode is PaymentMode.PREPAYMENT and credit.disablement_threshold == 556677
    outcome = duis.send("1.6", world.home(0).esme.eui, CREDIT_MODE)
    _like_rtds(outcome, rtds, "1.6_ECS02", "ECS02_1.6_IMMEDIATE_SINGLE_SUCCESS_RESPONSE_GBCS.HEX")
    assert credit.mode is PaymentMode.CREDIT


def test_ecs08_prepayment_configuration(world: World, duis: DuisPath, rtds: Path) -> None:
    credit = world.home(0).esme.model.credit
    outcome = duis.send("2.1", world.home(0).esme.eui, electricity_prepay_configuration(
        emergency_limit=310000, emergency_threshold=110000, low_credit=210000, cap=30))
    _like_rtds(outcome, rtds, "2.1_ECS08a", "ECS08a_2.1_IMMEDIATE_SUCCESS_RESPONSE_GBCS.HEX")
    assert all(r == 0 for r in _results(outcome.message))
    assert credit.emergency_credit_limit == 310000


def test_cs01a_top_up_through_duis(world: World, duis: DuisPath, rtds: Path) -> None:
    """A UTRN the supplier made for this meter with its top-up key: the balance rises once."""
    from smarthydra.gbcs.utrn import generate_utrn

    esme = world.home(0).esme
    z = world.supplier.keystore.derive_shared_secret("pp-ka", esme.key_agreement_key)
    utrn = generate_utrn(z, world.supplier.eui.value, esme.eui.value, counter=4242, value=2000)
    before = esme.model.credit.meter_balance
    outcome = duis.send("2.2", esme.eui, {"UTRN": utrn.encode().decode("ascii")})
    _like_rtds(outcome, rtds, "2.2_CS01a", "CS01a_2.2_SUCCESS_RESPONSE_GBCS.HEX")
    assert _results(outcome.message) == [0]
    assert esme.model.credit.meter_balance == before + 2000 * 1000


# --- reads -------------------------------------------------------------------------------------


def test_ecs17b_import_registers(world: World, duis: DuisPath, rtds: Path) -> None:
    esme = world.home(0).esme
    esme.consume(1234)
    outcome = duis.send("4.1.1", esme.eui)
    _like_rtds(outcome, rtds, "4.1.1_ECS17b", "ECS17b_4.1.1_SINGLE_SUCCESS_RESPONSE_GBCS.HEX")
    values = _decrypt(world, outcome.message).value[0].value  # type: ignore[index, union-attr]
    assert values[0].value == esme.registers.active_import_wh  # type: ignore[index, union-attr]


@pytest.mark.parametrize(("srv", "folder", "name", "row", "rows"), [
    ("4.6.1", "4.6.1_ECS21a", "ECS21a_4.6.1_SINGLE_SUCCESS_RESPONSE_GBCS.HEX", 328, 2),
    ("4.8.1", "4.8.1_ECS22b", "ECS22b_4.8.1_SINGLE_SUCCESS_RESPONSE_GBCS.HEX", 8, 96),
])
def test_daily_log_and_profile(world: World, duis: DuisPath, rtds: Path, srv: str, folder: str,
                               name: str, row: int, rows: int) -> None:
    start = world.clock.now()
    _advance(world, 2)
    outcome = duis.send(srv, world.home(0).esme.eui, read_log_period(start, world.clock.now()))
    _like_rtds(outcome, rtds, folder, name)
    contents = _decrypt(world, outcome.message).value[0].value.contents  # type: ignore[index, union-attr]
    assert len(contents) % row == 0 and len(contents) // row >= rows


def test_ecs23_voltage(world: World, duis: DuisPath, rtds: Path) -> None:
    start = world.clock.now()
    _advance(world, 1)
    outcome = duis.send("4.10", world.home(0).esme.eui, read_log_period(start, world.clock.now()))
    _like_rtds(outcome, rtds, "4.10_ECS23", "ECS23_4.10_SUCCESS_RESPONSE_GBCS.HEX")
    apdu = decode_xdlms(outcome.message.payload)
    assert isinstance(apdu, AccessResponse)
    profile = apdu.data[4].value
    assert len(profile.contents) >= 48 * 8  # type: ignore[union-attr]
    assert profile.contents[4:8] == (238).to_bytes(4, "big")  # type: ignore[union-attr]


@pytest.mark.parametrize(("log", "folder", "code"), [
    ("Event", "6.13_ECS35a", 0x8F01),
    ("Security", "6.13_ECS35b", 0x8F02),
])
def test_ecs35_event_and_security_logs(world: World, duis: DuisPath, rtds: Path, log: str,
                                       folder: str, code: int) -> None:
    model = world.home(0).esme.model
    start = world.clock.now() - dt.timedelta(days=30)
    model.log_event(0x8F01)
    model.security_events.append(dataclasses.replace(model.event_log[-1], code=0x8F02))
    body = {**read_log_period(start, world.clock.now()), "LogToRead": log}
    outcome = duis.send("6.13", world.home(0).esme.eui, body)
    stem = folder.split("_", 1)[1]
    _like_rtds(outcome, rtds, folder, f"{stem}_6.13_SUCCESS_RESPONSE_GBCS.HEX")
    apdu = decode_xdlms(outcome.message.payload)
    assert isinstance(apdu, AccessResponse)
    assert code.to_bytes(2, "big") in apdu.data[0].value.contents  # type: ignore[union-attr]


# --- supply ------------------------------------------------------------------------------------


def test_supply_disable_status_arm_enable(world: World, duis: DuisPath, rtds: Path) -> None:
    esme = world.home(0).esme
    outcome = duis.send("7.2", esme.eui)
    _like_rtds(outcome, rtds, "7.2_ECS43", "ECS43_7.2_SUCCESS_RESPONSE_GBCS.HEX")
    assert esme.supply is SupplyState.DISABLED
    status = duis.send("7.4", esme.eui)
    _like_rtds(status, rtds, "7.4_ECS45", "ECS45_7.4_SUCCESS_RESPONSE_GBCS.HEX")
    apdu = decode_xdlms(status.message.payload)
    assert isinstance(apdu, AccessResponse) and apdu.data[0].value == 0
    outcome = duis.send("7.3", esme.eui)
    _like_rtds(outcome, rtds, "7.3_ECS44", "ECS44_7.3_SUCCESS_RESPONSE_GBCS.HEX")
    assert esme.supply is SupplyState.ARMED
    outcome = duis.send("7.1", esme.eui)
    _like_rtds(outcome, rtds, "7.1_ECS42", "ECS42_7.1_SUCCESS_RESPONSE_GBCS.HEX")
    assert esme.supply is SupplyState.ENABLED
    status = duis.send("7.4", esme.eui)
    apdu = decode_xdlms(status.message.payload)
    assert isinstance(apdu, AccessResponse) and apdu.data[0].value == 1


# --- clock, unjoin, firmware ---------------------------------------------------------------------


def test_ecs70_clock(world: World, duis: DuisPath, rtds: Path) -> None:
    model = world.home(0).esme.model
    base = model.clock_base
    body = {"CurrentDateTime": xs_datetime(world.clock.now()), "TolerancePeriod": "60"}
    outcome = duis.send("6.11", world.home(0).esme.eui, body)
    _like_rtds(outcome, rtds, "6.11_ECS70", "ECS70_6.11_SUCCESS_RESPONSE_GBCS.HEX")
    assert _results(outcome.message) == [0] * 5
    assert model.clock_base == 5 or model.clock_base != base


def test_cs04ac_unjoin_through_duis(world: World, duis: DuisPath, rtds: Path) -> None:
    esme = world.home(0).esme
    other = bytes.fromhex("00DB123456789099")
    esme.joined.devices[other] = 4
    outcome = duis.send("8.8.1", esme.eui, {"OtherDeviceID": "00-DB-12-34-56-78-90-99"})
    _like_rtds(outcome, rtds, "8.8.1_CS04ACCritical",
               "CS04ACCritical_8.8.1_SUCCESS_RESPONSE_GBCS.HEX")
    assert outcome.message.payload == bytes.fromhex("020100")
    assert other not in esme.joined.devices


def test_cs06_activates_firmware_the_hub_distributed(world: World, duis: DuisPath,
                                                    rtds: Path) -> None:
    home = world.home(0)
    image = FirmwareImage(bytes.fromhex("0456abce"), b"next meter firmware" * 64)
    assert home.hub.distribute_firmware(image, DeviceKind.ESME) == 1
    outcome = duis.send("11.3", home.esme.eui, {"FirmwareHash": image.hash.hex().upper()})
    _like_rtds(outcome, rtds, "11.3_CS06", "CS06_11.3_IMMEDIATE_SUCCESS_RESPONSE_GBCS.HEX")
    assert home.esme.firmware.version == image.version


# --- alert configuration (ECS25a by the supplier, ECS25b by the network operator) -----------------


@pytest.mark.parametrize(("folder", "body", "network_operator"), [
    ("6.22_ECS25a", {"ElectricitySupplierAlerts": {"SupplierESMECommon": {
        "x810D": "Enable", "x810E": "Disable", "x81C4": "Enable", "x81C5": "Disable"}}}, False),
    ("6.22_ECS25b", {"ElectricityNetworkOperatorAlerts": {"NetworkOperatorESMECommon": {
        "x8014": "Enable", "x8015": "Disable"}}}, True),
])
def test_ecs25_alert_configuration(world: World, duis: DuisPath, rtds: Path, folder: str,
                                   body: dict[str, object], network_operator: bool) -> None:
    filters = world.home(0).esme.model.alert_filters
    before = dict(filters)
    party = world.network_operator if network_operator else world.supplier
    outcome = duis.send("6.22", world.home(0).esme.eui, body, party=party,
                        role="ED" if network_operator else "IS")
    stem = folder.split("_", 1)[1]
    _like_rtds(outcome, rtds, folder, f"{stem}_6.22_SUCCESS_RESPONSE_GBCS.HEX")
    assert _results(outcome.message) == [0]
    assert filters != before  # the filter register the use case writes holds the new mask


def test_ecs52_reads_the_firmware_version(world: World, duis: DuisPath, rtds: Path) -> None:
    esme = world.home(0).esme
    outcome = duis.send("11.2", esme.eui)
    _like_rtds(outcome, rtds, "11.2_ECS52", "ECS52_11.2_SUCCESS_RESPONSE_GBCS.HEX")
    assert esme.firmware.version in outcome.message.payload


def test_ecs25a_one_alert_toggled_flips_one_filter_bit(world: World, duis: DuisPath) -> None:
    filters = world.home(0).esme.model.alert_filters
    masks = []
    for setting in ("Enable", "Disable"):
        duis.send("6.22", world.home(0).esme.eui, {"ElectricitySupplierAlerts": {
            "SupplierESMECommon": {"x810D": setting, "x810E": "Enable"}}})
        masks.append(dict(filters))
    changed = [k for k in masks[0] if masks[0][k] != masks[1].get(k)]
    assert len(changed) == 1
    first, second = (int.from_bytes(m[changed[0]].data, "big") for m in masks)  # type: ignore[attr-defined]
    assert bin(first ^ second).count("1") == 1 and first & ~second  # the enabled bit went
