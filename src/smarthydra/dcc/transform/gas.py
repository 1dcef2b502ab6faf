"""Gas (GBZ) payloads built in code: ZCL commands whose length follows the request."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from smarthydra.dcc.transform.items import number_in, repeats_at, text_at
from smarthydra.dcc.transform.spec import (
    CANCELLATION_DATETIME,
    GBCS_EPOCH,
    Body,
    BodyCodec,
    TransformError,
    cosem_time_bytes,
)

GB_PROFILE = b"\x01\x09"
PRICE_CLUSTER = 0x0700
SERVER_TO_CLIENT = 0x09  # cluster-specific, server to client
PUBLISH_TARIFF_INFORMATION = 0x04
PUBLISH_PRICE_MATRIX = 0x05
CURRENCIES = {"GBP": 826, "ECB": 978}  # ISO 4217 numeric codes
GAS_PRICES = "PriceElements/GasPriceElements"


def component(last: bool, cluster: int, sequence: int, command: int, payload: bytes) -> bytes:
    """A GBZ component carrying one ZCL command (no from-date-time, not encrypted)."""
    inner = bytes([SERVER_TO_CLIENT, sequence, command]) + payload
    return (
        bytes([0x01 if last else 0x00])
        + cluster.to_bytes(2, "big")
        + len(inner).to_bytes(2, "big")
        + inner
    )


def components(payload: bytes) -> list[bytes]:
    """The ZCL payloads of a GBZ payload's components."""
    if payload[:2] != GB_PROFILE or len(payload) < 3:
        raise TransformError("not a GBZ payload")
    out, pos = [], 3
    for _ in range(payload[2]):
        length = int.from_bytes(payload[pos + 3 : pos + 5], "big")
        out.append(payload[pos + 8 : pos + 5 + length])  # after the 3-byte ZCL header
        pos += 5 + length
    return out


def utc_time(moment: dt.datetime, what: str) -> bytes:
    seconds = int((moment - GBCS_EPOCH).total_seconds())
    if not 0 <= seconds < 0xFFFFFFFE:
        raise TransformError(f"{what}: {moment} is outside the ZigBee UTCTime range")
    return seconds.to_bytes(4, "little")


def from_utc_time(raw: bytes) -> dt.datetime:
    return GBCS_EPOCH + dt.timedelta(seconds=int.from_bytes(raw, "little"))


def _start(execution: dt.datetime | None, cancel: bytes) -> bytes:
    if execution is None:
        return bytes(4)
    if execution == CANCELLATION_DATETIME:
        return cancel
    return utc_time(execution, "ExecutionDateTime")


def _execution(raw: bytes) -> dt.datetime | None:
    if raw == bytes(4):
        return None
    if raw in (b"\xff\xff\xff\xff", b"\xfe\xff\xff\xff"):
        return CANCELLATION_DATETIME
    return from_utc_time(raw)


