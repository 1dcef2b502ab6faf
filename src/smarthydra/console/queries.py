"""What the console shows, read from the DCC's tables (read-only; actions go through the DCC).

Counts are made by the database (GROUP BY), and lists are paged, so a large DCC's pages cost
a few indexed queries, never a load of whole tables. Verifying the audit chain is the one
expensive step; it is done only when an operator asks.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from smarthydra.dcc.store import (
    OutboxState,
    RequestState,
    SqlDccStore,
    audit_head,
    audit_log,
    outbox,
    quarantine,
    service_requests,
    wan_queue,
)
from smarthydra.eui import Eui64, InvalidEui64

REQUEST_STATES = (
    RequestState.ACCEPTED,
    RequestState.QUARANTINED,
    RequestState.DISPATCHED,
    RequestState.TRANSFORMED,
    RequestState.SIGNED,
    RequestState.DELETED,
    RequestState.FAILED,
)
PAGE_SIZE = 50
MAX_PAGE = 100_000


class FilterError(ValueError):
    """A filter an operator typed that the console cannot apply (shown on the page)."""


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Overview:
    requests_by_state: dict[str, int]
    quarantine_by_state: dict[str, int]
    outbox_by_state: dict[str, int]
    wan_queued_by_region: dict[str, int]
    audit_length: int
    audit_head: int | None  # the sequence the head record names; None: no head yet

    @property
    def requests_total(self) -> int:
        return sum(self.requests_by_state.values())

    @property
    def quarantine_held(self) -> int:
        return self.quarantine_by_state.get("held", 0)

    @property
    def outbox_pending(self) -> int:
        return self.outbox_by_state.get(OutboxState.PENDING, 0)

    @property
    def outbox_expired(self) -> int:
        return self.outbox_by_state.get(OutboxState.EXPIRED, 0)

    @property
    def wan_queued(self) -> int:
        return sum(self.wan_queued_by_region.values())


@dataclass(frozen=True)
class RequestRow:
    request_id: str
    sender: str
    role: str
    srv: str
    command_variant: int
    state: str
    accepted_at: dt.datetime
    sequence: int


@dataclass(frozen=True)
class RequestPage:
    rows: list[RequestRow]
    page: int
    pages: int
    total: int
    user: str  # the filter as applied (an EUI-64 in the DCC's spelling), "" for none
    state: str


@dataclass(frozen=True)
class AuditRow:
    sequence: int
    at: dt.datetime
    actor: str
    action: str
    detail: str  # JSON text, as recorded
    digest: str  # hex, for an operator to compare with a copy


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditRow]
    before: int | None  # the sequence to page on from (older entries), None at the start


def _grouped(store: SqlDccStore, column: Any, *where: Any) -> dict[str, int]:
    query = select(column, func.count()).group_by(column)
    for condition in where:
        query = query.where(condition)
    with store.engine.connect() as connection:
        return {str(key): int(count) for key, count in connection.execute(query).all()}


def overview(store: SqlDccStore) -> Overview:
    with store.engine.connect() as connection:
        length = int(connection.execute(select(func.count()).select_from(audit_log)).scalar_one())
        head = connection.execute(select(audit_head.c.sequence)).first()
    return Overview(
        requests_by_state=_grouped(store, service_requests.c.state),
        quarantine_by_state=_grouped(store, quarantine.c.state),
        outbox_by_state=_grouped(store, outbox.c.state),
        wan_queued_by_region=_grouped(store, wan_queue.c.region, wan_queue.c.state == "queued"),
        audit_length=length,
        audit_head=None if head is None else int(head.sequence),
    )


def parse_user(text: str) -> str:
    """A user filter in the stored spelling (16 hex digits); any EUI-64 spelling is accepted."""
    text = text.strip()
    if not text:
        return ""
    try:
        return str(Eui64.parse(text))
    except InvalidEui64 as exc:
        raise FilterError(f"user {text[:40]!r} is not an EUI-64") from exc


def parse_state(text: str) -> str:
    text = text.strip()
    if text and text not in REQUEST_STATES:
        raise FilterError(f"state {text[:40]!r} is not one of {', '.join(REQUEST_STATES)}")
    return text


def requests_page(
    store: SqlDccStore, *, page: int = 1, user: str = "", state: str = "", size: int = PAGE_SIZE
) -> RequestPage:
    """Newest first; ``user`` and ``state`` as given by :func:`parse_user`/:func:`parse_state`."""
    if not 1 <= page <= MAX_PAGE:
        raise FilterError(f"page {page} is out of range")
    conditions = []
    if user:
        conditions.append(service_requests.c.sender == user)
    if state:
        conditions.append(service_requests.c.state == state)
    counted = select(func.count()).select_from(service_requests)
    listed = select(service_requests).order_by(service_requests.c.sequence.desc())
    for condition in conditions:
        counted = counted.where(condition)
        listed = listed.where(condition)
    with store.engine.connect() as connection:
        total = int(connection.execute(counted).scalar_one())
        rows = connection.execute(listed.limit(size).offset((page - 1) * size)).all()
    return RequestPage(
        [
            RequestRow(
                r.request_id, r.sender, r.role, r.srv, r.command_variant, r.state,
                _utc(r.accepted_at), r.sequence,
            )
            for r in rows
        ],
        page,
        max(1, -(-total // size)),
        total,
        user,
        state,
    )


def audit_page(store: SqlDccStore, *, before: int | None = None, size: int = 100) -> AuditPage:
    """The ``size`` entries before sequence ``before`` (the newest when None), newest first."""
    query = select(audit_log).order_by(audit_log.c.sequence.desc()).limit(size)
    if before is not None:
        query = query.where(audit_log.c.sequence < before)
    with store.engine.connect() as connection:
        rows = connection.execute(query).all()
    entries = [
        AuditRow(
            r.sequence, _utc(r.at), r.actor, r.action, _detail_text(r.detail), bytes(r.digest).hex()
        )
        for r in rows
    ]
    older = entries[-1].sequence if len(entries) == size and entries[-1].sequence > 0 else None
    return AuditPage(entries, older)


def _detail_text(raw: str) -> str:
    """The detail as compact JSON (as stored, if it cannot be read: it is shown, not trusted)."""
    try:
        return json.dumps(json.loads(raw), sort_keys=True, ensure_ascii=False)
    except ValueError:
        return raw
