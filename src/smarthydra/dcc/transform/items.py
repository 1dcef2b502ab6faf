"""Repeated DUIS elements as COSEM arrays: special days tables and schedule entries.

A :class:`~smarthydra.dcc.transform.spec.ListSlot` names a repeated DUIS element and the
array leaf it becomes; its item codec turns one DUIS repeat into one array item (a COSEM
structure) and back. Used for calendars whose length follows the request (the prepayment
non-disablement calendar, auxiliary controller schedules).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass

from smarthydra.dcc.transform.spec import (
    ArrayCodecLike,
    ItemCodecLike,
    LeafCodecLike,
    TransformError,
    cosem_time_bytes,
)
from smarthydra.gbcs.axdr import BitString, Data, DataType

Item = dict[str, object]
UNSPECIFIED_YEAR = 0xFFFF
DAYS_OF_WEEK = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_XS_DATE = re.compile(r"^(\d{4,5})-(\d{2})-(\d{2})(Z|[+-]\d{2}:\d{2})?$")


class ItemCodec(ItemCodecLike):
    """One DUIS repeat <-> one COSEM array item: ``to_data`` makes the array item for the
    ``position``-th (from 0) repeat (``body`` is the whole request), ``from_data`` is its
    inverse."""


def text_at(item: object, path: str, what: str) -> str:
    node = item
    for step in path.split("/"):
        if not isinstance(node, dict) or step not in node:
            raise TransformError(f"{what}: {path} is missing")
        node = node[step]
    if isinstance(node, dict) and "#text" in node:
        node = node["#text"]
    if isinstance(node, (dict, list)):
        raise TransformError(f"{what}: {path} is not a value")
    return str(node).strip()


def repeats_at(item: object, path: str) -> list[object]:
    """The repeats at ``path`` (absent: none; one: a list of one)."""
    node = item
    for step in path.split("/"):
        if not isinstance(node, dict) or step not in node:
            return []
        node = node[step]
    if node == {} or node == "":
        return []
    return node if isinstance(node, list) else [node]


def number_in(text: str, low: int, high: int, what: str) -> int:
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise TransformError(f"{what}: {text!r} is not a number in {low}..{high}")
    return int(text)


def xs_date_bytes(text: str, what: str) -> bytes:
    """An xs:date as a COSEM date (year 65535: any year; day of week unspecified)."""
    match = _XS_DATE.match(text.strip())
    if match is None or match.group(4) not in (None, "Z", "+00:00"):
        raise TransformError(f"{what}: {text!r} is not a UTC xs:date")
    year = int(match.group(1))
    if year > UNSPECIFIED_YEAR:
        raise TransformError(f"{what}: year {year} does not fit a COSEM date")
    month = number_in(match.group(2), 1, 12, what)
    day = number_in(match.group(3), 1, 31, what)
    return year.to_bytes(2, "big") + bytes([month, day, 0xFF])


def xs_date_text(raw: bytes) -> str:
    year = int.from_bytes(raw[:2], "big")
    return f"{year:04d}-{raw[2]:02d}-{raw[3]:02d}Z"


def cosem_time_text(raw: bytes) -> str:
    return f"{raw[0]:02d}:{raw[1]:02d}:{raw[2]:02d}.{raw[3]:02d}Z"


# DUIS Date: Year / Month / DayOfMonth / DayOfWeek, each specified or a wildcard.
_WILDCARDS = {
    "Year": (("NonSpecifiedYear", UNSPECIFIED_YEAR),),
    "Month": (("NonSpecifiedMonth", 0xFF),),
    "DayOfMonth": (
        ("LastDayOfMonth", 0xFE),
        ("SecondLastDayOfMonth", 0xFD),
        ("NonSpecifiedDayOfMonth", 0xFF),
    ),
    "DayOfWeek": (("NonSpecifiedDayOfWeek", 0xFF),),
}
_SPECIFIED = {
    "Year": ("SpecifiedYear", 0, 0xFFFE),
    "Month": ("SpecifiedMonth", 1, 12),
    "DayOfMonth": ("SpecifiedDayOfMonth", 1, 31),
    "DayOfWeek": ("SpecifiedDayOfWeek", 1, 7),
}


def duis_date_bytes(date: object, what: str) -> bytes:
    """A DUIS Date (each part specified or a wildcard) as a COSEM date."""
    if not isinstance(date, dict):
        raise TransformError(f"{what}: Date is missing")
    values = []
    for part, (element, low, high) in _SPECIFIED.items():
        node = date.get(part)
        if not isinstance(node, dict):
            raise TransformError(f"{what}: Date/{part} is missing")
        wildcard = next((v for name, v in _WILDCARDS[part] if name in node), None)
        if wildcard is not None:
            values.append(wildcard)
        else:
            values.append(number_in(text_at(node, element, what), low, high, what))
    year, month, day, weekday = values
    return year.to_bytes(2, "big") + bytes([month, day, weekday])


def duis_date(raw: bytes) -> Item:
    parts = (int.from_bytes(raw[:2], "big"), raw[2], raw[3], raw[4])
    out: Item = {}
    for (part, (element, _, _)), value in zip(_SPECIFIED.items(), parts, strict=True):
        wildcard = next((name for name, v in _WILDCARDS[part] if v == value), None)
        if wildcard is not None:
            out[part] = {wildcard: {}}
        else:
            width = 4 if part == "Year" else 2
            out[part] = {element: f"{value:0{width}d}" if part != "DayOfWeek" else str(value)}
    return out


def bit_string(flags: list[bool]) -> BitString:
    """Flags as a COSEM bit string, first flag in the most significant bit."""
    packed = bytearray((len(flags) + 7) // 8)
    for i, on in enumerate(flags):
        if on:
            packed[i // 8] |= 0x80 >> (i % 8)
    return BitString(len(flags), bytes(packed))


def bits(value: BitString) -> list[bool]:
    return [bool(value.data[i // 8] & (0x80 >> (i % 8))) for i in range(value.length)]


def octets_of(data: Data, what: str) -> bytes:
    if not isinstance(data.value, bytes):
        raise TransformError(f"{what} is not an octet-string")
    return data.value


def structure_items(data: Data, size: int, what: str) -> list[Data]:
    if data.type is not DataType.STRUCTURE or not isinstance(data.value, list):
        raise TransformError(f"{what} is not a structure")
    if len(data.value) != size:
        raise TransformError(f"{what} has {len(data.value)} items, not {size}")
    return data.value


@dataclass(frozen=True)
class SpecialDayEntry(ItemCodec):
    """A special days table entry: (index, date, day id) for a repeat with ``@index``.

    ``date_element`` names the repeat's Date child; when empty the repeat is itself the
    Date (its parts are its children)."""

    date_element: str = "Date"
    index_attribute: str = "@index"

    def to_data(self, item: Item, position: int, body: Item) -> Data:
        what = f"special day {position + 1}"
        index = number_in(text_at(item, self.index_attribute, what), 1, 0xFFFF, what)
        date = item.get(self.date_element) if self.date_element else item
        return Data(
            DataType.STRUCTURE,
            [
                Data(DataType.LONG_UNSIGNED, index),
                Data(DataType.OCTET_STRING, duis_date_bytes(date, what)),
                Data(DataType.UNSIGNED, index & 0xFF),
            ],
        )

    def from_data(self, data: Data, position: int, items: list[Data]) -> Item:
        index, date, _ = structure_items(data, 3, "special day")
        assert isinstance(index.value, int)
        parts = duis_date(octets_of(date, "special day date"))
        if not self.date_element:
            return {self.index_attribute: str(index.value), **parts}
        return {self.index_attribute: str(index.value), self.date_element: parts}


class ScriptAction(ABC):
    """Which script a schedule entry runs, from the entry's DUIS elements."""

    @abstractmethod
    def selector(self, item: Item, what: str) -> int: ...

    @abstractmethod
    def elements(self, selector: int) -> Item: ...