@dataclass(frozen=True)
class GasPrices(BodyCodec):
    """GCS01b: ZCL Publish Tariff Information (charging scheme TOU 0x00 or block 0x10, tiers
    or thresholds in use, currency, standing charge) and Publish Price Matrix (TOU tiers
    1-4, or blocks from 0). Starts at the execution date-time (cancellation: 0xFFFFFFFF in
    the tariff information, 0xFFFFFFFE in the price matrix)."""

    future_dated: bool = True

    def build(
        self,
        body: Body,
        execution: dt.datetime | None,
        counter: int,
        issued_at: dt.datetime | None = None,
    ) -> bytes:
        if issued_at is None:
            raise TransformError("gas prices: the time of issue is needed")
        node: object = body
        for step in GAS_PRICES.split("/"):
            node = node.get(step) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise TransformError(f"{GAS_PRICES} is missing")
        what = "GasPriceElements"
        currency = CURRENCIES.get(text_at(node, "CurrencyUnits", what))
        if currency is None:
            raise TransformError(f"{what}: CurrencyUnits is not one of {list(CURRENCIES)}")
        standing = number_in(text_at(node, "StandingCharge", what), 0, 0xFFFFFFFF, what)
        if "TOUTariff" in node:
            scheme, tariff, element, first = 0x00, node["TOUTariff"], "TOUPrice", 1
            tiers, thresholds, control = 0, 0, 0x01
        elif "BlockTariff" in node:
            scheme, tariff, element, first = 0x10, node["BlockTariff"], "BlockPrice", 0
            thresholds = number_in(text_at(tariff, "NumberOfThresholds", what), 0, 3, what)
            tiers, control = 0, 0x00
        else:
            raise TransformError(f"{what}: neither TOUTariff nor BlockTariff")
        prices: dict[int, int] = {}
        for repeat in repeats_at(tariff, element):
            index = number_in(text_at(repeat, "@index", what), 1, 4, what)
            prices[index] = number_in(text_at(repeat, "#text", what), 0, 0xFFFFFFFF, what)
        if not prices:
            raise TransformError(f"{what}: no {element}")
        if scheme == 0x00:
            tiers = len(prices)
        issuer = utc_time(issued_at, "time of issue")
        information = (
            bytes(4)  # provider id
            + issuer
            + (1).to_bytes(4, "little")  # issuer tariff id
            + _start(execution, b"\xff\xff\xff\xff")
            + bytes([scheme, 0, tiers, thresholds, 0])  # scheme, empty label, unit m3
            + currency.to_bytes(2, "little")
            + bytes([0x50])  # price trailing digit: 5 decimals
            + standing.to_bytes(4, "little")
            + b"\xff"  # tier block mode: not used
            + (1).to_bytes(3, "little")  # block threshold multiplier
            + (1000).to_bytes(3, "little")  # block threshold divisor
        )
        matrix = (
            bytes(4)
            + issuer
            + _start(execution, b"\xfe\xff\xff\xff")
            + (1).to_bytes(4, "little")
            + bytes([0, 1, control])  # command index, number of commands, sub-payload
            + b"".join(
                bytes([index - 1 + first]) + price.to_bytes(4, "little")
                for index, price in sorted(prices.items())
            )
        )
        return (
            GB_PROFILE
            + b"\x02"
            + component(False, PRICE_CLUSTER, 0, PUBLISH_TARIFF_INFORMATION, information)
            + component(True, PRICE_CLUSTER, 1, PUBLISH_PRICE_MATRIX, matrix)
        )

    def parse(self, payload: bytes) -> tuple[Body, dt.datetime | None]:
        information, matrix = components(payload)
        scheme, thresholds = information[16], information[19]
        currency = int.from_bytes(information[21:23], "little")
        names = {code: name for name, code in CURRENCIES.items()}
        entries = matrix[19:]
        first = 1 if scheme == 0x00 else 0
        prices = [
            {
                "@index": str(entries[i] + 1 - first),
                "#text": str(int.from_bytes(entries[i + 1 : i + 5], "little")),
            }
            for i in range(0, len(entries), 5)
        ]
        tariff: Body = (
            {"TOUPrice": prices}
            if scheme == 0x00
            else {"BlockPrice": prices, "NumberOfThresholds": str(thresholds)}
        )
        elements: Body = {
            "CurrencyUnits": names[currency],
            "StandingCharge": str(int.from_bytes(information[24:28], "little")),
            "TOUTariff" if scheme == 0x00 else "BlockTariff": tariff,
        }
        return {"PriceElements": {"GasPriceElements": elements}}, _execution(information[12:16])

    def issued(self, payload: bytes) -> dt.datetime | None:
        return from_utc_time(components(payload)[0][4:8])


# --- the gas calendar (ZCL Calendar cluster) ---------------------------------------------------

CALENDAR_CLUSTER = 0x0707
PUBLISH_CALENDAR = 0x00
PUBLISH_DAY_PROFILE = 0x01
PUBLISH_WEEK_PROFILE = 0x02
PUBLISH_SEASONS = 0x03
PUBLISH_SPECIAL_DAYS = 0x04
PUBLISH_BLOCK_THRESHOLDS = 0x06
CANCEL = b"\xff\xff\xff\xff"
CANCEL_FE = b"\xfe\xff\xff\xff"  # the calendar, thresholds and price matrix cancel this way
YEAR_BASE = 1900
# DUIS GasDateWithWildcards: (element, specified child, wildcard child, offset) per byte.
GAS_DATE_PARTS = (
    ("GasYearWithWildcards", "SpecifiedYear", "NonSpecifiedYear", YEAR_BASE),
    ("GasMonthWithWildcards", "SpecifiedMonth", "NonSpecifiedMonth", 0),
    ("GasDayOfMonthWithWildcards", "SpecifiedDayOfMonth", "GasNonSpecifiedDayOfMonth", 0),
    ("GasDayOfWeekWithWildcards", "SpecifiedDayOfWeek", "NonSpecifiedDayOfWeek", 0),
)


