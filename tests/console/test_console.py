"""The operator console over a durable dccboxed DCC: login, pages with real data, release and
delete recorded in the audit log under the operator's name, CSRF and Origin checks, escaping."""

from __future__ import annotations

import html
import re
import urllib.parse
from pathlib import Path

from sqlalchemy import update

from smarthydra.console.app import COOKIE
from smarthydra.dcc.store import RequestState, audit_log
from tests.console.conftest import SUPPLIER_HEX, Console, build

PAGES = ["/console", "/console/quarantine", "/console/requests", "/console/audit"]


# --- access ----------------------------------------------------------------------------------


def test_pages_need_a_login(console: Console) -> None:
    for page in PAGES:
        reply = console.client.get(page, follow_redirects=False)
        assert reply.status_code == 303 and reply.headers["location"] == "/console/login"
    login = console.client.get("/console/login")
    assert login.status_code == 200 and 'name="token"' in login.text


def test_a_wrong_token_is_refused(console: Console) -> None:
    reply = console.client.post("/console/login", data={"token": "guess"}, follow_redirects=False)
    assert reply.status_code == 401 and "not the operator token" in reply.text
    assert COOKIE not in reply.cookies
    assert console.client.get("/console", follow_redirects=False).status_code == 303
    assert console.client.post("/console/login", data={}).status_code == 401


def test_failed_logins_are_throttled(console: Console) -> None:
    for _ in range(10):
        assert console.client.post("/console/login", data={"token": "x"}).status_code == 401
    # Even the right token waits once the limit is reached.
    assert console.client.post("/console/login", data={"token": "operator-s3cret-token"}).status_code == 429


def test_the_session_cookie_is_httponly_strict_and_expires(console: Console) -> None:
    reply = console.client.post(
        "/console/login", data={"token": "operator-s3cret-token"}, follow_redirects=False
    )
    cookie = reply.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "max-age=28800" in cookie
    assert "path=/console" in cookie and "secure" not in cookie  # plain HTTP in this test