@dataclass(frozen=True)
class NamedScript(ScriptAction):
    """A script named by an element's value (e.g. NonDisablementScript START / STOP)."""

    element: str
    scripts: tuple[tuple[str, int], ...]

    def selector(self, item: Item, what: str) -> int:
        name = text_at(item, self.element, what)
        for candidate, selector in self.scripts:
            if candidate == name:
                return selector
        raise TransformError(f"{what}: {self.element} {name!r} is not one of {self.scripts}")

    def elements(self, selector: int) -> Item:
        for name, candidate in self.scripts:
            if candidate == selector:
                return {self.element: name}
        raise TransformError(f"script selector {selector} has no DUIS name")


@dataclass(frozen=True)
class AuxiliaryControllerScript(ScriptAction):
    """Auxiliary controller N to a level: selector ((0x10, or 0x20 driven by the controlled
    load's input) | N) << 8 | 0x80 (scheduled) | level."""

    element: str = "AuxiliaryControllerAction"

    def selector(self, item: Item, what: str) -> int:
        action = item.get(self.element)
        if not isinstance(action, dict):
            raise TransformError(f"{what}: {self.element} is missing")
        n = number_in(text_at(action, "@auxiliaryControllerN", what), 1, 5, what)
        level = number_in(text_at(action, "CommandedStateLevel", what), 0, 100, what)
        base = 0x20 if "InputFromControlledLoad" in action else 0x10
        return (base | n) << 8 | 0x80 | level

    def elements(self, selector: int) -> Item:
        high, low = selector >> 8, selector & 0x7F
        action: Item = {"@auxiliaryControllerN": str(high & 0x0F), "CommandedStateLevel": str(low)}
        if high & 0x20:
            action["InputFromControlledLoad"] = {}
        return {self.element: action}


