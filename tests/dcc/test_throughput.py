"""The durable path under concurrency: batching, group commit (acknowledged only once
committed, counters still strictly rising), dispatch in batches, the ACB's secret cache, the
front-door worker pool, specific refusal reasons, SQLite synchronous=FULL, and the transform
picking the use case for the device type the inventory records (a gas meter)."""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from smarthydra.cli.main import app
from smarthydra.dcc.batching import Batcher, BatcherClosed
from smarthydra.dcc.dccboxed import NETWORK_OPERATOR, SUPPLIER, xml_signing_certificates
from smarthydra.dcc.frontdoor import FrontDoorPool, refusal_in
from smarthydra.dcc.gateway import REFUSAL_HEADER, Endpoint, create_app
from smarthydra.dcc.service import transform_target
from smarthydra.dcc.store import (
    Dispatch,
    RequestState,
    SqlDccStore,
    StoreError,
    service_requests,
)
from smarthydra.dcc.transform import DeviceType, Target, transform
from smarthydra.duis.codes import RefusalReason, ResponseCode
from smarthydra.duis.request import CommandVariant, RequestId
from smarthydra.duis.xml import build_request, parse_xml, read_response
from smarthydra.gbcs.envelope import decode_general_signing
from tests.conftest import conformance_path
from tests.dcc.dccboxed_helpers import ESME, GSME, Boxed, boxed, xml_signer

# --- the batcher ------------------------------------------------------------------------------


def test_batcher_gathers_concurrent_items_and_keeps_their_order() -> None:
    seen: list[list[int]] = []
    gate = threading.Event()

    def process(items: Sequence[int]) -> list[int]:
        gate.wait(5)  # hold the first batch so the others gather meanwhile
        seen.append(list(items))
        return [item * 10 for item in items]

    batcher: Batcher[int, int] = Batcher(process, max_batch=100)
    futures = [batcher.submit(i) for i in range(20)]
    gate.set()
    assert [f.result(5) for f in futures] == [i * 10 for i in range(20)]
    assert [item for batch in seen for item in batch] == list(range(20))
    assert batcher.processed == 20 and batcher.batches == len(seen) < 20
    batcher.close()
    with pytest.raises(BatcherClosed):
        batcher.submit(1)


def test_batcher_failure_reaches_every_waiter_and_it_carries_on() -> None:
    calls = itertools.count()

    def process(items: Sequence[int]) -> list[int]:
        if next(calls) == 0:
            raise RuntimeError("disk full")
        return list(items)

    batcher: Batcher[int, int] = Batcher(process)
    with pytest.raises(RuntimeError, match="disk full"):
        batcher.run(1)
    assert batcher.run(2) == 2


def test_batcher_with_a_wrong_number_of_outcomes_fails_loudly() -> None:
    batcher: Batcher[int, int] = Batcher(lambda items: [])
    with pytest.raises(RuntimeError, match="wrong number"):
        batcher.run(1)


def test_leader_commit_runs_in_the_callers_thread_and_gathers_followers() -> None:
    threads: set[str] = set()
    seen: list[list[int]] = []
    first_started, release_first = threading.Event(), threading.Event()

    def process(items: Sequence[int]) -> list[int]:
        threads.add(threading.current_thread().name)
        if items[0] == 1:
            first_started.set()
            release_first.wait(5)  # the others queue while the first leader commits
        seen.append(list(items))
        return [item * 10 for item in items]

    batcher: Batcher[int, int] = Batcher(process, leader_commits=True)
    assert batcher.run(0) == 0 and threads == {threading.current_thread().name}
    seen.clear()
    results: dict[int, int] = {}

    def caller(item: int) -> None:
        results[item] = batcher.run(item)

    first = threading.Thread(target=caller, args=(1,), name="caller-1")
    first.start()
    assert first_started.wait(5)
    others = [threading.Thread(target=caller, args=(i,), name=f"caller-{i}") for i in range(2, 12)]
    for thread in others:
        thread.start()
    time.sleep(0.05)
    release_first.set()
    for thread in [first, *others]:
        thread.join(5)
        assert not thread.is_alive()
    assert results == {i: i * 10 for i in range(1, 12)}
    assert seen[0] == [1] and sorted(i for batch in seen[1:] for i in batch) == list(range(2, 12))
    assert len(seen) < 11  # followers shared batches
    assert threads <= {threading.current_thread().name, *(f"caller-{i}" for i in range(1, 12))}


