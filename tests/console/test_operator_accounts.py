"""The console with named operator accounts: an account logs in as itself and its releases and
deletes are recorded under its name (nothing to type); the shared token's typed name is recorded
as only claimed; accounts open the console without a shared token; revoking ends a session."""

from __future__ import annotations

from pathlib import Path

from smarthydra.dcc.operators import OperatorRegistry, ScryptCost
from tests.console.conftest import Console, build

CHEAP = ScryptCost(n=2**10)


def with_account(tmp_path: Path, token: str | None = "operator-s3cret-token") -> tuple[Console, str]:
    console = build(tmp_path, token)
    profile = console.setup.profile
    registry = OperatorRegistry(profile.store, audit=profile.dcc.audit, cost=CHEAP, clock=profile.dcc.clock)
    profile.gateway.operators = registry
    return console, registry.add("Ada")


def login(console: Console, name: str, token: str) -> int:
    reply = console.client.post(
        "/console/login", data={"name": name, "token": token}, follow_redirects=False
    )
    return reply.status_code


def test_an_account_releases_and_deletes_under_its_own_name(tmp_path: Path) -> None:
    console, token = with_account(tmp_path)
    assert login(console, "Ada", token) == 303
    page = console.client.get("/console/quarantine").text
    assert "logged in as operator <strong>Ada</strong>" in page
    assert 'name="operator"' not in page  # nothing to type
    first, second = console.held_tickets()
    store = console.setup.profile.store
    # A name sent anyway (an old form, a forged field) changes nothing: the account is recorded.
    released = console.client.post(
        f"/console/quarantine/{first}/release", data={"csrf": console.csrf(), "operator": "Mallory"}
    )
    assert released.status_code == 200 and f"Ticket {first} released" in released.text
    deleted = console.client.post(f"/console/quarantine/{second}/delete", data={"csrf": console.csrf()})
    assert deleted.status_code == 200
    actors = {e.action: e.actor for e in store.load_audit()}
    assert actors["quarantine released"] == "Ada" and actors["quarantine deleted"] == "Ada"
    assert {row.operator for row in store.quarantined(None)} == {"Ada"}
    assert store.verify_audit()[1] is None


def test_a_wrong_account_token_or_name_is_refused_and_throttled(tmp_path: Path) -> None:
    console, token = with_account(tmp_path)
    assert login(console, "Ada", token + "x") == 401
    assert login(console, "Grace", token) == 401
    assert login(console, "", token) == 401
    reply = console.client.post("/console/login", data={"name": "Ada", "token": "nope"})
    assert "nor an operator account" in reply.text
    for _ in range(10):
        login(console, "Ada", "nope")
    assert login(console, "Ada", token) == 429


def test_the_shared_token_records_the_typed_name_as_claimed(tmp_path: Path) -> None:
    console, _ = with_account(tmp_path)
    assert login(console, "Grace", "operator-s3cret-token") == 303
    page = console.client.get("/console/quarantine").text
    assert 'name="operator" value="Grace"' in page and "only claimed" in page
    ticket = console.held_tickets()[0]
    reply = console.client.post(
        f"/console/quarantine/{ticket}/release", data={"csrf": console.csrf(), "operator": "Grace"}
    )
    assert reply.status_code == 200
    released = [e for e in console.setup.profile.store.load_audit() if e.action == "quarantine released"]
    assert released[-1].actor == "Grace (shared token)"


def test_accounts_open_the_console_without_a_shared_token(tmp_path: Path) -> None:
    console, token = with_account(tmp_path, token=None)
    assert console.client.get("/console/login").status_code == 200
    assert login(console, "Ada", token) == 303
    assert console.client.get("/console").status_code == 200
    registry = console.setup.profile.gateway.operators
    assert registry is not None
    # Revoking the account ends its session, and (the last account gone) closes the console.
    registry.revoke("Ada")
    assert console.client.get("/console", follow_redirects=False).status_code == 404
    registry.add("Grace")
    assert console.client.get("/console", follow_redirects=False).status_code == 303  # to login
    assert login(console, "Ada", token) == 401


def test_a_revoked_accounts_session_ends(tmp_path: Path) -> None:
    console, token = with_account(tmp_path)
    assert login(console, "Ada", token) == 303
    csrf = console.csrf()
    registry = console.setup.profile.gateway.operators
    assert registry is not None
    registry.revoke("Ada")
    assert console.client.get("/console/quarantine", follow_redirects=False).status_code == 303
    ticket = console.held_tickets()[0]
    refused = console.client.post(f"/console/quarantine/{ticket}/release", data={"csrf": csrf})
    assert refused.status_code == 403
    assert ticket in console.held_tickets()
