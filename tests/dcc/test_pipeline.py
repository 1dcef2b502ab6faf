"""Requests handled in batches: the gateway's batched stages (``handle`` from many threads,
and :class:`GatewayPipeline` from an event loop), one commit per batch, and every request in
a batch answered on its own merits (a bad one does not spoil the others)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from smarthydra.dcc.dccboxed import NETWORK_OPERATOR, SUPPLIER, xml_signing_certificates
from smarthydra.dcc.frontdoor import FrontDoorPool, refusal_in
from smarthydra.dcc.gateway import Endpoint, GatewayReply, create_app
from smarthydra.dcc.pipeline import GatewayPipeline, PipelineClosed
from smarthydra.dcc.service import NotCommitted
from smarthydra.dcc.store import RequestState
from smarthydra.duis.codes import RefusalReason, ResponseCode
from smarthydra.duis.request import CommandVariant, RequestId
from smarthydra.duis.xml import parse_xml, read_response
from tests.conftest import conformance_path
from tests.dcc.dccboxed_helpers import ESME, Boxed, boxed, xml_signer


def _file_boxed(tmp_path: Path) -> Boxed:
    return boxed(f"sqlite:///{tmp_path / 'dcc.sqlite3'}")


def _code(reply: GatewayReply) -> ResponseCode | str:
    return read_response(parse_xml(reply.body)).code


def _mixed_batch(setup: Boxed) -> tuple[list[bytes], list[ResponseCode | RefusalReason]]:
    """Requests that each deserve a different answer, and those answers."""
    good = [setup.request(rid=setup.rid(counter=20_000 + i)) for i in range(3)]
    altered = setup.request(rid=setup.rid(counter=20_100)).replace(b":20100<", b":20101<")
    schema_invalid = setup.request(rid=setup.rid(counter=20_200)).replace(
        b"<sr:ServiceReference>4.1</sr:ServiceReference>", b""
    )
    reused = setup.request(rid=setup.rid(counter=20_001))  # the second good one's counter
    critical = setup.request(
        "7.2", CommandVariant.NON_CRITICAL_TO_DEVICE, rid=setup.rid(counter=20_300)
    )  # a critical SRV sent with CV 1
    bodies = [*good, altered, schema_invalid, reused, critical]
    expected: list[ResponseCode | RefusalReason] = [
        ResponseCode.ACKNOWLEDGED,
        ResponseCode.ACKNOWLEDGED,
        ResponseCode.ACKNOWLEDGED,
        RefusalReason.DIGEST_MISMATCH,
        RefusalReason.SCHEMA_INVALID,
        ResponseCode.REQUEST_ID_COUNTER_NOT_INCREASING,
        ResponseCode.INVALID_COMMAND_VARIANT,
    ]
    return bodies, expected


def _outcome(reply: GatewayReply) -> ResponseCode | RefusalReason | str:
    reason = refusal_in(reply.body)
    return reason if reason is not None else _code(reply)


def test_one_batch_answers_each_request_on_its_own_merits(tmp_path: Path) -> None:
    setup = _file_boxed(tmp_path)
    bodies, expected = _mixed_batch(setup)
    from smarthydra.dcc.gateway import Arrival

    replies = setup.profile.gateway.handle_batch([Arrival(Endpoint.SEND, b) for b in bodies])
    outcomes = [r if isinstance(r, BaseException) else _outcome(r) for r in replies]
    assert outcomes == expected
    committer = setup.profile.dcc.committer
    assert committer is not None and committer.batches == 1 and committer.processed == 3
    store = setup.profile.store
    accepted = [RequestId(SUPPLIER, ESME, 20_000 + i) for i in range(3)]
    assert [store.frames_for(str(rid)) for rid in accepted] == [1, 1, 1]
    assert store.verify_audit()[1] is None


def test_the_same_request_id_twice_in_one_batch_is_accepted_once(tmp_path: Path) -> None:
    setup = _file_boxed(tmp_path)
    rid = setup.rid(counter=30_000)
    body = setup.request(rid=rid)
    from smarthydra.dcc.gateway import Arrival

    replies = setup.profile.gateway.handle_batch([Arrival(Endpoint.SEND, body)] * 2)
    assert [_code(r) for r in replies if isinstance(r, GatewayReply)] == [
        ResponseCode.ACKNOWLEDGED,
        ResponseCode.REQUEST_ID_COUNTER_NOT_INCREASING,
    ]
    assert setup.profile.store.frames_for(str(rid)) == 1


def test_a_failed_commit_acknowledges_nothing_and_the_counters_stay_usable(
    tmp_path: Path,
) -> None:
    setup = _file_boxed(tmp_path)
    store = setup.profile.store
    original = store.commit_acceptances

    def broken(items, audit):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    store.commit_acceptances = broken  # type: ignore[method-assign]
    rids = [setup.rid(counter=40_000 + i) for i in range(2)]
    answers = setup.profile.dcc.accept_many(
        [_service_request(setup, rid) for rid in rids]
    )
    assert all(isinstance(a, NotCommitted) and "disk full" in str(a) for a in answers)
    reply = setup.profile.gateway.handle(Endpoint.SEND, setup.request(rid=setup.rid(counter=40_005)))
    assert reply.status == 503 and reply.is_problem and b"not-committed" in reply.body
    assert all(store.request(str(rid)) is None for rid in rids)
    store.commit_acceptances = original  # type: ignore[method-assign]
    # Nothing was stored, so the same counters are still free.
    again = setup.profile.gateway.handle(Endpoint.SEND, setup.request(rid=rids[0]))
    assert _code(again) is ResponseCode.ACKNOWLEDGED


def _service_request(setup: Boxed, rid: RequestId):  # type: ignore[no-untyped-def]
    from smarthydra.duis.xml import read_request

    return read_request(parse_xml(setup.request(rid=rid))).to_service_request(SUPPLIER, "IS")


def test_threads_calling_handle_share_batches_and_get_their_own_answers(tmp_path: Path) -> None:
    setup = _file_boxed(tmp_path)
    operator = xml_signer("90B3D51F30020000")
    codes: dict[str, list[ResponseCode | str]] = {"supplier": [], "operator": [], "bad": []}

    def send(who: str) -> None:
        for i in range(20):
            if who == "supplier":
                body = setup.request(rid=RequestId(SUPPLIER, ESME, 50_000 + i))
            elif who == "operator":
                body = setup.request(
                    rid=RequestId(NETWORK_OPERATOR, ESME, 50_000 + i), signer=operator
                )
            else:  # signed by the supplier, claiming to be the operator: E21 each time
                body = setup.request(rid=RequestId(NETWORK_OPERATOR, ESME, 60_000 + i))
            codes[who].append(_code(setup.profile.gateway.handle(Endpoint.SEND, body)))

    threads = [threading.Thread(target=send, args=(who,)) for who in codes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert codes["supplier"] == [ResponseCode.ACKNOWLEDGED] * 20
    assert codes["operator"] == [ResponseCode.ACKNOWLEDGED] * 20
    assert codes["bad"] == [ResponseCode.REQUEST_ID_ORIGINATOR_MISMATCH] * 20
    assert len(setup.profile.store.queued_frames(limit=100)) == 40


async def _send_all(pipeline: GatewayPipeline, bodies: list[bytes]) -> list[GatewayReply]:
    return list(await asyncio.gather(*(pipeline.handle(Endpoint.SEND, b) for b in bodies)))


def test_pipeline_answers_a_mixed_batch_from_the_event_loop(tmp_path: Path) -> None:
    setup = _file_boxed(tmp_path)
    bodies, expected = _mixed_batch(setup)
    pipeline = GatewayPipeline(setup.profile.gateway)
    try:
        replies = asyncio.run(_send_all(pipeline, bodies))
    finally:
        pipeline.close()
    # Gathered requests reach the pipeline in order, so the reused counter comes after the
    # one it reuses.
    assert [_outcome(r) for r in replies] == expected
    assert pipeline.batches >= 1
    with pytest.raises(PipelineClosed):
        asyncio.run(_send_all(pipeline, [setup.request()]))


def test_pipeline_acknowledges_only_what_is_committed(tmp_path: Path) -> None:
    """Each I99 that comes back is for a request already in the database."""
    setup = _file_boxed(tmp_path)
    store = setup.profile.store
    pipeline = GatewayPipeline(setup.profile.gateway, max_batch=4)
    seen: list[bool] = []

    async def user(base: int) -> None:
        for i in range(10):
            rid = RequestId(SUPPLIER, ESME, base + i)
            reply = await pipeline.handle(Endpoint.SEND, setup.request(rid=rid))
            assert _code(reply) is ResponseCode.ACKNOWLEDGED
            stored = store.request(str(rid))
            seen.append(stored is not None and stored.state == RequestState.DISPATCHED)

    try:
        asyncio.run(user(70_000))
    finally:
        pipeline.close()
    assert seen == [True] * 10


@pytest.mark.slow
def test_pipeline_with_front_door_workers(tmp_path: Path) -> None:
    setup = _file_boxed(tmp_path)
    gateway = setup.profile.gateway
    pool = FrontDoorPool(
        conformance_path("duis"),
        xml_signing_certificates(conformance_path("smki")),
        gateway.signer.certificate,
        processes=2,
    )
    gateway.front_door = pool
    pipeline = GatewayPipeline(gateway)
    try:
        bodies, expected = _mixed_batch(setup)
        replies = asyncio.run(_send_all(pipeline, bodies))
        assert [_outcome(r) for r in replies] == expected
        # Worker-drafted responses are signed here and verify.
        from smarthydra.duis.xmldsig import verify_enveloped

        for reply in replies:
            root = parse_xml(reply.body)
            gateway.schema.validate(root)
            verify_enveloped(root, gateway.certificates)
    finally:
        pipeline.close()
        gateway.front_door = None
        pool.close()


def test_http_app_runs_requests_through_the_pipeline(tmp_path: Path) -> None:
    setup = _file_boxed(tmp_path)
    with TestClient(create_app(setup.profile.gateway)) as client:  # runs the lifespan
        replies = [
            client.post("/api/v1/serviceS", content=setup.request(rid=setup.rid(counter=80_000 + i)))
            for i in range(5)
        ]
    assert [r.status_code for r in replies] == [200] * 5
    assert all(
        read_response(parse_xml(r.content)).code is ResponseCode.ACKNOWLEDGED for r in replies
    )
    assert setup.profile.dcc.committer is not None
    assert setup.profile.dcc.committer.processed == 5


# --- the ASGI front for the DUIS endpoints ---------------------------------------------------


def test_duis_front_limits_methods_and_sizes_and_passes_the_rest_to_fastapi(tmp_path: Path) -> None:
    setup = _file_boxed(tmp_path)
    limit = setup.profile.gateway.max_body_bytes
    with TestClient(create_app(setup.profile.gateway)) as client:
        wrong_method = client.get("/api/v1/serviceN")
        assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
        declared = client.post("/api/v1/serviceS", content=b"<" * (limit + 1))
        assert declared.status_code == 413 and declared.json()["status"] == 413

        def chunks():  # type: ignore[no-untyped-def]
            for _ in range(limit // 1024 + 2):
                yield b"<" * 1024

        streamed = client.post("/api/v1/serviceS", content=chunks())  # no Content-Length
        assert streamed.status_code == 413
        refused = client.post("/api/v1/serviceS", content=b"<not-xml")
        assert refused.status_code == 400 and refused.headers["x-duis-refusal"] == "malformed-xml"
        assert client.get("/api/v1/responses").status_code == 401  # FastAPI: polling
        assert client.post("/api/v1/serviceX", content=b"<a/>").status_code == 404


def test_duis_front_sends_nothing_to_a_client_that_went_away(tmp_path: Path) -> None:
    setup = _file_boxed(tmp_path)
    front = create_app(setup.profile.gateway)
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/serviceS",
        "headers": [],
        "client": ("127.0.0.1", 5000),
    }
    asyncio.run(front(scope, receive, send))  # type: ignore[arg-type]
    assert sent == []


def test_a_fault_deciding_one_request_leaves_the_rest_of_the_batch_alone(tmp_path: Path) -> None:
    setup = _file_boxed(tmp_path)
    dcc = setup.profile.dcc
    original = dcc._general_signing
    unlucky = RequestId(SUPPLIER, ESME, 90_001)

    def faulty(request, *args, **kwargs):  # type: ignore[no-untyped-def]
        if request.request_id == unlucky:
            raise RuntimeError("transform bug")
        return original(request, *args, **kwargs)

    dcc._general_signing = faulty  # type: ignore[method-assign]
    from smarthydra.dcc.gateway import Arrival

    rids = [RequestId(SUPPLIER, ESME, 90_000 + i) for i in range(3)]
    replies = setup.profile.gateway.handle_batch(
        [Arrival(Endpoint.SEND, setup.request(rid=rid)) for rid in rids]
    )
    assert isinstance(replies[1], GatewayReply) and replies[1].status == 503
    assert b"transform bug" in replies[1].body
    assert [_code(r) for r in (replies[0], replies[2]) if isinstance(r, GatewayReply)] == [
        ResponseCode.ACKNOWLEDGED,
        ResponseCode.ACKNOWLEDGED,
    ]
    assert setup.profile.store.request(str(unlucky)) is None


def test_a_fault_of_ours_is_answered_as_a_problem_and_the_server_carries_on(
    tmp_path: Path,
) -> None:
    setup = _file_boxed(tmp_path)
    gateway = setup.profile.gateway
    original = gateway.decide_batch
    broken = [True]

    def decide(arrivals):  # type: ignore[no-untyped-def]
        if broken[0]:
            raise RuntimeError("bug in the decide stage")
        return original(arrivals)

    gateway.decide_batch = decide  # type: ignore[method-assign]
    with TestClient(create_app(gateway)) as client:
        failed = client.post("/api/v1/serviceS", content=setup.request())
        assert failed.status_code == 500
        assert failed.headers["content-type"] == "application/problem+json"
        assert failed.json()["detail"] == "RuntimeError; see the DCC log"
        broken[0] = False
        fine = client.post("/api/v1/serviceS", content=setup.request())
        assert fine.status_code == 200
        assert read_response(parse_xml(fine.content)).code is ResponseCode.ACKNOWLEDGED


@pytest.mark.slow
def test_pipeline_soak_with_bad_requests_and_clients_that_go_away(tmp_path: Path) -> None:
    """Users send good, tampered and replayed requests at once, and some give up waiting
    (their tasks are cancelled mid-flight). Whatever happens: every I99 is for a request stored
    and queued exactly once, nothing refused is stored, a request nobody waited for is either
    stored once or not at all, the audit chain holds, and the pipeline still answers."""
    import random

    setup = _file_boxed(tmp_path)
    store = setup.profile.store
    pipeline = GatewayPipeline(setup.profile.gateway, max_batch=16)
    shuffle = random.Random(7)
    acknowledged: set[int] = set()
    refused: set[int] = set()
    abandoned: set[int] = set()

    async def user(base: int) -> None:
        for i in range(40):
            counter = base + i
            body = setup.request(rid=RequestId(SUPPLIER, ESME, counter))
            roll = shuffle.random()
            if roll < 0.15:
                body = body.replace(f":{counter}<".encode(), f":{counter + 1_000_000}<".encode())
            elif roll < 0.25:
                counter = base  # a replay of the user's first counter
                body = setup.request(rid=RequestId(SUPPLIER, ESME, counter))
            task = asyncio.ensure_future(pipeline.handle(Endpoint.SEND, body))
            if shuffle.random() < 0.1:
                await asyncio.sleep(0)
                task.cancel()
                abandoned.add(counter)
                continue
            reply = await task
            if reply.status == 200 and _code(reply) is ResponseCode.ACKNOWLEDGED:
                acknowledged.add(counter)
            else:
                refused.add(counter)

    async def users() -> None:
        # One supplier, so the users' counters interleave: bases far apart keep them rising
        # per user, and the DCC's one floor per originator refuses whatever comes in late.
        await asyncio.gather(*(user(100_000 * (k + 1)) for k in range(4)))

    try:
        asyncio.run(users())
        # Still answering afterwards.
        last = asyncio.run(_send_all(pipeline, [setup.request(rid=RequestId(SUPPLIER, ESME, 10**7))]))
        assert _code(last[0]) is ResponseCode.ACKNOWLEDGED
    finally:
        pipeline.close()
    assert acknowledged
    for counter in acknowledged:
        assert store.frames_for(str(RequestId(SUPPLIER, ESME, counter))) == 1
    for counter in refused - acknowledged - abandoned:  # an abandoned try may have been stored
        assert store.request(str(RequestId(SUPPLIER, ESME, counter))) is None
    for counter in abandoned:
        assert store.frames_for(str(RequestId(SUPPLIER, ESME, counter))) in (0, 1)
    assert store.verify_audit()[1] is None
