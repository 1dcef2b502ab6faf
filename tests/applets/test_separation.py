"""Separation: who can read what. Telehealth is for the provider only; energy data is not for
the provider; an applet cannot reach another applet's data except through what it shares."""

from __future__ import annotations

import pytest

from smarthydra.applets import cose
from smarthydra.applets.base import HydraApplet
from smarthydra.applets.hub import (
    AUDIT,
    BILLING,
    METER_DATA,
    POWER_QUALITY,
    TELEHEALTH,
    HydraCommandError,
)
from smarthydra.applets.tariff import economy7
from smarthydra.applets.telehealth import HealthReading
from smarthydra.card.apdu import SW
from smarthydra.card.applet import APDU, ISOException
from smarthydra.card.firewall import SecurityException, entered
from smarthydra.card.registry import LoadFile
from smarthydra.parties.hydra import PartyKeys, StatementRejected
from smarthydra.sim.hydra import BP_MONITOR, SCALE, HydraHome
from tests.applets.helpers import day, home_with_days


@pytest.fixture(scope="module")
def home() -> HydraHome:
    home = home_with_days(3)
    home.host.set_tariff(home.parties.supplier.tariff_message(economy7()))
    return home


def _reading(home: HydraHome) -> bytes:
    return home.host.health_reading(SCALE, HealthReading("weight", 70_500, "g", 1_767_225_600))


def test_only_the_provider_opens_telehealth(home: HydraHome) -> None:
    sealed = _reading(home)
    received = home.parties.telehealth.receive(sealed)
    assert received.reading.value == 70_500 and received.device == SCALE
    # the supplier, the DCC and the CSP (and every other energy party) cannot open it
    energy_parties = [home.parties.keys[p] for p in ("supplier", "distributor", "agent",
                                                     "other-user", "ombudsman")]
    for keys in [*energy_parties, home.parties.dcc_keys, home.parties.csp_keys]:
        with pytest.raises(cose.EnvelopeError):
            cose.open_sealed(sealed, keys.agreement)
    # the carrier sees the envelope only: no field of the reading in clear
    for clear in (b"weight", (70_500).to_bytes(4, "big")[1:], SCALE):
        assert clear not in sealed
    with pytest.raises(StatementRejected):
        home.parties.supplier.open(sealed)


def test_provider_cannot_read_energy_data(home: HydraHome) -> None:
    bill = home.host.close_period(day(0), day(2))
    quality = home.host.power_quality(day(1))
    provider = home.parties.telehealth
    for sealed in (bill, quality):
        with pytest.raises(StatementRejected):
            provider.open(sealed)
        with pytest.raises(cose.EnvelopeError):
            cose.open_sealed(sealed, home.parties.keys["telehealth"].agreement)


def test_unenrolled_device_and_bad_readings_refused(home: HydraHome) -> None:
    with pytest.raises(HydraCommandError) as refused:
        home.host.health_reading(b"\x99" * 8, HealthReading("weight", 1, "g", 0))
    assert refused.value.sw == SW.SECURITY_STATUS_NOT_SATISFIED
    for bad in (b"\x00" * 3, BP_MONITOR + b"\xff\xff", BP_MONITOR + cose.canonical(
            {"kind": "weight", "value": 1, "unit": "mmHg", "time": 0})):
        with pytest.raises(HydraCommandError) as refused:
            home.host.call(TELEHEALTH, 0x60, bad)
        assert refused.value.sw in (SW.WRONG_LENGTH, SW.WRONG_DATA)


class SnoopApplet(HydraApplet):
    """A provider's applet that tries to reach the others' data."""

    role = "snoop"
    required_settings = frozenset({"hub", "party", "party-ka"})

    def command(self, apdu: APDU, data: bytes) -> bytes | None:
        target = (METER_DATA, BILLING, AUDIT)[apdu.p1]
        shared = self.card.lookup_shareable(target.aid, 0)
        if shared is None:
            raise ISOException(SW.CONDITIONS_NOT_SATISFIED, "refused")
        return b"\x01"


SNOOP_LF = bytes.fromhex("F048594452417F00")