@dataclass(frozen=True)
class SwitchScript(ScriptAction):
    """Auxiliary load switch N on or off: selector N << 8 | 1 (activate) or 2 (deactivate)."""

    element: str = "ActivateDeactivateSwitch"
    actions: tuple[tuple[str, int], ...] = (("ActivateSwitch", 1), ("DeactivateSwitch", 2))

    def selector(self, item: Item, what: str) -> int:
        switch = item.get(self.element)
        if not isinstance(switch, dict):
            raise TransformError(f"{what}: {self.element} is missing")
        n = number_in(text_at(switch, "@index", what), 1, 5, what)
        action = next((code for name, code in self.actions if name in switch), None)
        if action is None:
            raise TransformError(f"{what}: {self.element} says neither activate nor deactivate")
        return n << 8 | action

    def elements(self, selector: int) -> Item:
        name = next((n for n, code in self.actions if code == selector & 0xFF), None)
        if name is None:
            raise TransformError(f"script selector {selector:#x} is no switch action")
        return {self.element: {"@index": str(selector >> 8), name: {}}}


@dataclass(frozen=True)
class ScheduleEntry(ItemCodec):
    """A schedule (class 10) entry: index, enabled, script, selector, switch time, validity
    window, days of week (bit string, Monday first), special days (bit string by special day
    id, as long as the request's special days table), begin and end dates."""

    script: bytes  # the script table's logical name
    action: ScriptAction
    special_days: str  # body path of the special days repeats (for the bit string length)
    times: str = "ScheduleDatesAndTime"
    special_day_ids: str = "SpecialDaysApplicability/SpecialDayApplicability"
    special_day_id: str = "SpecialDayID"
    days: str = "DaysOfWeekApplicability/DayOfWeekApplicability"
    day_id: str = "DayOfWeekID"
    validity_window: int = 0xFFFF
    # Start and end dates as DUIS Date parts (wildcards allowed), not xs:date.
    dates_as_parts: bool = False

    def _date(self, times: object, name: str, what: str) -> bytes:
        if self.dates_as_parts:
            node = times.get(name) if isinstance(times, dict) else None
            return duis_date_bytes(node, f"{what} {name}")
        return xs_date_bytes(text_at(times, name, what), what)

    def _date_value(self, raw: bytes) -> object:
        return duis_date(raw) if self.dates_as_parts else xs_date_text(raw)

    def _special_day_count(self, body: Item) -> int:
        return len(repeats_at(body, self.special_days))

    def to_data(self, item: Item, position: int, body: Item) -> Data:
        what = f"schedule entry {position + 1}"
        weekdays = [False] * 7
        for repeat in repeats_at(item, self.days):
            name = text_at(repeat, self.day_id, what)
            if name not in DAYS_OF_WEEK:
                raise TransformError(f"{what}: {name!r} is not a day of the week")
            weekdays[DAYS_OF_WEEK.index(name)] = True
        count = self._special_day_count(body)
        special = [False] * count
        for repeat in repeats_at(item, self.special_day_ids):
            day = number_in(text_at(repeat, self.special_day_id, what), 1, 0xFFFF, what)
            if day > count:
                raise TransformError(f"{what}: special day {day} is not in the table")
            special[day - 1] = True
        times = item.get(self.times)
        return Data(
            DataType.STRUCTURE,
            [
                Data(DataType.LONG_UNSIGNED, position + 1),
                Data(DataType.BOOLEAN, True),
                Data(DataType.OCTET_STRING, self.script),
                Data(DataType.LONG_UNSIGNED, self.action.selector(item, what)),
                Data(
                    DataType.OCTET_STRING,
                    cosem_time_bytes(text_at(times, "SwitchTime", what), what),
                ),
                Data(DataType.LONG_UNSIGNED, self.validity_window),
                Data(DataType.BIT_STRING, bit_string(weekdays)),
                Data(DataType.BIT_STRING, bit_string(special)),
                Data(DataType.OCTET_STRING, self._date(times, "StartDate", what)),
                Data(DataType.OCTET_STRING, self._date(times, "EndDate", what)),
            ],
        )

    def from_data(self, data: Data, position: int, items: list[Data]) -> Item:
        fields = structure_items(data, 10, "schedule entry")
        selector, switch, weekdays, special, begin, end = (
            fields[3],
            fields[4],
            fields[6],
            fields[7],
            fields[8],
            fields[9],
        )
        assert isinstance(selector.value, int)
        assert isinstance(weekdays.value, BitString) and isinstance(special.value, BitString)
        out: Item = dict(self.action.elements(selector.value))
        ids: list[Item] = [
            {self.special_day_id: str(i + 1)} for i, on in enumerate(bits(special.value)) if on
        ]
        _put(out, self.special_day_ids, ids)
        days: list[Item] = [
            {self.day_id: DAYS_OF_WEEK[i]} for i, on in enumerate(bits(weekdays.value)) if on
        ]
        _put(out, self.days, days)
        out[self.times] = {
            "SwitchTime": cosem_time_text(octets_of(switch, "switch time")),
            "StartDate": self._date_value(octets_of(begin, "begin date")),
            "EndDate": self._date_value(octets_of(end, "end date")),
        }
        return out