def gas_date(date: object, what: str) -> bytes:
    """A DUIS GasDateWithWildcards as a ZCL date (year - 1900, month, day, weekday)."""
    if not isinstance(date, dict):
        raise TransformError(f"{what}: the date is missing")
    out = bytearray()
    for element, specified, wildcard, offset in GAS_DATE_PARTS:
        node = date.get(element)
        if not isinstance(node, dict):
            raise TransformError(f"{what}: {element} is missing")
        if wildcard in node:
            out.append(0xFF)
        else:
            value = number_in(text_at(node, specified, what), offset, offset + 0xFE, what)
            out.append(value - offset)
    return bytes(out)


def duis_gas_date(raw: bytes) -> Body:
    out: Body = {}
    for (element, specified, wildcard, offset), value in zip(GAS_DATE_PARTS, raw, strict=True):
        out[element] = {wildcard: {}} if value == 0xFF else {specified: str(value + offset)}
    return out


def _node(body: object, path: str) -> Body:
    for step in path.split("/"):
        body = body.get(step) if isinstance(body, dict) else None
    if not isinstance(body, dict):
        raise TransformError(f"{path} is missing")
    return body


@dataclass(frozen=True)
class ZclCommand:
    cluster: int
    command: int
    payload: bytes


def gbz(commands: list[ZclCommand]) -> bytes:
    """The GBZ payload carrying ``commands`` in order (sequence numbers from 0)."""
    if not commands or len(commands) > 0xFF:
        raise TransformError(f"{len(commands)} ZCL commands do not fit one GBZ payload")
    return (
        GB_PROFILE
        + bytes([len(commands)])
        + b"".join(
            component(i == len(commands) - 1, c.cluster, i, c.command, c.payload)
            for i, c in enumerate(commands)
        )
    )


def calendar_commands(
    tables: Body,
    special_days: list[object],
    day_actions: dict[int, list[tuple[int, int]]],
    issuer: bytes,
    start: bytes,
    what: str,
    *,
    seasons_path: str = "Seasons/Season",
    calendar_type: int = 0,
) -> list[ZclCommand]:
    """Publish Calendar, Day Profiles, Week Profiles, Seasons and Special Days
    (``calendar_type`` 0: the tariff calendar, 3: the friendly credit calendar)."""
    head = bytes(4) + issuer + issuer  # provider id, issuer event id, issuer calendar id
    weeks = repeats_at(tables, "WeekProfiles/WeekProfile")
    seasons = repeats_at(tables, seasons_path)
    commands = [
        ZclCommand(
            CALENDAR_CLUSTER,
            PUBLISH_CALENDAR,
            head + start + bytes([calendar_type, 0, 0, len(seasons), len(weeks), len(day_actions)]),
        )
    ]
    for day, entries in day_actions.items():
        commands.append(
            ZclCommand(
                CALENDAR_CLUSTER,
                PUBLISH_DAY_PROFILE,
                head
                + bytes([day, len(entries), 0, 1, calendar_type])
                + b"".join(
                    minute.to_bytes(2, "little") + bytes([tier]) for minute, tier in entries
                ),
            )
        )
    for week in weeks:
        week_id = number_in(text_at(week, "WeekName", what), 1, 0xFF, what)
        days = {
            number_in(text_at(r, "@index", what), 1, 7, what): number_in(
                text_at(r, "#text", what), 1, 0xFF, what
            )
            for r in repeats_at(week, "ReferencedDayName")
        }
        if sorted(days) != list(range(1, 8)):
            raise TransformError(f"{what}: a week profile needs days 1-7")
        commands.append(
            ZclCommand(
                CALENDAR_CLUSTER,
                PUBLISH_WEEK_PROFILE,
                head + bytes([week_id] + [days[d] for d in range(1, 8)]),
            )
        )
    commands.append(
        ZclCommand(
            CALENDAR_CLUSTER,
            PUBLISH_SEASONS,
            head
            + bytes([0, 1])
            + b"".join(
                gas_date(s.get("SeasonStartDate") if isinstance(s, dict) else None, what)
                + bytes([number_in(text_at(s, "ReferencedWeekName", what), 1, 0xFF, what)])
                for s in seasons
            ),
        )
    )
    commands.append(
        ZclCommand(
            CALENDAR_CLUSTER,
            PUBLISH_SPECIAL_DAYS,
            head
            + start
            + bytes([calendar_type, len(special_days), 0, 1])
            + b"".join(
                gas_date(d.get("Date") if isinstance(d, dict) else None, what)
                + bytes([number_in(text_at(d, "ReferencedDayName", what), 1, 0xFF, what)])
                for d in special_days
            ),
        )
    )
    return commands


