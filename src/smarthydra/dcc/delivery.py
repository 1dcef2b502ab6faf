"""Delivering responses and DCC alerts to each user's registered endpoint.

Every message waits in the outbox (committed with the decision that made it) until the user's
endpoint answers 2xx or the user polls it. Failed deliveries are retried on a fixed schedule,
the first retries well within 300 s of the message being made, then every 15 minutes; a
message nobody collected for two days expires. The clock is injected, so tests step through
days of retries in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from smarthydra.clock import Clock
from smarthydra.dcc.store import OutboxMessage, OutboxState, SqlDccStore

HOLD_FOR = timedelta(days=2)
# Delays before each retry; after the last one, retries continue at the last interval.
RETRY_DELAYS = (
    timedelta(seconds=10),
    timedelta(seconds=30),
    timedelta(seconds=60),
    timedelta(seconds=120),
    timedelta(minutes=15),
)


class DeliveryFailed(Exception):
    """The user's endpoint did not accept the message (unreachable, or a non-2xx status)."""


Post = Callable[[str, bytes], None]
"""POST the signed DUIS document to the URL; raise :class:`DeliveryFailed` if not accepted."""


def next_attempt(created_at: datetime, attempts_made: int) -> datetime:
    """When the next retry is due after ``attempts_made`` attempts (the first is immediate)."""
    elapsed = sum(RETRY_DELAYS[: min(attempts_made, len(RETRY_DELAYS))], timedelta())
    extra = max(0, attempts_made - len(RETRY_DELAYS))
    return created_at + elapsed + RETRY_DELAYS[-1] * extra


def http_post(
    timeout: float = 10.0, cert: tuple[str, str] | None = None, verify: str | bool = True
) -> Post:
    """A :data:`Post` over HTTP(S) with httpx (mutual TLS when ``cert`` is given)."""
    import httpx

    client = httpx.Client(timeout=timeout, cert=cert, verify=verify)

    def post(url: str, document: bytes) -> None:
        try:
            reply = client.post(url, content=document, headers={"content-type": "application/xml"})
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{url}: {exc}") from None
        if not 200 <= reply.status_code < 300:
            raise DeliveryFailed(f"{url}: HTTP {reply.status_code}")

    return post


@dataclass
class DeliveryWorker:
    store: SqlDccStore
    clock: Clock
    endpoints: Callable[[str], str | None]  # user EUI (hex) -> registered URL, if any
    render: Callable[[dict[str, object]], bytes]  # outbox message -> signed DUIS document
    post: Post
    delivered: list[int] = field(default_factory=list)

    def run_once(self) -> int:
        """Attempt every message that is due; expire what has waited past the holding period."""
        now = self.clock.now()
        done = 0
        for message in self.store.messages(state=OutboxState.PENDING, due_by=now):
            if now - message.created_at >= HOLD_FOR:
                self.store.mark_attempt(
                    message.id, next_attempt_at=now, error="held for two days", expired=True
                )
                continue
            url = self.endpoints(message.user)
            if url is None:
                # No endpoint: the message waits to be polled, rechecked at the retry pace.
                self._failed(message, now, "no endpoint registered; waiting to be polled")
                continue
            try:
                self.post(url, self.render(message.message))
            except DeliveryFailed as exc:
                self._failed(message, now, str(exc))
                continue
            self.store.mark_delivered(message.id, now)
            self.delivered.append(message.id)
            done += 1
        return done

    def _failed(self, message: OutboxMessage, now: datetime, error: str) -> None:
        due = next_attempt(message.created_at, message.attempts + 1)
        self.store.mark_attempt(
            message.id,
            next_attempt_at=max(due, now),
            error=error,
            expired=False,
        )
