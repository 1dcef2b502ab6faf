"""Price comparison through the real DCC: the consent is recorded at the DataCommsCompany, an
Other User's service request is refused with E4 without it and goes through with it, and the
hub's sealed 13 months travel through the same register."""

from __future__ import annotations

import datetime as dt

import pytest

from smarthydra.applets import cose
from smarthydra.applets.consent import Consent, DataKind, Granularity
from smarthydra.applets.dcc_route import RoutedReleaseError, parse_routed_answer
from smarthydra.applets.hub import HydraCommandError
from smarthydra.crypto import primitives
from smarthydra.dcc.consent import ConsentNotRecorded, ReceiptRejected
from smarthydra.dcc.inventory import DccUser, UserStatus
from smarthydra.duis.codes import ResponseCode
from smarthydra.duis.request import CommandVariant, RequestId, ServiceRequest
from smarthydra.eui import Eui64
from smarthydra.parties.consent import consent_register
from smarthydra.sim.hydra import HydraHome, HydraParties, serve_meter
from smarthydra.sim.world import build_world
from tests.conftest import CONFORMANCE

OTHER_USER = Eui64.parse("90B3D51F30090000")


def _request(sender: Eui64, target: Eui64, counter: int) -> ServiceRequest:
    period = {"StartDateTime": "2025-01-01T00:00:00Z", "EndDateTime": "2026-01-01T00:00:00Z"}
    return ServiceRequest(RequestId(sender, target, counter), sender, "OU", "4.17",
                          CommandVariant.NON_CRITICAL_TO_DEVICE, {"ReadLogPeriod": period})


def test_other_user_needs_a_consent_recorded_at_the_dcc() -> None:
    if not CONFORMANCE.is_dir():
        pytest.skip(f"conformance data not found at {CONFORMANCE} (the OU rows of the matrix)")
    world = build_world(1, conformance=CONFORMANCE)
    parties = HydraParties.create()
    home = HydraHome.create(parties)
    first_day = dt.date(2025, 12, 3)
    for n in range(30):
        home.live_day(first_day + dt.timedelta(days=n))
    ou_name = parties.keys["other-user"].name
    world.dcc.users.add(DccUser(OTHER_USER, ou_name, {"OU": UserStatus.ACTIVE},
                                primitives.generate_private_key().public_key()))
    register = consent_register(parties.issuer, world.clock)
    register.enrol_hub(home.setup.hub, world.home(0).mpan)
    world.dcc.consent_check = register.check
    esme = world.home(0).esme.eui

    refused = world.dcc.submit(_request(OTHER_USER, esme, 1))
    assert refused.code is ResponseCode.NOT_DEVICE_OWNER and "no consent" in refused.detail
    assert any(e.action == "refused" and e.detail.get("code") == "E4"
               for e in world.dcc.audit.entries)
    with pytest.raises(HydraCommandError):  # the applet refuses too
        home.host.price_comparison()

    today = world.clock.now().date().toordinal()
    receipt = home.host.grant_via_supplier(parties.supplier.consent_instruction(
        "grant", Consent(ou_name, DataKind.CONSUMPTION, Granularity.DAILY,
                         first_day.toordinal(), today + 30)))
    with pytest.raises(ReceiptRejected):  # a receipt must verify as the hub's
        register.record(receipt[:-1] + bytes((receipt[-1] ^ 1,)), home.setup.hub)
    register.record(receipt, home.setup.hub)
    allowed = world.dcc.submit(_request(OTHER_USER, esme, 2))
    assert allowed.code.is_success, allowed.detail
    delivered: list[dict[str, object]] = []
    comparison = home.host.price_comparison()
    register.forward(comparison, lambda sealed: delivered.append(parties.other_user.open(sealed)))
    assert len(delivered) == 1 and len(delivered[0]["data"]) == 30  # type: ignore[arg-type]

    register.record(home.host.revoke_via_supplier(
        parties.supplier.consent_instruction("revoke", ou_name)), home.setup.hub)
    assert world.dcc.submit(_request(OTHER_USER, esme, 3)).code is ResponseCode.NOT_DEVICE_OWNER
    with pytest.raises(ConsentNotRecorded):  # nothing more reaches the Other User
        register.forward(comparison, lambda sealed: delivered.append({}))
    assert len(delivered) == 1
    # a registered supplier is not affected by the Other-User gate
    assert world.supplier.read_import_registers(world.dcc, esme).code.is_success