def _put(item: Item, path: str, repeats: list[Item]) -> None:
    """Repeats at ``path``; the containing element is always there (possibly empty)."""
    parent, _, name = path.rpartition("/")
    node = item
    if parent:
        child = node.setdefault(parent, {})
        assert isinstance(child, dict)
        node = child
    if repeats:
        node[name] = repeats


# --- the electricity billing calendar --------------------------------------------------------

PERIODS_PER_YEAR = {"Quarterly": 4, "SixMonthly": 2, "Yearly": 1}


@dataclass(frozen=True)
class BillingCalendar(ArrayCodecLike):
    """ElectricityBillingCalendar as single-action schedule entries (time, date): daily,
    weekly (day of week), monthly (day of month), or one entry per billing period of the
    year from the start month (quarterly 4, six-monthly 2, yearly 1)."""

    element: str = "ElectricityBillingCalendar"

    def build(self, body: Item) -> list[Data]:
        calendar = body.get(self.element)
        if not isinstance(calendar, dict):
            raise TransformError(f"{self.element} is missing")
        what = self.element
        time = cosem_time_bytes(text_at(calendar, "BillingTime", what), what)
        dates: list[bytes]
        if "Daily" in calendar:
            dates = [b"\xff\xff\xff\xff\xff"]
        elif "Weekly" in calendar:
            weekday = number_in(text_at(calendar, "Weekly", what), 1, 7, what)
            dates = [b"\xff\xff\xff\xff" + bytes([weekday])]
        elif "Monthly" in calendar:
            day = number_in(text_at(calendar, "Monthly", what), 1, 28, what)
            dates = [b"\xff\xff\xff" + bytes([day, 0xFF])]
        else:
            period = next((p for p in PERIODS_PER_YEAR if p in calendar), None)
            if period is None:
                raise TransformError(f"{what}: no periodicity")
            day = number_in(text_at(calendar, f"{period}/DayOfMonth", what), 1, 28, what)
            start = number_in(
                text_at(calendar, f"{period}/BillingPeriodStartMonth", what), 1, 12, what
            )
            count = PERIODS_PER_YEAR[period]
            months = [(start - 1 + i * 12 // count) % 12 + 1 for i in range(count)]
            dates = [b"\xff\xff" + bytes([month, day, 0xFF]) for month in months]
        return [
            Data(
                DataType.STRUCTURE,
                [Data(DataType.OCTET_STRING, time), Data(DataType.OCTET_STRING, d)],
            )
            for d in dates
        ]

    def parse(self, items: list[Data]) -> Item:
        entries = [structure_items(item, 2, "billing calendar entry") for item in items]
        if not entries:
            raise TransformError("an empty billing calendar has no DUIS form")
        time = cosem_time_text(octets_of(entries[0][0], "billing time"))
        dates = [octets_of(e[1], "billing date") for e in entries]
        first = dates[0]
        calendar: Item = {"BillingTime": time}
        if len(dates) == 1 and first == b"\xff" * 5:
            calendar["Daily"] = {}
        elif len(dates) == 1 and first[4] != 0xFF:
            calendar["Weekly"] = str(first[4])
        elif len(dates) == 1 and first[2] == 0xFF:
            calendar["Monthly"] = str(first[3])
        else:
            period = next(p for p, n in PERIODS_PER_YEAR.items() if n == len(dates))
            calendar[period] = {
                "DayOfMonth": str(first[3]),
                "BillingPeriodStartMonth": str(first[2]),
            }
        return {self.element: calendar}


# --- payment mode to prepayment: which credits pay which charges --------------------------------


def _credit(n: int) -> bytes:
    return bytes([0, 0, 19, 10, n, 255])


def _charge(n: int) -> bytes:
    return bytes([0, 0, 19, 20, n, 255])


COLLECT_ALWAYS = BitString(3, b"\xe0")
COLLECT_UNLESS_DISABLED = BitString(3, b"\xc0")  # not while the supply is disabled
PREPAYMENT = "Prepayment"


@dataclass(frozen=True)
class CreditChargeConfiguration(ArrayCodecLike):
    """The prepayment credit/charge configuration: token (0) and accumulated (1) credit pay
    the standing charge, consumption and payment debt; the time debts (charges 1 and 2) are
    suspended while the supply is disabled when SuspendDebtDisabled; emergency credit (2)
    pays consumption and the time debts when SuspendDebtEmergency; a twin-element meter's
    second element (charge 5) is paid from token and accumulated credit."""

    twin: bool = False

    def build(self, body: Item) -> list[Data]:
        node = body.get(PREPAYMENT)
        if not isinstance(node, dict):
            raise TransformError(f"{PREPAYMENT} is missing")
        disabled = _flag(text_at(node, "SuspendDebtDisabled", PREPAYMENT))
        emergency = _flag(text_at(node, "SuspendDebtEmergency", PREPAYMENT))
        debt = COLLECT_UNLESS_DISABLED if disabled else COLLECT_ALWAYS
        entries = [
            (0, 0, COLLECT_ALWAYS),
            (0, 4, COLLECT_ALWAYS),
            (0, 1, debt),
            (0, 2, debt),
            (0, 3, COLLECT_ALWAYS),
            (1, 3, COLLECT_ALWAYS),
            (1, 0, COLLECT_ALWAYS),
            (1, 4, COLLECT_ALWAYS),
            (1, 1, debt),
            (1, 2, debt),
        ]
        if emergency:
            entries += [(2, 4, COLLECT_ALWAYS), (2, 1, COLLECT_ALWAYS), (2, 2, COLLECT_ALWAYS)]
        if self.twin:
            entries += [(0, 5, COLLECT_ALWAYS), (1, 5, COLLECT_ALWAYS)]
        return [
            Data(
                DataType.STRUCTURE,
                [
                    Data(DataType.OCTET_STRING, _credit(credit)),
                    Data(DataType.OCTET_STRING, _charge(charge)),
                    Data(DataType.BIT_STRING, collection),
                ],
            )
            for credit, charge, collection in entries
        ]

    def parse(self, items: list[Data]) -> Item:
        seen = {}
        for item in items:
            credit, charge, collection = structure_items(item, 3, "credit charge entry")
            key = (octets_of(credit, "credit")[4], octets_of(charge, "charge")[4])
            seen[key] = collection.value
        return {
            f"{PREPAYMENT}/SuspendDebtDisabled": "true"
            if seen.get((0, 1)) == COLLECT_UNLESS_DISABLED
            else "false",
            f"{PREPAYMENT}/SuspendDebtEmergency": "true" if (2, 1) in seen else "false",
        }


def _flag(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0"):
        raise TransformError(f"{text!r} is not an xs:boolean")
    return text.lower() in ("true", "1")


# --- the comms hub's sub-GHz channels ---------------------------------------------------------


@dataclass(frozen=True)
class ChannelMask(LeafCodecLike):
    """A ZigBee channel page mask: the page in the top 5 bits, then one bit per channel of
    the page (the element's ChannelN children), the page's first channel in bit 0."""

    element: str
    page: int
    first: int
    count: int

    def build(self, body: Item) -> Data:
        node = body.get(self.element)
        if not isinstance(node, dict):
            raise TransformError(f"{self.element} is missing")
        mask = self.page << 27
        for name in node:
            number = name.removeprefix("Channel")
            if not name.startswith("Channel") or not (number.isascii() and number.isdigit()):
                raise TransformError(f"{self.element}: {name} is not a channel")
            channel = int(number)
            if not self.first <= channel < self.first + self.count:
                raise TransformError(f"{self.element}: channel {channel} is not on this page")
            mask |= 1 << (channel - self.first)
        return Data(DataType.BIT_STRING, BitString(32, mask.to_bytes(4, "big")))

    def parse(self, leaf: Data) -> Item:
        if not isinstance(leaf.value, BitString) or leaf.value.length != 32:
            raise TransformError(f"{self.element}: not a 32-bit channel mask")
        mask = int.from_bytes(leaf.value.data, "big")
        channels: Item = {
            f"Channel{self.first + i}": {} for i in range(self.count) if mask >> i & 1
        }
        return {self.element: channels}
