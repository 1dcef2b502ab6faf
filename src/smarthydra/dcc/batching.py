"""Batching for concurrent callers: group commit, and batched work for a process pool.

Each caller hands its item over and waits for its own outcome. A worker thread takes
whatever items are waiting (up to ``max_batch``) and processes them in one call; while it
works the next callers' items gather. Under load one transaction (and its fsync), or one
round trip to a worker process, is shared by many requests; with one request at a time the
batch is just that request.

As the DCC's group committer (one batch at a time, ``leader_commits``): no worker thread; a
waiting caller with nobody else committing becomes the leader and commits what is waiting in
its own thread, so a lone request pays no thread hand-off. A decision is acknowledged only
after the transaction holding it committed, since the caller's wait returns then and never
before.

Worker threads start with the first item and stop after a while with nothing to do, so an
idle DCC (or a test) holds no thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")

DEFAULT_MAX_BATCH = 512
IDLE_SECONDS = 2.0


class BatcherClosed(Exception):
    """The batcher was closed; nothing more is accepted."""


class Pending(Generic[Outcome]):
    """One item's outcome, waited for by its caller: a bare lock, released when the outcome
    is set (lighter than :class:`concurrent.futures.Future`, whose condition variable showed
    up in the DCC's profile)."""

    __slots__ = ("_done", "_error", "_finished", "_led_by", "_outcome", "_parked")

    def __init__(self, led_by: Batcher[Any, Outcome] | None = None) -> None:
        self._done = threading.Lock()
        self._done.acquire()
        self._outcome: Outcome | None = None
        self._error: BaseException | None = None
        # With a leader-commit batcher (``led_by``) the lock is released only for a waiter
        # parked on it, once per wake-up, under the batcher's condition; see Batcher._await.
        self._finished = False
        self._parked = False
        self._led_by = led_by

    def set_result(self, outcome: Outcome) -> None:
        self._outcome = outcome
        self._done.release()

    def set_exception(self, error: BaseException) -> None:
        self._error = error
        self._done.release()

    def result(self, timeout: float | None = None) -> Outcome:
        """The outcome (or the batch's exception), waiting for it if need be."""
        if self._led_by is not None:
            return self._led_by._await(self, timeout)
        if not self._done.acquire(timeout=-1 if timeout is None else timeout):
            raise TimeoutError("the batch has not been processed yet")
        self._done.release()  # later calls return at once
        if self._error is not None:
            raise self._error
        return self._outcome  # type: ignore[return-value]


@dataclass
class Batcher(Generic[Item, Outcome]):
    """Calls ``process(items)`` (an outcome per item, in order) for batches of up to
    ``max_batch`` items, from up to ``workers`` threads at once (1: batches strictly one
    after another, in the order their items came, as a group commit needs)."""

    process: Callable[[Sequence[Item]], Sequence[Outcome]]
    max_batch: int = DEFAULT_MAX_BATCH
    workers: int = 1
    # How long a worker waits for more items when fewer than ``max_batch`` are waiting: a
    # little latency for larger batches (a commit costs about the same for 1 or 30 items).
    linger_seconds: float = 0.0
    idle_seconds: float = IDLE_SECONDS
    # Leader commit: no worker thread; the first waiting caller with nobody else processing
    # takes the waiting items and processes them in its own thread, then hands the lead to
    # a caller still waiting. One request at a time then costs no thread hand-off at all,
    # and under load the batches form as before (while one leader works, the next items
    # gather). Only with ``workers == 1``.
    leader_commits: bool = False
    batches: int = 0  # calls of ``process``
    processed: int = 0  # items in them
    _waiting: list[tuple[Item, Pending[Outcome]]] = field(default_factory=list, repr=False)
    _condition: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _running: int = field(default=0, repr=False)
    _closed: bool = field(default=False, repr=False)
    _leading: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if self.leader_commits and self.workers != 1:
            raise ValueError("leader commits take one batch at a time (workers=1)")

    def submit(self, item: Item) -> Pending[Outcome]:
        """Queue ``item`` for the next batch; the future holds its outcome once processed
        (or the exception its batch raised)."""
        future: Pending[Outcome] = Pending(self if self.leader_commits else None)
        with self._condition:
            if self._closed:
                raise BatcherClosed("the DCC is shutting down")
            self._waiting.append((item, future))
            if self.leader_commits:
                return future
            if self._running < self.workers:
                self._running += 1
                threading.Thread(target=self._run, name="dcc-batcher", daemon=True).start()
            self._condition.notify()
        return future

    def run(self, item: Item) -> Outcome:
        """Submit and wait: what a request handler does."""
        return self.submit(item).result()

    def close(self) -> None:
        """Refuse new items; those already queued are still processed."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def _next_batch(self) -> list[tuple[Item, Pending[Outcome]]] | None:
        with self._condition:
            while not self._waiting:
                idle = self._closed or not self._condition.wait(self.idle_seconds)
                # An item may have come between the timeout and taking the lock back.
                if idle and not self._waiting:
                    self._running -= 1
                    return None
            deadline = time.monotonic() + self.linger_seconds
            while len(self._waiting) < self.max_batch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)
            batch = self._waiting[: self.max_batch]
            del self._waiting[: self.max_batch]
            return batch

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                outcomes = self.process([item for item, _ in batch])
                if len(outcomes) != len(batch):
                    raise RuntimeError("a batch came back with the wrong number of outcomes")
            except BaseException as exc:  # every waiter learns of the failure; none hangs
                for _, future in batch:
                    future.set_exception(exc)
                continue
            with self._condition:
                self.batches += 1
                self.processed += len(batch)
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                future.set_result(outcome)

    # --- leader commits ------------------------------------------------------------------------

    def _await(self, future: Pending[Outcome], timeout: float | None) -> Outcome:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._condition:
                if future._finished:
                    break
                lead = not self._leading
                if lead:
                    self._leading = True
                else:
                    future._parked = True
            if lead:
                self._lead(future)
                continue
            # Parked until our outcome is set or the lead is handed to us.
            remaining = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
            if not future._done.acquire(timeout=remaining):
                with self._condition:
                    if future._parked:  # nobody released for us: give up waiting
                        future._parked = False
                        raise TimeoutError("the batch has not been processed yet")
                future._done.acquire()  # a release is on its way (it was sent under the lock)
        if future._error is not None:
            raise future._error
        return future._outcome  # type: ignore[return-value]

    def _wake(self, future: Pending[Outcome]) -> None:
        """Under the condition: let a parked waiter run (one release per parking)."""
        if future._parked:
            future._parked = False
            future._done.release()

    def _lead(self, mine: Pending[Outcome]) -> None:
        """Process batches in this caller's thread until its own item is done, then hand the
        lead to a waiter whose item is still waiting (or leave it to the next caller)."""
        try:
            while not mine._finished:
                with self._condition:
                    batch = self._waiting[: self.max_batch]
                    del self._waiting[: self.max_batch]
                if not batch:
                    break
                try:
                    outcomes = self.process([item for item, _ in batch])
                    if len(outcomes) != len(batch):
                        raise RuntimeError("a batch came back with the wrong number of outcomes")
                except BaseException as exc:  # every waiter learns of the failure; none hangs
                    with self._condition:
                        for _, future in batch:
                            future._error, future._finished = exc, True
                            self._wake(future)
                    continue
                with self._condition:
                    self.batches += 1
                    self.processed += len(batch)
                    for (_, future), outcome in zip(batch, outcomes, strict=True):
                        future._outcome, future._finished = outcome, True
                        self._wake(future)
        finally:
            with self._condition:
                self._leading = False
                for _, future in self._waiting:
                    if future._parked:
                        self._wake(future)
                        break
