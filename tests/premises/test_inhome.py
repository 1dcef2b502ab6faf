"""In-home devices: IHD and CAD see the consumer's own data locally, the PPMID gives emergency
credit and takes top-ups, telehealth readings go to the health service only, and a device not
in the device log gets nothing."""

from __future__ import annotations

import datetime as dt

import pytest

from smarthydra.eui import Eui64
from smarthydra.gbcs.utrn import generate_utrn
from smarthydra.premises.esme_model import PaymentMode, SupplyState
from smarthydra.premises.gpf import push_mirror
from smarthydra.premises.han import HanLink, HanSecurityError, link_key_from_install_code
from smarthydra.premises.hub import DeviceKind
from smarthydra.premises.inhome import (
    BloodPressureMonitor,
    ConsumerAccessDevice,
    HealthReading,
    InHomeDisplay,
    PrepaymentInterface,
    WeighingScale,
)
from smarthydra.sim.home import GasInstallation, add_gas
from smarthydra.sim.world import World, build_world


@pytest.fixture(scope="module")
def home() -> tuple[World, GasInstallation]:
    world = build_world(homes=1, seed=11)
    return world, add_gas(world, world.home(0))


def _half_hours(world: World, gas: GasInstallation, count: int, wh: int) -> None:
    esme = world.home(0).esme
    for _ in range(count):
        world.clock.advance(dt.timedelta(minutes=30))
        esme.model.consume(wh)
        esme.model.end_of_half_hour()
        gas.gsme.consume(30)
        push_mirror(world.home(0).hub, gas.gsme)


def test_ihd_and_cad_show_the_consumers_own_data(home: tuple[World, GasInstallation]) -> None:
    world, gas = home
    hub = world.home(0).hub
    ihd = InHomeDisplay(Eui64.parse("00DB1234567890D0"))
    cad = ConsumerAccessDevice(Eui64.parse("00DB1234567890D1"))
    hub.join(ihd, kind=DeviceKind.IHD)
    hub.join(cad, kind=DeviceKind.CAD)
    _half_hours(world, gas, 4, 500)
    shown = ihd.refresh(hub.receive_from_han)
    assert shown is not None
    assert shown.demand_w == 1000
    assert shown.gas_m3 == gas.gsme.gas.volume_m3_thousandths / 1000 and shown.gas_reliable
    assert cad.refresh(hub.receive_from_han) is not None
    assert cad.export_csv().count("\n") == 2


def test_ppmid_emergency_credit_and_top_up(home: tuple[World, GasInstallation]) -> None:
    world, _gas = home
    hub = world.home(0).hub
    esme = world.home(0).esme
    ppmid = PrepaymentInterface(Eui64.parse("00DB1234567890D2"))
    hub.join(ppmid, kind=DeviceKind.PPMID)
    model = esme.model
    model.credit.mode = PaymentMode.PREPAYMENT
    model.credit.meter_balance = 1000
    model.consume(5000)  # the credit runs out: the meter disconnects
    assert esme.supply is SupplyState.DISABLED
    assert ppmid.accept_emergency_credit(hub.receive_from_han)
    assert esme.supply is SupplyState.ARMED and model.consumer_press_button()
    z = world.supplier.keystore.derive_shared_secret("pp-ka", esme.key_agreement_key)
    utrn = generate_utrn(z, world.supplier.eui.value, esme.eui.value, counter=900, value=2000)
    before = model.credit.meter_balance
    assert ppmid.enter_top_up(hub.receive_from_han, utrn)
    assert model.credit.meter_balance == before + 2000 * 1000
    assert not ppmid.enter_top_up(hub.receive_from_han, utrn)  # replayed
    model.credit.mode = PaymentMode.CREDIT


def test_an_ihd_cannot_act_as_a_ppmid(home: tuple[World, GasInstallation]) -> None:
    world, _gas = home
    hub = world.home(0).hub
    ihd = PrepaymentInterface(Eui64.parse("00DB1234567890D3"))
    hub.join(ihd, kind=DeviceKind.IHD)
    assert not ihd.accept_emergency_credit(hub.receive_from_han)
    assert "not allowed for this device type" in hub.log[-1].event


def test_telehealth_readings_go_to_the_health_service(home: tuple[World, GasInstallation]) -> None:
    world, _gas = home
    hub = world.home(0).hub
    received: list[HealthReading] = []
    hub.health_sink = received.append
    scale = WeighingScale(Eui64.parse("00DB1234567890E0"))
    monitor = BloodPressureMonitor(Eui64.parse("00DB1234567890E1"))
    hub.join(scale, kind=DeviceKind.TYPE_2)
    hub.join(monitor, kind=DeviceKind.TYPE_2)
    now = world.clock.now()
    alerts_before = len(hub.alerts)
    assert scale.weigh(hub.receive_from_han, 72_400, now)
    assert monitor.measure(hub.receive_from_han, 128, 82, 64, now)
    assert [(r.kind, r.values) for r in received] == [
        ("weight", (72_400,)), ("blood pressure", (128, 82, 64))]
    assert all(r.device in (scale.eui, monitor.eui) for r in received)
    assert len(hub.alerts) == alerts_before  # nothing went towards the DCC
    hub.health_sink = None
    assert not scale.weigh(hub.receive_from_han, 72_000, now)  # no health service: not accepted


def test_a_device_not_in_the_log_gets_nothing(home: tuple[World, GasInstallation]) -> None:
    world, _gas = home
    hub = world.home(0).hub
    rogue = InHomeDisplay(Eui64.parse("00DB1234567890EE"))
    rogue.pair(HanLink(rogue.eui.value, link_key_from_install_code(bytes(16))), hub.eui.value)
    assert rogue.refresh(hub.receive_from_han) is None
    assert "source not in device log" in hub.log[-1].event
    unpaired = InHomeDisplay(Eui64.parse("00DB1234567890EF"))
    with pytest.raises(HanSecurityError):
        unpaired.refresh(hub.receive_from_han)
