"""The DCC's checks, one response code each, through the in-process service."""

from __future__ import annotations

import datetime as dt

import pytest

from smarthydra.dcc.anomaly import Threshold
from smarthydra.dcc.inventory import Registration, SmiStatus, UserStatus
from smarthydra.duis.codes import DccAlertCode, ResponseCode
from smarthydra.duis.request import CommandVariant, RequestId, ServiceRequest
from smarthydra.eui import Eui64
from smarthydra.parties.party import Outcome
from smarthydra.premises.esme import SupplyState
from smarthydra.sim.world import START, World, build_world
from tests.conftest import CONFORMANCE


@pytest.fixture
def world() -> World:
    conformance = CONFORMANCE if CONFORMANCE.is_dir() else None
    return build_world(
        3, seed=3, conformance=conformance, disable_threshold=Threshold(2, dt.timedelta(days=1))
    )


def _submit(
    world: World,
    *,
    sender: Eui64 | None = None,
    role: str = "IS",
    srv: str = "4.1.1",
    cv: CommandVariant = CommandVariant.NON_CRITICAL_TO_DEVICE,
    target: Eui64 | None = None,
    counter: int | None = None,
    originator: Eui64 | None = None,
) -> ResponseCode:
    sender = sender or world.supplier.eui
    target = target or world.home(0).esme.eui
    rid = (
        world.supplier.next_request_id(target)
        if counter is None
        else RequestId(sender, target, counter)
    )
    rid = RequestId(originator or sender, target, rid.counter)
    return world.dcc.submit(ServiceRequest(rid, sender, role, srv, cv)).code


def test_happy_paths(world: World) -> None:
    read = world.supplier.read_import_registers(world.dcc, world.home(0).esme.eui)
    assert read.outcome is Outcome.DONE
    disable = world.supplier.disable_supply(world.dcc, world.home(0).esme.eui)
    assert disable.outcome is Outcome.DONE
    assert world.home(0).esme.supply is SupplyState.DISABLED
    assert world.home(1).esme.supply is SupplyState.ENABLED


def test_unknown_user_is_e1(world: World) -> None:
    stranger = Eui64.parse("90B3D51F300F0000")
    assert _submit(world, sender=stranger) is ResponseCode.USER_NOT_AUTHORISED


def test_suspended_user_is_e1_and_role_not_held_is_e3(world: World) -> None:
    assert _submit(world, role="GS") is ResponseCode.USER_ROLE_NOT_ACTIVE
    user = world.dcc.users.get(world.supplier.eui)
    assert user is not None
    user.status = UserStatus.SUSPENDED
    assert _submit(world) is ResponseCode.USER_NOT_AUTHORISED


def test_role_not_eligible_is_e2(world: World) -> None:
    result = world.network_operator.disable_supply(world.dcc, world.home(0).esme.eui)
    assert result.outcome is Outcome.REFUSED and result.code is ResponseCode.ROLE_NOT_ELIGIBLE
    assert world.home(0).esme.supply is SupplyState.ENABLED


def test_not_the_registered_supplier_is_e4(world: World) -> None:
    mpan = world.home(0).mpan
    other = Eui64.parse("90B3D51F30030000")
    world.dcc.inventory.register(Registration(mpan, "IS", other, START + dt.timedelta(hours=1)))
    assert _submit(world) is ResponseCode.NOT_DEVICE_OWNER
    # the other home is still ours
    assert _submit(world, target=world.home(1).esme.eui) is ResponseCode.SUCCESS


def test_smi_status_is_e5_and_unknown_device_is_e19(world: World) -> None:
    world.dcc.inventory.set_status(world.home(0).esme.eui, SmiStatus.SUSPENDED)
    assert _submit(world) is ResponseCode.INVALID_SMI_STATUS
    assert _submit(world, target=Eui64.parse("00DB1234567890FF")) is ResponseCode.UNKNOWN_DEVICE


def test_unknown_variant_is_e11(world: World) -> None:
    assert _submit(world, srv="99.9") is ResponseCode.INVALID_REQUEST


def test_critical_with_cv1_and_noncritical_with_cv4_are_e12(world: World) -> None:
    assert (
        _submit(world, srv="7.2", cv=CommandVariant.NON_CRITICAL_TO_DEVICE)
        is ResponseCode.INVALID_COMMAND_VARIANT
    )
    assert (
        _submit(world, srv="4.1.1", cv=CommandVariant.CRITICAL_TRANSFORM)
        is ResponseCode.INVALID_COMMAND_VARIANT
    )


def test_counter_reuse_is_e20_and_foreign_originator_is_e21(world: World) -> None:
    assert _submit(world, counter=5000) is ResponseCode.SUCCESS
    assert _submit(world, counter=5000) is ResponseCode.REQUEST_ID_COUNTER_NOT_INCREASING
    assert _submit(world, counter=4999) is ResponseCode.REQUEST_ID_COUNTER_NOT_INCREASING
    assert (
        _submit(world, counter=6000, originator=world.network_operator.eui)
        is ResponseCode.REQUEST_ID_ORIGINATOR_MISMATCH
    )


def test_anomaly_quarantine_then_release_and_delete(world: World) -> None:
    homes = [h.esme.eui for h in world.homes]
    first = world.supplier.disable_supply(world.dcc, homes[0])
    second = world.supplier.disable_supply(world.dcc, homes[1])
    third = world.supplier.disable_supply(world.dcc, homes[2])
    assert [first.outcome, second.outcome] == [Outcome.DONE, Outcome.DONE]
    assert third.outcome is Outcome.QUARANTINED
    assert third.dcc_response is not None
    assert third.dcc_response.code is ResponseCode.ACKNOWLEDGED
    assert third.dcc_response.dcc_alert is DccAlertCode.QUARANTINED_REQUEST
    assert world.home(2).esme.supply is SupplyState.ENABLED
    [held] = world.dcc.held()
    released = world.dcc.release(held.ticket, operator="dcc-operator-1")
    assert released.code is ResponseCode.SUCCESS
    assert world.home(2).esme.supply is SupplyState.DISABLED
    assert world.dcc.held() == []
    # a fourth is held and then deleted: never sent
    world.clock.advance(dt.timedelta(hours=1))
    fourth = world.supplier.disable_supply(world.dcc, homes[0])
    assert fourth.outcome is Outcome.QUARANTINED
    [held] = world.dcc.held()
    world.dcc.delete(held.ticket, operator="dcc-operator-1")
    assert world.dcc.held() == []
    assert world.dcc.audit.verify() is None


def test_audit_log_detects_tampering(world: World) -> None:
    world.supplier.read_import_registers(world.dcc, world.home(0).esme.eui)
    log = world.dcc.audit
    assert log.verify() is None and len(log.entries) >= 2
    entry = log.entries[0]
    log.entries[0] = type(entry)(
        entry.sequence,
        entry.at,
        "someone-else",
        entry.action,
        entry.detail,
        entry.previous,
        entry.digest,
    )
    assert log.verify() == 0
