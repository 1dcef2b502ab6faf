"""A tamper-evident audit log: each entry carries the SHA-256 of the previous one.

Changing, removing or reordering any recorded entry breaks the chain from that point, which
:meth:`AuditLog.verify` reports.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

GENESIS = b"\x00" * 32


@dataclass(frozen=True)
class AuditEntry:
    sequence: int
    at: datetime
    actor: str
    action: str
    detail: dict[str, object]
    previous: bytes
    digest: bytes

    @staticmethod
    def compute_digest(
        sequence: int,
        at: datetime,
        actor: str,
        action: str,
        detail: dict[str, object],
        previous: bytes,
    ) -> bytes:
        body = json.dumps(
            [sequence, at.isoformat(), actor, action, detail], sort_keys=True, default=str
        ).encode()
        return hashlib.sha256(previous + body).digest()


class AuditConflict(Exception):
    """Another writer (an operator's CLI) extended the durable chain first."""


@dataclass
class AuditLog:
    entries: list[AuditEntry] = field(default_factory=list)
    # Called with each new entry before append returns: durable storage hooks in here.
    sink: Callable[[AuditEntry], None] | None = None
    # Reloads the durable chain when the sink reports that another writer extended it.
    resync: Callable[[], list[AuditEntry]] | None = None
    # One writer at a time extends the chain: a writer holds this from choosing the next
    # entry until that entry is stored (a group commit holds it across its transaction).
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    def next_entry(self, at: datetime, actor: str, action: str, **detail: object) -> AuditEntry:
        """The entry that would come next, not yet recorded: for a caller that stores it in
        the same transaction as what it records, then calls :meth:`record` (holding
        :attr:`lock` throughout when other threads may append)."""
        previous = self.entries[-1].digest if self.entries else GENESIS
        sequence = len(self.entries)
        digest = AuditEntry.compute_digest(sequence, at, actor, action, detail, previous)
        return AuditEntry(sequence, at, actor, action, dict(detail), previous, digest)

    def chain(
        self, records: list[tuple[datetime, str, str, dict[str, object]]]
    ) -> list[AuditEntry]:
        """The entries that would come next for ``(at, actor, action, detail)`` records, in order,
        not yet recorded (a group commit stores them in one transaction, then records each)."""
        previous = self.entries[-1].digest if self.entries else GENESIS
        sequence = len(self.entries)
        entries = []
        for at, actor, action, detail in records:
            digest = AuditEntry.compute_digest(sequence, at, actor, action, detail, previous)
            entries.append(AuditEntry(sequence, at, actor, action, dict(detail), previous, digest))
            previous, sequence = digest, sequence + 1
        return entries

    def record(self, entry: AuditEntry) -> None:
        """Take an entry from :meth:`next_entry` that is now durably stored."""
        if entry.sequence != len(self.entries):
            raise AuditConflict(f"entry {entry.sequence} does not follow {len(self.entries) - 1}")
        self.entries.append(entry)

    def append(self, at: datetime, actor: str, action: str, **detail: object) -> AuditEntry:
        with self.lock:
            return self._append(at, actor, action, detail)

    def _append(
        self, at: datetime, actor: str, action: str, detail: dict[str, object]
    ) -> AuditEntry:
        while True:
            previous = self.entries[-1].digest if self.entries else GENESIS
            sequence = len(self.entries)
            digest = AuditEntry.compute_digest(sequence, at, actor, action, detail, previous)
            entry = AuditEntry(sequence, at, actor, action, dict(detail), previous, digest)
            if self.sink is not None:
                try:
                    self.sink(entry)
                except AuditConflict:
                    if self.resync is None:
                        raise
                    self.entries = self.resync()
                    continue
            self.entries.append(entry)
            return entry

    def verify(self) -> int | None:
        """Index of the first entry that breaks the chain, or None if the log is intact."""
        previous = GENESIS
        for index, entry in enumerate(self.entries):
            expected = AuditEntry.compute_digest(
                index, entry.at, entry.actor, entry.action, entry.detail, previous
            )
            if entry.sequence != index or entry.previous != previous or entry.digest != expected:
                return index
            previous = entry.digest
        return None
