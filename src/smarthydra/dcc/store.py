"""Durable DCC state in SQL: users, inventory, counters, requests, quarantine, queues, audit.

SQLite (WAL, synchronous=NORMAL) by default, a file or memory for tests; PostgreSQL in
production (``postgresql+psycopg://...``). The schema is created and upgraded by the Alembic
migrations in :mod:`smarthydra.dcc.migrations`; the tables below are the models those
migrations build, and a test checks the two agree.

Every write is its own transaction, and the writes that must happen together (accepting a
request and raising the sender's counter floor; queueing a command for the WAN and marking
its request dispatched) share one, so a crash never leaves half of a decision behind.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from smarthydra.dcc.audit import GENESIS, AuditConflict, AuditEntry
from smarthydra.eui import Eui64

metadata = MetaData()

audit_log = Table(
    "audit_log",
    metadata,
    Column("sequence", Integer, primary_key=True, autoincrement=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(128), nullable=False),
    Column("detail", Text, nullable=False),
    Column("previous", LargeBinary(32), nullable=False),
    Column("digest", LargeBinary(32), nullable=False),
)

# The chain's head, written in the same transaction as each entry: deleting the newest
# entries (which the chain alone cannot show) leaves the head pointing past the end.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("sequence", Integer, nullable=False),
    Column("digest", LargeBinary(32), nullable=False),
)

request_counters = Table(
    "request_counters",
    metadata,
    Column("user_eui", String(16), primary_key=True),
    # Decimal text: counters reach 2^64-1, beyond SQLite's integers (and floats lose digits).
    Column("last_counter", String(20), nullable=False),
)

dcc_users = Table(
    "dcc_users",
    metadata,
    Column("eui", String(16), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("signing_key", Text, nullable=False),  # PEM SubjectPublicKeyInfo
    Column("endpoint", Text, nullable=True),  # where responses and alerts are POSTed
)

user_roles = Table(
    "user_roles",
    metadata,
    Column("user_eui", String(16), ForeignKey("dcc_users.eui"), primary_key=True),
    Column("role", String(8), primary_key=True),
    Column("status", String(16), nullable=False),
)

devices = Table(
    "devices",
    metadata,
    Column("eui", String(16), primary_key=True),
    Column("device_type", String(8), nullable=False),
    Column("hub", String(16), nullable=False),
    Column("mpxn", String(32), nullable=False),
    Column("key_agreement_key", Text, nullable=False),  # PEM SubjectPublicKeyInfo
    Column("smi_status", String(32), nullable=False),
    Column("region", String(32), nullable=False),
)

registrations = Table(
    "registrations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("mpxn", String(32), nullable=False, index=True),
    Column("role", String(8), nullable=False),
    Column("party", String(16), nullable=False),
    Column("effective_from", DateTime(timezone=True), nullable=False),
)

# Every request the DCC acknowledged (I99), in the state it has reached. The RequestID is the
# key, so a request can be accepted, and dispatched, once only.
service_requests = Table(
    "service_requests",
    metadata,
    Column("request_id", String(128), primary_key=True),
    Column("sender", String(16), nullable=False),
    Column("role", String(8), nullable=False),
    Column("srv", String(16), nullable=False),
    Column("command_variant", Integer, nullable=False),
    Column("payload", Text, nullable=False),  # JSON: parameters, or the signed GBCS in hex
    Column("state", String(16), nullable=False, index=True),
    Column("accepted_at", DateTime(timezone=True), nullable=False),
    Column("sequence", Integer, nullable=False, index=True),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("ticket", Integer, primary_key=True, autoincrement=True),
    Column(
        "request_id", String(128), ForeignKey("service_requests.request_id"), nullable=False
    ),
    Column("user_eui", String(16), nullable=False),
    Column("srv", String(16), nullable=False),
    Column("held_at", DateTime(timezone=True), nullable=False),
    Column("reason", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("operator", String(64), nullable=True),
)

wan_queue = Table(
    "wan_queue",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(128), nullable=False),
    Column("hub", String(16), nullable=False),
    Column("device", String(16), nullable=False),
    Column("region", String(32), nullable=False),
    Column("frame", LargeBinary, nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("queued_at", DateTime(timezone=True), nullable=False),
    Column("response", LargeBinary, nullable=True),
    UniqueConstraint("request_id", name="uq_wan_queue_request_id"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_eui", String(16), nullable=False, index=True),
    Column("request_id", String(128), nullable=True),
    Column("kind", String(16), nullable=False),  # response | alert
    Column("message", Text, nullable=False),  # JSON: what the signed DUIS document says
    Column("state", String(16), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),
)

anomaly_thresholds = Table(
    "anomaly_thresholds",
    metadata,
    Column("user_eui", String(16), primary_key=True),  # "*" for DCC-wide
    Column("srv", String(16), primary_key=True),
    Column("max_requests", Integer, nullable=False),
    Column("window_seconds", Float, nullable=False),
)

schedules = Table(
    "schedules",
    metadata,
    Column("schedule_id", Integer, primary_key=True, autoincrement=True),
    Column("user_eui", String(16), nullable=False),
    Column("device", String(16), nullable=False),
    Column("srv", String(16), nullable=False),
    Column("role", String(8), nullable=False),
    Column("parameters", Text, nullable=False),  # JSON: the DSP element of the schedule
    Column("start", DateTime(timezone=True), nullable=False),
    Column("end_at", DateTime(timezone=True), nullable=True),
    Column("frequency", String(16), nullable=False),  # DUIS ScheduleFrequency
    Column("next_run", DateTime(timezone=True), nullable=False),
    Column("runs", Integer, nullable=False),
    Column("active", Integer, nullable=False),
)


class StoreError(Exception):
    """A database operation the DCC cannot complete (e.g. a RequestID accepted twice)."""


class DuplicateRequest(StoreError):
    """The RequestID was accepted before: a request is accepted once."""


class AuditTampered(StoreError):
    """The audit log in the database does not verify."""


def _next_sequence(connection: Connection) -> int:
    """The order of acceptance: one more than the highest so far (an index lookup)."""
    highest = connection.execute(select(func.max(service_requests.c.sequence))).scalar_one()
    return 0 if highest is None else int(highest) + 1


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _enable_sqlite_durability(engine: Engine, *, file_backed: bool) -> None:
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if file_backed:
            cursor.execute("PRAGMA journal_mode=WAL")
        # WAL with synchronous=NORMAL: a committed transaction survives the process being
        # killed (what the I99 promise needs); only an OS crash or power loss may lose the
        # newest commits. Production (PostgreSQL) fsyncs every commit.
        cursor.execute(f"PRAGMA synchronous={'NORMAL' if file_backed else 'OFF'}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()


def make_engine(url: str) -> Engine:
    if url in ("sqlite://", "sqlite:///:memory:"):
        # One shared in-memory database for every thread (a server runs handlers on others).
        engine = create_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
        _enable_sqlite_durability(engine, file_backed=False)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        _enable_sqlite_durability(engine, file_backed=True)
        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema with the packaged Alembic migrations."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@dataclass(frozen=True)
class StoredRequest:
    request_id: str
    sender: str
    role: str
    srv: str
    command_variant: int
    payload: dict[str, Any]
    state: str
    accepted_at: dt.datetime
    sequence: int


@dataclass(frozen=True)
class QuarantineRow:
    ticket: int
    request_id: str
    user: str
    srv: str
    held_at: dt.datetime
    reason: str
    state: str
    operator: str | None


@dataclass(frozen=True)
class WanFrame:
    id: int
    request_id: str
    hub: str
    device: str
    region: str
    frame: bytes
    state: str
    queued_at: dt.datetime


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    user: str
    request_id: str | None
    kind: str
    message: dict[str, Any]
    state: str
    created_at: dt.datetime
    attempts: int
    next_attempt_at: dt.datetime
    delivered_at: dt.datetime | None
    last_error: str | None


class RequestState:
    """Where an acknowledged request is: the values of ``service_requests.state``."""

    TRANSFORMED = "transformed"  # CV 4: the pre-command went back for signing
    SIGNED = "signed"  # CV 4 whose signed pre-command arrived (recorded as <RequestID>#signed)
    ACCEPTED = "accepted"  # acknowledged, not yet handed to the WAN
    QUARANTINED = "quarantined"  # held by anomaly detection
    DISPATCHED = "dispatched"  # MAC'd and queued for the WAN, exactly once
    DELETED = "deleted"  # an operator deleted it from quarantine
    FAILED = "failed"  # could not be transformed or sent; the user was told


class OutboxState:
    PENDING = "pending"  # delivery not yet confirmed; retried, and pollable
    DELIVERED = "delivered"
    EXPIRED = "expired"  # undeliverable for the holding period


class SqlDccStore:
    def __init__(self, url: str = "sqlite://") -> None:
        self.url = url
        self.engine: Engine = make_engine(url)
        migrate(self.engine)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as connection:
            yield connection

    # --- audit ------------------------------------------------------------------------------

    def append_audit(self, entry: AuditEntry) -> None:
        """Append one entry; :class:`AuditConflict` if the chain's end is not its predecessor."""
        try:
            with self.engine.begin() as connection:
                self.append_audit_checked(connection, entry)
        except IntegrityError:
            raise AuditConflict(f"audit record {entry.sequence} exists already") from None

    @classmethod
    def append_audit_checked(cls, connection: Connection, entry: AuditEntry) -> None:
        """Append within the caller's transaction, if the chain still ends where ``entry``
        expects (else :class:`AuditConflict`, and the caller's transaction rolls back)."""
        head = connection.execute(select(audit_head).with_for_update()).first()
        expected = (-1, GENESIS) if head is None else (head.sequence, head.digest)
        if expected != (entry.sequence - 1, entry.previous):
            raise AuditConflict(f"the audit chain has moved on past {entry.sequence - 1}")
        cls.append_audit_in(connection, entry)

    @staticmethod
    def append_audit_in(connection: Connection, entry: AuditEntry) -> None:
        connection.execute(
            insert(audit_log).values(
                sequence=entry.sequence,
                at=entry.at,
                actor=entry.actor,
                action=entry.action,
                detail=json.dumps(entry.detail, sort_keys=True, default=str),
                previous=entry.previous,
                digest=entry.digest,
            )
        )
        updated = connection.execute(
            update(audit_head)
            .where(audit_head.c.id == 1)
            .values(sequence=entry.sequence, digest=entry.digest)
        ).rowcount
        if not updated:
            connection.execute(
                insert(audit_head).values(id=1, sequence=entry.sequence, digest=entry.digest)
            )

    def load_audit(self) -> list[AuditEntry]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(audit_log).order_by(audit_log.c.sequence)).all()
        return [
            AuditEntry(
                row.sequence,
                _utc(row.at),
                row.actor,
                row.action,
                json.loads(row.detail),
                row.previous,
                row.digest,
            )
            for row in rows
        ]

    def verify_audit(self) -> tuple[int, str | None]:
        """(entries, problem): the chain from genesis, and that it ends at the recorded head."""
        from smarthydra.dcc.audit import AuditLog

        try:
            entries = self.load_audit()
        except (ValueError, TypeError) as exc:
            return 0, f"an audit record cannot be read: {exc}"
        broken = AuditLog(entries).verify()
        if broken is not None:
            return len(entries), f"the chain breaks at record {broken}"
        with self.engine.connect() as connection:
            head = connection.execute(select(audit_head)).first()
        if head is None:
            return len(entries), None if not entries else "the audit head record is missing"
        last_digest = entries[-1].digest if entries else GENESIS
        if head.sequence != len(entries) - 1 or head.digest != last_digest:
            return (
                len(entries),
                f"the log ends at record {len(entries) - 1} but the head says {head.sequence}: "
                "records were removed from the end",
            )
        return len(entries), None

    # --- RequestID counters -------------------------------------------------------------------

    def last_counter(self, user: Eui64) -> int | None:
        with self.engine.connect() as connection:
            return self.last_counter_in(connection, user)

    @staticmethod
    def last_counter_in(connection: Connection, user: Eui64) -> int | None:
        value = connection.execute(
            select(request_counters.c.last_counter).where(
                request_counters.c.user_eui == str(user)
            )
        ).scalar_one_or_none()
        return None if value is None else int(value)

    def set_last_counter(self, user: Eui64, counter: int) -> None:
        with self.engine.begin() as connection:
            self.set_last_counter_in(connection, user, counter)

    @staticmethod
    def set_last_counter_in(connection: Connection, user: Eui64, counter: int) -> None:
        updated = connection.execute(
            update(request_counters)
            .where(request_counters.c.user_eui == str(user))
            .values(last_counter=str(counter))
        ).rowcount
        if not updated:
            connection.execute(
                insert(request_counters).values(user_eui=str(user), last_counter=str(counter))
            )

    # --- acknowledged requests ------------------------------------------------------------------

    def accept_request(
        self,
        *,
        request_id: str,
        sender: Eui64,
        counter: int,
        role: str,
        srv: str,
        command_variant: int,
        payload: dict[str, Any],
        at: dt.datetime,
        state: str = RequestState.ACCEPTED,
        quarantine_reason: str | None = None,
        audit: AuditEntry | None = None,
    ) -> int | None:
        """Record an acknowledged request and raise the sender's counter floor, atomically
        (with ``audit``, its audit record too: one commit per acknowledged request).

        Returns the quarantine ticket when ``quarantine_reason`` is given. Raises
        :class:`DuplicateRequest` when this RequestID was accepted before.
        """
        try:
            with self.engine.begin() as connection:
                floor = self.last_counter_in(connection, sender)
                if floor is not None and counter <= floor:
                    raise DuplicateRequest(f"counter {counter} is not above {floor}")
                sequence = _next_sequence(connection)
                connection.execute(
                    insert(service_requests).values(
                        request_id=request_id,
                        sender=str(sender),
                        role=role,
                        srv=srv,
                        command_variant=command_variant,
                        payload=json.dumps(payload, sort_keys=True, default=str),
                        state=state,
                        accepted_at=at,
                        sequence=sequence,
                    )
                )
                self.set_last_counter_in(connection, sender, counter)
                if audit is not None:
                    self.append_audit_checked(connection, audit)
                if quarantine_reason is None:
                    return None
                result = connection.execute(
                    insert(quarantine).values(
                        request_id=request_id,
                        user_eui=str(sender),
                        srv=srv,
                        held_at=at,
                        reason=quarantine_reason,
                        state="held",
                    )
                )
                ticket = result.inserted_primary_key
                assert ticket is not None
                return int(ticket[0])
        except IntegrityError:
            raise DuplicateRequest(f"RequestID {request_id} was accepted before") from None

    def accept_signed(
        self,
        original: str,
        key: str,
        *,
        sender: Eui64,
        role: str,
        srv: str,
        command_variant: int,
        payload: dict[str, Any],
        at: dt.datetime,
        state: str,
        quarantine_reason: str | None = None,
    ) -> int | None:
        """The signed pre-command for ``original`` (a CV 4 request): close the original and
        record the signed one, once. Returns the quarantine ticket if it is quarantined."""
        try:
            with self.engine.begin() as connection:
                moved = connection.execute(
                    update(service_requests)
                    .where(
                        service_requests.c.request_id == original,
                        service_requests.c.state == RequestState.TRANSFORMED,
                    )
                    .values(state=RequestState.SIGNED)
                ).rowcount
                if not moved:
                    raise DuplicateRequest(f"the pre-command for {original} was answered before")
                sequence = _next_sequence(connection)
                connection.execute(
                    insert(service_requests).values(
                        request_id=key,
                        sender=str(sender),
                        role=role,
                        srv=srv,
                        command_variant=command_variant,
                        payload=json.dumps(payload, sort_keys=True, default=str),
                        state=state,
                        accepted_at=at,
                        sequence=sequence,
                    )
                )
                if quarantine_reason is None:
                    return None
                result = connection.execute(
                    insert(quarantine).values(
                        request_id=key,
                        user_eui=str(sender),
                        srv=srv,
                        held_at=at,
                        reason=quarantine_reason,
                        state="held",
                    )
                )
                ticket = result.inserted_primary_key
                assert ticket is not None
                return int(ticket[0])
        except IntegrityError:
            raise DuplicateRequest(f"the pre-command for {original} was answered before") from None

    @staticmethod
    def _stored(row: Any) -> StoredRequest:
        return StoredRequest(
            row.request_id,
            row.sender,
            row.role,
            row.srv,
            row.command_variant,
            json.loads(row.payload),
            row.state,
            _utc(row.accepted_at),
            row.sequence,
        )

    def requests_in_state(self, state: str, limit: int = 100) -> list[StoredRequest]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(service_requests)
                .where(service_requests.c.state == state)
                .order_by(service_requests.c.sequence)
                .limit(limit)
            ).all()
        return [self._stored(row) for row in rows]

    def request(self, request_id: str) -> StoredRequest | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(service_requests).where(service_requests.c.request_id == request_id)
            ).first()
        return None if row is None else self._stored(row)

    def dispatch(
        self,
        request_id: str,
        *,
        hub: str,
        device: str,
        region: str,
        frame: bytes,
        at: dt.datetime,
        audit: AuditEntry | None = None,
    ) -> bool:
        """Queue the MAC'd command for the WAN and mark the request dispatched, atomically.

        Returns False (and changes nothing) when the request is not in the accepted state:
        a command is queued for the WAN once per RequestID.
        """
        with self.engine.begin() as connection:
            moved = connection.execute(
                update(service_requests)
                .where(
                    service_requests.c.request_id == request_id,
                    service_requests.c.state == RequestState.ACCEPTED,
                )
                .values(state=RequestState.DISPATCHED)
            ).rowcount
            if not moved:
                return False
            connection.execute(
                insert(wan_queue).values(
                    request_id=request_id,
                    hub=hub,
                    device=device,
                    region=region,
                    frame=frame,
                    state="queued",
                    queued_at=at,
                )
            )
            if audit is not None:
                self.append_audit_checked(connection, audit)
        return True

    def fail_request(self, request_id: str, message: dict[str, Any], user: str, at: dt.datetime) -> None:
        """The request cannot be carried out: mark it failed and tell the user, atomically."""
        with self.engine.begin() as connection:
            connection.execute(
                update(service_requests)
                .where(service_requests.c.request_id == request_id)
                .values(state=RequestState.FAILED)
            )
            self._queue_message_in(connection, user, request_id, "response", message, at)

    # --- the WAN queue ----------------------------------------------------------------------------

    def queued_frames(self, limit: int = 100) -> list[WanFrame]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(wan_queue)
                .where(wan_queue.c.state == "queued")
                .order_by(wan_queue.c.id)
                .limit(limit)
            ).all()
        return [
            WanFrame(
                r.id, r.request_id, r.hub, r.device, r.region, r.frame, r.state, _utc(r.queued_at)
            )
            for r in rows
        ]

    def frames_for(self, request_id: str) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count())
                    .select_from(wan_queue)
                    .where(wan_queue.c.request_id == request_id)
                ).scalar_one()
            )

    def frame_sent(
        self,
        frame_id: int,
        response: bytes | None,
        *,
        user: str,
        request_id: str,
        message: dict[str, Any] | None,
        at: dt.datetime,
    ) -> None:
        """The WAN carried the frame: record the device's answer and queue it for the user."""
        with self.engine.begin() as connection:
            connection.execute(
                update(wan_queue)
                .where(wan_queue.c.id == frame_id)
                .values(state="answered" if response is not None else "sent", response=response)
            )
            if message is not None:
                self._queue_message_in(connection, user, request_id, "response", message, at)

    # --- messages to users ------------------------------------------------------------------------

    @staticmethod
    def _queue_message_in(
        connection: Connection,
        user: str,
        request_id: str | None,
        kind: str,
        message: dict[str, Any],
        at: dt.datetime,
    ) -> None:
        connection.execute(
            insert(outbox).values(
                user_eui=user,
                request_id=request_id,
                kind=kind,
                message=json.dumps(message, sort_keys=True),
                state=OutboxState.PENDING,
                created_at=at,
                attempts=0,
                next_attempt_at=at,
            )
        )

    def queue_message(
        self, user: str, request_id: str | None, kind: str, message: dict[str, Any], at: dt.datetime
    ) -> None:
        with self.engine.begin() as connection:
            self._queue_message_in(connection, user, request_id, kind, message, at)

    @staticmethod
    def _message(row: Any) -> OutboxMessage:
        return OutboxMessage(
            row.id,
            row.user_eui,
            row.request_id,
            row.kind,
            json.loads(row.message),
            row.state,
            _utc(row.created_at),
            row.attempts,
            _utc(row.next_attempt_at),
            _utc(row.delivered_at) if row.delivered_at else None,
            row.last_error,
        )

    def messages(
        self, *, user: str | None = None, state: str | None = None, due_by: dt.datetime | None = None
    ) -> list[OutboxMessage]:
        query = select(outbox).order_by(outbox.c.id)
        if user is not None:
            query = query.where(outbox.c.user_eui == user)
        if state is not None:
            query = query.where(outbox.c.state == state)
        if due_by is not None:
            query = query.where(outbox.c.next_attempt_at <= due_by)
        with self.engine.connect() as connection:
            return [self._message(row) for row in connection.execute(query).all()]

    def mark_delivered(self, message_id: int, at: dt.datetime) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(outbox)
                .where(outbox.c.id == message_id, outbox.c.state == OutboxState.PENDING)
                .values(state=OutboxState.DELIVERED, delivered_at=at)
            )

    def mark_attempt(
        self, message_id: int, *, next_attempt_at: dt.datetime, error: str, expired: bool
    ) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(outbox)
                .where(outbox.c.id == message_id)
                .values(
                    attempts=outbox.c.attempts + 1,
                    next_attempt_at=next_attempt_at,
                    last_error=error[:500],
                    state=OutboxState.EXPIRED if expired else OutboxState.PENDING,
                )
            )

    # --- quarantine ---------------------------------------------------------------------------

    def quarantined(self, state: str | None = "held") -> list[QuarantineRow]:
        query = select(quarantine).order_by(quarantine.c.ticket)
        if state is not None:
            query = query.where(quarantine.c.state == state)
        with self.engine.connect() as connection:
            return [
                QuarantineRow(
                    r.ticket,
                    r.request_id,
                    r.user_eui,
                    r.srv,
                    _utc(r.held_at),
                    r.reason,
                    r.state,
                    r.operator,
                )
                for r in connection.execute(query).all()
            ]

    def close_quarantine(self, ticket: int, operator: str, *, release: bool) -> QuarantineRow:
        """Release (back to accepted, so the dispatcher sends it) or delete a held request."""
        with self.engine.begin() as connection:
            row = connection.execute(select(quarantine).where(quarantine.c.ticket == ticket)).first()
            if row is None:
                raise StoreError(f"no quarantined request with ticket {ticket}")
            if row.state != "held":
                raise StoreError(f"quarantined request {ticket} was already {row.state}")
            state = "released" if release else "deleted"
            connection.execute(
                update(quarantine)
                .where(quarantine.c.ticket == ticket)
                .values(state=state, operator=operator)
            )
            connection.execute(
                update(service_requests)
                .where(service_requests.c.request_id == row.request_id)
                .values(state=RequestState.ACCEPTED if release else RequestState.DELETED)
            )
        return QuarantineRow(
            row.ticket, row.request_id, row.user_eui, row.srv, _utc(row.held_at), row.reason,
            state, operator,
        )

    # --- anomaly thresholds ---------------------------------------------------------------------

    def replace_thresholds(self, user: str, rows: list[tuple[str, int, float]]) -> None:
        """A user's submitted threshold file replaces its previous one (``user='*'``: the DCC's)."""
        with self.engine.begin() as connection:
            connection.execute(delete(anomaly_thresholds).where(anomaly_thresholds.c.user_eui == user))
            for srv, max_requests, window in rows:
                connection.execute(
                    insert(anomaly_thresholds).values(
                        user_eui=user, srv=srv, max_requests=max_requests, window_seconds=window
                    )
                )

    def thresholds(self) -> list[tuple[str, str, int, float]]:
        with self.engine.connect() as connection:
            return [
                (r.user_eui, r.srv, r.max_requests, r.window_seconds)
                for r in connection.execute(select(anomaly_thresholds)).all()
            ]


