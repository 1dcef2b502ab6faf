"""Durable DCC state in SQL: users, inventory, counters, requests, quarantine, queues, audit.

SQLite (WAL, synchronous=NORMAL) by default, a file or memory for tests; PostgreSQL in
production (``postgresql+psycopg://...``). The schema is created and upgraded by the Alembic
migrations in :mod:`smarthydra.dcc.migrations`; the tables below are the models those
migrations build, and a test checks the two agree.

Every write is its own transaction, and the writes that must happen together (accepting a
request and raising the sender's counter floor; queueing a command for the WAN and marking
its request dispatched) share one, so a crash never leaves half of a decision behind.

Under load the DCC commits in groups (:meth:`SqlDccStore.commit_acceptances`,
:meth:`SqlDccStore.dispatch_many`): many decisions, each whole, in one transaction with a
handful of multi-row statements, each acknowledged only after that transaction committed.

SQLite durability: ``synchronous=NORMAL`` (the default) survives the process being killed;
``synchronous=FULL`` (``SqlDccStore(url, sqlite_synchronous="FULL")``, ``dcc serve
--sqlite-synchronous FULL``) also survives power loss, at the cost of an fsync per commit.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
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

from smarthydra.dcc.audit import GENESIS, AuditConflict, AuditEntry, AuditLog
from smarthydra.dcc.sealing import ColumnSeal
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
    Column("esme_variant", String(1), nullable=True),  # DUIS ESMEVariant of an ESME
    Column("key_agreement_certificate", Text, nullable=True),  # DER, hex
)

# A comms hub's or gas proxy's device log (EUIs, hex, space-separated, in order) and a hub's
# HAN backup (JSON: extended PAN id and [EUI, key] entries, hex; sealed, see dcc.sealing, when
# the store has a seal): what a replacement gets.
device_logs = Table(
    "device_logs",
    metadata,
    Column("eui", String(16), primary_key=True),
    Column("entries", Text, nullable=False),
    Column("han_backup", Text, nullable=True),
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
    # One user's requests, newest first (the operator console's filter, and any audit by user).
    Index("ix_service_requests_sender_sequence", "sender", "sequence"),
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

# Named DCC operator accounts (smarthydra.dcc.operators): only a scrypt hash of each token is
# kept; a revoked name stays, so the audit log's mentions of it never come to mean another.
operators = Table(
    "operators",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("token_hash", LargeBinary(64), nullable=False),
    Column("salt", LargeBinary(32), nullable=False),
    Column("kdf", String(64), nullable=False),  # e.g. "scrypt n=32768 r=8 p=1"
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

# Statements the hot paths run again and again, built once: SQLAlchemy then reuses their
# cache keys and compiled forms instead of building and hashing new ones per request.
_INSERT_REQUEST = insert(service_requests)
_INSERT_FRAME = insert(wan_queue)
_INSERT_AUDIT = insert(audit_log)
_INSERT_COUNTER = insert(request_counters)
_UPDATE_COUNTER = (
    update(request_counters)
    .where(request_counters.c.user_eui == bindparam("user"))
    .values(last_counter=bindparam("counter"))
)
_SELECT_HEAD = select(audit_head).with_for_update()
_INSERT_HEAD = insert(audit_head)
_UPDATE_HEAD = (
    update(audit_head)
    .where(audit_head.c.id == 1)
    .values(sequence=bindparam("head_sequence"), digest=bindparam("head_digest"))
)
# The head moves only from where this writer last left it: one statement both checks that no
# other writer (an operator's CLI) extended the chain and moves it (0 rows: a conflict).
_ADVANCE_HEAD = (
    update(audit_head)
    .where(
        audit_head.c.id == 1,
        audit_head.c.sequence == bindparam("expected_sequence"),
        audit_head.c.digest == bindparam("expected_digest"),
    )
    .values(sequence=bindparam("head_sequence"), digest=bindparam("head_digest"))
)
_MAX_SEQUENCE = select(func.max(service_requests.c.sequence))
_MOVE_ACCEPTED = (
    update(service_requests)
    .where(
        service_requests.c.request_id.in_(bindparam("ids", expanding=True)),
        service_requests.c.state == bindparam("from_state"),
    )
    .values(state=bindparam("to_state"))
)


@dataclass(frozen=True)
class _DriverStatement:
    """A hot statement compiled once for a dialect and run on the driver's own cursor: for
    these small statements SQLAlchemy's per-execution work (cache key, parameters, result
    set-up) costs several times the database's. Parameters still go through each column
    type's bind processor, as SQLAlchemy would apply them."""

    sql: str
    names: tuple[str, ...]
    positional: bool
    defaults: dict[str, Any]
    processors: dict[str, Callable[[Any], Any]]

    @classmethod
    def compile(cls, statement: Any, connection: Connection, keys: Sequence[str]) -> _DriverStatement:
        dialect = connection.dialect
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        by_name = {name: bind for bind, name in compiled.bind_names.items()}
        names = tuple(compiled.positiontup) if compiled.positional else tuple(by_name)
        processors = {}
        for name in names:
            processor = by_name[name].type.bind_processor(dialect)
            if processor is not None:
                processors[name] = processor
        defaults = {name: by_name[name].effective_value for name in names if name not in keys}
        return cls(str(compiled), names, bool(compiled.positional), defaults, processors)

    def parameters(self, row: dict[str, Any]) -> Any:
        values = {**self.defaults, **row}
        for name, processor in self.processors.items():
            values[name] = processor(values[name])
        return tuple(values[name] for name in self.names) if self.positional else values


