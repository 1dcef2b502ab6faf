"""`smarthydra dcc serve --workers N`: a real server process whose front-door workers check
the requests, answering concurrent users through the gateway pipeline."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from smarthydra.dcc.dccboxed import SUPPLIER
from smarthydra.dcc.store import SqlDccStore
from smarthydra.duis.codes import ResponseCode
from smarthydra.duis.request import RequestId
from smarthydra.duis.xml import parse_xml, read_response
from tests.dcc.dccboxed_helpers import ESME
from tests.dcc.test_crash import _free_port, _request, _start


@pytest.mark.slow
def test_serve_with_front_door_workers_answers_concurrent_requests(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'dcc.sqlite3'}"
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api/v1/serviceS"
    process = _start(database, port, work_interval=3600, deferred=False, workers=1)
    base = int(time.time() * 1000)
    codes: dict[int, ResponseCode | str] = {}
    try:

        def send(first: int) -> None:
            with httpx.Client(timeout=30) as client:
                for counter in range(first, first + 10):
                    reply = client.post(url, content=_request(counter))
                    codes[counter] = read_response(parse_xml(reply.content)).code

        # Three users' worth of traffic from one supplier, in counter order per thread, so
        # some counters arrive after higher ones: each is either acknowledged or refused E20.
        threads = [threading.Thread(target=send, args=(base + 100 * i,)) for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        tampered = _request(base + 1_000).replace(
            f":{base + 1_000}<".encode(), f":{base + 1_001}<".encode()
        )
        refused = httpx.post(url, content=tampered, timeout=30)
        assert refused.status_code == 400
        assert refused.headers["x-duis-refusal"] == "digest-mismatch"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert len(codes) == 30
    assert set(codes.values()) <= {
        ResponseCode.ACKNOWLEDGED,
        ResponseCode.REQUEST_ID_COUNTER_NOT_INCREASING,
    }
    store = SqlDccStore(database)
    accepted = [c for c, code in codes.items() if code is ResponseCode.ACKNOWLEDGED]
    assert accepted
    assert all(store.frames_for(str(RequestId(SUPPLIER, ESME, c))) == 1 for c in accepted)
    refused_counters = [c for c, code in codes.items() if code is not ResponseCode.ACKNOWLEDGED]
    assert all(store.request(str(RequestId(SUPPLIER, ESME, c))) is None for c in refused_counters)
    assert store.verify_audit()[1] is None


@pytest.mark.slow
def test_serve_tie_tls_identity_refuses_a_signer_the_connection_does_not_name(
    tmp_path: Path,
) -> None:
    """`--tie-tls-identity`: the XML signer must be the user the connection names (over
    --insecure-http the X-DUIS-User header stands in for the client certificate)."""
    database = f"sqlite:///{tmp_path / 'dcc.sqlite3'}"
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api/v1/serviceS"
    process = _start(
        database, port, work_interval=3600, deferred=False, extra=("--tie-tls-identity",)
    )
    base = int(time.time() * 1000)
    try:
        own = httpx.post(url, content=_request(base), headers={"X-DUIS-User": str(SUPPLIER)})
        assert read_response(parse_xml(own.content)).code is ResponseCode.ACKNOWLEDGED
        other = httpx.post(
            url, content=_request(base + 1), headers={"X-DUIS-User": "90B3D51F30020000"}
        )
        assert other.headers["x-duis-refusal"] == "tls-identity-mismatch"
        assert read_response(parse_xml(other.content)).code is ResponseCode.USER_NOT_AUTHORISED
        unnamed = httpx.post(url, content=_request(base + 2))
        assert unnamed.headers["x-duis-refusal"] == "tls-identity-mismatch"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    store = SqlDccStore(database)
    assert store.request(str(RequestId(SUPPLIER, ESME, base))) is not None
    assert store.request(str(RequestId(SUPPLIER, ESME, base + 1))) is None
