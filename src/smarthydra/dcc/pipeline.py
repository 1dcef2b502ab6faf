"""The DUIS gateway's stages on threads of their own, fed from an event loop.

A request handler on the HTTP server's event loop hands its request over and awaits its
reply: no thread per request. Each stage runs on one thread and takes everything that is
waiting (up to ``max_batch``) as one batch:

1. authenticate (only with front-door worker processes, which do the work: this thread
   ships the batch to them and waits, so the stages after it go on meanwhile);
2. decide: the DCC's checks and transform, one group commit for the accepted requests;
3. sign: responses drafted (in the workers, if they draft) and signed with the DCC's key.

Replies go back to the event loop once per batch. A reply is sent only after stage 2's
commit held its request, as with :meth:`DccGateway.handle`.

Why: with a thread per request (a thread pool under the event loop) the threads took turns
on the interpreter lock at every lock and database call; in the bench that cost more CPU
than the requests themselves (2.2 against 1.1 ms a request with two users). Here at most
three threads are busy at once, and they hand work over once per batch.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from smarthydra.dcc.gateway import Answer, Arrival, DccGateway, Endpoint, GatewayReply, problem
from smarthydra.eui import Eui64

DEFAULT_PIPELINE_BATCH = 128
_STOP = object()


class PipelineClosed(Exception):
    """The pipeline was closed; nothing more is accepted."""


@dataclass
class _Job:
    arrival: Arrival
    future: asyncio.Future[GatewayReply]
    loop: asyncio.AbstractEventLoop
    outcome: Answer | GatewayReply | BaseException | None = None


class _Stage:
    """One thread: takes every job waiting (up to ``max_batch``), runs ``work`` over the
    batch and passes it on with ``forward``."""

    def __init__(
        self,
        name: str,
        work: Callable[[list[_Job]], None],
        forward: Callable[[list[_Job]], None],
        max_batch: int,
    ) -> None:
        self.inbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._work = work
        self._forward = forward
        self._max_batch = max_batch
        self.thread = threading.Thread(target=self._run, name=f"dcc-{name}", daemon=True)
        self.thread.start()

    def take(self, batch: list[_Job]) -> None:
        """Jobs handed on by the stage before this one."""
        for job in batch:
            self.inbox.put(job)

    def _run(self) -> None:
        while True:
            first = self.inbox.get()
            if first is _STOP:
                return
            batch: list[_Job] = [first]  # type: ignore[list-item]
            stopping = False
            while len(batch) < self._max_batch:
                try:
                    more = self.inbox.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stopping = True
                    break
                batch.append(more)  # type: ignore[arg-type]
            try:
                self._work(batch)
            except BaseException as exc:  # every job of the batch learns of it; none hangs
                for job in batch:
                    job.outcome = exc
            self._forward(batch)
            if stopping:
                return


class GatewayPipeline:
    """:class:`DccGateway` requests from asyncio, answered by the stage threads."""

    def __init__(
        self,
        gateway: DccGateway,
        *,
        max_batch: int = DEFAULT_PIPELINE_BATCH,
    ) -> None:
        self.gateway = gateway
        self._closed = False
        self._lock = threading.Lock()
        self.batches = 0  # batches decided (for measurements)
        self._sign = _Stage("sign", self._signed, _resolve, max_batch)
        self._decide = _Stage("decide", self._decided, self._sign.take, max_batch)
        self._authenticate: _Stage | None = None
        if gateway.front_door is not None:
            # Batches as large as the other stages': smaller ones (so that one is decided
            # while the workers check the next) cost more CPU per request than the overlap
            # gained (64 users, 2 workers: 1,190/s in batches of 8, 1,670/s of up to 128).
            self._authenticate = _Stage(
                "authenticate", self._authenticated, self._decide.take, max_batch
            )

    async def handle(
        self, endpoint: Endpoint, body: bytes, tls_client: Eui64 | None = None
    ) -> GatewayReply:
        """One request's reply (as :meth:`DccGateway.handle`, without blocking the loop)."""
        if len(body) > self.gateway.max_body_bytes:
            return self.gateway.handle(endpoint, body, tls_client)  # the size refusal, at once
        loop = asyncio.get_running_loop()
        job = _Job(Arrival(endpoint, body, tls_client), loop.create_future(), loop)
        with self._lock:
            if self._closed:
                raise PipelineClosed("the DCC gateway is shutting down")
            first = self._authenticate or self._decide
            first.inbox.put(job)
        return await job.future

    def close(self) -> None:
        """Refuse new requests; those already in are answered first."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for stage in (self._authenticate, self._decide, self._sign):
            if stage is not None:
                stage.inbox.put(_STOP)
                stage.thread.join()

    # --- the stages ---------------------------------------------------------------------------

    def _authenticated(self, batch: list[_Job]) -> None:
        arrivals = self.gateway.authenticate_batch([job.arrival for job in batch])
        for job, arrival in zip(batch, arrivals, strict=True):
            job.arrival = arrival

    def _decided(self, batch: list[_Job]) -> None:
        waiting = [job for job in batch if job.outcome is None]
        answers = self.gateway.decide_batch([job.arrival for job in waiting])
        for job, answer in zip(waiting, answers, strict=True):
            job.outcome = answer
        self.batches += 1

    def _signed(self, batch: list[_Job]) -> None:
        replies = self.gateway.sign_batch([job.outcome for job in batch])
        for job, reply in zip(batch, replies, strict=True):
            job.outcome = reply


def _resolve(batch: Sequence[_Job]) -> None:
    """Hand the replies to their event loops, one call per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
    for job in batch:
        by_loop.setdefault(job.loop, []).append(job)
    for loop, jobs in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, jobs)
        except RuntimeError:  # that loop has closed: nobody is waiting any more
            continue


def _settle(jobs: list[_Job]) -> None:
    for job in jobs:
        if job.future.done():  # the request was cancelled (its client went away)
            continue
        outcome: Any = job.outcome
        if isinstance(outcome, GatewayReply):
            job.future.set_result(outcome)
        elif isinstance(outcome, BaseException):
            job.future.set_exception(outcome)
        else:
            job.future.set_result(
                problem(500, "unanswered", "DUIS request not answered", "no reply was made")
            )


__all__ = ["DEFAULT_PIPELINE_BATCH", "GatewayPipeline", "PipelineClosed"]
