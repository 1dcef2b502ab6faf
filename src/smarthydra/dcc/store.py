"""Durable DCC state in SQL: the audit chain and each user's last RequestID counter.

SQLite by default (a file, or memory for tests); any SQLAlchemy URL (PostgreSQL in
production) works the same. Every write is its own transaction, so a crash loses nothing
that was acknowledged.
"""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool

from smarthydra.dcc.audit import AuditEntry
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

request_counters = Table(
    "request_counters",
    metadata,
    Column("user_eui", String(16), primary_key=True),
    # Decimal text: counters reach 2^64-1, beyond SQLite's integers (and floats lose digits).
    Column("last_counter", String(20), nullable=False),
)


class SqlDccStore:
    def __init__(self, url: str = "sqlite://") -> None:
        if url in ("sqlite://", "sqlite:///:memory:"):
            # One shared in-memory database for every thread (a server runs handlers on others).
            self.engine: Engine = create_engine(
                url, poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
        else:
            self.engine = create_engine(url)
        metadata.create_all(self.engine)

    # --- audit ------------------------------------------------------------------------------

    def append_audit(self, entry: AuditEntry) -> None:
        with self.engine.begin() as connection:
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

    def load_audit(self) -> list[AuditEntry]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(audit_log).order_by(audit_log.c.sequence)).all()
        entries = []
        for row in rows:
            at = row.at if row.at.tzinfo else row.at.replace(tzinfo=dt.UTC)
            entries.append(
                AuditEntry(
                    row.sequence,
                    at,
                    row.actor,
                    row.action,
                    json.loads(row.detail),
                    row.previous,
                    row.digest,
                )
            )
        return entries

    # --- RequestID counters -------------------------------------------------------------------

    def last_counter(self, user: Eui64) -> int | None:
        with self.engine.connect() as connection:
            value = connection.execute(
                select(request_counters.c.last_counter).where(
                    request_counters.c.user_eui == str(user)
                )
            ).scalar_one_or_none()
        return None if value is None else int(value)

    def set_last_counter(self, user: Eui64, counter: int) -> None:
        with self.engine.begin() as connection:
            updated = connection.execute(
                update(request_counters)
                .where(request_counters.c.user_eui == str(user))
                .values(last_counter=str(counter))
            ).rowcount
            if not updated:
                connection.execute(
                    insert(request_counters).values(user_eui=str(user), last_counter=str(counter))
                )
