"""Named DCC operator accounts: only a scrypt hash of each token is stored; the operator API
records the authenticated account's name (a shared-token name as only claimed); adding and
revoking are audited on the DCC's own chain; the CLI; the migration."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect
from typer.testing import CliRunner

from smarthydra.cli.main import app
from smarthydra.clock import FixedClock
from smarthydra.dcc.operators import (
    InvalidOperatorName,
    OperatorExists,
    OperatorRegistry,
    OperatorRevoked,
    ScryptCost,
    UnknownOperator,
    check_operator_name,
    claimed_name,
)
from smarthydra.dcc.store import SqlDccStore
from smarthydra.dcc.thresholds import submit_threshold_file
from smarthydra.eui import Eui64
from tests.dcc.dccboxed_helpers import Boxed, boxed

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

CHEAP = ScryptCost(n=2**10, r=8, p=1)  # the real cost (2^15) takes ~0.1 s a check
runner = CliRunner()


def registry(store: SqlDccStore, **kwargs: object) -> OperatorRegistry:
    return OperatorRegistry(store, cost=CHEAP, clock=FixedClock(), **kwargs)  # type: ignore[arg-type]


# --- the registry -----------------------------------------------------------------------------


def test_only_a_salted_hash_of_the_token_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "dcc.sqlite3"
    store = SqlDccStore(f"sqlite:///{path}")
    operators = registry(store)
    token = operators.add("Ada")
    other = operators.add("Grace")
    assert token != other and len(token) >= 43
    store.engine.dispose()
    raw = path.read_bytes() + b"".join(
        p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("dcc.sqlite3-")
    )
    assert b"Ada" in raw  # the file is readable; the tokens are simply not in it
    for secret in (token, other):
        assert secret.encode() not in raw
        assert secret[:16].encode() not in raw


def test_authenticate_right_wrong_revoked_unknown(database_url: str) -> None:
    store = SqlDccStore(database_url)
    operators = registry(store)
    token = operators.add("Ada Lovelace")
    found = operators.authenticate("Ada Lovelace", token)
    assert found is not None and found.name == "Ada Lovelace" and found.active
    assert found.created_at == FixedClock().now()
    assert operators.authenticate("Ada Lovelace", token + "x") is None
    assert operators.authenticate("Ada Lovelace", "") is None
    assert operators.authenticate("ada lovelace", token) is None
    assert operators.authenticate("Nobody", token) is None
    assert operators.authenticate("", token) is None
    assert operators.authenticate("x" * 1000, "y" * 100_000) is None
    operators.revoke("Ada Lovelace")
    assert operators.authenticate("Ada Lovelace", token) is None
    [listed] = operators.list()
    assert listed.name == "Ada Lovelace" and not listed.active
    assert not operators.any_active()


def test_unknown_names_cost_the_same_scrypt_work(monkeypatch: pytest.MonkeyPatch) -> None:
    import smarthydra.dcc.operators as module

    store = SqlDccStore()
    operators = registry(store)
    token = operators.add("Ada")
    operators.add("Bob")
    operators.revoke("Bob")
    calls: list[ScryptCost] = []
    real = module._derive

    def counting(secret: str, salt: bytes, cost: ScryptCost) -> bytes:
        calls.append(cost)
        return real(secret, salt, cost)

    monkeypatch.setattr(module, "_derive", counting)
    for name, secret in (("Ada", token), ("Ada", "wrong"), ("Bob", "x"), ("Nobody", "x"), ("", "x")):
        operators.authenticate(name, secret)
    assert calls == [CHEAP] * 5


def test_errors_for_names_duplicates_unknowns_and_revoked() -> None:
    operators = registry(SqlDccStore())
    for bad in ("", "x" * 65, "a\nb", "tab\there", "nul\x00", " padded", "Eve (shared token)"):
        with pytest.raises(InvalidOperatorName):
            operators.add(bad)
    operators.add("Ada")
    with pytest.raises(OperatorExists):
        operators.add("Ada")
    with pytest.raises(UnknownOperator):
        operators.revoke("Nobody")
    operators.revoke("Ada")
    with pytest.raises(OperatorRevoked):
        operators.revoke("Ada")
    with pytest.raises(OperatorExists, match="not reused"):
        operators.add("Ada")
    assert check_operator_name("x" * 64) == "x" * 64
    assert claimed_name("Ada") == "Ada (shared token)"
    with pytest.raises(InvalidOperatorName):
        claimed_name("x" * 50)  # would not fit the audit log's actor column once marked


def test_a_stored_cost_is_read_back_and_odd_ones_refused() -> None:
    assert ScryptCost.parse(ScryptCost().text()) == ScryptCost()
    for odd in ("", "scrypt", "bcrypt n=2 r=1 p=1", "scrypt n=3 r=8 p=1", "scrypt n=16 r=8",
                "scrypt n=16 r=8 p=x", "scrypt n=16 r=8 q=1", "scrypt n=4194304 r=8 p=1"):
        assert ScryptCost.parse(odd) is None


def test_a_token_from_before_a_cost_change_still_works() -> None:
    store = SqlDccStore()
    token = registry(store).add("Ada")
    stronger = OperatorRegistry(store, cost=ScryptCost(n=2**11), clock=FixedClock())
    assert stronger.authenticate("Ada", token) is not None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_names_are_checked_never_crash(name: str) -> None:
    try:
        assert check_operator_name(name) == name
        assert 0 < len(name) <= 64 and name.isprintable()
    except InvalidOperatorName as exc:
        assert str(exc)


# --- the audit trail --------------------------------------------------------------------------


def test_adding_and_revoking_are_audited_on_the_running_dccs_chain(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'dcc.sqlite3'}"
    setup = boxed(database)
    dcc = setup.profile.dcc
    store = setup.profile.store
    running = OperatorRegistry(store, audit=dcc.audit, cost=CHEAP, clock=dcc.clock)
    running.add("Ada", by="root (cli)")
    assert [(e.actor, e.action, e.detail) for e in dcc.audit.entries[-1:]] == [
        ("root (cli)", "operator added", {"operator": "Ada"})
    ]
    # Another process (the CLI) adds and revokes while the DCC runs: the DCC's next entry
    # follows them, and the chain is whole.
    offline = registry(SqlDccStore(database))
    offline.add("Grace")
    offline.revoke("Ada")
    from tests.dcc.test_durable import send

    send(setup, setup.request())
    actions = [e.action for e in store.load_audit()]
    assert actions.count("operator added") == 2 and actions.count("operator revoked") == 1
    assert store.verify_audit() == (len(actions), None)
    assert running.authenticate("Ada", "anything") is None


# --- the operator API -------------------------------------------------------------------------


def _quarantining(database: str = "sqlite://") -> tuple[Boxed, TestClient, str]:
    from smarthydra.dcc.gateway import create_app
    from tests.dcc.test_durable import send

    setup = boxed(database)
    gateway = setup.profile.gateway
    gateway.operator_token = "shared-s3cret"
    gateway.operators = OperatorRegistry(
        setup.profile.store, audit=setup.profile.dcc.audit, cost=CHEAP, clock=setup.profile.dcc.clock
    )
    token = gateway.operators.add("Ada")
    submit_threshold_file(
        setup.profile.store, setup.profile.dcc.anomaly, Eui64.parse("90B3D51F30010000"),
        "threshold,4.1.1,1,3600\n",
    )
    for _ in range(4):
        send(setup, setup.request())
    return setup, TestClient(create_app(gateway)), token


def _last(setup: Boxed, action: str) -> str:
    return [e.actor for e in setup.profile.store.load_audit() if e.action == action][-1]


def test_an_accounts_release_is_recorded_under_its_name() -> None:
    setup, client, token = _quarantining()
    auth = {"authorization": f"Bearer Ada:{token}"}
    held = client.get("/api/v1/operator/quarantine", headers=auth).json()
    assert len(held) == 3
    first, second, third = (row["ticket"] for row in held)
    assert client.post(f"/api/v1/operator/quarantine/{first}/release", headers=auth).status_code == 200
    assert _last(setup, "quarantine released") == "Ada"
    same = {**auth, "x-operator": "Ada"}
    assert client.post(f"/api/v1/operator/quarantine/{second}/delete", headers=same).status_code == 200
    assert _last(setup, "quarantine deleted") == "Ada"
    assert setup.profile.store.quarantined(None)[0].operator == "Ada"
    # Claiming to be someone else beside Ada's token: 403, nothing changes.
    other = client.post(
        f"/api/v1/operator/quarantine/{third}/release", headers={**auth, "x-operator": "Grace"}
    )
    assert other.status_code == 403 and other.json()["type"].endswith("operator-mismatch")
    assert [row.ticket for row in setup.profile.store.quarantined()] == [third]
    assert setup.profile.store.verify_audit()[1] is None


def test_wrong_revoked_and_malformed_account_tokens_are_401() -> None:
    setup, client, token = _quarantining()
    operators = setup.profile.gateway.operators
    assert operators is not None
    for value in (f"Ada:{token}x", f"Grace:{token}", token, f":{token}", "Ada:", "Ada"):
        reply = client.get("/api/v1/operator/quarantine", headers={"authorization": f"Bearer {value}"})
        assert reply.status_code == 401, value
    operators.revoke("Ada")
    revoked = client.get("/api/v1/operator/quarantine", headers={"authorization": f"Bearer Ada:{token}"})
    assert revoked.status_code == 401


def test_the_shared_token_still_works_but_the_name_is_only_claimed() -> None:
    setup, client, _ = _quarantining()
    ticket = setup.profile.store.quarantined()[0].ticket
    shared = {"authorization": "Bearer shared-s3cret"}
    nameless = client.post(f"/api/v1/operator/quarantine/{ticket}/release", headers=shared)
    assert nameless.status_code == 400
    too_long = {**shared, "x-operator": "x" * 50}
    assert client.post(f"/api/v1/operator/quarantine/{ticket}/release", headers=too_long).status_code == 400
    named = {**shared, "x-operator": "Ada"}
    assert client.post(f"/api/v1/operator/quarantine/{ticket}/release", headers=named).status_code == 200
    assert _last(setup, "quarantine released") == "Ada (shared token)"


def test_accounts_open_the_api_without_a_shared_token() -> None:
    setup, client, token = _quarantining()
    setup.profile.gateway.operator_token = None
    assert client.get("/api/v1/operator/quarantine", headers={"authorization": "Bearer shared-s3cret"}).status_code == 401
    assert client.get("/api/v1/operator/quarantine", headers={"authorization": f"Bearer Ada:{token}"}).status_code == 200


def test_build_dccboxed_wires_a_registry_on_the_dccs_audit_log() -> None:
    setup = boxed()
    operators = setup.profile.gateway.operators
    assert operators is not None and operators.audit is setup.profile.dcc.audit


# --- the CLI ----------------------------------------------------------------------------------


def test_cli_add_list_revoke(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'dcc.sqlite3'}"
    empty = runner.invoke(app, ["dcc", "operators", "list", "--database", database])
    assert empty.exit_code == 0 and "no operator accounts" in empty.output
    added = runner.invoke(app, ["dcc", "operators", "add", "Ada", "--database", database])
    assert added.exit_code == 0, added.output
    token = added.output.strip().splitlines()[-1]
    store = SqlDccStore(database)
    assert OperatorRegistry(store).authenticate("Ada", token) is not None
    again = runner.invoke(app, ["dcc", "operators", "add", "Ada", "--database", database])
    assert again.exit_code == 2 and "exists already" in again.output and token not in again.output
    bad = runner.invoke(app, ["dcc", "operators", "add", "a\tb", "--database", database])
    assert bad.exit_code == 2 and "control characters" in bad.output
    listed = runner.invoke(app, ["dcc", "operators", "list", "--database", database])
    assert listed.exit_code == 0 and listed.output.startswith("Ada\tactive\t")
    assert token not in listed.output
    unknown = runner.invoke(app, ["dcc", "operators", "revoke", "Nobody", "--database", database])
    assert unknown.exit_code == 2 and "no operator named 'Nobody'" in unknown.output
    revoked = runner.invoke(app, ["dcc", "operators", "revoke", "Ada", "--database", database])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert "Ada\trevoked " in runner.invoke(app, ["dcc", "operators", "list", "--database", database]).output
    assert OperatorRegistry(store).authenticate("Ada", token) is None
    audit = [(e.action, e.detail) for e in store.load_audit()]
    assert audit == [("operator added", {"operator": "Ada"}), ("operator revoked", {"operator": "Ada"})]
    verified = runner.invoke(app, ["dcc", "audit", "verify", "--database", database])
    assert verified.exit_code == 0 and "2 records" in verified.output


# --- the migration ----------------------------------------------------------------------------


def test_the_operators_migration_round_trips(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    import smarthydra.dcc.store as store_module

    store = SqlDccStore(database_url)
    registry(store).add("Ada")
    config = Config()
    config.set_main_option("script_location", str(Path(store_module.__file__).parent / "migrations"))

    def run(step: str, target: str) -> None:
        with store.engine.begin() as connection:
            config.attributes["connection"] = connection
            getattr(command, step)(config, target)

    run("downgrade", "0004")
    assert "operators" not in inspect(store.engine).get_table_names()
    run("upgrade", "head")
    assert "operators" in inspect(store.engine).get_table_names()
    operators = registry(store)
    assert operators.list() == []
    operators.add("Ada", by="after the round trip")
    assert [o.name for o in operators.list()] == ["Ada"]
    assert operators.list()[0].created_at == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_failure_throttle_counts_per_client_and_overall_and_forgets() -> None:
    from smarthydra.dcc.operators import FailureThrottle

    now = [0.0]
    throttle = FailureThrottle(per_client=2, overall=3, window=60, now=lambda: now[0])
    throttle.failed("10.0.0.1")
    throttle.failed("10.0.0.1")
    assert not throttle.allowed("10.0.0.1")  # that client has had its two
    assert throttle.allowed("10.0.0.2")  # another operator is not locked out
    throttle.failed("10.0.0.2")
    assert not throttle.allowed("10.0.0.3")  # three failures in all: everyone waits
    now[0] = 61
    assert throttle.allowed("10.0.0.1") and throttle.allowed("10.0.0.3")


def test_operator_api_throttles_failed_tokens_per_client(tmp_path: Path) -> None:
    from smarthydra.dcc.operators import FailureThrottle
    from tests.dcc.dccboxed_helpers import boxed

    setup = boxed(f"sqlite:///{tmp_path / 'dcc.sqlite3'}")
    gateway = setup.profile.gateway
    gateway.operator_token = "the-shared-token"
    gateway.operator_throttle = FailureThrottle(per_client=3)
    for _ in range(3):
        assert gateway.operator("wrong", "list", None, "", client="10.0.0.9").status == 401
    assert gateway.operator("the-shared-token", "list", None, "", client="10.0.0.9").status == 429
    assert gateway.operator("the-shared-token", "list", None, "", client="10.0.0.8").status == 200


def test_the_cli_proves_an_accounts_name_and_marks_other_names_unverified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import Result
    from typer.testing import CliRunner

    from smarthydra.cli.main import app

    database = f"sqlite:///{tmp_path / 'dcc.sqlite3'}"
    setup, _client, token = _quarantining(database)
    first, second, third = (row.ticket for row in setup.profile.store.quarantined())
    runner = CliRunner()

    def close(action: str, ticket: int, name: str) -> Result:
        return runner.invoke(
            app, ["dcc", "quarantine", action, str(ticket), "--database", database, "--operator", name]
        )

    monkeypatch.setenv("SMARTHYDRA_OPERATOR_ACCOUNT_TOKEN", token + "x")
    wrong = close("release", first, "Ada")
    assert wrong.exit_code == 2 and "not the operator token" in wrong.output
    assert first in [row.ticket for row in setup.profile.store.quarantined()]
    monkeypatch.setenv("SMARTHYDRA_OPERATOR_ACCOUNT_TOKEN", token)
    assert close("release", first, "Ada").exit_code == 0
    assert _last(setup, "quarantine released") == "Ada"
    monkeypatch.delenv("SMARTHYDRA_OPERATOR_ACCOUNT_TOKEN")
    asked = runner.invoke(
        app,
        ["dcc", "quarantine", "delete", str(second), "--database", database, "--operator", "Ada"],
        input=f"{token}\n",
    )
    assert asked.exit_code == 0, asked.output
    assert _last(setup, "quarantine deleted") == "Ada"
    assert close("delete", third, "Grace").exit_code == 0
    assert _last(setup, "quarantine deleted") == "Grace (cli, unverified)"
    assert setup.profile.store.verify_audit()[1] is None
