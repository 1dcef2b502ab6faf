"""Persistent memory of the secure element: cells, an undo journal, and tear safety.

The non-volatile memory (NVM) is a set of named cells (``str`` -> ``bytes``) plus a journal.
Every change to NVM is one *physical write*, which a :class:`Backing` makes atomically (like
an EEPROM page write with its own tear detection). Multi-cell atomicity comes from the
journal, an undo log written ahead of each in-place update:

* first update of a cell inside a transaction: append ``(cell, old value)`` to the journal,
  then write the new value in place;
* commit: clear the journal (one physical write: the commit point);
* abort, and recovery at power-up: restore the journalled old values newest first, then
  clear the journal. Restoring is idempotent, so a cut during recovery is harmless.

A :class:`PowerCutInjector` is consulted before each physical write and can raise
:class:`PowerCut` at write number *k*; the write does not happen, and the next power-up finds
exactly the last committed state. The same code path runs over the in-memory backing (fast
property tests) and the file backing (a card image per file, replaced atomically).

Transient memory is not here: it lives in RAM and is never journalled.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cbor2

IMAGE_FORMAT = "smarthydra-card-image/1"
DEFAULT_COMMIT_CAPACITY = 4096  # bytes of journalled old values one transaction may hold
JOURNAL_ENTRY_OVERHEAD = 8  # bytes charged per journal entry besides the cell name and value


class MemoryError_(Exception):
    """Base class for persistent-memory failures."""


class PowerCut(BaseException):
    """Injected loss of power before a physical write; the write did not happen.

    A BaseException so that applet code catching ``Exception`` cannot swallow it.
    """

    def __init__(self, write_number: int) -> None:
        super().__init__(f"power cut injected before persistent write #{write_number}")
        self.write_number = write_number


class CorruptImage(MemoryError_):
    """The card image file is damaged or not a card image."""


class TransactionError(MemoryError_):
    """Misuse of the single-level transaction (nested begin, commit without begin, ...)."""


class CommitCapacityExceeded(TransactionError):
    """The transaction would journal more than the card's commit capacity."""


@dataclass
class PowerCutInjector:
    """Counts physical writes and cuts the power before write number ``cut_at`` (0-based)."""

    cut_at: int | None = None
    writes: int = 0

    def before_write(self) -> None:
        number = self.writes
        if self.cut_at is not None and number == self.cut_at:
            self.cut_at = None  # one cut per arming
            raise PowerCut(number)
        self.writes = number + 1

    def arm(self, after_writes: int) -> None:
        """Cut power before the physical write ``after_writes`` writes from now."""
        self.cut_at = self.writes + after_writes


@dataclass
class NvmState:
    """What is physically in NVM: the cells and the undo journal (oldest entry first)."""

    cells: dict[str, bytes] = field(default_factory=dict)
    journal: list[tuple[str, bytes | None]] = field(default_factory=list)

    def copy(self) -> NvmState:
        return NvmState(dict(self.cells), list(self.journal))


# --- physical writes -----------------------------------------------------------------------


@dataclass(frozen=True)
class SetCell:
    cell: str
    value: bytes | None  # None erases the cell


@dataclass(frozen=True)
class AppendJournal:
    cell: str
    old: bytes | None


@dataclass(frozen=True)
class ClearJournal:
    """Commit point: the journal is emptied, so its old values no longer roll back."""


PhysicalWrite = SetCell | AppendJournal | ClearJournal


def apply_write(state: NvmState, write: PhysicalWrite) -> None:
    if isinstance(write, SetCell):
        if write.value is None:
            state.cells.pop(write.cell, None)
        else:
            state.cells[write.cell] = write.value
    elif isinstance(write, AppendJournal):
        state.journal.append((write.cell, write.old))
    else:
        state.journal.clear()


class Backing(abc.ABC):
    """Where NVM physically lives. Each :meth:`write` is atomic and durable when it returns."""

    @abc.abstractmethod
    def load(self) -> NvmState:
        """The state as it is in NVM now (a copy the caller may keep)."""

    @abc.abstractmethod
    def write(self, write: PhysicalWrite) -> None:
        """Apply one physical write atomically."""


class MemoryBacking(Backing):
    """NVM held in this process: survives power cycles of a :class:`~.Card`, not the process."""

    def __init__(self, state: NvmState | None = None) -> None:
        self._state = state.copy() if state is not None else NvmState()

    def load(self) -> NvmState:
        return self._state.copy()

    def write(self, write: PhysicalWrite) -> None:
        apply_write(self._state, write)


class FileBacking(Backing):
    """A card image per file. Every physical write replaces the file atomically.

    The new image goes to a temporary file in the same directory, is fsynced, then
    ``os.replace``d over the old one, and the directory is fsynced: a crash at any instant
    leaves either the old or the new image, never a mixture.
    """

    def __init__(self, path: str | os.PathLike[str], *, durable: bool = True) -> None:
        self.path = Path(path)
        self.durable = durable
        self._state: NvmState | None = None

    def load(self) -> NvmState:
        self._state = read_image(self.path) if self.path.exists() else NvmState()
        return self._state.copy()

    def write(self, write: PhysicalWrite) -> None:
        if self._state is None:
            self.load()
        assert self._state is not None
        state = self._state.copy()
        apply_write(state, write)
        write_image_atomically(self.path, state, durable=self.durable)
        self._state = state