def test_consented_request_is_answered_by_the_sealed_release() -> None:
    """One path: the Other User's 4.17 passes the DCC's consent gate, the ECS66 command goes
    over the WAN to the Hydra hub serving the meter, the meter checks it over the HAN, and the
    hub answers with the price-comparison applet's sealed 13 months (raw log dropped at home);
    the DCC carries that back and cannot open it; revocation stops it from the next cycle."""
    if not CONFORMANCE.is_dir():
        pytest.skip(f"conformance data not found at {CONFORMANCE} (the OU rows of the matrix)")
    world = build_world(1, conformance=CONFORMANCE)
    parties = HydraParties.create()
    home = HydraHome.create(parties)
    first_day = dt.date(2025, 12, 3)
    for n in range(30):
        home.live_day(first_day + dt.timedelta(days=n))
    ou_name = parties.keys["other-user"].name
    world.dcc.users.add(DccUser(OTHER_USER, ou_name, {"OU": UserStatus.ACTIVE},
                                primitives.generate_private_key().public_key()))
    register = consent_register(parties.issuer, world.clock)
    register.enrol_hub(home.setup.hub, world.home(0).mpan)
    world.dcc.consent_check = register.check
    meter = world.home(0)
    route = serve_meter(home, world.wan, meter.hub.eui, meter.esme, {OTHER_USER.value: ou_name})
    uplink: list[bytes] = []
    world.wan.uplink_tap = lambda _hub, frame: uplink.append(frame)

    assert world.dcc.submit(_request(OTHER_USER, meter.esme.eui, 1)).code is (
        ResponseCode.NOT_DEVICE_OWNER)
    assert route.released == 0  # refused at the DCC: nothing reached the hub

    today = world.clock.now().date().toordinal()
    register.record(home.host.grant_via_supplier(parties.supplier.consent_instruction(
        "grant", Consent(ou_name, DataKind.CONSUMPTION, Granularity.DAILY,
                         first_day.toordinal(), today + 30))), home.setup.hub)
    response = world.dcc.submit(_request(OTHER_USER, meter.esme.eui, 2))
    assert response.code.is_success and response.gbcs is not None, response.detail
    sealed = parse_routed_answer(response.gbcs)
    opened = parties.other_user.open(sealed)
    assert opened["type"] == "consumption" and len(opened["data"]) == 30
    assert opened["granularity"] == Granularity.DAILY.label
    for outsider in (parties.dcc_keys, parties.csp_keys, parties.keys["supplier"]):
        with pytest.raises(cose.EnvelopeError):  # the DCC, the CSP, the supplier: sealed out
            cose.open_sealed(sealed, outsider.agreement)
    assert uplink == [response.gbcs] and route.released == 1
    assert any(e.event == "released" and e.party == ou_name for e in home.host.release_log())

    # the consumer revokes at the hub; the receipt reaches the DCC: refused there next cycle
    world.clock.advance(dt.timedelta(days=1))
    register.record(home.host.revoke_via_supplier(
        parties.supplier.consent_instruction("revoke", ou_name)), home.setup.hub)
    assert world.dcc.submit(_request(OTHER_USER, meter.esme.eui, 3)).code is (
        ResponseCode.NOT_DEVICE_OWNER)
    assert route.released == 1

    # and with a DCC register that missed the revocation, the applet refuses at the hub
    register.record(home.host.grant_via_supplier(parties.supplier.consent_instruction(
        "grant", Consent(ou_name, DataKind.CONSUMPTION, Granularity.DAILY,
                         first_day.toordinal(), today + 30))), home.setup.hub)
    home.host.revoke_at_ihd(ou_name)  # receipt never sent to the DCC
    stale = world.dcc.submit(_request(OTHER_USER, meter.esme.eui, 4))
    assert stale.code.is_success and stale.gbcs is not None
    with pytest.raises(RoutedReleaseError, match="refused"):
        parse_routed_answer(stale.gbcs)
    assert route.released == 1 and route.refused == 1
    # the meter's other users are served as before, through the same hub
    assert world.supplier.read_import_registers(world.dcc, meter.esme.eui).code.is_success
