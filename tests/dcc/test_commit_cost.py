"""The group commit's shortcuts (kept connection, request sequence and audit head known in
memory) never hide another writer: the chain still verifies and sequences stay distinct."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from smarthydra.dcc.audit import AuditLog
from smarthydra.dcc.store import Acceptance, RequestState, SqlDccStore, service_requests
from smarthydra.eui import Eui64

AT = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SENDER = Eui64.parse("90B3D51F30010000")


def _acceptance(request_id: str, counter: int) -> Acceptance:
    return Acceptance(
        request_id=request_id,
        sender=SENDER,
        counter=counter,
        role="IS",
        srv="4.1.1",
        command_variant=1,
        payload={},
        at=AT,
        state=RequestState.ACCEPTED,
        audit_action="request accepted",
    )


def _sequences(store: SqlDccStore) -> list[int]:
    with store.engine.connect() as connection:
        return [row.sequence for row in connection.execute(select(service_requests.c.sequence))]


def _loaded(store: SqlDccStore) -> AuditLog:
    return AuditLog(entries=store.load_audit())


def test_operator_write_between_group_commits_is_detected(database_url: str) -> None:
    store = SqlDccStore(database_url)
    audit = _loaded(store)
    store.commit_acceptances([_acceptance("R1", 1), _acceptance("R2", 2)], audit)
    # Another writer (an operator's CLI, its own store) extends the chain meanwhile.
    operator = SqlDccStore(database_url)
    operator_log = _loaded(operator)
    operator.append_audit(operator_log.next_entry(AT, "operator", "threshold changed"))
    operator.engine.dispose()
    outcomes = store.commit_acceptances([_acceptance("R3", 3)], audit)
    assert [type(outcome).__name__ for outcome in outcomes] == ["Committed"]
    assert store.verify_audit() == (4, None)
    assert [entry.action for entry in audit.entries] == [
        "request accepted",
        "request accepted",
        "threshold changed",
        "request accepted",
    ]
    assert sorted(_sequences(store)) == [0, 1, 2]


def test_other_process_requests_do_not_reuse_sequences(database_url: str) -> None:
    store = SqlDccStore(database_url)
    audit = _loaded(store)
    store.commit_acceptances([_acceptance("R1", 1)], audit)
    other = SqlDccStore(database_url)
    other.commit_acceptances([_acceptance("R2", 2)], _loaded(other))
    other.engine.dispose()
    store.commit_acceptances([_acceptance("R3", 3)], audit)
    assert sorted(_sequences(store)) == [0, 1, 2]
    assert store.verify_audit() == (3, None)


def test_unaudited_request_in_process_does_not_reuse_sequence(database_url: str) -> None:
    store = SqlDccStore(database_url)
    audit = _loaded(store)
    store.commit_acceptances([_acceptance("R1", 1)], audit)
    store.accept_request(
        request_id="R2",
        sender=SENDER,
        counter=2,
        role="IS",
        srv="4.1.1",
        command_variant=1,
        payload={},
        at=AT,
    )
    store.commit_acceptances([_acceptance("R3", 3), _acceptance("R4", 4)], audit)
    assert sorted(_sequences(store)) == [0, 1, 2, 3]
    assert store.verify_audit() == (3, None)


def test_duplicate_in_group_falls_back_and_sequences_stay_distinct(database_url: str) -> None:
    store = SqlDccStore(database_url)
    audit = _loaded(store)
    store.commit_acceptances([_acceptance("R1", 1)], audit)
    outcomes = store.commit_acceptances([_acceptance("R1", 5), _acceptance("R2", 6)], audit)
    assert [type(outcome).__name__ for outcome in outcomes] == ["DuplicateRequest", "Committed"]
    store.commit_acceptances([_acceptance("R3", 7)], audit)
    assert sorted(_sequences(store)) == [0, 1, 2]
    assert store.verify_audit() == (3, None)
