"""The consumer's consent contracts and the consumer-readable release log (pure data).

A consent names a party, the data it may have, at what granularity and for which days.
It is granted, limited (granted again with a narrower scope: the new contract replaces the
old one) or revoked by the consumer at the in-home display, or through the supplier with a
message the supplier signs. The meter-data applet keeps the contracts and enforces them;
every view it gives an applet, and every consent change, is an entry of the log.

Days are proleptic Gregorian ordinals (``date.toordinal()``), as everywhere in the applets.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any


class ConsentError(Exception):
    """A consent or log entry is malformed."""


class Granularity(enum.IntEnum):
    """How finely a party may see consumption: the value is half hours per figure."""

    HALF_HOURLY = 1
    HOURLY = 2
    DAILY = 48
    MONTHLY = 48 * 31  # calendar months; the value only orders granularities

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")

    @classmethod
    def parse(cls, text: str) -> Granularity:
        for granularity in cls:
            if granularity.label == text:
                return granularity
        raise ConsentError(f"unknown granularity {text!r}")


class DataKind(enum.Enum):
    CONSUMPTION = "consumption"
    INSIGHTS = "insights"  # appliance and usage insights computed at home

    @classmethod
    def parse(cls, text: str) -> DataKind:
        try:
            return cls(text)
        except ValueError:
            raise ConsentError(f"unknown data kind {text!r}") from None


@dataclass(frozen=True)
class Consent:
    party: str
    data: DataKind
    granularity: Granularity
    first_day: int
    last_day: int

    def __post_init__(self) -> None:
        if not self.party or len(self.party) > 64:
            raise ConsentError("a party name is 1..64 characters")
        if self.last_day < self.first_day:
            raise ConsentError("a consent ends on or after it starts")

    def covers(self, day: int) -> bool:
        return self.first_day <= day <= self.last_day

    def to_payload(self) -> list[Any]:
        return [self.party, self.data.value, self.granularity.label, self.first_day,
                self.last_day]

    @classmethod
    def from_payload(cls, payload: Any) -> Consent:
        if not (isinstance(payload, list) and len(payload) == 5):
            raise ConsentError("a consent is [party, data, granularity, first day, last day]")
        party, data, granularity, first, last = payload
        if not (isinstance(party, str) and isinstance(data, str) and isinstance(granularity, str)
                and isinstance(first, int) and isinstance(last, int)):
            raise ConsentError("consent fields have the wrong types")
        return cls(party, DataKind.parse(data), Granularity.parse(granularity), first, last)

    def describe(self) -> str:
        first = dt.date.fromordinal(self.first_day)
        last = dt.date.fromordinal(self.last_day)
        return (f"{self.party} may have {self.data.value} at {self.granularity.label} "
                f"granularity for {first}..{last}")


@dataclass(frozen=True)
class LogEntry:
    """One line of the consumer's log: on ``day``, ``party`` got (or was refused) something."""

    day: int
    event: str  # released / refused / granted / revoked
    party: str
    data: str
    granularity: str
    first_day: int
    last_day: int
    via: str = ""  # who asked: ihd / supplier / the applet's role

    def to_payload(self) -> list[Any]:
        return [self.day, self.event, self.party, self.data, self.granularity, self.first_day,
                self.last_day, self.via]

    @classmethod
    def from_payload(cls, payload: Any) -> LogEntry:
        if not (isinstance(payload, list) and len(payload) == 8):
            raise ConsentError("a log entry has 8 fields")
        day, event, party, data, granularity, first, last, via = payload
        if not all(isinstance(v, int) for v in (day, first, last)):
            raise ConsentError("log entry days are integers")
        return cls(day, str(event), str(party), str(data), str(granularity), first, last,
                   str(via))

    def describe(self) -> str:
        when = dt.date.fromordinal(self.day) if self.day > 0 else "-"
        span = ""
        if self.first_day > 0:
            span = (f" for {dt.date.fromordinal(self.first_day)}"
                    f"..{dt.date.fromordinal(self.last_day)}")
        return f"{when}: {self.event} {self.party} {self.data} ({self.granularity}){span}" + (
            f" via {self.via}" if self.via else "")
