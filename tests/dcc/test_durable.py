"""The durable DCC (dccboxed profile): I99 only once committed, dispatch exactly once,
quarantine with alerts and operator release, delivery with retries, polling, audit tamper."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import delete, select, update

from smarthydra.dcc.anomaly import Threshold
from smarthydra.dcc.delivery import HOLD_FOR, DeliveryFailed, DeliveryWorker, next_attempt
from smarthydra.dcc.gateway import Endpoint, GatewayReply
from smarthydra.dcc.store import (
    OutboxState,
    RequestState,
    SqlDccStore,
    audit_log,
    metadata,
    service_requests,
)
from smarthydra.dcc.thresholds import submit_threshold_file
from smarthydra.duis.codes import DccAlertCode, ResponseCode
from smarthydra.duis.request import CommandVariant
from smarthydra.duis.xml import (
    DuisResponse,
    build_signed_precommand_request,
    parse_xml,
    read_response,
)
from smarthydra.duis.xmldsig import verify_enveloped
from smarthydra.eui import Eui64
from smarthydra.gbcs.builder import sign_precommand
from tests.dcc.dccboxed_helpers import ESME, Boxed, boxed, gbcs_keystore, xml_signer


def answer(setup: Boxed, reply: GatewayReply) -> DuisResponse:
    assert reply.content_type == "application/xml", reply
    root = parse_xml(reply.body)
    setup.profile.gateway.schema.validate(root)
    verify_enveloped(root, setup.profile.gateway.certificates)  # signed by the DCC
    return read_response(root)


def send(setup: Boxed, body: bytes, endpoint: Endpoint = Endpoint.SEND) -> DuisResponse:
    return answer(setup, setup.profile.gateway.handle(endpoint, body))


class EchoHub:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def receive_from_wan(self, message: bytes) -> bytes | None:
        self.frames.append(message)
        return b"\xdd\x00response"


# --- acceptance: the DCC Boxed supplier's signed request --------------------------------------


def test_request_signed_with_the_dccboxed_supplier_key_is_accepted(database_url: str) -> None:
    setup = boxed(database_url)
    rid = setup.rid()
    response = send(setup, setup.request(rid=rid))
    assert response.code is ResponseCode.ACKNOWLEDGED
    stored = setup.profile.store.request(str(rid))
    # MAC'd and queued for the WAN in the transaction that accepted it, once.
    assert stored is not None and stored.state == RequestState.DISPATCHED
    assert setup.profile.store.frames_for(str(rid)) == 1
    assert setup.profile.dcc.dispatch_accepted() == 0
    assert setup.profile.store.frames_for(str(rid)) == 1


def test_deferred_dispatch_acknowledges_then_queues_once(database_url: str) -> None:
    setup = boxed(database_url)
    setup.profile.dcc.dispatch_on_accept = False
    rids = [setup.rid() for _ in range(3)]
    for rid in rids:
        assert send(setup, setup.request(rid=rid)).code is ResponseCode.ACKNOWLEDGED
        stored = setup.profile.store.request(str(rid))
        assert stored is not None and stored.state == RequestState.ACCEPTED
    # Dispatch: MAC'd and queued for the WAN once, in one batch; a second round changes nothing.
    assert setup.profile.dcc.dispatch_accepted() == 3
    assert setup.profile.dcc.dispatch_accepted() == 0
    assert [setup.profile.store.frames_for(str(rid)) for rid in rids] == [1, 1, 1]
    # The frames are the ones dispatch on accept makes: same GBCS, same ACB MAC.
    frames = {f.request_id: f.frame for f in setup.profile.store.queued_frames()}
    other = boxed()  # dispatch on accept, the default
    for rid in rids:
        assert send(other, other.request(rid=rid)).code is ResponseCode.ACKNOWLEDGED
    again = {f.request_id: f.frame for f in other.profile.store.queued_frames()}
    assert again == frames


def test_each_refusal_has_its_code() -> None:
    setup = boxed()
    rid = setup.rid()
    assert send(setup, setup.request(rid=rid)).code is ResponseCode.ACKNOWLEDGED
    # reused RequestID counter
    assert send(setup, setup.request(rid=rid)).code is ResponseCode.REQUEST_ID_COUNTER_NOT_INCREASING
    # schema-invalid body: 400 with a signed E11
    bad = setup.request().replace(b"<sr:ServiceReference>4.1</sr:ServiceReference>", b"")
    reply = setup.profile.gateway.handle(Endpoint.SEND, bad)
    assert reply.status == 400
    assert answer(setup, reply).code is ResponseCode.INVALID_REQUEST
    # bad signature: the body changed after signing
    tampered = setup.request(rid=setup.rid(counter=5_000)).replace(b":5000<", b":5001<")
    reply = setup.profile.gateway.handle(Endpoint.SEND, tampered)
    assert reply.status == 400 and "digest" in reply.detail
    assert answer(setup, reply).code is ResponseCode.USER_NOT_AUTHORISED


def test_revoked_and_unknown_certificates_are_refused() -> None:
    supplier = xml_signer("90B3D51F30010000")
    setup = boxed(revoked=(supplier.certificate.serial,))
    reply = setup.profile.gateway.handle(Endpoint.SEND, setup.request())
    assert reply.status == 400 and "revoked" in reply.detail
    assert answer(setup, reply).code is ResponseCode.USER_NOT_AUTHORISED
    body = setup.request().replace(
        f"<ds:X509SerialNumber>{supplier.certificate.serial}".encode(),
        b"<ds:X509SerialNumber>12345",
    )
    reply = setup.profile.gateway.handle(Endpoint.SEND, body)
    assert reply.status == 400 and "no certificate with serial 12345" in reply.detail


def test_network_operator_cannot_disable_supply_e2_and_others_meter_e4() -> None:
    setup = boxed()
    operator = xml_signer("90B3D51F30020000")
    rid = setup.rid()
    from smarthydra.duis.request import RequestId

    op_rid = RequestId(Eui64.parse("90B3D51F30020000"), ESME, 1)
    reply = send(
        setup,
        setup.request("7.2", CommandVariant.CRITICAL_TRANSFORM, rid=op_rid, signer=operator),
        Endpoint.TRANSFORM,
    )
    assert reply.code is ResponseCode.ROLE_NOT_ELIGIBLE
    # The supplier after a change of supplier: not the registered IS for the MPAN today.
    from smarthydra.dcc.dccboxed import MPAN
    from smarthydra.dcc.inventory import Registration

    setup.profile.dcc.inventory.register(
        Registration(MPAN, "IS", Eui64.parse("90B3D51F30030000"), setup.clock.now())
    )
    assert send(setup, setup.request(rid=rid)).code is ResponseCode.NOT_DEVICE_OWNER


# --- critical: CV 4 -> pre-command -> signed -> CV 5 -> device -> response ---------------------


def test_critical_request_through_the_durable_path(database_url: str) -> None:
    setup = boxed(database_url)
    hub = EchoHub()
    setup.profile.dcc.wan.connect(Eui64.parse("00DB1234567890A1"), hub)
    rid = setup.rid()
    transformed = send(
        setup, setup.request("7.2", CommandVariant.CRITICAL_TRANSFORM, rid=rid), Endpoint.TRANSFORM
    )
    assert transformed.code is ResponseCode.SUCCESS and transformed.precommand
    # A restart between transform and signed pre-command loses nothing.
    from smarthydra.dcc.dccboxed import build_dccboxed
    from tests.conftest import conformance_path

    if database_url != "sqlite://":
        setup.profile = build_dccboxed(conformance_path(), database_url, clock=setup.clock)
        setup.profile.dcc.wan.connect(Eui64.parse("00DB1234567890A1"), hub)
    signed = sign_precommand(transformed.precommand, keystore=gbcs_keystore("90B3D51F30010000"), label="ds")
    body = setup.supplier.sign_bytes(
        build_signed_precommand_request(
            rid, CommandVariant.CRITICAL_SIGNED_TO_DEVICE, "7.2", signed.wire()
        )
    )
    assert send(setup, body).code is ResponseCode.ACKNOWLEDGED
    assert send(setup, body).code is not ResponseCode.ACKNOWLEDGED  # once only
    assert setup.profile.gateway.work() == 2  # dispatched, then carried
    assert len(hub.frames) == 1
    messages = setup.profile.store.messages(user="90B3D51F30010000")
    assert [m.message["code"] for m in messages] == ["I0"]
    polled = setup.profile.gateway.poll(Eui64.parse("90B3D51F30010000"))
    response = answer(setup, polled)
    assert response.code is ResponseCode.SUCCESS and response.gbcs == b"\xdd\x00response"
    assert setup.profile.gateway.poll(Eui64.parse("90B3D51F30010000")).status == 204


def test_signed_precommand_that_differs_is_refused() -> None:
    setup = boxed()
    rid = setup.rid()
    transformed = send(
        setup, setup.request("7.2", CommandVariant.CRITICAL_TRANSFORM, rid=rid), Endpoint.TRANSFORM
    )
    assert transformed.precommand is not None
    forged = bytearray(transformed.precommand)
    forged[-1] ^= 1
    signed = sign_precommand(bytes(forged), keystore=gbcs_keystore("90B3D51F30010000"), label="ds")
    body = setup.supplier.sign_bytes(
        build_signed_precommand_request(
            rid, CommandVariant.CRITICAL_SIGNED_TO_DEVICE, "7.2", signed.wire()
        )
    )
    assert send(setup, body).code is ResponseCode.INVALID_REQUEST


# --- anomaly detection -------------------------------------------------------------------------


def test_threshold_file_quarantine_alert_and_release(database_url: str) -> None:
    setup = boxed(database_url)
    store = setup.profile.store
    submit_threshold_file(
        store,
        setup.profile.dcc.anomaly,
        Eui64.parse("90B3D51F30010000"),
        "# kind,srv,limit,window\nthreshold,4.1.1,2,3600\n",
        setup.profile.dcc.matrix,
    )
    codes = [send(setup, setup.request()) for _ in range(3)]
    assert [c.code for c in codes] == [ResponseCode.ACKNOWLEDGED] * 3
    held = store.quarantined()
    assert len(held) == 1 and "user threshold" in held[0].reason
    alerts = [m for m in store.messages(user="90B3D51F30010000") if m.kind == "alert"]
    assert alerts and alerts[0].message["alert"] == DccAlertCode.QUARANTINED_REQUEST.value
    alert = answer(setup, setup.profile.gateway.poll(Eui64.parse("90B3D51F30010000")))
    assert alert.dcc_alert is DccAlertCode.QUARANTINED_REQUEST
    assert alert.quarantine_ticket == held[0].ticket
    # The two accepted were queued for the WAN as they were accepted; the held one is not.
    assert setup.profile.dcc.dispatch_accepted() == 0
    assert store.frames_for(held[0].request_id) == 0
    setup.profile.dcc.release_durable(held[0].ticket, "operator-1")
    assert setup.profile.dcc.dispatch_accepted() == 1
    assert store.frames_for(held[0].request_id) == 1
    with pytest.raises(Exception, match="already released"):
        setup.profile.dcc.delete_durable(held[0].ticket, "operator-1")


def test_dcc_value_limit_quarantines_a_large_balance_adjustment() -> None:
    setup = boxed()
    submit_threshold_file(
        setup.profile.store,
        setup.profile.dcc.anomaly,
        None,
        "value-limit,1.5,10000,AdjustMeterBalance\nthreshold,7.2,100,86400\n",
    )
    anomaly = setup.profile.dcc.anomaly
    assert anomaly.check_values("1.5", {"CreditMode": {"AdjustMeterBalance": "-25000"}})
    assert anomaly.check_values("1.5", {"CreditMode": {"AdjustMeterBalance": "500"}}) is None
    assert anomaly.dcc_thresholds["7.2"] == Threshold(100, dt.timedelta(days=1))


# --- delivery ------------------------------------------------------------------------------------


def test_delivery_retries_within_300s_and_expires_after_two_days() -> None:
    setup = boxed()
    store = setup.profile.store
    store.queue_message(
        "90B3D51F30010000",
        "x",
        "response",
        {"request_id": str(setup.rid()), "srv": "4.1.1", "code": "I0", "gbcs": "dd00"},
        setup.clock.now(),
    )
    attempts: list[dt.datetime] = []
    up = {"yes": False}

    def post(url: str, document: bytes) -> None:
        attempts.append(setup.clock.now())
        if not up["yes"]:
            raise DeliveryFailed("connection refused")
        assert url == "https://supplier.example/duis"
        read_response(parse_xml(document))

    worker = DeliveryWorker(
        store, setup.clock, lambda _user: "https://supplier.example/duis",
        setup.profile.gateway.render, post,
    )
    start = setup.clock.now()
    for _ in range(30):  # five minutes in 10 s steps
        worker.run_once()
        setup.clock.advance(dt.timedelta(seconds=10))
    within = [a for a in attempts if a - start <= dt.timedelta(seconds=300)]
    assert len(within) >= 3  # first try and at least two retries within 300 s
    up["yes"] = True
    setup.clock.advance(dt.timedelta(minutes=15))
    assert worker.run_once() == 1
    assert store.messages(state=OutboxState.PENDING) == []
    # An undeliverable message is held (pollable) for two days, then expires.
    store.queue_message("90B3D51F30010000", "y", "response", {"request_id": str(setup.rid()), "srv": "4.1.1", "code": "I0"}, setup.clock.now())
    up["yes"] = False
    setup.clock.advance(HOLD_FOR - dt.timedelta(minutes=1))
    worker.run_once()
    assert len(store.messages(state=OutboxState.PENDING)) == 1
    setup.clock.advance(dt.timedelta(minutes=20))
    worker.run_once()
    assert store.messages(state=OutboxState.PENDING) == []
    assert len(store.messages(state=OutboxState.EXPIRED)) == 1


def test_retry_schedule() -> None:
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert next_attempt(t0, 1) == t0 + dt.timedelta(seconds=10)
    assert next_attempt(t0, 4) - t0 <= dt.timedelta(seconds=300)
    assert next_attempt(t0, 7) - next_attempt(t0, 6) == dt.timedelta(minutes=15)


# --- audit tamper --------------------------------------------------------------------------------


@pytest.mark.parametrize("tamper", ["edit", "delete-middle", "delete-last"])
def test_audit_tamper_is_detected(database_url: str, tamper: str) -> None:
    setup = boxed(database_url)
    for _ in range(3):
        send(setup, setup.request())
    store = SqlDccStore(database_url)
    count, problem = store.verify_audit()
    assert problem is None and count >= 3
    with store.engine.begin() as connection:
        if tamper == "edit":
            connection.execute(
                update(audit_log).where(audit_log.c.sequence == 1).values(actor="someone else")
            )
        elif tamper == "delete-middle":
            connection.execute(delete(audit_log).where(audit_log.c.sequence == 1))
        else:
            connection.execute(delete(audit_log).where(audit_log.c.sequence == count - 1))
    assert store.verify_audit()[1] is not None


def test_migrations_build_exactly_the_models(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    store = SqlDccStore(database_url)
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []
    with store.engine.connect() as connection:
        assert connection.execute(select(service_requests)).all() == []


def test_the_longest_request_id_is_stored(database_url: str) -> None:
    setup = boxed(database_url)
    rid = setup.rid(counter=2**64 - 1)  # 68 characters, the largest counter GBCS allows
    assert send(setup, setup.request(rid=rid)).code is ResponseCode.ACKNOWLEDGED
    assert setup.profile.store.frames_for(str(rid)) == 1
    assert send(setup, setup.request()).code is ResponseCode.REQUEST_ID_COUNTER_NOT_INCREASING


def test_operator_api_lists_releases_and_deletes() -> None:
    from fastapi.testclient import TestClient

    from smarthydra.dcc.gateway import create_app

    setup = boxed()
    setup.profile.gateway.operator_token = "s3cret"
    submit_threshold_file(
        setup.profile.store, setup.profile.dcc.anomaly, Eui64.parse("90B3D51F30010000"),
        "threshold,4.1.1,1,3600\n",
    )
    for _ in range(3):
        send(setup, setup.request())
    client = TestClient(create_app(setup.profile.gateway))
    assert client.get("/api/v1/operator/quarantine").status_code == 401
    wrong = client.get("/api/v1/operator/quarantine", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401
    auth = {"authorization": "Bearer s3cret", "x-operator": "op7"}
    held = client.get("/api/v1/operator/quarantine", headers=auth).json()
    assert [h["srv"] for h in held] == ["4.1.1", "4.1.1"]
    first, second = held[0]["ticket"], held[1]["ticket"]
    assert client.post(f"/api/v1/operator/quarantine/{first}/release", headers=auth).status_code == 200
    assert client.post(f"/api/v1/operator/quarantine/{second}/delete", headers=auth).status_code == 200
    again = client.post(f"/api/v1/operator/quarantine/{second}/release", headers=auth)
    assert again.status_code == 409 and "already deleted" in again.text
    assert client.post("/api/v1/operator/quarantine/x/release", headers=auth).status_code == 400
    assert client.get("/api/v1/operator/quarantine", headers=auth).json() == []
    # The first request was queued as it was accepted; the released one goes now.
    assert setup.profile.dcc.dispatch_accepted() == 1
    actions = [e.action for e in setup.profile.dcc.audit.entries]
    assert "quarantine released" in actions and "quarantine deleted" in actions