def _install_snoop(home: HydraHome) -> bytes:
    aid = bytes.fromhex("F048594452417F01")
    manager = home.host.card.manager
    if manager.entry(aid) is None:
        manager.register_load_file(LoadFile(SNOOP_LF, {SNOOP_LF + b"\x01": SnoopApplet}, "snoop"))
        keys = PartyKeys("snooper")
        manager.install(SNOOP_LF, SNOOP_LF + b"\x01", aid, params=cose.canonical(
            {"hub": home.setup.hub, "party": "snooper", "party-ka": keys.public.agreement}))
    return aid


def test_an_applet_gets_no_share_of_another(home: HydraHome) -> None:
    from smarthydra.applets.hub import AppletSlot

    _install_snoop(home)
    snoop = AppletSlot("snoop", 0x7F, "")
    for target in range(3):
        with pytest.raises(HydraCommandError) as refused:
            home.host.call(snoop, 0x77, p1=target)
        assert refused.value.sw == SW.CONDITIONS_NOT_SATISFIED


def test_firewall_stops_direct_access(home: HydraHome) -> None:
    runtime = home.host.card.runtime
    vault = runtime.applet(METER_DATA.aid)
    billing = runtime.applet(BILLING.aid)
    telehealth_context = runtime.context_of_applet(TELEHEALTH.aid)
    assert vault is not None and billing is not None and telehealth_context is not None
    service = vault.service  # handed over by someone else: the role check still holds
    with entered(telehealth_context, TELEHEALTH.aid):
        with pytest.raises(SecurityException):
            _ = vault.hh_ring
        with pytest.raises(SecurityException):
            _ = billing.tariff_raw
        with pytest.raises(SecurityException):
            billing.records()
        with pytest.raises(SecurityException):
            _ = vault.service
        # even holding the meter-data service object, a caller without a role is refused
        with pytest.raises(ISOException) as refused:
            service.half_hours(day(0).toordinal(), day(0).toordinal())
        assert refused.value.sw == SW.SECURITY_STATUS_NOT_SATISFIED


def test_roles_limit_what_a_sharer_may_read(home: HydraHome) -> None:
    """The power-quality applet holds the service, but may read voltages only."""
    runtime = home.host.card.runtime
    vault = runtime.applet(METER_DATA.aid)
    pq_context = runtime.context_of_applet(POWER_QUALITY.aid)
    assert vault is not None and pq_context is not None
    with entered(pq_context, POWER_QUALITY.aid):
        service = runtime.services.lookup_shareable(METER_DATA.aid, 0)
        assert service is not None
        assert len(service.voltages(day(1).toordinal())) == 48
        with pytest.raises(ISOException):
            service.half_hours(day(1).toordinal(), day(1).toordinal())
        with pytest.raises(ISOException):
            service.consented("consumption", day(1).toordinal(), day(1).toordinal())
        # and the billing applet's records are for the audit applet alone
        assert runtime.services.lookup_shareable(BILLING.aid, 0) is None


def test_each_provider_has_its_own_security_domain(home: HydraHome) -> None:
    from smarthydra.applets.hub import SLOTS_BY_NAME, ssd_aid
    from smarthydra.card.gp.client import GpClient, GpCommandError
    from smarthydra.card.gp.errors import GpError
    from smarthydra.card.gp.scp03 import Scp03StaticKeys

    manager = home.host.card.manager
    for slot in SLOTS_BY_NAME.values():
        entry = manager.entry(slot.aid)
        assert entry is not None
        if slot.ssd:
            assert entry.associated_sd == ssd_aid(slot.ssd)
    supplier_key = home.setup.ssd_keys["supplier"]
    telehealth_key = home.setup.ssd_keys["telehealth"]
    client = GpClient(home.host.card.transmit)
    client.select(ssd_aid("supplier"))
    client.open_scp03(Scp03StaticKeys(supplier_key, supplier_key, supplier_key, 0x30))
    intruder = GpClient(home.host.card.transmit)
    intruder.select(ssd_aid("telehealth"))
    with pytest.raises((GpCommandError, GpError)):  # the supplier's keys do not open it
        intruder.open_scp03(Scp03StaticKeys(supplier_key, supplier_key, supplier_key, 0x30))
    assert telehealth_key != supplier_key
    home.host._selected = None  # the host's SELECT state was changed by the GP clients
