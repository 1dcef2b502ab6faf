"""Anomaly detection: count thresholds per user and service request over a sliding window.

Each user sets, per service request variant, how many requests it expects at most in a window;
the DCC adds its own ceilings for critical requests. A request that would exceed either is
quarantined: held, not sent, until a DCC operator releases or deletes it. This is what stops a
compromised supplier from disconnecting a whole region in one go.
"""

from __future__ import annotations

import enum
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from smarthydra.eui import Eui64

T = TypeVar("T")


@dataclass(frozen=True)
class Threshold:
    max_requests: int
    window: timedelta

    def __post_init__(self) -> None:
        if self.max_requests < 0:
            raise ValueError("a threshold's max_requests cannot be negative")
        if self.window <= timedelta(0):
            raise ValueError("a threshold's window must be positive")


@dataclass(frozen=True)
class ValueLimit:
    """A data-value rule: any ``element`` in an ``srv`` request whose magnitude exceeds
    ``max_abs`` is quarantined (e.g. a meter-balance adjustment, 1.5 AdjustMeterBalance)."""

    srv: str
    element: str
    max_abs: int


def _values_of(element: str, tree: object) -> list[object]:
    if isinstance(tree, dict):
        found = [v for k, v in tree.items() if k == element]
        for value in tree.values():
            found.extend(_values_of(element, value))
        return found
    if isinstance(tree, list):
        return [v for item in tree for v in _values_of(element, item)]
    return []


class QuarantineState(enum.Enum):
    HELD = "held"
    RELEASED = "released"
    DELETED = "deleted"


@dataclass
class QuarantinedRequest(Generic[T]):
    ticket: int
    user: Eui64
    service_reference_variant: str
    held_at: datetime
    reason: str
    request: T
    state: QuarantineState = QuarantineState.HELD


class QuarantineError(Exception):
    """An operator action on a quarantine ticket that does not exist or is closed."""


@dataclass
class AnomalyDetector(Generic[T]):
    """Counts accepted requests per (user, SRV) and decides whether the next one may pass."""

    dcc_thresholds: dict[str, Threshold] = field(default_factory=dict)
    user_thresholds: dict[tuple[Eui64, str], Threshold] = field(default_factory=dict)
    value_limits: list[ValueLimit] = field(default_factory=list)
    _history: dict[tuple[Eui64, str], deque[datetime]] = field(default_factory=dict)
    _quarantine: dict[int, QuarantinedRequest[T]] = field(default_factory=dict)
    _tickets: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def set_user_threshold(self, user: Eui64, srv: str, threshold: Threshold) -> None:
        self.user_thresholds[(user, srv)] = threshold

    def _over(self, key: tuple[Eui64, str], threshold: Threshold, now: datetime) -> bool:
        history = self._history.get(key, deque())
        since = now - threshold.window
        recent = sum(1 for t in history if t > since)
        return recent + 1 > threshold.max_requests

    def check(self, user: Eui64, srv: str, now: datetime) -> str | None:
        """Return why the request must be quarantined, or None when it may pass."""
        key = (user, srv)
        user_threshold = self.user_thresholds.get(key)
        if user_threshold is not None and self._over(key, user_threshold, now):
            return (
                f"user threshold for {srv} exceeded: more than {user_threshold.max_requests} "
                f"in {user_threshold.window}"
            )
        dcc_threshold = self.dcc_thresholds.get(srv)
        if dcc_threshold is not None and self._over(key, dcc_threshold, now):
            return (
                f"DCC threshold for {srv} exceeded: more than {dcc_threshold.max_requests} "
                f"in {dcc_threshold.window}"
            )
        return None

    def check_values(self, srv: str, parameters: dict[str, object]) -> str | None:
        """Why the request's data values must be quarantined, or None."""
        for rule in self.value_limits:
            if rule.srv != srv:
                continue
            for value in _values_of(rule.element, parameters):
                try:
                    number = int(str(value).strip())
                except ValueError:
                    continue
                if abs(number) > rule.max_abs:
                    return f"value limit: {rule.element} {number} exceeds {rule.max_abs} for {srv}"
        return None

    def record(self, user: Eui64, srv: str, now: datetime) -> None:
        """Count a request that passed. Old entries beyond every window are pruned."""
        key = (user, srv)
        history = self._history.setdefault(key, deque())
        history.append(now)
        longest = max(
            (t.window for t in (self.user_thresholds.get(key), self.dcc_thresholds.get(srv)) if t),
            default=timedelta(0),
        )
        while history and history[0] <= now - longest:
            history.popleft()

    def quarantine(
        self, user: Eui64, srv: str, now: datetime, reason: str, request: T
    ) -> QuarantinedRequest[T]:
        entry = QuarantinedRequest(next(self._tickets), user, srv, now, reason, request)
        self._quarantine[entry.ticket] = entry
        return entry

    def held(self) -> list[QuarantinedRequest[T]]:
        return [q for q in self._quarantine.values() if q.state is QuarantineState.HELD]

    def _take(self, ticket: int) -> QuarantinedRequest[T]:
        entry = self._quarantine.get(ticket)
        if entry is None:
            raise QuarantineError(f"no quarantined request with ticket {ticket}")
        if entry.state is not QuarantineState.HELD:
            raise QuarantineError(f"quarantined request {ticket} was already {entry.state.value}")
        return entry

    def release(self, ticket: int, send: Callable[[T], object]) -> object:
        """Operator release: the held request is sent, exactly once."""
        entry = self._take(ticket)
        entry.state = QuarantineState.RELEASED
        return send(entry.request)

    def delete(self, ticket: int) -> None:
        self._take(ticket).state = QuarantineState.DELETED