def encode_image(state: NvmState) -> bytes:
    body = cbor2.dumps(
        {
            "format": IMAGE_FORMAT,
            "cells": state.cells,
            "journal": [[cell, old] for cell, old in state.journal],
        },
        canonical=True,
    )
    return cbor2.dumps([body, hashlib.sha256(body).digest()])


def decode_image(raw: bytes, where: str = "card image") -> NvmState:
    try:
        outer = cbor2.loads(raw)
    except Exception as exc:  # cbor2 raises several types for garbage
        raise CorruptImage(f"{where}: not a card image ({type(exc).__name__}: {exc})") from None
    if (
        not isinstance(outer, list)
        or len(outer) != 2
        or not isinstance(outer[0], bytes)
        or not isinstance(outer[1], bytes)
    ):
        raise CorruptImage(f"{where}: not a card image (bad outer structure)")
    body, digest = outer
    if hashlib.sha256(body).digest() != digest:
        raise CorruptImage(f"{where}: checksum mismatch, the image is damaged")
    try:
        doc = cbor2.loads(body)
        if doc.get("format") != IMAGE_FORMAT:
            raise CorruptImage(f"{where}: unknown image format {doc.get('format')!r}")
        cells = {str(k): bytes(v) for k, v in doc["cells"].items()}
        journal = [(str(c), None if o is None else bytes(o)) for c, o in doc["journal"]]
    except CorruptImage:
        raise
    except Exception as exc:
        raise CorruptImage(f"{where}: malformed image ({type(exc).__name__}: {exc})") from None
    return NvmState(cells, journal)


def read_image(path: Path) -> NvmState:
    return decode_image(path.read_bytes(), str(path))


def write_image_atomically(path: Path, state: NvmState, *, durable: bool = True) -> None:
    data = encode_image(state)
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# --- the journalled memory ---------------------------------------------------------------


class Nvm:
    """Cells with single-level transactions over a :class:`Backing`.

    Reads come from a RAM copy of what the backing holds; every change goes through
    :meth:`_physical`, which asks the power-cut injector first. After a :class:`PowerCut`
    this object is dead: build a new one (power-up) and it recovers from the backing.
    """

    def __init__(
        self,
        backing: Backing,
        *,
        injector: PowerCutInjector | None = None,
        commit_capacity: int = DEFAULT_COMMIT_CAPACITY,
    ) -> None:
        self._backing = backing
        self._injector = injector
        self.commit_capacity = commit_capacity
        self._state = backing.load()
        self._in_transaction = False
        self._journalled: set[str] = set()
        self._journal_bytes = 0
        self.lost_power: PowerCut | None = None
        self.recover()

    # physical layer

    def _physical(self, write: PhysicalWrite) -> None:
        if self.lost_power is not None:
            raise MemoryError_("NVM lost power; power the card up again")
        if self._injector is not None:
            try:
                self._injector.before_write()
            except PowerCut as cut:
                self.lost_power = cut
                raise
        self._backing.write(write)
        apply_write(self._state, write)

    def recover(self) -> None:
        """Roll back a transaction torn by a power cut (idempotent)."""
        if self._state.journal:
            for cell, old in reversed(list(self._state.journal)):
                if self._state.cells.get(cell) != old:
                    self._physical(SetCell(cell, old))
            self._physical(ClearJournal())

    # logical layer

    def read(self, cell: str) -> bytes | None:
        return self._state.cells.get(cell)

    def cells(self, prefix: str = "") -> Iterator[tuple[str, bytes]]:
        for name in sorted(self._state.cells):
            if name.startswith(prefix):
                yield name, self._state.cells[name]

    def snapshot(self) -> dict[str, bytes]:
        """A copy of all cells (tests and inspection)."""
        return dict(self._state.cells)

    def write(self, cell: str, value: bytes | None) -> None:
        """Update one cell; atomic on its own, and undone on abort inside a transaction."""
        old = self._state.cells.get(cell)
        if old == value:
            return
        if self._in_transaction and cell not in self._journalled:
            cost = len(cell) + (len(old) if old else 0) + JOURNAL_ENTRY_OVERHEAD
            if self._journal_bytes + cost > self.commit_capacity:
                raise CommitCapacityExceeded(
                    f"transaction needs more than the commit capacity of "
                    f"{self.commit_capacity} bytes"
                )
            self._physical(AppendJournal(cell, old))
            self._journalled.add(cell)
            self._journal_bytes += cost
        self._physical(SetCell(cell, value))

    def erase_prefix(self, prefix: str) -> None:
        for name in [n for n in self._state.cells if n.startswith(prefix)]:
            self.write(name, None)

    @property
    def in_transaction(self) -> bool:
        return self._in_transaction

    @property
    def journal_bytes(self) -> int:
        """Commit capacity used by the open transaction."""
        return self._journal_bytes

    def begin(self) -> None:
        if self._in_transaction:
            raise TransactionError("a transaction is already in progress (no nesting)")
        self._in_transaction = True
        self._journalled.clear()
        self._journal_bytes = 0

    def commit(self) -> None:
        if not self._in_transaction:
            raise TransactionError("commit without a transaction in progress")
        if self._state.journal:
            self._physical(ClearJournal())  # the commit point
        self._end()

    def abort(self) -> None:
        if not self._in_transaction:
            raise TransactionError("abort without a transaction in progress")
        self.recover()
        self._end()

    def _end(self) -> None:
        self._in_transaction = False
        self._journalled.clear()
        self._journal_bytes = 0