@dataclass(frozen=True)
class Schedule:
    schedule_id: int
    user: str
    device: str
    srv: str
    role: str
    parameters: dict[str, Any]
    start: dt.datetime
    end: dt.datetime | None
    frequency: str
    next_run: dt.datetime
    runs: int
    active: bool


def _schedule(row: Any) -> Schedule:
    return Schedule(
        row.schedule_id,
        row.user_eui,
        row.device,
        row.srv,
        row.role,
        json.loads(row.parameters),
        _utc(row.start),
        _utc(row.end_at) if row.end_at else None,
        row.frequency,
        _utc(row.next_run),
        row.runs,
        bool(row.active),
    )


class ScheduleStore:
    """DCC-scheduled reads (DUIS 5.1-5.3) in the DCC database."""

    def __init__(self, store: SqlDccStore) -> None:
        self.store = store

    def add(
        self,
        *,
        user: str,
        device: str,
        srv: str,
        role: str,
        parameters: dict[str, Any],
        start: dt.datetime,
        end: dt.datetime | None,
        frequency: str,
    ) -> int:
        with self.store.transaction() as connection:
            result = connection.execute(
                insert(schedules).values(
                    user_eui=user,
                    device=device,
                    srv=srv,
                    role=role,
                    parameters=json.dumps(parameters, sort_keys=True, default=str),
                    start=start,
                    end_at=end,
                    frequency=frequency,
                    next_run=start,
                    runs=0,
                    active=1,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def find(
        self, *, user: str, schedule_id: int | None = None, device: str | None = None
    ) -> list[Schedule]:
        query = (
            select(schedules)
            .where(schedules.c.user_eui == user, schedules.c.active == 1)
            .order_by(schedules.c.schedule_id)
        )
        if schedule_id is not None:
            query = query.where(schedules.c.schedule_id == schedule_id)
        if device is not None:
            query = query.where(schedules.c.device == device)
        with self.store.engine.connect() as connection:
            return [_schedule(row) for row in connection.execute(query).all()]

    def due(self, now: dt.datetime) -> list[Schedule]:
        with self.store.engine.connect() as connection:
            rows = connection.execute(
                select(schedules)
                .where(schedules.c.active == 1, schedules.c.next_run <= now)
                .order_by(schedules.c.next_run)
            ).all()
        return [_schedule(row) for row in rows]

    def deactivate(self, schedule_ids: list[int]) -> None:
        with self.store.transaction() as connection:
            connection.execute(
                update(schedules)
                .where(schedules.c.schedule_id.in_(schedule_ids))
                .values(active=0)
            )

    def ran(
        self,
        schedule: Schedule,
        next_run: dt.datetime,
        *,
        request_key: str,
        payload: dict[str, Any],
        at: dt.datetime,
    ) -> bool:
        """Record one run and its request (state accepted, for dispatch), atomically.

        The request key is derived from the schedule and run number, so a run is made once
        even if the DCC stops between the two steps. Returns False if that run exists.
        """
        try:
            with self.store.transaction() as connection:
                moved = connection.execute(
                    update(schedules)
                    .where(
                        schedules.c.schedule_id == schedule.schedule_id,
                        schedules.c.runs == schedule.runs,
                    )
                    .values(
                        runs=schedule.runs + 1,
                        next_run=next_run,
                        active=0 if schedule.end is not None and next_run > schedule.end else 1,
                    )
                ).rowcount
                if not moved:
                    return False
                sequence = _next_sequence(connection)
                connection.execute(
                    insert(service_requests).values(
                        request_id=request_key,
                        sender=schedule.user,
                        role=schedule.role,
                        srv=schedule.srv,
                        command_variant=1,
                        payload=json.dumps(payload, sort_keys=True, default=str),
                        state=RequestState.ACCEPTED,
                        accepted_at=at,
                        sequence=sequence,
                    )
                )
        except IntegrityError:
            return False
        return True