def test_leader_commit_failure_reaches_every_waiter_and_the_lead_passes_on() -> None:
    calls = itertools.count()

    def process(items: Sequence[int]) -> list[int]:
        if next(calls) == 0:
            time.sleep(0.05)
            raise RuntimeError("disk full")
        return list(items)

    batcher: Batcher[int, int] = Batcher(process, leader_commits=True)
    outcomes: dict[int, object] = {}

    def caller(item: int) -> None:
        try:
            outcomes[item] = batcher.run(item)
        except RuntimeError as exc:
            outcomes[item] = str(exc)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
        assert not thread.is_alive()
    assert "disk full" in outcomes.values() and len(outcomes) == 8
    assert all(outcome in (item, "disk full") for item, outcome in outcomes.items())
    assert batcher.run(99) == 99
    with pytest.raises(ValueError, match="workers=1"):
        Batcher(process, leader_commits=True, workers=2)


def test_leader_commit_wait_times_out_while_another_leads() -> None:
    release = threading.Event()
    batcher: Batcher[int, int] = Batcher(lambda items: [release.wait(5) and i for i in items], leader_commits=True)
    leader = threading.Thread(target=batcher.run, args=(1,))
    leader.start()
    time.sleep(0.05)
    pending = batcher.submit(2)
    with pytest.raises(TimeoutError):
        pending.result(0.05)
    release.set()
    leader.join(5)
    assert pending.result(5) == 2


# --- group commit -----------------------------------------------------------------------------


def _file_boxed(tmp_path: Path, name: str = "dcc.sqlite3") -> Boxed:
    return boxed(f"sqlite:///{tmp_path / name}")