def test_the_cookie_is_secure_over_tls(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    setup = build(tmp_path, quarantined=False)
    client = TestClient(setup.client.app, base_url="https://testserver")
    reply = client.post("/console/login", data={"token": "operator-s3cret-token"}, follow_redirects=False)
    assert reply.status_code == 303 and "secure" in reply.headers["set-cookie"].lower()


def test_a_forged_cookie_is_no_session(console: Console) -> None:
    console.client.cookies.set(COOKIE, "eyJ4IjoxfQ.forged.signature", path="/console")
    assert console.client.get("/console", follow_redirects=False).status_code == 303


def test_logout_ends_the_session_for_good(console: Console) -> None:
    console.login()
    cookie = console.client.cookies.get(COOKIE)
    assert cookie
    reply = console.client.post("/console/logout", data={"csrf": console.csrf()}, follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"] == "/console/login"
    # The old cookie, replayed, opens nothing: the session is closed on the server.
    console.client.cookies.set(COOKIE, cookie, path="/console")
    assert console.client.get("/console", follow_redirects=False).status_code == 303


def test_no_console_without_an_operator_token(tmp_path: Path) -> None:
    setup = build(tmp_path, token=None, quarantined=False)
    for page in [*PAGES, "/console/login", "/console/static/console.css"]:
        assert setup.client.get(page).status_code == 404
    assert setup.client.post("/console/login", data={"token": ""}).status_code == 404
    assert setup.client.post("/console/quarantine/1/release", data={}).status_code == 404


# --- pages with real data ----------------------------------------------------------------------


def test_overview_shows_the_dcc(console: Console) -> None:
    console.login()
    page = console.client.get("/console")
    assert page.status_code == 200
    assert "content-security-policy" in page.headers and "script" not in page.text.lower()
    assert re.search(r'<strong id="held">2</strong>', page.text)
    assert "dispatched" in page.text and "quarantined" in page.text
    store = console.setup.profile.store
    length = len(store.load_audit())
    assert f'<strong id="audit-length">{length}</strong>' in page.text
    # Alerts for the two held requests wait in the outbox.
    assert re.search(r'id="outbox-pending">(\d+)<', page.text).group(1) == str(  # type: ignore[union-attr]
        len(store.messages(state="pending"))
    )
    css = console.client.get("/console/static/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_audit_verification_on_demand_finds_tampering(console: Console) -> None:
    console.login()
    csrf = console.csrf()
    intact = console.client.post("/console/audit/verify", data={"csrf": csrf})
    assert intact.status_code == 200 and "Chain verified" in intact.text
    with console.setup.profile.store.engine.begin() as connection:
        connection.execute(update(audit_log).where(audit_log.c.sequence == 1).values(actor="x"))
    broken = console.client.post("/console/audit/verify", data={"csrf": csrf})
    assert "Chain broken" in broken.text and "record 1" in broken.text


def test_requests_page_filters_and_pages(console: Console) -> None:
    console.login()
    everything = console.client.get("/console/requests")
    assert everything.status_code == 200 and "4 requests" in everything.text
    held = console.client.get("/console/requests", params={"state": "quarantined"})
    assert "2 requests" in held.text and held.text.count("<td>quarantined</td>") == 2
    # Any EUI-64 spelling of the user.
    mine = console.client.get("/console/requests", params={"user": "90-b3-d5-1f-30-01-00-00"})
    assert "4 requests" in mine.text
    nobody = console.client.get("/console/requests", params={"user": "0011223344556677"})
    assert "0 requests" in nobody.text and "No requests match" in nobody.text
    for bad in ({"user": "not-an-eui"}, {"state": "bogus"}, {"page": "x"}, {"page": "0"}):
        refused = console.client.get("/console/requests", params=bad)
        assert refused.status_code == 400 and 'class="error"' in refused.text


def test_requests_page_pages(tmp_path: Path) -> None:
    from smarthydra.console.queries import requests_page

    setup = build(tmp_path, quarantined=False)
    store = setup.setup.profile.store
    first = requests_page(store, page=1, size=3)
    second = requests_page(store, page=2, size=3)
    assert first.total == 4 and first.pages == 2 and len(first.rows) == 3 and len(second.rows) == 1
    assert first.rows[0].sequence > first.rows[-1].sequence > second.rows[0].sequence


def test_audit_page_lists_recent_entries(console: Console) -> None:
    console.login()
    page = console.client.get("/console/audit")
    assert page.status_code == 200
    entries = console.setup.profile.store.load_audit()
    assert html.escape(entries[-1].action) in page.text
    assert console.client.get("/console/audit", params={"before": "zz"}).status_code == 400


# --- release and delete --------------------------------------------------------------------------


def test_release_dispatches_it_and_the_audit_log_names_the_operator(console: Console) -> None:
    console.login()
    ticket = console.held_tickets()[0]
    store = console.setup.profile.store
    request_id = store.quarantined()[0].request_id
    reply = console.client.post(
        f"/console/quarantine/{ticket}/release", data={"csrf": console.csrf(), "operator": "Ada"}
    )
    assert reply.status_code == 200 and f"Ticket {ticket} released" in reply.text
    assert store.request(request_id).state == RequestState.ACCEPTED  # type: ignore[union-attr]
    assert console.setup.profile.dcc.dispatch_accepted() == 1
    assert store.frames_for(request_id) == 1
    last = store.load_audit()
    released = [e for e in last if e.action == "quarantine released"]
    # Typed beside the shared token, the name is recorded as only claimed.
    assert released and released[-1].actor == "Ada (shared token)"
    assert released[-1].detail["ticket"] == ticket
    assert store.verify_audit() == (len(last), None)
    # The name is offered again in the next form.
    assert 'value="Ada"' in console.client.get("/console/quarantine").text


def test_delete_is_never_sent_and_is_audited(console: Console) -> None:
    console.login()
    ticket = console.held_tickets()[1]
    store = console.setup.profile.store
    request_id = next(r for r in store.quarantined() if r.ticket == ticket).request_id
    reply = console.client.post(
        f"/console/quarantine/{ticket}/delete", data={"csrf": console.csrf(), "operator": "Bob"}
    )
    assert reply.status_code == 200 and f"Ticket {ticket} deleted" in reply.text
    assert store.request(request_id).state == RequestState.DELETED  # type: ignore[union-attr]
    assert console.setup.profile.dcc.dispatch_accepted() == 0
    deleted = [e for e in store.load_audit() if e.action == "quarantine deleted"]
    assert deleted[-1].actor == "Bob (shared token)" and deleted[-1].detail["request_id"] == request_id
    # A stale ticket: a clear message and 409, nothing changes.
    again = console.client.post(
        f"/console/quarantine/{ticket}/release", data={"csrf": console.csrf(), "operator": "Bob"}
    )
    assert again.status_code == 409 and "already deleted" in again.text
    assert store.request(request_id).state == RequestState.DELETED  # type: ignore[union-attr]


def test_bad_tickets_and_names_get_a_message(console: Console) -> None:
    console.login()
    csrf = console.csrf()
    ticket = console.held_tickets()[0]
    cases = [
        ("/console/quarantine/abc/release", {"csrf": csrf, "operator": "A"}, 400, "not a quarantine ticket"),
        ("/console/quarantine/99999/release", {"csrf": csrf, "operator": "A"}, 409, "no quarantined request"),
        (f"/console/quarantine/{ticket}/release", {"csrf": csrf}, 400, "Give your name"),
        (f"/console/quarantine/{ticket}/release", {"csrf": csrf, "operator": "  "}, 400, "Give your name"),
        (f"/console/quarantine/{ticket}/release", {"csrf": csrf, "operator": "x" * 65}, 400, "longer than"),
        (f"/console/quarantine/{ticket}/release", {"csrf": csrf, "operator": "a\x00b"}, 400, "control"),
    ]
    for path, form, status, text in cases:
        reply = console.client.post(path, data=form)
        assert reply.status_code == status, (path, form, reply.text)
        assert text in reply.text and "Traceback" not in reply.text
    assert console.client.post(f"/console/quarantine/{ticket}/launch", data={"csrf": csrf}).status_code == 404
    assert console.held_tickets() == [ticket, ticket + 1]  # nothing was released


# --- CSRF and Origin -------------------------------------------------------------------------------


def test_csrf_token_missing_or_wrong_is_403(console: Console) -> None:
    console.login()
    ticket = console.held_tickets()[0]
    for form in ({"operator": "Eve"}, {"operator": "Eve", "csrf": "wrong"}, {"operator": "Eve", "csrf": ""}):
        reply = console.client.post(f"/console/quarantine/{ticket}/release", data=form)
        assert reply.status_code == 403 and "CSRF" in reply.text
    assert console.client.post("/console/logout", data={}).status_code == 403
    assert console.client.post("/console/audit/verify", data={"csrf": "x"}).status_code == 403
    assert console.held_tickets()[0] == ticket


def test_another_sessions_csrf_token_is_wrong(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    first = build(tmp_path, quarantined=True)
    first.login()
    stolen = first.csrf()
    other = TestClient(first.client.app)
    other.post("/console/login", data={"token": "operator-s3cret-token"})
    ticket = first.held_tickets()[0]
    reply = other.post(f"/console/quarantine/{ticket}/release", data={"csrf": stolen, "operator": "E"})
    assert reply.status_code == 403


def test_a_foreign_origin_is_refused(console: Console) -> None:
    console.login()
    ticket = console.held_tickets()[0]
    form = {"csrf": console.csrf(), "operator": "Eve"}
    path = f"/console/quarantine/{ticket}/release"
    for headers in (
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"sec-fetch-site": "cross-site"},
        {"referer": "https://evil.example/page"},
    ):
        reply = console.client.post(path, data=form, headers=headers)
        assert reply.status_code == 403 and "another site" in reply.text, headers
    login = console.client.post(
        "/console/login", data={"token": "operator-s3cret-token"},
        headers={"origin": "https://evil.example"},
    )
    assert login.status_code == 403
    assert console.held_tickets()[0] == ticket
    same = console.client.post(path, data=form, headers={"origin": "http://testserver"})
    assert same.status_code == 200 and "released" in same.text


def test_a_post_without_a_session_is_403(console: Console) -> None:
    ticket = console.held_tickets()[0]
    reply = console.client.post(f"/console/quarantine/{ticket}/release", data={"operator": "x"})
    assert reply.status_code == 403 and "not logged in" in reply.text


def test_oversized_and_odd_forms_are_refused(console: Console) -> None:
    console.login()
    ticket = console.held_tickets()[0]
    path = f"/console/quarantine/{ticket}/release"
    big = console.client.post(path, data={"csrf": console.csrf(), "operator": "x" * 20_000})
    assert big.status_code == 413
    json_body = console.client.post(path, json={"operator": "x"})
    assert json_body.status_code == 415
    assert console.client.post("/console/login", content=b"token=\xff\xfe",
                               headers={"content-type": "application/x-www-form-urlencoded"}).status_code == 400


# --- escaping -----------------------------------------------------------------------------------------


def test_a_hostile_operator_name_is_escaped_everywhere(console: Console) -> None:
    console.login()
    hostile = '<script>alert("x")</script>'
    ticket = console.held_tickets()[0]
    reply = console.client.post(
        f"/console/quarantine/{ticket}/release", data={"csrf": console.csrf(), "operator": hostile}
    )
    assert reply.status_code == 200
    audit = console.client.get("/console/audit").text
    for text in (reply.text, audit):
        assert hostile not in text
        assert "&lt;script&gt;" in text
    assert [e.actor for e in console.setup.profile.store.load_audit()][-1] == (
        hostile + " (shared token)"
    )
    # And in a filter echoed back.
    echoed = console.client.get("/console/requests", params={"user": hostile})
    assert echoed.status_code == 400 and "<script>" not in echoed.text


def test_users_are_shown_in_the_dccs_spelling(console: Console) -> None:
    console.login()
    assert SUPPLIER_HEX in console.client.get("/console/quarantine").text


def test_overview_shows_the_wan_queue_by_region(console: Console) -> None:
    console.login()
    queued = console.setup.profile.store.queued_frames()
    assert queued, "dispatch on accept queues the accepted requests for the WAN"
    page = console.client.get("/console").text
    assert f"<td>{html.escape(queued[0].region)}</td>" in page
    assert f"WAN queue ({len(queued)} queued)" in page


def test_a_dcc_without_a_durable_store_says_so(tmp_path: Path) -> None:
    import threading
    from types import SimpleNamespace

    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from smarthydra.console.app import mount_console
    from smarthydra.dcc.gateway import DuisFront
    from smarthydra.dcc.operators import FailureThrottle

    gateway = SimpleNamespace(
        operator_token="t", operators=None, operator_throttle=FailureThrottle(),
        dcc=SimpleNamespace(store=None, lock=threading.RLock()),
    )
    front = DuisFront(FastAPI(), gateway, [])  # type: ignore[arg-type]
    mount_console(front, gateway)  # type: ignore[arg-type]
    client = TestClient(front)
    assert client.post("/console/login", data={"token": "t"}, follow_redirects=False).status_code == 303
    page = client.get("/console")
    assert page.status_code == 404 and "no durable store" in page.text


def test_fuzzed_console_requests_never_fail_with_500(tmp_path: Path) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    setup = build(tmp_path, quarantined=True)
    setup.login()
    csrf = setup.csrf()
    paths = st.sampled_from(
        ["/console/quarantine/{}/release", "/console/quarantine/{}/delete", "/console/login",
         "/console/logout", "/console/audit/verify", "/console/requests?page={}",
         "/console/requests?user={}", "/console/audit?before={}"]
    )
    text = st.text(max_size=40)

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(paths, text, st.dictionaries(st.sampled_from(["csrf", "operator", "token", "x"]), text),
           st.booleans())
    def probe(path: str, fill: str, form: dict[str, str], with_csrf: bool) -> None:
        url = path.format(urllib.parse.quote(fill, safe=""))
        if with_csrf:
            form = {**form, "csrf": csrf}
        form.pop("token", None)  # no accidental logins or throttling of the session
        method = "GET" if "?" in path else "POST"
        reply = setup.client.request(method, url, data=form if method == "POST" else None)
        assert reply.status_code < 500, (url, form, reply.text)
        assert "Traceback" not in reply.text

    probe()


def test_fuzzed_form_bodies_are_read_or_refused(tmp_path: Path) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    setup = build(tmp_path, quarantined=False)
    setup.login()

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.binary(max_size=300), st.sampled_from(
        ["application/x-www-form-urlencoded", "", "multipart/form-data; boundary=x", "text/plain"]
    ))
    def probe(body: bytes, content_type: str) -> None:
        headers = {"content-type": content_type} if content_type else {}
        reply = setup.client.post("/console/audit/verify", content=body, headers=headers)
        assert reply.status_code in (400, 403, 413, 415), (body, reply.status_code)

    probe()