def parse_calendar(
    payloads: list[bytes], seasons_element: str = "Seasons"
) -> tuple[Body, list[Body], dict[int, list[tuple[int, int]]]]:
    """The DUIS switching tables, special days and day actions of calendar commands
    (``payloads``: Publish Calendar first, Special Days last)."""
    calendar, *rest = payloads
    seasons_count, weeks_count, days_count = calendar[19], calendar[20], calendar[21]
    days: dict[int, list[tuple[int, int]]] = {}
    for payload in rest[:days_count]:
        count = payload[13]
        entries = payload[17 : 17 + 3 * count]
        days[payload[12]] = [
            (int.from_bytes(entries[i : i + 2], "little"), entries[i + 2])
            for i in range(0, len(entries), 3)
        ]
    weeks = [
        {
            "WeekName": str(p[12]),
            "ReferencedDayName": [{"@index": str(d), "#text": str(p[12 + d])} for d in range(1, 8)],
        }
        for p in rest[days_count : days_count + weeks_count]
    ]
    seasons_payload = rest[days_count + weeks_count]
    entries = seasons_payload[14:]
    seasons = [
        {
            "SeasonStartDate": duis_gas_date(entries[i : i + 4]),
            "ReferencedWeekName": str(entries[i + 4]),
        }
        for i in range(0, 5 * seasons_count, 5)
    ]
    special = rest[-1]
    listed = special[20:]
    special_days: list[Body] = [
        {"Date": duis_gas_date(listed[i : i + 4]), "ReferencedDayName": str(listed[i + 4])}
        for i in range(0, len(listed), 5)
    ]
    tables: Body = {
        "WeekProfiles": {"WeekProfile": weeks},
        seasons_element: {"Season": seasons},
    }
    return tables, special_days, days