def test_concurrent_users_share_commits_and_each_request_is_queued_once(tmp_path: Path) -> None:
    setup = _file_boxed(tmp_path)
    operator = xml_signer("90B3D51F30020000")
    results: dict[str, list[ResponseCode]] = {"supplier": [], "operator": []}

    def send_many(who: str) -> None:
        for i in range(25):
            if who == "supplier":
                body = setup.request(rid=RequestId(SUPPLIER, ESME, 10_000 + i))
            else:
                body = setup.request(rid=RequestId(NETWORK_OPERATOR, ESME, 10_000 + i), signer=operator)
            reply = setup.profile.gateway.handle(Endpoint.SEND, body)
            results[who].append(read_response(parse_xml(reply.body)).code)

    threads = [threading.Thread(target=send_many, args=(who,)) for who in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(codes == [ResponseCode.ACKNOWLEDGED] * 25 for codes in results.values())
    store = setup.profile.store
    frames = store.queued_frames(limit=100)
    assert len(frames) == 50 and len({f.request_id for f in frames}) == 50
    committer = setup.profile.dcc.committer
    assert committer is not None and committer.processed == 50 and committer.batches <= 50
    assert store.verify_audit() == (len(setup.profile.dcc.audit.entries), None)


def test_racing_counters_of_one_user_rise_strictly_in_commit_order(tmp_path: Path) -> None:
    """Eight threads draw one user's counters from one sequence, so requests overtake each
    other: each is either acknowledged (and queued once) or refused E20, and the accepted
    counters rise strictly in the order the database accepted them."""
    setup = _file_boxed(tmp_path)
    counters = itertools.count(50_000)
    lock = threading.Lock()
    outcomes: dict[int, ResponseCode] = {}

    def send_many() -> None:
        for _ in range(12):
            with lock:
                counter = next(counters)
            body = setup.request(rid=RequestId(SUPPLIER, ESME, counter))
            reply = setup.profile.gateway.handle(Endpoint.SEND, body)
            outcomes[counter] = read_response(parse_xml(reply.body)).code

    threads = [threading.Thread(target=send_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert set(outcomes.values()) <= {
        ResponseCode.ACKNOWLEDGED,
        ResponseCode.REQUEST_ID_COUNTER_NOT_INCREASING,
    }
    accepted = {c for c, code in outcomes.items() if code is ResponseCode.ACKNOWLEDGED}
    assert accepted
    store = setup.profile.store
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(service_requests.c.request_id).order_by(service_requests.c.sequence)
        ).all()
    in_commit_order = [RequestId.parse(row.request_id).counter for row in rows]
    assert set(in_commit_order) == accepted
    assert in_commit_order == sorted(in_commit_order)
    assert all(store.frames_for(str(RequestId(SUPPLIER, ESME, c))) == 1 for c in accepted)
    assert store.verify_audit()[1] is None


def test_acknowledged_only_after_the_commit(tmp_path: Path) -> None:
    """While the committer cannot commit, the request handler waits: no I99 comes back."""
    setup = _file_boxed(tmp_path)
    store = setup.profile.store
    release = threading.Event()
    original = store.commit_acceptances

    def slow_commit(items, audit):  # type: ignore[no-untyped-def]
        release.wait(10)
        return original(items, audit)

    store.commit_acceptances = slow_commit  # type: ignore[method-assign]
    replies: list[ResponseCode] = []
    rid = setup.rid()

    def send() -> None:
        reply = setup.profile.gateway.handle(Endpoint.SEND, setup.request(rid=rid))
        replies.append(read_response(parse_xml(reply.body)).code)

    thread = threading.Thread(target=send)
    thread.start()
    time.sleep(0.3)
    assert replies == [] and store.request(str(rid)) is None
    release.set()
    thread.join(10)
    assert replies == [ResponseCode.ACKNOWLEDGED]
    assert store.request(str(rid)) is not None


def test_dispatch_batch_falls_back_when_one_was_sent_already(tmp_path: Path) -> None:
    setup = _file_boxed(tmp_path)
    setup.profile.dcc.dispatch_on_accept = False
    rids = [setup.rid(), setup.rid()]
    for rid in rids:
        setup.profile.gateway.handle(Endpoint.SEND, setup.request(rid=rid))
    store = setup.profile.store
    audit = setup.profile.dcc.audit
    now = setup.clock.now()

    def item(rid: RequestId) -> Dispatch:
        return Dispatch(str(rid), str(SUPPLIER), "00DB1234567890A1", str(ESME), "central", b"f", now)

    assert store.dispatch_many([item(rids[0])], audit) == 1
    assert store.dispatch_many([item(rids[0]), item(rids[1])], audit) == 1
    assert [store.frames_for(str(r)) for r in rids] == [1, 1]
    assert store.verify_audit()[1] is None


# --- the ACB's shared-secret cache --------------------------------------------------------------


def test_acb_agrees_once_per_device_and_macs_the_same() -> None:
    setup = boxed()
    acb = setup.profile.dcc.acb
    device = setup.profile.dcc.inventory.device(ESME)
    assert device is not None
    request = build_request(setup.rid(), CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1")
    from smarthydra.duis.xml import read_request

    service_request = read_request(request).to_service_request(SUPPLIER, "IS")
    command = transform(service_request, Target(DeviceType.ESME), check_variant=False).general_signing
    first = acb.mac_command(command, device.key_agreement_key)
    again = [acb.mac_command(command, device.key_agreement_key) for _ in range(5)]
    assert acb.key_agreements == 1 and set(again) == {first}
    acb.forget_secrets()
    assert acb.mac_command(command, device.key_agreement_key) == first
    assert acb.key_agreements == 2


# --- the device type from the inventory -------------------------------------------------------


def test_gas_meter_request_gets_the_gsme_use_case_and_the_gs_role(tmp_path: Path) -> None:
    setup = _file_boxed(tmp_path)
    rid = setup.rid(target=GSME)
    reply = setup.profile.gateway.handle(Endpoint.SEND, setup.request(rid=rid))
    assert read_response(parse_xml(reply.body)).code is ResponseCode.ACKNOWLEDGED, reply.detail
    stored = setup.profile.store.request(str(rid))
    assert stored is not None and stored.role == "GS" and stored.state == RequestState.DISPATCHED
    device = setup.profile.dcc.inventory.device(GSME)
    assert device is not None and transform_target(device) == Target(DeviceType.GSME)
    (frame,) = [f for f in setup.profile.store.queued_frames() if f.request_id == str(rid)]
    gas = transform(
        read_request_for(setup, rid, "GS"), Target(DeviceType.GSME), check_variant=False
    ).general_signing
    electricity = transform(
        read_request_for(setup, rid, "GS"), Target(DeviceType.ESME), check_variant=False
    ).general_signing
    assert gas.message_code != electricity.message_code
    assert setup.profile.dcc.acb.mac_command(gas, device.key_agreement_key) == frame.frame
    assert decode_general_signing(gas.wire()).recipient == GSME.value


def read_request_for(setup: Boxed, rid: RequestId, role: str):  # type: ignore[no-untyped-def]
    from smarthydra.duis.xml import read_request

    root = build_request(rid, CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1")
    return read_request(root).to_service_request(rid.originator, role)


# --- refusal reasons ------------------------------------------------------------------------------


def _refusal(setup: Boxed, body: bytes) -> tuple[ResponseCode, RefusalReason | None, str | None]:
    client = TestClient(create_app(setup.profile.gateway))
    response = client.post("/api/v1/serviceS", content=body)
    assert response.status_code == 400
    code = read_response(parse_xml(response.content)).code
    assert isinstance(code, ResponseCode)
    return code, refusal_in(response.content), response.headers.get(REFUSAL_HEADER)


def test_each_authentication_failure_says_which_it_was() -> None:
    supplier = xml_signer("90B3D51F30010000")
    setup = boxed()
    good = setup.request()
    altered = setup.request(rid=setup.rid(counter=7_000)).replace(b":7000<", b":7001<")
    forged = bytearray(good)
    start = good.index(b"<ds:SignatureValue>") + len(b"<ds:SignatureValue>")
    forged[start + 2] = ord("A") if forged[start + 2] != ord("A") else ord("B")
    unknown = good.replace(
        f"<ds:X509SerialNumber>{supplier.certificate.serial}".encode(),
        b"<ds:X509SerialNumber>12345",
    )
    schema_invalid = setup.request().replace(
        b"<sr:ServiceReference>4.1</sr:ServiceReference>", b""
    )
    cases = {
        RefusalReason.DIGEST_MISMATCH: altered,
        RefusalReason.SIGNATURE_INVALID: bytes(forged),
        RefusalReason.CERTIFICATE_UNKNOWN: unknown,
        RefusalReason.SCHEMA_INVALID: schema_invalid,
    }
    for reason, body in cases.items():
        code, in_body, in_header = _refusal(setup, body)
        expected = (
            ResponseCode.INVALID_REQUEST
            if reason is RefusalReason.SCHEMA_INVALID
            else ResponseCode.USER_NOT_AUTHORISED
        )
        assert (code, in_body, in_header) == (expected, reason, reason.value)
    revoked = boxed(revoked=(supplier.certificate.serial,))
    assert _refusal(revoked, revoked.request()) == (
        ResponseCode.USER_NOT_AUTHORISED,
        RefusalReason.CERTIFICATE_REVOKED,
        RefusalReason.CERTIFICATE_REVOKED.value,
    )


def test_refusal_comment_keeps_the_response_schema_valid_and_signed() -> None:
    setup = boxed()
    body = setup.request(rid=setup.rid(counter=7_100)).replace(b":7100<", b":7101<")
    reply = setup.profile.gateway.handle(Endpoint.SEND, body)
    root = parse_xml(reply.body)
    setup.profile.gateway.schema.validate(root)
    from smarthydra.duis.xmldsig import verify_enveloped

    verify_enveloped(root, setup.profile.gateway.certificates)
    assert refusal_in(reply.body) is RefusalReason.DIGEST_MISMATCH
    problem = setup.profile.gateway.handle(Endpoint.SEND, b"<not-xml")
    assert problem.reason is RefusalReason.MALFORMED_XML
    assert b'"reason": "malformed-xml"' in problem.body


# --- the front-door worker pool --------------------------------------------------------------------


@pytest.mark.slow
def test_front_door_pool_answers_as_the_gateway_does_and_rechecks_revocation(
    tmp_path: Path,
) -> None:
    supplier = xml_signer("90B3D51F30010000")
    setup = _file_boxed(tmp_path)
    gateway = setup.profile.gateway
    pool = FrontDoorPool(
        conformance_path("duis"),
        xml_signing_certificates(conformance_path("smki")),
        gateway.signer.certificate,
        processes=1,
        draft_responses=True,
    )
    try:
        gateway.front_door = pool
        rid = setup.rid()
        reply = gateway.handle(Endpoint.SEND, setup.request(rid=rid))
        root = parse_xml(reply.body)
        gateway.schema.validate(root)
        from smarthydra.duis.xmldsig import verify_enveloped

        verify_enveloped(root, gateway.certificates)
        assert read_response(root).code is ResponseCode.ACKNOWLEDGED
        assert setup.profile.store.frames_for(str(rid)) == 1
        altered = setup.request(rid=setup.rid(counter=9_000)).replace(b":9000<", b":9001<")
        refused = gateway.handle(Endpoint.SEND, altered)
        assert refused.status == 400 and refused.reason is RefusalReason.DIGEST_MISMATCH
        assert refusal_in(refused.body) is RefusalReason.DIGEST_MISMATCH
        # The worker still trusts the certificate; the gateway's live lookup has it revoked.
        from smarthydra.dcc.dccboxed import with_revocations

        gateway.certificates = with_revocations(gateway.certificates, [supplier.certificate.serial])
        revoked = gateway.handle(Endpoint.SEND, setup.request())
        assert revoked.reason is RefusalReason.CERTIFICATE_REVOKED
        assert read_response(parse_xml(revoked.body)).code is ResponseCode.USER_NOT_AUTHORISED
        # A worker that dies: the gateway answers 503 at once, it does not hang or crash.
        for pid in pool.worker_pids():
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        gone = gateway.handle(Endpoint.SEND, setup.request())
        assert gone.status == 503 and gone.is_problem
    finally:
        gateway.front_door = None
        pool.close()


# --- SQLite durability setting -------------------------------------------------------------------


def test_sqlite_synchronous_full_is_an_option(tmp_path: Path) -> None:
    store = SqlDccStore(f"sqlite:///{tmp_path / 'full.sqlite3'}", sqlite_synchronous="FULL")
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    with pytest.raises(StoreError, match="NORMAL, FULL"):
        SqlDccStore(f"sqlite:///{tmp_path / 'x.sqlite3'}", sqlite_synchronous="OFF")
    result = CliRunner().invoke(
        app,
        [
            "dcc", "serve", "--profile", "dccboxed", "--conformance", str(conformance_path()),
            "--database", f"sqlite:///{tmp_path / 'y.sqlite3'}", "--insecure-http",
            "--sqlite-synchronous", "sometimes",
        ],
    )
    assert result.exit_code == 2 and "NORMAL, FULL" in result.output


def test_polyphase_esme_from_the_inventory_gets_the_polyphase_use_case(tmp_path: Path) -> None:
    from smarthydra.dcc.dccboxed import HUB, MPAN
    from smarthydra.dcc.inventory import DeviceRecord
    from smarthydra.dcc.inventory import DeviceType as InventoryType
    from smarthydra.dcc.transform import EsmeVariant
    from smarthydra.eui import Eui64

    url = f"sqlite:///{tmp_path / 'dcc.sqlite3'}"
    setup = boxed(url)
    reference = setup.profile.dcc.inventory.device(ESME)
    assert reference is not None
    polyphase = Eui64.parse("00DB123456789FC0")
    setup.profile.dcc.inventory.add_device(
        DeviceRecord(
            polyphase, InventoryType.ESME, HUB, MPAN, reference.key_agreement_key,
            esme_variant="C",
        )
    )
    # The variant is stored: a DCC restarted on the same database still knows it.
    again = boxed(url).profile.dcc.inventory.device(polyphase)
    assert again is not None and again.esme_variant == "C"
    rid = setup.rid(target=polyphase)
    period: dict[str, object] = {
        "ReadLogPeriod": {
            "StartDateTime": "2026-05-01T00:00:00Z",
            "EndDateTime": "2026-05-02T00:00:00Z",
        }
    }
    reply = setup.profile.gateway.handle(
        Endpoint.SEND, setup.request("4.10", rid=rid, parameters=period)
    )
    assert read_response(parse_xml(reply.body)).code is ResponseCode.ACKNOWLEDGED, reply.detail
    from smarthydra.duis.xml import read_request

    request = read_request(
        build_request(rid, CommandVariant.NON_CRITICAL_TO_DEVICE, "4.10", period)
    ).to_service_request(SUPPLIER, "IS")
    poly = transform(request, Target(DeviceType.ESME, EsmeVariant.POLYPHASE), check_variant=False)
    single = transform(request, Target(DeviceType.ESME), check_variant=False)
    assert poly.use_case != single.use_case
    (frame,) = [f for f in setup.profile.store.queued_frames() if f.request_id == str(rid)]
    assert setup.profile.dcc.acb.mac_command(poly.general_signing, reference.key_agreement_key) == frame.frame
