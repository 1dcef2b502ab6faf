"""Hypothesis against the durable DCC's HTTP interface (the ASGI app in process): whatever the
method, path, headers or body, and however a valid signed request is mangled, no 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smarthydra.dcc.gateway import create_app
from tests.dcc.dccboxed_helpers import Boxed, boxed

_STATE: dict[bool, tuple[Boxed, TestClient, bytes]] = {}


def _state(pipeline: bool = False) -> tuple[Boxed, TestClient, bytes]:
    """The app as a bare ASGI client sees it (each request on a worker thread), or with its
    lifespan run (requests through the gateway pipeline, as under uvicorn)."""
    if pipeline not in _STATE:
        setup = boxed()
        client = TestClient(
            create_app(setup.profile.gateway, insecure_identity_header=True),
            raise_server_exceptions=False,
        )
        if pipeline:
            client.__enter__()  # runs the lifespan: the pipeline's threads start
        _STATE[pipeline] = (setup, client, setup.request())
    return _STATE[pipeline]


@pytest.fixture(autouse=True, scope="module")
def _close_clients() -> Iterator[None]:
    yield
    for pipeline, (_setup, client, _valid) in list(_STATE.items()):
        if pipeline:
            client.__exit__(None, None, None)  # the lifespan ends: the pipeline closes
    _STATE.clear()


PATHS = st.sampled_from(
    ["/api/v1/serviceS", "/api/v1/serviceT", "/api/v1/serviceN", "/api/v1/responses", "/", "/api/v1/x", "/api/v1/operator/quarantine", "/api/v1/operator/quarantine/1/release"]
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    path=PATHS,
    at=st.integers(0, 5000),
    cut=st.integers(0, 60),
    insert=st.binary(max_size=24),
    user=st.one_of(st.none(), st.text(max_size=20), st.just("90B3D51F30010000")),
    content_type=st.sampled_from(["application/xml", "text/plain", "", "application/json"]),
)
def test_no_request_makes_the_dcc_fail(
    method: str, path: str, at: int, cut: int, insert: bytes, user: str | None, content_type: str
) -> None:
    _fuzz_once(False, method, path, at, cut, insert, user, content_type)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    path=PATHS,
    at=st.integers(0, 5000),
    cut=st.integers(0, 60),
    insert=st.binary(max_size=24),
    user=st.one_of(st.none(), st.text(max_size=20), st.just("90B3D51F30010000")),
    content_type=st.sampled_from(["application/xml", "text/plain", "", "application/json"]),
)
def test_no_request_makes_the_dcc_fail_through_the_pipeline(
    method: str, path: str, at: int, cut: int, insert: bytes, user: str | None, content_type: str
) -> None:
    _fuzz_once(True, method, path, at, cut, insert, user, content_type)


def _fuzz_once(
    pipeline: bool,
    method: str,
    path: str,
    at: int,
    cut: int,
    insert: bytes,
    user: str | None,
    content_type: str,
) -> None:
    setup, client, valid = _state(pipeline)
    at %= len(valid)
    body = valid[:at] + insert + valid[at + cut :]
    headers = {"content-type": content_type} if content_type else {}
    if user is not None:
        headers["X-DUIS-User"] = user.encode("ascii", "ignore").decode() or "x"
    reply = client.request(method, path, content=body if method != "GET" else None, headers=headers)
    assert reply.status_code < 500, (reply.status_code, reply.text[:300])
    if reply.status_code == 200 and method == "POST" and path != "/api/v1/responses":
        assert reply.headers["content-type"].startswith(("application/xml", "application/problem+json"))
    setup.profile.gateway.work()  # whatever got accepted is dispatched without failing