_DRIVER_STATEMENTS: dict[tuple[int, str, str, tuple[str, ...]], _DriverStatement] = {}


def _prepared(connection: Connection, statement: Any, keys: tuple[str, ...]) -> _DriverStatement:
    """``statement`` compiled for this connection's driver and these parameter names, once."""
    cache_key = (id(statement), connection.dialect.name, connection.dialect.driver, keys)
    prepared = _DRIVER_STATEMENTS.get(cache_key)
    if prepared is None:
        prepared = _DRIVER_STATEMENTS[cache_key] = _DriverStatement.compile(
            statement, connection, keys
        )
    return prepared


def _run_on_driver(connection: Connection, statement: Any, rows: Sequence[dict[str, Any]]) -> int:
    """Run one of the module's hot statements for ``rows`` on the driver's cursor, in the
    connection's transaction; the rows affected. A constraint violation is raised as
    SQLAlchemy's :class:`IntegrityError`, as the SQLAlchemy path would."""
    prepared = _prepared(connection, statement, tuple(rows[0]))
    parameters = [prepared.parameters(row) for row in rows]
    cursor = connection.connection.cursor()
    try:
        if len(parameters) == 1:
            cursor.execute(prepared.sql, parameters[0])
        else:
            cursor.executemany(prepared.sql, parameters)
        return int(cursor.rowcount)
    except connection.dialect.loaded_dbapi.IntegrityError as error:
        raise IntegrityError(prepared.sql, None, error) from None
    finally:
        cursor.close()


# SELECT ... WHERE user_eui IN (:u0, ..., :uN-1), one statement object per N (the driver
# statement cache is keyed by the statement): an expanding IN parameter costs SQLAlchemy more
# work per call than SQLite's own lookup.
_FLOOR_SELECTS: dict[int, Any] = {}


def _counter_floors(connection: Connection, users: Sequence[str]) -> dict[str, int]:
    """The stored counter floors of ``users`` (those that have one), on the driver's cursor."""
    statement = _FLOOR_SELECTS.get(len(users))
    if statement is None:
        names = [f"u{i}" for i in range(len(users))]
        statement = _FLOOR_SELECTS[len(users)] = select(
            request_counters.c.user_eui, request_counters.c.last_counter
        ).where(request_counters.c.user_eui.in_([bindparam(name) for name in names]))
    row = {f"u{i}": user for i, user in enumerate(users)}
    prepared = _prepared(connection, statement, tuple(row))
    cursor = connection.connection.cursor()
    try:
        cursor.execute(prepared.sql, prepared.parameters(row))
        return {str(user): int(counter) for user, counter in cursor.fetchall()}
    finally:
        cursor.close()


def _hold(
    connection: Connection, request_id: str, sender: Eui64, srv: str, at: dt.datetime, reason: str
) -> int:
    """Put a stored request in quarantine, in the caller's transaction; its ticket."""
    result = connection.execute(
        insert(quarantine).values(
            request_id=request_id,
            user_eui=str(sender),
            srv=srv,
            held_at=at,
            reason=reason,
            state="held",
        )
    )
    ticket = result.inserted_primary_key
    assert ticket is not None
    return int(ticket[0])


