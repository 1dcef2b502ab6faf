"""Gas and comms-hub use cases of issue #9 on the full DUIS path through the real DCC: the
DataCommsCompany picks the GSME, GPF or CHF use case from the device type its inventory
records, so a DUIS request for the gas meter becomes a GBZ command that goes WAN -> hub ->
gas proxy -> HAN -> gas meter (or is answered by the GPF from its copy), and 8.11 becomes a
CCS01 / CCS02 the DCC sends in its own name to the comms hub function.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from smarthydra.eui import Eui64
from smarthydra.gbcs.der import decode_der
from smarthydra.gbcs.envelope import GbcsMessage
from smarthydra.gbcs.esme_payloads import cosem_date_time
from smarthydra.gbcs.gbz import CONTROL_LAST, DefaultResponse, decode_gbz
from smarthydra.premises.gpf import push_mirror
from smarthydra.premises.gsme import ValveState
from smarthydra.sim.home import GasInstallation, add_gas, enrol_hub
from smarthydra.sim.world import World, build_world
from tests.conftest import CONFORMANCE, conformance_path
from tests.premises.duis_helpers import (
    CREDIT_MODE,
    GAS_SUPPLIER_ROLE,
    DuisOutcome,
    DuisPath,
    gas_block_prices,
    gas_block_tariff,
    gas_prepay_configuration,
    prepayment_mode,
    read_log_period,
    xs_datetime,
)
from tests.premises.shapes import payload_shape, rtds_message, shapes_match

GS = GAS_SUPPLIER_ROLE


@pytest.fixture(scope="module")
def rtds() -> Path:
    return conformance_path("gbcs", "rtds-4.5.0")


@pytest.fixture(scope="module")
def setup() -> Iterator[tuple[World, GasInstallation]]:
    conformance_path("duis", "service-request-matrix.json")
    world = build_world(homes=1, seed=61, conformance=CONFORMANCE)
    gas = add_gas(world, world.home(0))
    enrol_hub(world, world.home(0))
    yield world, gas


@pytest.fixture(scope="module")
def duis(setup: tuple[World, GasInstallation]) -> DuisPath:
    return DuisPath.load(setup[0], conformance_path("duis"))


def _like_rtds(outcome: DuisOutcome, rtds: Path, folder: str, name: str, *,
               per_component: bool = False) -> GbcsMessage:
    """The response has the RTDS response's structure. ``per_component``: a command whose
    number of ZCL commands follows the body (calendars, special days) is answered with as
    many components, each of a shape the RTDS response has, and every shape it has."""
    theirs = rtds_message(rtds / folder, name)
    ours = outcome.message
    mine, rtds_shape = payload_shape(ours), payload_shape(theirs)
    if per_component:
        assert isinstance(mine, tuple) and isinstance(rtds_shape, tuple)
        def kinds(shape: tuple[object, ...]) -> set[tuple[object, ...]]:
            # the last component carries the "last" control bit, wherever the list ends
            return {(c[0], c[1] & ~CONTROL_LAST, *c[2:]) for c in shape[1]}  # type: ignore[attr-defined]

        assert mine[0] == rtds_shape[0] == "gbz" and kinds(mine) == kinds(rtds_shape), (
            mine, rtds_shape)
    else:
        assert shapes_match(mine, rtds_shape), (mine, rtds_shape)
    assert ours.message_code == theirs.message_code
    return ours


def _statuses(message: GbcsMessage) -> list[int]:
    """The ZCL default-response statuses in a GBZ response (0: success)."""
    return [c.body.status for c in decode_gbz(message.payload).components
            if isinstance(c.body, DefaultResponse)]


def _half_hours(world: World, gas: GasInstallation, count: int, litres: int = 25) -> None:
    for _ in range(count):
        world.clock.advance(dt.timedelta(minutes=30))
        gas.gsme.consume(litres)
        gas.gsme.end_of_half_hour()
        push_mirror(world.home(0).hub, gas.gsme)


# --- tariffs (GCS01a/b) ---------------------------------------------------------------------------


def test_gcs01a_tariff_and_gcs01b_prices(setup: tuple[World, GasInstallation], duis: DuisPath,
                                         rtds: Path) -> None:
    _world, gas = setup
    before = gas.gsme.gas.tariff_publications
    outcome = duis.send("1.1.1", gas.gsme.eui,
                        gas_block_tariff([9600, 10200, 10750, 11000], [1000000, 2000000, 3000000],
                                         standing_charge=25000), role=GS)
    _like_rtds(outcome, rtds, "1.1.1_GCS01a", "GCS01a_1.1.1_FUTURE_DATED_BLOCK_SUCCESS_RESPONSE_GBCS.HEX")
    assert set(_statuses(outcome.message)) == {0}
    assert gas.gsme.gas.tariff_publications > before
    before = gas.gsme.gas.tariff_publications
    outcome = duis.send("1.2.1", gas.gsme.eui, gas_block_prices([9700, 10300], 26000), role=GS)
    _like_rtds(outcome, rtds, "1.2.1_GCS01b", "GCS01b_1.2.1_FUTURE_DATED_BLOCK_SUCCESS_RESPONSE_GBCS.HEX")
    assert gas.gsme.gas.tariff_publications > before


# --- balance, payment mode, prepayment configuration -----------------------------------------------


def test_gcs40_balance_adjustments(setup: tuple[World, GasInstallation], duis: DuisPath,
                                   rtds: Path) -> None:
    _world, gas = setup
    state = gas.gsme.gas
    before = state.meter_balance
    outcome = duis.send("1.5", gas.gsme.eui, {"PrepaymentMode": {"AdjustMeterBalance": "23130"}},
                        role=GS)
    _like_rtds(outcome, rtds, "1.5_GCS40a", "GCS40a_1.5_SUCCESS_RESPONSE_GBCS.HEX")
    assert state.meter_balance == before + 23130
    outcome = duis.send("1.5", gas.gsme.eui, {"PrepaymentMode": {"ResetMeterBalance": {}}}, role=GS)
    _like_rtds(outcome, rtds, "1.5_GCS40b", "GCS40b_1.5_SUCCESS_RESPONSE_GBCS.HEX")
    assert state.meter_balance == 0
    bill = state.bill_to_date
    outcome = duis.send("1.5", gas.gsme.eui, {"CreditMode": {"AdjustMeterBalance": "5000"}},
                        role=GS)
    _like_rtds(outcome, rtds, "1.5_GCS40c", "GCS40c_1.5_SUCCESS_RESPONSE_GBCS.HEX")
    assert state.bill_to_date == bill + 5000
    outcome = duis.send("1.5", gas.gsme.eui, {"CreditMode": {"ResetMeterBalance": {}}}, role=GS)
    _like_rtds(outcome, rtds, "1.5_GCS40d", "GCS40d_1.5_SUCCESS_RESPONSE_GBCS.HEX")
    assert state.bill_to_date == 0


def test_gcs03_prepayment_then_gcs02_credit(setup: tuple[World, GasInstallation],
                                            duis: DuisPath, rtds: Path) -> None:
    _world, gas = setup
    outcome = duis.send("1.6", gas.gsme.eui, prepayment_mode(0, suspend_disabled=False,
                                                             suspend_emergency=False), role=GS)
    _like_rtds(outcome, rtds, "1.6_GCS03", "GCS03_1.6_IMMEDIATE_SUCCESS_RESPONSE_GBCS.HEX")
    assert gas.gsme.gas.payment_mode_prepayment is True
    outcome = duis.send("1.6", gas.gsme.eui, CREDIT_MODE, role=GS)
    _like_rtds(outcome, rtds, "1.6_GCS02", "GCS02_1.6_IMMEDIATE_SUCCESS_RESPONSE_GBCS.HEX")
    assert gas.gsme.gas.payment_mode_prepayment is False


def test_gcs05_prepayment_configuration(setup: tuple[World, GasInstallation], duis: DuisPath,
                                        rtds: Path) -> None:
    _world, gas = setup
    configs = gas.gsme.gas.prepayment_configs
    outcome = duis.send("2.1", gas.gsme.eui, gas_prepay_configuration(
        emergency_limit=1500000, emergency_threshold=150000, low_credit=500000, cap=100000),
        role=GS)
    _like_rtds(outcome, rtds, "2.1_GCS05", "GCS05_2.1_IMMEDIATE_SUCCESS_RESPONSE_GBCS.HEX",
               per_component=True)
    assert set(_statuses(outcome.message)) == {0}
    assert gas.gsme.gas.emergency_credit_limit == 1500000
    assert gas.gsme.gas.emergency_credit_threshold == 150000
    assert gas.gsme.gas.prepayment_configs > configs


# --- supply ------------------------------------------------------------------------------------


def test_gcs32_gcs39_valve_and_gcs33_status(setup: tuple[World, GasInstallation], duis: DuisPath,
                                            rtds: Path) -> None:
    world, gas = setup
    world.clock.advance(dt.timedelta(days=1))  # a fresh read budget at the gas proxy
    outcome = duis.send("7.2", gas.gsme.eui, role=GS)
    _like_rtds(outcome, rtds, "7.2_GCS32", "GCS32_7.2_SUCCESS_RESPONSE_GBCS.HEX")
    assert gas.gsme.gas.valve is ValveState.OFF
    outcome = duis.send("7.4", gas.gsme.eui, role=GS)
    _like_rtds(outcome, rtds, "7.4_GCS33", "GCS33_7.4_SUCCESS_RESPONSE_GBCS.HEX")
    outcome = duis.send("7.3", gas.gsme.eui, role=GS)
    _like_rtds(outcome, rtds, "7.3_GCS39", "GCS39_7.3_SUCCESS_RESPONSE_GBCS.HEX")
    assert gas.gsme.gas.valve is ValveState.ARMED


# --- reads -------------------------------------------------------------------------------------


def test_gcs13a_from_the_gas_proxy_copy(setup: tuple[World, GasInstallation], duis: DuisPath,
                                        rtds: Path) -> None:
    world, gas = setup
    gas.gsme.gas.valve = ValveState.ON
    _half_hours(world, gas, 2)
    answered = gas.proxy.answered_from_copy
    outcome = duis.send("4.1.1", gas.gpf.eui, role=GS)
    _like_rtds(outcome, rtds, "4.1.1_GCS13a", "GCS13a_4.1.1_SUCCESS_RELIABLE_GPF_RESPONSE_GBCS.HEX")
    assert gas.proxy.answered_from_copy == answered + 1 and gas.gpf.last_reliable


@pytest.mark.parametrize(("srv", "folder", "name", "days"), [
    ("4.6.1", "4.6.1_GCS16a", "GCS16a_4.6.1_SUCCESS_RESPONSE_GBCS.HEX", 2),
    ("4.8.1", "4.8.1_GCS17", "GCS17_4.8.1_SUCCESS_RESPONSE_GBCS.HEX", 1),
    ("4.10", "4.10_GCS18", "GCS18_4.10_SUCCESS_RESPONSE_GBCS.HEX", 1),
])
def test_gas_logs_and_profiles(setup: tuple[World, GasInstallation], duis: DuisPath, rtds: Path,
                               srv: str, folder: str, name: str, days: int) -> None:
    world, gas = setup
    world.clock.advance(dt.timedelta(days=1))  # a fresh read budget
    start = world.clock.now()
    for _ in range(days):
        _half_hours(world, gas, 48)
        gas.gsme.end_of_day()
    executed = gas.gsme.commands_executed
    outcome = duis.send(srv, gas.gsme.eui, read_log_period(start, world.clock.now()), role=GS)
    _like_rtds(outcome, rtds, folder, name)
    assert gas.gsme.commands_executed == executed + 1


def test_gcs28_clock(setup: tuple[World, GasInstallation], duis: DuisPath, rtds: Path) -> None:
    world, gas = setup
    gas.gsme.gas.clock_offset = dt.timedelta(minutes=7)
    body = {"CurrentDateTime": xs_datetime(world.clock.now()), "TolerancePeriod": "3600"}
    outcome = duis.send("6.11", gas.gsme.eui, body, role=GS)
    _like_rtds(outcome, rtds, "6.11_GCS28", "GCS28_6.11_SUCCESS_RESPONSE_GBCS.HEX")
    assert decode_der(outcome.message.payload).children[1].content == b"\x00"  # success
    assert gas.gsme.gas.clock_offset == dt.timedelta(0)


def test_cs04b_unjoin_from_the_gas_meter(setup: tuple[World, GasInstallation], duis: DuisPath,
                                         rtds: Path) -> None:
    world, gas = setup
    world.clock.advance(dt.timedelta(days=1))
    ihd = bytes.fromhex("0102030405060708")
    gas.gsme.joined.devices[ihd] = 6
    outcome = duis.send("8.8.2", gas.gsme.eui, {"OtherDeviceID": "01-02-03-04-05-06-07-08"},
                        role=GS)
    _like_rtds(outcome, rtds, "8.8.2_CS04B", "CS04B_8.8.2_SUCCESS_RESPONSE_GBCS.HEX")
    assert ihd not in gas.gsme.joined.devices


# --- the comms hub function's device log (CCS01 / CCS02 via 8.11) -----------------------------------


def test_ccs01_ccs02_device_log_through_duis(setup: tuple[World, GasInstallation],
                                             duis: DuisPath, rtds: Path) -> None:
    world, _gas = setup
    hub = world.home(0).hub
    newcomer = Eui64.parse("00DB1234567890F5")
    alerts = len(hub.alerts)
    outcome = duis.send("8.11", hub.eui, {
        "DeviceID": "00-DB-12-34-56-78-90-F5", "RequestType": "Add",
        "AddDeviceToCHFWhitelist": {"JoinTimePeriod": "90",
                                    "InstallCode": "83FED3407A939723A5C639B26916D505"}})
    _like_rtds(outcome, rtds, "8.11_CCS01", "CCS01_8.11_SUCCESS_RESPONSE_GBCS.HEX")
    assert outcome.message.recipient == world.dcc.acb.eui.value  # sent in the DCC's own name
    assert hub.in_device_log(newcomer) and len(hub.alerts) == alerts + 1  # CS14
    outcome = duis.send("8.11", hub.eui, {"DeviceID": "00-DB-12-34-56-78-90-F5",
                                          "RequestType": "Remove"})
    _like_rtds(outcome, rtds, "8.11_CCS02", "CCS02_8.11_SUCCESS_RESPONSE_GBCS.HEX")
    assert not hub.in_device_log(newcomer) and len(hub.alerts) == alerts + 2


# --- the gas proxy's reliable / unreliable answers, as the RTDS shows them -----------------------


def _clock_status(message: GbcsMessage) -> int:
    date_time = message.general_signing.date_time
    assert date_time is not None and len(date_time) == 12
    return date_time[11]


def test_gcs13a_reliable_and_unreliable_answers_differ_as_in_the_rtds(
        setup: tuple[World, GasInstallation], duis: DuisPath, rtds: Path) -> None:
    """RELIABLE_GPF: the GPF answers, clock status 00, the copy's time; RELIABLE_GSME: the GPF
    answers with the gas meter's own (differing) time, clock status 04; UNRELIABLE: the gas
    meter answers on a clock no GCS28 has synchronised, clock status 02."""
    world, gas = setup
    folder = rtds / "4.1.1_GCS13a"

    def rtds_status(case: str) -> int:
        return _clock_status(rtds_message(folder, f"GCS13a_4.1.1_SUCCESS_{case}_RESPONSE_GBCS.HEX"))

    world.clock.advance(dt.timedelta(days=1))
    gas.gsme.drift(dt.timedelta(0))
    _half_hours(world, gas, 1)
    pushed_at = world.clock.now()
    world.clock.advance(dt.timedelta(minutes=5))
    outcome = duis.send("4.1.1", gas.gpf.eui, role=GS)
    _like_rtds(outcome, rtds, "4.1.1_GCS13a", "GCS13a_4.1.1_SUCCESS_RELIABLE_GPF_RESPONSE_GBCS.HEX")
    assert outcome.message.originator == gas.gpf.eui.value
    assert _clock_status(outcome.message) == rtds_status("RELIABLE_GPF") == 0x00
    assert outcome.message.general_signing.date_time[:7] == cosem_date_time(pushed_at)[:7]  # type: ignore[index]

    gas.gsme.drift(dt.timedelta(hours=9))  # its clock has wandered: its pushes carry its time
    _half_hours(world, gas, 1)
    outcome = duis.send("4.1.1", gas.gpf.eui, role=GS)
    _like_rtds(outcome, rtds, "4.1.1_GCS13a",
               "GCS13a_4.1.1_SUCCESS_RELIABLE_GSME_RESPONSE_GBCS.HEX")
    assert _clock_status(outcome.message) == rtds_status("RELIABLE_GSME") == 0x04
    assert outcome.message.general_signing.date_time[:7] == cosem_date_time(  # type: ignore[index]
        world.clock.now() + dt.timedelta(hours=9))[:7]

    outcome = duis.send("4.1.1", gas.gsme.eui, role=GS)  # addressed to the gas meter itself
    _like_rtds(outcome, rtds, "4.1.1_GCS13a", "GCS13a_4.1.1_SUCCESS_UNRELIABLE_RESPONSE_GBCS.HEX")
    assert outcome.message.originator == gas.gsme.eui.value
    assert _clock_status(outcome.message) == rtds_status("UNRELIABLE") == 0x02

    gas.gsme.drift(dt.timedelta(0))  # synchronised: the meter's own answers are reliable again
    outcome = duis.send("4.1.1", gas.gsme.eui, role=GS)
    assert _clock_status(outcome.message) == 0x00

    world.clock.advance(dt.timedelta(hours=2))  # no push since: the copy is past its age
    outcome = duis.send("4.1.1", gas.gpf.eui, role=GS)
    assert _clock_status(outcome.message) == 0x02 and gas.gpf.last_reliable is False


def test_gcs20_alert_configuration(setup: tuple[World, GasInstallation], duis: DuisPath,
                                   rtds: Path) -> None:
    world, gas = setup
    world.clock.advance(dt.timedelta(days=1))
    settings = {"WANAlert": "Enable", "HANAlert": "Disable", "EventLog": "Enable",
                "Alarm": "Enable"}
    before = gas.gsme.gas.alert_configs
    outcome = duis.send("6.22", gas.gsme.eui, {"GasSupplierAlertEventSettings": {
        "x810E": settings, "x81C4": settings}}, role=GS)
    _like_rtds(outcome, rtds, "6.22_GCS20", "GCS20_6.22_SUCCESS_RESPONSE_GBCS.HEX",
               per_component=True)
    assert set(_statuses(outcome.message)) == {0}
    assert gas.gsme.gas.alert_configs > before


# --- gas priced with the GCS01a/b tariff and debited in prepayment mode ---------------------------


def test_gas_tariff_prices_consumption_and_prepayment_debits_it(rtds: Path) -> None:
    """GCS01a (block tariff, 100 litres at 9600 then 12000 per m3, standing charge 500 a day),
    GCS03 to prepayment, GCS40a credit, all over DUIS; then the gas that flows is debited
    litre by litre across the block boundary, the standing charge at the day's end, GCS01b
    changes the prices, and when the credit runs out the valve closes."""
    world = build_world(homes=1, seed=62, conformance=CONFORMANCE)
    gas = add_gas(world, world.home(0))
    duis = DuisPath.load(world, conformance_path("duis"))
    state = gas.gsme.gas
    duis.send("1.1.1", gas.gsme.eui, gas_block_tariff([9600, 12000], [100], 500), role=GS)
    assert state.tariff is not None and state.tariff.block
    assert state.tariff.block_prices == [9600, 12000] and state.tariff.thresholds_litres == [100]
    duis.send("1.6", gas.gsme.eui, prepayment_mode(0, suspend_disabled=False,
                                                   suspend_emergency=False), role=GS)
    duis.send("1.5", gas.gsme.eui, {"PrepaymentMode": {"AdjustMeterBalance": "3000"}}, role=GS)
    assert state.payment_mode_prepayment and state.meter_balance == 3000
    assert state.disablement_threshold == 0

    gas.gsme.consume(50)  # 50 litres in block 1: 50 x 9600 / 1000
    assert state.meter_balance == 3000 - 480
    gas.gsme.consume(100)  # 50 more in block 1, 50 in block 2
    assert state.meter_balance == 3000 - 480 - (50 * 9600 + 50 * 12000) // 1000
    gas.gsme.end_of_day()  # the standing charge
    assert state.meter_balance == 3000 - 480 - 1080 - 500 == 940

    duis.send("1.2.1", gas.gsme.eui, gas_block_prices([20000, 30000], 500), role=GS)
    assert state.tariff.block_prices == [20000, 30000]
    gas.gsme.consume(30)  # block 1 again (a new tariff starts a new period): 30 x 20000 / 1000
    assert state.meter_balance == 940 - 600 == 340 and state.valve is ValveState.ON
    gas.gsme.consume(20)  # 400 more: the balance goes below the disablement threshold
    assert state.meter_balance == -60 and state.valve is ValveState.OFF
    volume = state.volume_m3_thousandths
    gas.gsme.consume(10)
    assert state.volume_m3_thousandths == volume  # no gas flows, nothing more is charged
    assert state.meter_balance == -60


def test_future_dated_gas_tariff_waits_and_credit_mode_bills(rtds: Path) -> None:
    world = build_world(homes=1, seed=63, conformance=CONFORMANCE)
    gas = add_gas(world, world.home(0))
    duis = DuisPath.load(world, conformance_path("duis"))
    state = gas.gsme.gas
    when = world.clock.now() + dt.timedelta(hours=1)
    duis.send("1.1.1", gas.gsme.eui, gas_block_tariff([10000, 10000], [1000], 0), role=GS,
              execution=when)
    assert state.tariff is None and state.pending_tariff is not None
    gas.gsme.consume(10)
    assert state.bill_to_date == 0  # no tariff in force yet
    world.clock.advance(dt.timedelta(hours=1))
    gas.gsme.consume(10)  # credit mode: the bill to date grows by 10 x 10000 / 1000
    assert state.tariff is not None and state.bill_to_date == 100
