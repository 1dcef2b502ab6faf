"""kill -9 the DCC right after it acknowledged (I99): after a restart each acknowledged request
is dispatched to the WAN exactly once. A real `smarthydra dcc serve` process, on SQLite and on
PostgreSQL; then `smarthydra dcc audit verify` on the same database, before and after tampering."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from smarthydra.cli.main import app
from smarthydra.dcc.store import RequestState, SqlDccStore, audit_log
from smarthydra.duis.codes import ResponseCode
from smarthydra.duis.xml import parse_xml, read_response
from tests.conftest import conformance_path
from tests.dcc.dccboxed_helpers import ESME, xml_signer

SUPPLIER_HEX = "90B3D51F30010000"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(
    database: str,
    port: int,
    work_interval: float,
    *,
    deferred: bool = True,
    workers: int = 0,
    operator_token: str | None = None,
    extra: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    """`smarthydra dcc serve` in a process of its own, once it listens; with
    ``operator_token`` in its environment (the operator API and console open), else without."""
    env = {k: v for k, v in os.environ.items() if k != "SMARTHYDRA_OPERATOR_TOKEN"}
    if operator_token is not None:
        env["SMARTHYDRA_OPERATOR_TOKEN"] = operator_token
    process = subprocess.Popen(
        [
            sys.executable, "-m", "smarthydra.cli.main", "dcc", "serve",
            "--profile", "dccboxed", "--conformance", str(conformance_path()),
            "--database", database, "--insecure-http", "--port", str(port),
            "--work-interval", str(work_interval),
            *(["--deferred-dispatch"] if deferred else []),
            *(["--workers", str(workers)] if workers else []),
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"dcc serve exited: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("dcc serve did not start listening")


def _kill9(process: subprocess.Popen[bytes]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _request(counter: int) -> bytes:
    from smarthydra.dcc.dccboxed import SUPPLIER
    from smarthydra.duis.request import CommandVariant, RequestId
    from smarthydra.duis.xml import build_request

    rid = RequestId(SUPPLIER, ESME, counter)
    return xml_signer(SUPPLIER_HEX).sign_bytes(
        build_request(rid, CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1", {})
    )


def _wait_for(condition: object, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("deferred", [True, False], ids=["deferred-dispatch", "dispatch-on-accept"])
def test_kill_9_after_i99_then_delivered_exactly_once(database_url: str, deferred: bool) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api/v1/serviceS"
    # Deferred: dispatch is far off, so the kill lands between acknowledgement and dispatch.
    # On accept: the MAC'd command was queued in the transaction that acknowledged it.
    process = _start(database_url, port, work_interval=3600, deferred=deferred)
    acknowledged = []
    try:
        base = int(time.time() * 1000)
        for i in range(3):
            reply = httpx.post(url, content=_request(base + i), timeout=10)
            assert read_response(parse_xml(reply.content)).code is ResponseCode.ACKNOWLEDGED
            acknowledged.append(f"90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:{base + i}")
    finally:
        _kill9(process)
    store = SqlDccStore(database_url)
    for rid in acknowledged:
        stored = store.request(rid)
        assert stored is not None
        if deferred:
            assert stored.state == RequestState.ACCEPTED
            assert store.frames_for(rid) == 0
        else:
            assert stored.state == RequestState.DISPATCHED
            assert store.frames_for(rid) == 1

    process = _start(database_url, port, work_interval=0.05, deferred=deferred)
    try:
        assert _wait_for(lambda: all(store.frames_for(r) == 1 for r in acknowledged))
        time.sleep(0.3)  # further rounds of dispatch find nothing left to send
        assert [store.frames_for(r) for r in acknowledged] == [1, 1, 1]
        # The counter floor survived: the last counter is refused after the restart.
        reply = httpx.post(url, content=_request(base + 2), timeout=10)
        assert (
            read_response(parse_xml(reply.content)).code
            is ResponseCode.REQUEST_ID_COUNTER_NOT_INCREASING
        )
    finally:
        _kill9(process)
    runner = CliRunner()
    verified = runner.invoke(app, ["dcc", "audit", "verify", "--database", database_url])
    assert verified.exit_code == 0, verified.output
    assert "intact" in verified.output
    with store.engine.begin() as connection:
        connection.execute(
            update(audit_log).where(audit_log.c.sequence == 0).values(action="nothing happened")
        )
    tampered = runner.invoke(app, ["dcc", "audit", "verify", "--database", database_url])
    assert tampered.exit_code == 1
    assert "tampered" in tampered.output