class StoreError(Exception):
    """A database operation the DCC cannot complete (e.g. a RequestID accepted twice)."""


class DuplicateRequest(StoreError):
    """The RequestID was accepted before: a request is accepted once."""


class AuditTampered(StoreError):
    """The audit log in the database does not verify."""


def _next_sequence(connection: Connection) -> int:
    """The order of acceptance: one more than the highest so far (an index lookup)."""
    highest = connection.execute(_MAX_SEQUENCE).scalar_one()
    return 0 if highest is None else int(highest) + 1


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


SQLITE_SYNCHRONOUS = ("NORMAL", "FULL")


def _enable_sqlite_durability(
    engine: Engine, *, file_backed: bool, synchronous: str = "NORMAL", secure_delete: bool = False
) -> None:
    if synchronous not in SQLITE_SYNCHRONOUS:
        raise StoreError(f"SQLite synchronous must be one of {', '.join(SQLITE_SYNCHRONOUS)}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if file_backed:
            cursor.execute("PRAGMA journal_mode=WAL")
        # WAL with synchronous=NORMAL: a committed transaction survives the process being
        # killed (what the I99 promise needs); only an OS crash or power loss may lose the
        # newest commits (FULL closes that gap). Production (PostgreSQL) fsyncs every commit.
        cursor.execute(f"PRAGMA synchronous={synchronous if file_backed else 'OFF'}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        if secure_delete:
            # With sealed columns: a plaintext value replaced by its sealed form is overwritten
            # with zeros, not left in a free page of the file. (Many SQLite builds, Debian's
            # among them, are compiled with this on; the pragma makes sure of it on others.)
            cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()


def make_engine(
    url: str, *, sqlite_synchronous: str = "NORMAL", sqlite_secure_delete: bool = False
) -> Engine:
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
        _enable_sqlite_durability(
            engine,
            file_backed=True,
            synchronous=sqlite_synchronous,
            secure_delete=sqlite_secure_delete,
        )
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


@dataclass(frozen=True)
class QueuedFrame:
    """A MAC'd command for the WAN queue: which hub (in which CSP region) carries it to which
    device."""

    hub: str
    device: str
    region: str
    frame: bytes


@dataclass(frozen=True)
class Acceptance:
    """One decision to commit with others: an acknowledged request, the sender's counter
    floor raised to its RequestID counter, its audit record and, for a quarantined request,
    the quarantine ticket and the DCC alert (``alert``, to which the ticket is added)."""

    request_id: str
    sender: Eui64
    counter: int | None  # None: a derived key (``...#signed``) that raises no floor
    role: str
    srv: str
    command_variant: int
    payload: dict[str, Any]
    at: dt.datetime
    state: str
    audit_action: str
    quarantine_reason: str | None = None
    alert: dict[str, Any] | None = None
    # Other originators' floors raised with it (the DCC's own GBCS originator counter).
    floors: tuple[tuple[str, int], ...] = ()
    # Queued for the WAN in the same transaction (the request's state is then dispatched).
    frame: QueuedFrame | None = None


@dataclass(frozen=True)
class Committed:
    """An :class:`Acceptance` that is in the database."""

    request_id: str
    ticket: int | None = None


@dataclass(frozen=True)
class Dispatch:
    """A MAC'd command to queue for the WAN, its request marked dispatched."""

    request_id: str
    actor: str  # the request's sender, for the audit record
    hub: str
    device: str
    region: str
    frame: bytes
    at: dt.datetime


class _DispatchRaced(Exception):
    """Some request of a dispatch group was not (or no longer) in the accepted state."""


class SqlDccStore:
    def __init__(
        self,
        url: str = "sqlite://",
        *,
        sqlite_synchronous: str = "NORMAL",
        seal: ColumnSeal | None = None,
    ) -> None:
        self.url = url
        # Seals secret columns (HAN backups' link keys) at rest; None stores them as before.
        self.seal = seal
        self.engine: Engine = make_engine(
            url, sqlite_synchronous=sqlite_synchronous, sqlite_secure_delete=seal is not None
        )
        migrate(self.engine)
        # The group committer's own connection, kept open between commits (used only while
        # holding the audit lock): a pool checkout, reset and ping per commit cost more CPU
        # than SQLite's own work.
        self._committing: Connection | None = None
        # The next request sequence, known after a group commit: valid only while the audit
        # head is where that commit left it (every group commit is audited, and the head check
        # in the same transaction detects another process's writes); None means "ask".
        # in-process (epoch, audit length, next sequence); other request writers bump the epoch.
        self._sequence_after: tuple[int, int, int] | None = None
        self._sequence_epoch = 0

    @contextmanager
    def _commit_transaction(self) -> Iterator[Connection]:
        """A transaction on the committer's connection (callers hold the audit lock)."""
        if self.shared_connection:
            with self.engine.begin() as connection:
                yield connection
            return
        kept = self._committing
        if kept is None or kept.closed or kept.invalidated:
            kept = self._committing = self.engine.connect()
        connection = kept
        try:
            with connection.begin():
                yield connection
        except BaseException:
            # A failure may have come from the driver directly (statements run on its
            # cursor), which SQLAlchemy never saw: start afresh rather than trust the link.
            connection.close()
            self._committing = None
            raise

    def _request_sequence(self, connection: Connection, audit: AuditLog) -> int:
        """The first request sequence for a group commit: from memory when the previous group
        commit left the audit chain where it is now, else from the database."""
        known = self._sequence_after
        if known is not None and known[:2] == (self._sequence_epoch, len(audit.entries)):
            return known[2]
        return _next_sequence(connection)

    @property
    def shared_connection(self) -> bool:
        """True for in-memory SQLite: one connection for every thread, so its users must take
        turns (a transaction on it is everyone's transaction)."""
        return self.url in ("sqlite://", "sqlite:///:memory:")

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
        cls.append_audit_entries(connection, [entry])

    @staticmethod
    def append_audit_entries(connection: Connection, entries: Sequence[AuditEntry]) -> None:
        """Append a run of chained entries in the caller's transaction (multi-row insert, one
        head update), if the chain still ends where the first expects (else
        :class:`AuditConflict`, and the caller's transaction rolls back)."""
        if not entries:
            return
        first, last = entries[0], entries[-1]
        if first.sequence > 0:
            moved = _run_on_driver(
                connection,
                _ADVANCE_HEAD,
                [
                    {
                        "expected_sequence": first.sequence - 1,
                        "expected_digest": first.previous,
                        "head_sequence": last.sequence,
                        "head_digest": last.digest,
                    }
                ],
            )
            if moved != 1:
                raise AuditConflict(f"the audit chain has moved on past {first.sequence - 1}")
            _run_on_driver(
                connection, _INSERT_AUDIT, [SqlDccStore._audit_row(entry) for entry in entries]
            )
            return
        head = connection.execute(_SELECT_HEAD).first()
        expected = (-1, GENESIS) if head is None else (head.sequence, head.digest)
        if expected != (first.sequence - 1, first.previous):
            raise AuditConflict(f"the audit chain has moved on past {first.sequence - 1}")
        connection.execute(_INSERT_AUDIT, [SqlDccStore._audit_row(entry) for entry in entries])
        if head is None:
            connection.execute(
                _INSERT_HEAD, {"id": 1, "sequence": last.sequence, "digest": last.digest}
            )
        else:
            connection.execute(
                _UPDATE_HEAD, {"head_sequence": last.sequence, "head_digest": last.digest}
            )

    @staticmethod
    def _audit_row(entry: AuditEntry) -> dict[str, object]:
        return {
            "sequence": entry.sequence,
            "at": entry.at,
            "actor": entry.actor,
            "action": entry.action,
            "detail": json.dumps(entry.detail, sort_keys=True, default=str),
            "previous": entry.previous,
            "digest": entry.digest,
        }

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
                ticket = self._insert_request(
                    connection, request_id, sender, role, srv, command_variant, payload, at,
                    state, quarantine_reason,
                )
                self.set_last_counter_in(connection, sender, counter)
                if audit is not None:
                    self.append_audit_checked(connection, audit)
                return ticket
        except IntegrityError:
            raise DuplicateRequest(f"RequestID {request_id} was accepted before") from None

    def _insert_request(
        self,
        connection: Connection,
        request_id: str,
        sender: Eui64,
        role: str,
        srv: str,
        command_variant: int,
        payload: dict[str, Any],
        at: dt.datetime,
        state: str,
        quarantine_reason: str | None,
    ) -> int | None:
        """Record one request outside the group commit (and its quarantine, if held); the
        quarantine ticket or None."""
        sequence = _next_sequence(connection)
        self._sequence_epoch += 1  # a request the group commits did not count
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
        if quarantine_reason is None:
            return None
        return _hold(connection, request_id, sender, srv, at, quarantine_reason)

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
                return self._insert_request(
                    connection, key, sender, role, srv, command_variant, payload, at, state,
                    quarantine_reason,
                )
        except IntegrityError:
            raise DuplicateRequest(f"the pre-command for {original} was answered before") from None

    # --- group commit -----------------------------------------------------------------------

    def commit_acceptances(
        self, items: Sequence[Acceptance], audit: AuditLog
    ) -> list[Committed | DuplicateRequest]:
        """Commit many decisions in one transaction; the outcome of each, in order.

        Each item is checked against its sender's counter floor as it stands in the database
        (and as the items before it in the group raise it): one whose counter is not above
        it comes back as :class:`DuplicateRequest` and is not stored. The audit records are
        chained in the order of ``items`` while holding ``audit.lock``, and recorded in
        ``audit`` only once the transaction committed. A RequestID stored before fails the
        group's statement; the items are then committed one at a time, so only it is refused.
        """
        if not items:
            return []
        with audit.lock:
            for _attempt in range(3):
                epoch = self._sequence_epoch
                try:
                    with self._commit_transaction() as connection:
                        outcomes, entries, following = self._commit_acceptances_in(
                            connection, items, audit
                        )
                except AuditConflict:
                    self._sequence_after = None
                    audit.entries = self.load_audit()  # an operator's CLI wrote meanwhile
                    continue
                except IntegrityError:
                    self._sequence_after = None
                    if len(items) == 1:
                        return [
                            DuplicateRequest(f"RequestID {items[0].request_id} was accepted before")
                        ]
                    return [
                        outcome
                        for item in items
                        for outcome in self.commit_acceptances([item], audit)
                    ]
                for entry in entries:
                    audit.record(entry)
                self._sequence_after = (
                    None if following is None else (epoch, len(audit.entries), following)
                )
                return outcomes
        raise AuditConflict("the audit log kept moving; try again")

    def _commit_acceptances_in(
        self, connection: Connection, items: Sequence[Acceptance], audit: AuditLog
    ) -> tuple[list[Committed | DuplicateRequest], list[AuditEntry], int | None]:
        """The outcomes, the audit entries stored, and the request sequence that comes next
        (None when nothing was stored)."""
        users = {str(item.sender) for item in items if item.counter is not None}
        users.update(user for item in items for user, _ in item.floors)
        floors: dict[str, int] = _counter_floors(connection, sorted(users)) if users else {}
        stored_floors = set(floors)
        raised: dict[str, int] = {}
        outcomes: list[Committed | DuplicateRequest] = []
        accepted: list[Acceptance] = []
        for item in items:
            sender = str(item.sender)
            if item.counter is not None:
                floor = floors.get(sender)
                if floor is not None and item.counter <= floor:
                    outcomes.append(
                        DuplicateRequest(f"counter {item.counter} is not above {floor}")
                    )
                    continue
                floors[sender] = raised[sender] = item.counter
            for user, counter in item.floors:
                if counter > floors.get(user, -1):
                    floors[user] = raised[user] = counter
            accepted.append(item)
            outcomes.append(Committed(item.request_id))
        if not accepted:
            return outcomes, [], None
        sequence = self._request_sequence(connection, audit)
        _run_on_driver(
            connection,
            _INSERT_REQUEST,
            [
                {
                    "request_id": item.request_id,
                    "sender": str(item.sender),
                    "role": item.role,
                    "srv": item.srv,
                    "command_variant": item.command_variant,
                    "payload": json.dumps(item.payload, sort_keys=True, default=str),
                    "state": item.state,
                    "accepted_at": item.at,
                    "sequence": sequence + index,
                }
                for index, item in enumerate(accepted)
            ],
        )
        frames = [
            {
                "request_id": item.request_id,
                "hub": item.frame.hub,
                "device": item.frame.device,
                "region": item.frame.region,
                "frame": item.frame.frame,
                "state": "queued",
                "queued_at": item.at,
            }
            for item in accepted
            if item.frame is not None
        ]
        if frames:
            _run_on_driver(connection, _INSERT_FRAME, frames)
        updates = [
            {"user": user, "counter": str(counter)}
            for user, counter in raised.items()
            if user in stored_floors
        ]
        if updates:
            _run_on_driver(connection, _UPDATE_COUNTER, updates)
        inserts = [
            {"user_eui": user, "last_counter": str(counter)}
            for user, counter in raised.items()
            if user not in stored_floors
        ]
        if inserts:
            connection.execute(_INSERT_COUNTER, inserts)
        records: list[tuple[dt.datetime, str, str, dict[str, object]]] = []
        tickets: dict[str, int] = {}
        for item in accepted:
            detail: dict[str, object] = {"request_id": item.request_id}
            if item.quarantine_reason is not None:
                ticket = tickets[item.request_id] = _hold(
                    connection, item.request_id, item.sender, item.srv, item.at,
                    item.quarantine_reason,
                )
                detail.update(reason=item.quarantine_reason, ticket=ticket)
                if item.alert is not None:
                    self._queue_message_in(
                        connection,
                        str(item.sender),
                        item.request_id,
                        "alert",
                        {**item.alert, "ticket": ticket},
                        item.at,
                    )
            records.append((item.at, str(item.sender), item.audit_action, detail))
        entries = audit.chain(records)
        self.append_audit_entries(connection, entries)
        final = [
            Committed(outcome.request_id, tickets.get(outcome.request_id))
            if isinstance(outcome, Committed)
            else outcome
            for outcome in outcomes
        ]
        return final, entries, sequence + len(accepted)

    def dispatch_many(self, items: Sequence[Dispatch], audit: AuditLog) -> int:
        """Queue many MAC'd commands for the WAN in one transaction, each request moved from
        accepted to dispatched (so each is queued once), with its audit record. If any is no
        longer accepted (another dispatcher was first), each is tried on its own instead."""
        if not items:
            return 0
        ids = [item.request_id for item in items]
        with audit.lock:
            for _attempt in range(3):
                try:
                    with self._commit_transaction() as connection:
                        moved = connection.execute(
                            _MOVE_ACCEPTED,
                            {
                                "ids": ids,
                                "from_state": RequestState.ACCEPTED,
                                "to_state": RequestState.DISPATCHED,
                            },
                        ).rowcount
                        if moved != len(set(ids)) or len(set(ids)) != len(ids):
                            raise _DispatchRaced
                        _run_on_driver(
                            connection,
                            _INSERT_FRAME,
                            [
                                {
                                    "request_id": item.request_id,
                                    "hub": item.hub,
                                    "device": item.device,
                                    "region": item.region,
                                    "frame": item.frame,
                                    "state": "queued",
                                    "queued_at": item.at,
                                }
                                for item in items
                            ],
                        )
                        entries = audit.chain(
                            [
                                (item.at, item.actor, "command queued for WAN", {"request_id": item.request_id})
                                for item in items
                            ]
                        )
                        self.append_audit_entries(connection, entries)
                except AuditConflict:
                    audit.entries = self.load_audit()
                    continue
                except (_DispatchRaced, IntegrityError):
                    break
                known = self._sequence_after
                for entry in entries:
                    audit.record(entry)
                if known is not None and known[1] == entries[0].sequence:
                    # the head check passed, so nobody else wrote; no request was added
                    self._sequence_after = (known[0], len(audit.entries), known[2])
                return len(items)
            else:
                raise AuditConflict("the audit log kept moving; try again")
            done = 0
            for item in items:
                entry = audit.next_entry(
                    item.at, item.actor, "command queued for WAN", request_id=item.request_id
                )
                if self.dispatch(
                    item.request_id,
                    hub=item.hub,
                    device=item.device,
                    region=item.region,
                    frame=item.frame,
                    at=item.at,
                    audit=entry,
                ):
                    audit.record(entry)
                    done += 1
            return done

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
                self.store._sequence_epoch += 1  # a request the group commits did not count
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