@dataclass(frozen=True)
class GasTariff(BodyCodec):
    """GCS01a: the gas calendar (one action per day profile: TOU tier n, or 0 for the block
    tariff), the tariff information and price matrix (as :class:`GasPrices`) and, for a
    block tariff, the block thresholds between them."""

    future_dated: bool = True

    def build(
        self,
        body: Body,
        execution: dt.datetime | None,
        counter: int,
        issued_at: dt.datetime | None = None,
    ) -> bytes:
        if issued_at is None:
            raise TransformError("gas tariff: the time of issue is needed")
        what = "GasTariffElements"
        elements = _node(body, "GasTariffElements")
        tables = _node(elements, "SwitchingTable")
        days: dict[int, list[tuple[int, int]]] = {}
        for profile in repeats_at(tables, "DayProfiles/DayProfile"):
            day = number_in(text_at(profile, "DayName", what), 1, 0xFF, what)
            if isinstance(profile, dict) and "BlockTariff" in profile:
                days[day] = [(0, 0)]
            else:
                days[day] = [(0, number_in(text_at(profile, "TOUTariffAction", what), 1, 4, what))]
        special = repeats_at(elements, "SpecialDays/SpecialDay")
        issuer = utc_time(issued_at, "time of issue")
        commands = calendar_commands(
            tables, special, days, issuer, _start(execution, CANCEL_FE), what
        )
        prices = components(GasPrices().build(body, execution, counter, issued_at))
        blocks = "BlockTariff" in _node(body, GAS_PRICES)
        thresholds = [
            number_in(text_at(r, "#text", what), 0, (1 << 48) - 1, what)
            for r in sorted(
                repeats_at(elements, "ThresholdMatrix/BlockThreshold"),
                key=lambda r: text_at(r, "@index", what),
            )
        ]
        information = bytearray(prices[0])
        if blocks:
            information[19] = len(thresholds)  # the thresholds the matrix gives are in use
        commands.append(ZclCommand(PRICE_CLUSTER, PUBLISH_TARIFF_INFORMATION, bytes(information)))
        if blocks:
            commands.append(
                ZclCommand(
                    PRICE_CLUSTER,
                    PUBLISH_BLOCK_THRESHOLDS,
                    bytes(4)
                    + issuer
                    + _start(execution, CANCEL_FE)
                    + (1).to_bytes(4, "little")
                    + bytes([0, 1, 1, len(thresholds)])
                    + b"".join(t.to_bytes(6, "little") for t in thresholds),
                )
            )
        commands.append(ZclCommand(PRICE_CLUSTER, PUBLISH_PRICE_MATRIX, prices[1]))
        return gbz(commands)

    def parse(self, payload: bytes) -> tuple[Body, dt.datetime | None]:
        payloads = components(payload)
        calendar_count = next(i for i, p in enumerate(payloads) if len(p) == 35)
        tables, special, days = parse_calendar(payloads[:calendar_count])
        day_profiles = [
            {
                "DayName": str(day),
                **({"BlockTariff": {}} if tier == 0 else {"TOUTariffAction": str(tier)}),
            }
            for day, ((_, tier),) in days.items()
        ]
        tables = {"DayProfiles": {"DayProfile": day_profiles}, **tables}
        information, *rest = payloads[calendar_count:]
        matrix = rest[-1]
        prices_body, execution = GasPrices().parse(
            gbz(
                [
                    ZclCommand(PRICE_CLUSTER, PUBLISH_TARIFF_INFORMATION, information),
                    ZclCommand(PRICE_CLUSTER, PUBLISH_PRICE_MATRIX, matrix),
                ]
            )
        )
        if len(rest) == 2:  # block thresholds
            block = rest[0]
            count = block[19]
            values = [
                int.from_bytes(block[20 + 6 * i : 26 + 6 * i], "little") for i in range(count)
            ]
            matrix_body: Body = {
                "BlockThreshold": [
                    {"@index": str(i + 1), "#text": str(v)} for i, v in enumerate(values)
                ]
            }
        else:  # a TOU tariff: the schema still wants a threshold (not sent)
            matrix_body = {"BlockThreshold": [{"@index": "1", "#text": "1"}]}
        elements: Body = {
            "SwitchingTable": tables,
            "SpecialDays": {"SpecialDay": special},
            "ThresholdMatrix": matrix_body,
        }
        return {"GasTariffElements": elements, **prices_body}, execution

    def issued(self, payload: bytes) -> dt.datetime | None:
        return from_utc_time(components(payload)[0][4:8])


# --- gas prepayment configuration -------------------------------------------------------------

PREPAYMENT_CLUSTER = 0x0705
CLIENT_TO_SERVER = 0x01  # cluster-specific, client to server (prepayment commands)
EMERGENCY_CREDIT_SETUP = 0x03
SET_LOW_CREDIT_WARNING_LEVEL = 0x09
SET_MAXIMUM_CREDIT_LIMIT = 0x0B
SET_OVERALL_DEBT_CAP = 0x0C
FRIENDLY_CREDIT_CALENDAR = 0x03
NON_DISABLEMENT_ACTIONS = {"START": 1, "STOP": 0}
GAS_PREPAY = "UpdatePrepayConfigGas"


def _prepayment_component(
    last: bool, sequence: int, command: int, payload: bytes, from_time: bytes | None = None
) -> bytes:
    header = bytes([0x01 if last else 0x00]) + PREPAYMENT_CLUSTER.to_bytes(2, "big")
    control = header[0] | (0x10 if from_time is not None else 0)
    inner = (from_time or b"") + bytes([CLIENT_TO_SERVER, sequence, command]) + payload
    return bytes([control]) + header[1:] + len(inner).to_bytes(2, "big") + inner


