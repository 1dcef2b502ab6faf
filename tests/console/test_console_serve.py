"""End to end: `smarthydra dcc serve --profile dccboxed --insecure-http` with an operator token
in its environment serves the console; an operator logs in over real HTTP and releases a
quarantined request, which the running DCC then sends, the audit log naming the operator."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from typer.testing import CliRunner

from smarthydra.cli.main import app
from smarthydra.dcc.store import SqlDccStore
from smarthydra.duis.codes import ResponseCode
from smarthydra.duis.xml import parse_xml, read_response
from tests.dcc.test_crash import _free_port, _request
from tests.dcc.test_crash import _start as start_dcc

SUPPLIER_HEX = "90B3D51F30010000"
TOKEN = "e2e-operator-token"


def _start(database: str, port: int, token: str | None) -> subprocess.Popen[bytes]:
    return start_dcc(database, port, 0.05, deferred=False, operator_token=token)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _wait_for(condition: Callable[[], bool], seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def _quarantining_dcc(tmp_path: Path, *, after: int) -> str:
    """A DCC database whose supplier has a 4.1.1 threshold of ``after`` an hour, set through
    the CLI: the next request beyond it is quarantined."""
    database = f"sqlite:///{tmp_path / 'dcc.sqlite3'}"
    thresholds = tmp_path / "thresholds.csv"
    thresholds.write_text(f"threshold,4.1.1,{after},3600\n")
    loaded = CliRunner().invoke(
        app, ["dcc", "thresholds", "load", str(thresholds), "--database", database,
              "--user", SUPPLIER_HEX],
    )
    assert loaded.exit_code == 0, loaded.output
    return database


def _send_three_reads(base: str) -> None:
    """Three 4.1.1 reads over HTTP, each acknowledged (whether held or sent)."""
    counter = int(time.time() * 1000)
    for i in range(3):
        reply = httpx.post(f"{base}/api/v1/serviceS", content=_request(counter + i), timeout=10)
        assert read_response(parse_xml(reply.content)).code is ResponseCode.ACKNOWLEDGED


def test_operator_logs_in_and_releases_over_http(tmp_path: Path) -> None:
    database = _quarantining_dcc(tmp_path, after=2)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    process = _start(database, port, TOKEN)
    try:
        _send_three_reads(base)
        store = SqlDccStore(database)
        held = store.quarantined()
        assert len(held) == 1
        ticket, request_id = held[0].ticket, held[0].request_id

        with httpx.Client(base_url=base, timeout=10) as browser:
            assert browser.get("/console").status_code == 303
            wrong = browser.post("/console/login", data={"token": "nope"})
            assert wrong.status_code == 401
            login = browser.post("/console/login", data={"token": TOKEN},
                                 headers={"origin": base})
            assert login.status_code == 303 and "httponly" in login.headers["set-cookie"].lower()
            page = browser.get("/console/quarantine")
            assert page.status_code == 200 and request_id in page.text
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf is not None
            refused = browser.post(
                f"/console/quarantine/{ticket}/release",
                data={"csrf": csrf.group(1), "operator": "Grace"},
                headers={"origin": "http://evil.example"},
            )
            assert refused.status_code == 403
            released = browser.post(
                f"/console/quarantine/{ticket}/release",
                data={"csrf": csrf.group(1), "operator": "Grace"},
                headers={"origin": base},
            )
            assert released.status_code == 303
            assert f"Ticket {ticket} released" in browser.get(released.headers["location"]).text
            # The running DCC's background round sends the released request.
            assert _wait_for(lambda: store.frames_for(request_id) == 1)
            audit = [e for e in store.load_audit() if e.action == "quarantine released"]
            assert audit and audit[-1].actor == "Grace (shared token)" and audit[-1].detail["ticket"] == ticket
            overview = browser.get("/console")
            assert '<strong id="held">0</strong>' in overview.text
            assert browser.post("/console/audit/verify",
                                data={"csrf": csrf.group(1)}).status_code == 200
    finally:
        _stop(process)


def test_no_console_without_the_operator_token(tmp_path: Path) -> None:
    port = _free_port()
    process = _start(f"sqlite:///{tmp_path / 'dcc.sqlite3'}", port, None)
    try:
        for path in ("/console", "/console/login"):
            assert httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10).status_code == 404
    finally:
        _stop(process)


def test_an_operator_account_made_by_the_cli_logs_in_and_releases_over_http(tmp_path: Path) -> None:
    """No shared token at all: `dcc operators add` makes an account, the served console opens
    for it, and the audit log names the account for both the console and the operator API."""
    database = _quarantining_dcc(tmp_path, after=1)
    runner = CliRunner()
    added = runner.invoke(app, ["dcc", "operators", "add", "Grace Hopper", "--database", database])
    assert added.exit_code == 0, added.output
    token = added.output.strip().splitlines()[-1]
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    process = _start(database, port, None)
    try:
        _send_three_reads(base)
        store = SqlDccStore(database)
        first, second = (row.ticket for row in store.quarantined())
        with httpx.Client(base_url=base, timeout=10, headers={"origin": base}) as browser:
            login = browser.post("/console/login", data={"name": "Grace Hopper", "token": token})
            assert login.status_code == 303, login.text
            page = browser.get("/console/quarantine")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf is not None and 'name="operator"' not in page.text
            released = browser.post(f"/console/quarantine/{first}/release", data={"csrf": csrf.group(1)})
            assert released.status_code == 303
        api = httpx.post(
            f"{base}/api/v1/operator/quarantine/{second}/delete",
            headers={"authorization": f"Bearer Grace Hopper:{token}"}, timeout=10,
        )
        assert api.status_code == 200, api.text
        actors = {e.action: e.actor for e in store.load_audit()}
        assert actors["quarantine released"] == "Grace Hopper"
        assert actors["quarantine deleted"] == "Grace Hopper"
        assert actors["operator added"].endswith("(cli)")
        assert store.verify_audit()[1] is None
    finally:
        _stop(process)
