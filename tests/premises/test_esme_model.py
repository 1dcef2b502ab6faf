"""The ESME's model: registers, tariffs, credit, load switch, logs, and the COSEM server rules;
and alerts travelling meter -> HAN -> hub -> WAN uplink."""

from __future__ import annotations

import datetime as dt
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from smarthydra.clock import FixedClock
from smarthydra.gbcs import security
from smarthydra.gbcs.axdr import BitString, Data, DataType, long_unsigned
from smarthydra.gbcs.envelope import CraFlag, decode_message
from smarthydra.gbcs.xdlms import (
    AccessRequest,
    CosemDescriptor,
    DataAccessResult,
    RequestKind,
    RequestSpecification,
)
from smarthydra.premises.cosem import CosemServer, obis
from smarthydra.premises.esme_model import (
    EVENT_SUPPLY_DISCONNECTED,
    EsmeModel,
    PaymentMode,
    SupplyState,
)
from smarthydra.premises.protected import serve
from smarthydra.sim.world import build_world


def _model() -> tuple[EsmeModel, FixedClock]:
    clock = FixedClock(dt.datetime(2026, 2, 1, 0, 0, tzinfo=dt.UTC))
    return EsmeModel(clock, rng=random.Random(1)), clock


def test_tou_registers_follow_the_switching_table() -> None:
    model, clock = _model()
    model.tariff.tou_switching = [(0, 0), (7 * 60, 1), (23 * 60, 0)]
    model.consume(100)
    clock.advance(dt.timedelta(hours=8))
    model.consume(250)
    assert model.registers.tou_wh[:2] == [100, 250]
    assert model.registers.active_import_wh == 350


def test_prepayment_charges_standing_charge_and_recovers_debt() -> None:
    model, _clock = _model()
    model.credit.mode = PaymentMode.PREPAYMENT
    model.credit.meter_balance = 10_000_000  # £100
    model.tariff.tou_prices = [20_000] * 48  # 20p/kWh at scale -5
    model.credit.debt = [300_000, 0, 0]
    model.credit.debt_recovery_per_day = [100_000, 0, 0]
    model.consume(1000)  # 1 kWh
    assert model.credit.meter_balance == 10_000_000 - 20_000
    model.end_of_day()
    assert model.credit.debt[0] == 200_000
    assert model.credit.meter_balance == 10_000_000 - 20_000 - model.tariff.standing_charge - 100_000
    assert model.daily_log[-1].meter_balance == model.credit.meter_balance


def test_credit_exhaustion_disconnects_emergency_credit_arms() -> None:
    model, _clock = _model()
    model.credit.mode = PaymentMode.PREPAYMENT
    model.credit.meter_balance = 1000
    model.consume(2000)
    assert model.supply is SupplyState.DISABLED
    before = model.registers.active_import_wh
    model.consume(500)  # no energy flows while disconnected
    assert model.registers.active_import_wh == before
    assert model.activate_emergency_credit()
    assert model.supply is SupplyState.ARMED and model.consumer_press_button()
    assert not model.activate_emergency_credit()  # once only


def test_randomised_offset_restoration() -> None:
    model, clock = _model()
    model.supply = SupplyState.DISABLED
    close_at = model.restore_with_randomised_offset()
    assert clock.now() < close_at <= clock.now() + dt.timedelta(seconds=1800)
    model.consume(10)
    assert model.supply is SupplyState.DISABLED
    clock.current = close_at
    model.consume(10)
    assert model.supply is SupplyState.ENABLED


def test_max_demand_and_voltage_quality() -> None:
    model, _clock = _model()
    model.consume(1500)  # 3 kW over a half hour
    model.consume(500)
    assert model.max_demand_w == 3000
    model.end_of_half_hour(210)
    model.end_of_half_hour(260)
    assert (model.sag_count, model.swell_count) == (1, 1)


def test_cosem_server_first_failure_then_other_reason() -> None:
    server = CosemServer()
    stored = server.value(1, "0-0:1.2.3.255", 2, long_unsigned(5))
    request = AccessRequest(0x20000001, None, [
        RequestSpecification(RequestKind.SET, CosemDescriptor(1, obis("0-0:1.2.3.255"), 2)),
        RequestSpecification(RequestKind.SET, CosemDescriptor(1, obis("0-0:1.2.3.255"), 2)),
        RequestSpecification(RequestKind.GET, CosemDescriptor(1, obis("0-0:9.9.9.255"), 2)),
        RequestSpecification(RequestKind.GET, CosemDescriptor(1, obis("0-0:1.2.3.255"), 2)),
    ], [long_unsigned(7), Data(DataType.BOOLEAN, True), Data(DataType.NULL_DATA),
        Data(DataType.NULL_DATA)])
    response = server.handle(request)
    assert [r.result for r in response.results] == [
        DataAccessResult.SUCCESS, DataAccessResult.TYPE_UNMATCHED, DataAccessResult.OTHER_REASON,
        DataAccessResult.OTHER_REASON]
    assert stored.value == long_unsigned(7)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120))
def test_any_payload_gets_an_answer_not_an_exception(payload: bytes) -> None:
    model, _clock = _model()
    answer = serve(model, payload, b"M" * 8, lambda plain: b"\x31" + bytes(4) + plain)
    assert answer.payload[:1] == b"\xda"


def test_an_alert_reaches_the_wan_through_the_hub_and_filters_apply() -> None:
    world = build_world(homes=1, seed=41)
    home = world.home(0)
    uplink: list[bytes] = []
    home.hub.alert_sink = uplink.append
    model = home.esme.model
    model.alert_filters[obis("0-30:97.98.11.255")] = BitString(8, b"\x40")  # only bit 1 on
    model.credit.mode = PaymentMode.PREPAYMENT
    model.credit.meter_balance = 0
    model.consume(100)
    assert model.supply is SupplyState.DISABLED
    assert [code for code, _at in model.outbox] == [0x8F1C]  # disconnection alert filtered
    assert any(e.code == EVENT_SUPPLY_DISCONNECTED for e in model.event_log)
    for alert in home.esme.drain_alerts():
        home.hub.transmit_from(home.esme.eui, alert)
    assert len(uplink) == 1
    message = decode_message(uplink[0])
    assert message.cra_flag is CraFlag.ALERT and message.recipient == world.supplier.eui.value
    z = world.supplier.keystore.derive_shared_secret("ka", home.esme.key_agreement_key)
    assert security.verify_mac(security.message_mac_key(z, message), message)


def test_dropped_commands_are_in_the_security_log() -> None:
    world = build_world(homes=1, seed=43)
    esme = world.home(0).esme
    assert esme.receive(b"\xdd" + bytes(40)) is None
    assert esme.model.security_events and esme.model.security_events[-1].code == 0x8F01


def test_block_thresholds_move_consumption_into_dearer_blocks() -> None:
    model, _clock = _model()
    model.tariff.block_thresholds_wh[0] = [1000, 2000]
    model.tariff.tou_prices = [10_000] * 48
    model.tariff.block_prices[1][0] = 5_000
    model.credit.mode = PaymentMode.PREPAYMENT
    model.credit.meter_balance = 10_000_000
    model.consume(900)  # block 1 (a half hour is priced at the block it starts in)
    model.consume(900)  # still block 1: 900 Wh used when it started
    model.consume(500)  # 1800 Wh used: block 2
    assert model.registers.block_wh[0][0] == 1800 and model.registers.block_wh[1][0] == 500
    assert model.credit.meter_balance == 10_000_000 - 1800 * 10 - 500 * 15