@dataclass(frozen=True)
class GasPrepaymentConfiguration(BodyCodec):
    """GCS05: ZCL Emergency Credit Setup, Set Overall Debt Cap, Set Low Credit Warning Level
    (its start in the component's from-date-time), Set Maximum Credit Limit, then the
    friendly credit (non-disablement) calendar: START is action 1, STOP 0."""

    future_dated: bool = True

    def build(
        self,
        body: Body,
        execution: dt.datetime | None,
        counter: int,
        issued_at: dt.datetime | None = None,
    ) -> bytes:
        if issued_at is None:
            raise TransformError("gas prepayment configuration: the time of issue is needed")
        what = GAS_PREPAY
        node = _node(body, GAS_PREPAY)

        def amount(name: str) -> bytes:
            return number_in(text_at(node, name, what), 0, 0xFFFFFFFF, what).to_bytes(4, "little")

        issuer = utc_time(issued_at, "time of issue")
        start = _start(execution, CANCEL)
        prepayment = [
            (
                EMERGENCY_CREDIT_SETUP,
                issuer
                + start
                + amount("EmergencyCreditLimit")
                + amount("EmergencyCreditThreshold"),
                None,
            ),
            (SET_OVERALL_DEBT_CAP, bytes(4) + issuer + start + amount("DebtRecoveryRateCap"), None),
            (SET_LOW_CREDIT_WARNING_LEVEL, amount("LowCreditThreshold"), start[::-1]),
            (
                SET_MAXIMUM_CREDIT_LIMIT,
                bytes(4)
                + issuer
                + start
                + amount("MaxMeterBalance")
                + amount("MaxCreditThreshold"),
                None,
            ),
        ]
        calendar = _node(node, "GasNonDisablementCalendar")
        days: dict[int, list[tuple[int, int]]] = {}
        for profile in repeats_at(calendar, "DayProfiles/GasNonDisablementDayProfile"):
            day = number_in(text_at(profile, "GasDayName", what), 1, 0xFF, what)
            entries = []
            for entry in repeats_at(profile, "TimeStartAction"):
                time = cosem_time_bytes(text_at(entry, "StartTime", what), what)
                action = NON_DISABLEMENT_ACTIONS.get(text_at(entry, "NonDisablementAction", what))
                if action is None:
                    raise TransformError(f"{what}: NonDisablementAction is START or STOP")
                entries.append((time[0] * 60 + time[1], action))
            days[day] = entries
        commands = calendar_commands(
            calendar,
            repeats_at(calendar, "SpecialDays/SpecialDay"),
            days,
            issuer,
            _start(execution, CANCEL_FE),
            what,
            seasons_path="SeasonProfiles/Season",
            calendar_type=FRIENDLY_CREDIT_CALENDAR,
        )
        total = len(prepayment) + len(commands)
        out = GB_PROFILE + bytes([total])
        for i, (command, payload, from_time) in enumerate(prepayment):
            out += _prepayment_component(False, i, command, payload, from_time)
        for i, c in enumerate(commands, start=len(prepayment)):
            out += component(i == total - 1, c.cluster, i, c.command, c.payload)
        return out

    def parse(self, payload: bytes) -> tuple[Body, dt.datetime | None]:
        payloads = _payloads_after_from_time(payload)
        emergency, debt_cap, low_credit, maximum, *calendar = payloads
        tables, special, days = parse_calendar(calendar, "SeasonProfiles")
        names = {v: k for k, v in NON_DISABLEMENT_ACTIONS.items()}
        profiles = [
            {
                "TimeStartAction": [
                    {
                        "StartTime": f"{m // 60:02d}:{m % 60:02d}:00.00Z",
                        "NonDisablementAction": names[a],
                    }
                    for m, a in entries
                ],
                "GasDayName": str(day),
            }
            for day, entries in days.items()
        ]

        def le(raw: bytes) -> str:
            return str(int.from_bytes(raw, "little"))

        node: Body = {
            "DebtRecoveryRateCap": le(debt_cap[12:16]),
            "EmergencyCreditLimit": le(emergency[8:12]),
            "EmergencyCreditThreshold": le(emergency[12:16]),
            "LowCreditThreshold": le(low_credit[0:4]),
            "GasNonDisablementCalendar": {
                "DayProfiles": {"GasNonDisablementDayProfile": profiles},
                **tables,
                "SpecialDays": {"SpecialDay": special},
            },
            "MaxMeterBalance": le(maximum[12:16]),
            "MaxCreditThreshold": le(maximum[16:20]),
        }
        return {GAS_PREPAY: node}, _execution(emergency[4:8])

    def issued(self, payload: bytes) -> dt.datetime | None:
        return from_utc_time(_payloads_after_from_time(payload)[0][0:4])


def _payloads_after_from_time(payload: bytes) -> list[bytes]:
    """The ZCL payloads of a GBZ payload whose components may carry a from-date-time."""
    out, pos = [], 3
    for _ in range(payload[2]):
        control = payload[pos]
        length = int.from_bytes(payload[pos + 3 : pos + 5], "big")
        start = pos + 5 + (4 if control & 0x10 else 0) + 3
        out.append(payload[start : pos + 5 + length])
        pos += 5 + length
    return out
