"""Electricity tariff elements as COSEM arrays: prices, seasons, week and day profiles,
special days (the activity calendar's passive tables, the tariff's price table)."""

from __future__ import annotations

from dataclasses import dataclass

from smarthydra.dcc.transform.items import (
    Item,
    ItemCodec,
    cosem_time_text,
    duis_date,
    duis_date_bytes,
    number_in,
    octets_of,
    repeats_at,
    structure_items,
    text_at,
)
from smarthydra.dcc.transform.spec import ArrayCodecLike, TransformError, cosem_time_bytes
from smarthydra.gbcs.axdr import Data, DataType

# The tariff's script table: day profile actions select script 200 + TOU register.
TARIFF_SCRIPTS = bytes([0, 0, 10, 0, 100, 255])
TOU_SCRIPT_BASE = 200
MIDNIGHT = bytes(4)
UNSPECIFIED_DEVIATION_AND_STATUS = b"\x80\x00\xff"


def _int_value(data: Data, what: str) -> int:
    if not isinstance(data.value, int) or isinstance(data.value, bool):
        raise TransformError(f"{what} is not an integer")
    return data.value


@dataclass(frozen=True)
class PriceEntry(ItemCodec):
    """An ElectricityPriceElement (``@index``, price): (index as one octet, price)."""

    def to_data(self, item: Item, position: int, body: Item) -> Data:
        what = f"price element {position + 1}"
        index = number_in(text_at(item, "@index", what), 1, 0xFF, what)
        try:
            price = int(text_at(item, "#text", what))
        except ValueError:
            raise TransformError(f"{what}: the price is not an integer") from None
        if not -(1 << 15) <= price < 1 << 15:
            raise TransformError(f"{what}: {price} does not fit a COSEM long")
        return Data(
            DataType.STRUCTURE,
            [Data(DataType.OCTET_STRING, bytes([index])), Data(DataType.LONG, price)],
        )

    def from_data(self, data: Data, position: int, items: list[Data]) -> Item:
        index, price = structure_items(data, 2, "price")
        raw = octets_of(index, "price index")
        return {"@index": str(raw[0]), "#text": str(_int_value(price, "price"))}


@dataclass(frozen=True)
class SeasonEntry(ItemCodec):
    """A Season: (name, start as a date-time at midnight, week profile name)."""

    def to_data(self, item: Item, position: int, body: Item) -> Data:
        what = f"season {position + 1}"
        name = text_at(item, "SeasonName", what)
        try:
            raw_name = name.encode("ascii")
        except UnicodeEncodeError:
            raise TransformError(f"{what}: {name!r} is not ASCII") from None
        start = duis_date_bytes(item.get("SeasonStartDate"), what)
        week = number_in(text_at(item, "ReferencedWeekName", what), 1, 0xFF, what)
        return Data(
            DataType.STRUCTURE,
            [
                Data(DataType.OCTET_STRING, raw_name),
                Data(DataType.OCTET_STRING, start + MIDNIGHT + UNSPECIFIED_DEVIATION_AND_STATUS),
                Data(DataType.OCTET_STRING, bytes([week])),
            ],
        )

    def from_data(self, data: Data, position: int, items: list[Data]) -> Item:
        name, start, week = structure_items(data, 3, "season")
        return {
            "SeasonName": octets_of(name, "season name").decode("ascii"),
            "SeasonStartDate": duis_date(octets_of(start, "season start")[:5]),
            "ReferencedWeekName": str(octets_of(week, "week name")[0]),
        }


@dataclass(frozen=True)
class WeekEntry(ItemCodec):
    """A WeekProfile: (name, the day profile for Monday .. Sunday)."""

    def to_data(self, item: Item, position: int, body: Item) -> Data:
        what = f"week profile {position + 1}"
        week = number_in(text_at(item, "WeekName", what), 1, 0xFF, what)
        days: dict[int, int] = {}
        for repeat in repeats_at(item, "ReferencedDayName"):
            day = number_in(text_at(repeat, "@index", what), 1, 7, what)
            days[day] = number_in(text_at(repeat, "#text", what), 1, 0xFF, what)
        if sorted(days) != list(range(1, 8)):
            raise TransformError(f"{what}: needs a ReferencedDayName for each of days 1-7")
        return Data(
            DataType.STRUCTURE,
            [Data(DataType.OCTET_STRING, bytes([week]))]
            + [Data(DataType.UNSIGNED, days[d]) for d in range(1, 8)],
        )

    def from_data(self, data: Data, position: int, items: list[Data]) -> Item:
        fields = structure_items(data, 8, "week profile")
        return {
            "WeekName": str(octets_of(fields[0], "week name")[0]),
            "ReferencedDayName": [
                {"@index": str(d), "#text": str(_int_value(fields[d], "day"))} for d in range(1, 8)
            ],
        }


@dataclass(frozen=True)
class DayEntry(ItemCodec):
    """A DayProfile: (day id, its switching times, each running a tariff script): TOU
    action n runs script ``tou_base`` + n (200 on the secondary element, n on the primary),
    block action n (primary element) script 100 + n."""

    tou_base: int = TOU_SCRIPT_BASE
    block_base: int | None = None

    def _selector(self, repeat: object, what: str) -> int:
        if isinstance(repeat, dict) and "BlockTariffAction" in repeat:
            if self.block_base is None:
                raise TransformError(f"{what}: no block tariff on this element")
            return self.block_base + number_in(
                text_at(repeat, "BlockTariffAction", what), 1, 8, what
            )
        return self.tou_base + number_in(text_at(repeat, "TOUTariffAction", what), 1, 48, what)

    def _action(self, selector: int) -> dict[str, str]:
        if self.block_base is not None and self.block_base < selector <= self.block_base + 8:
            return {"BlockTariffAction": str(selector - self.block_base)}
        return {"TOUTariffAction": str(selector - self.tou_base)}

    def to_data(self, item: Item, position: int, body: Item) -> Data:
        what = f"day profile {position + 1}"
        day = number_in(text_at(item, "DayName", what), 1, 0xFF, what)
        actions = []
        for repeat in repeats_at(item, "ProfileSchedule"):
            actions.append(
                Data(
                    DataType.STRUCTURE,
                    [
                        Data(
                            DataType.OCTET_STRING,
                            cosem_time_bytes(text_at(repeat, "StartTime", what), what),
                        ),
                        Data(DataType.OCTET_STRING, TARIFF_SCRIPTS),
                        Data(DataType.LONG_UNSIGNED, self._selector(repeat, what)),
                    ],
                )
            )
        if not actions:
            raise TransformError(f"{what}: no ProfileSchedule")
        return Data(
            DataType.STRUCTURE, [Data(DataType.UNSIGNED, day), Data(DataType.ARRAY, actions)]
        )

    def from_data(self, data: Data, position: int, items: list[Data]) -> Item:
        day, actions = structure_items(data, 2, "day profile")
        if not isinstance(actions.value, list):
            raise TransformError("day profile actions are not an array")
        schedule = []
        for action in actions.value:
            start, _, selector = structure_items(action, 3, "day profile action")
            schedule.append(
                {
                    "StartTime": cosem_time_text(octets_of(start, "start time")),
                    **self._action(_int_value(selector, "selector")),
                }
            )
        return {"DayName": str(_int_value(day, "day")), "ProfileSchedule": schedule}


@dataclass(frozen=True)
class TariffSpecialDay(ItemCodec):
    """A tariff SpecialDay: (position, date, the day profile it uses)."""

    def to_data(self, item: Item, position: int, body: Item) -> Data:
        what = f"special day {position + 1}"
        day = number_in(text_at(item, "ReferencedDayName", what), 1, 0xFF, what)
        return Data(
            DataType.STRUCTURE,
            [
                Data(DataType.LONG_UNSIGNED, position + 1),
                Data(DataType.OCTET_STRING, duis_date_bytes(item.get("Date"), what)),
                Data(DataType.UNSIGNED, day),
            ],
        )

    def from_data(self, data: Data, position: int, items: list[Data]) -> Item:
        _, date, day = structure_items(data, 3, "special day")
        return {
            "Date": duis_date(octets_of(date, "special day date")),
            "ReferencedDayName": str(_int_value(day, "day")),
        }


# --- the primary element's price table: 48 TOU prices, then 4 x 8 block prices ---------------

TOU_PRICES = 48
BLOCK_PRICES = 4  # blocks per TOU band, octets 0xA1.., 0xB1.., 0xC1.., 0xD1..
BLOCK_BANDS = 8
ELECTRICITY_PRICES = "PriceElements/ElectricityPriceElements"
TARIFF_KINDS = ("TOUTariff", "BlockTariff", "HybridTariff")


def _block_octet(band: int, block: int) -> int:
    return 0xA0 + 0x10 * (block - 1) + band


def _price(text: str, what: str) -> int:
    try:
        price = int(text)
    except ValueError:
        raise TransformError(f"{what}: {text!r} is not an integer price") from None
    if not -(1 << 15) <= price < 1 << 15:
        raise TransformError(f"{what}: {price} does not fit a COSEM long")
    return price


@dataclass(frozen=True)
class PrimaryPrices(ArrayCodecLike):
    """The primary element's whole price table: every TOU and block price, those the
    request does not name at 0. The DUIS tariff kind (TOU, block or hybrid) says which
    prices the request carries."""

    prices: str = ELECTRICITY_PRICES

    def build(self, body: Item) -> list[Data]:
        node = body
        for step in self.prices.split("/"):
            child = node.get(step) if isinstance(node, dict) else None
            if not isinstance(child, dict):
                raise TransformError(f"{self.prices} is missing")
            node = child
        kinds = [k for k in TARIFF_KINDS if k in node]
        if len(kinds) != 1:
            raise TransformError(f"{self.prices}: one of {TARIFF_KINDS} is needed")
        tariff = node[kinds[0]]
        tou = [0] * TOU_PRICES
        blocks = [[0] * BLOCK_PRICES for _ in range(BLOCK_BANDS)]
        what = kinds[0]
        for repeat in repeats_at(tariff, "TOUPrice"):
            index = number_in(text_at(repeat, "@index", what), 1, TOU_PRICES, what)
            tou[index - 1] = _price(text_at(repeat, "#text", what), what)
        for band_node in repeats_at(tariff, "BlockPrices"):
            band = number_in(text_at(band_node, "@index", what), 1, BLOCK_BANDS, what)
            for repeat in repeats_at(band_node, "BlockPrice"):
                block = number_in(text_at(repeat, "@index", what), 1, BLOCK_PRICES, what)
                blocks[band - 1][block - 1] = _price(text_at(repeat, "#text", what), what)
        entries = [(i + 1, price) for i, price in enumerate(tou)]
        entries += [
            (_block_octet(band + 1, block + 1), blocks[band][block])
            for block in range(BLOCK_PRICES)
            for band in range(BLOCK_BANDS)
        ]
        return [
            Data(
                DataType.STRUCTURE,
                [Data(DataType.OCTET_STRING, bytes([octet])), Data(DataType.LONG, price)],
            )
            for octet, price in entries
        ]

    def parse(self, items: list[Data]) -> Item:
        prices: dict[int, int] = {}
        for item in items:
            octet, price = structure_items(item, 2, "price")
            prices[octets_of(octet, "price index")[0]] = _int_value(price, "price")
        tou = [prices.get(i + 1, 0) for i in range(TOU_PRICES)]
        blocks = [
            [prices.get(_block_octet(band + 1, block + 1), 0) for block in range(BLOCK_PRICES)]
            for band in range(BLOCK_BANDS)
        ]
        has_blocks = any(any(band) for band in blocks)
        has_tou = any(tou)
        tariff: Item = {}
        if has_blocks:
            tariff["BlockPrices"] = [
                {
                    "@index": str(band + 1),
                    "BlockPrice": [
                        {"@index": str(block + 1), "#text": str(price)}
                        for block, price in enumerate(blocks[band][: _used(blocks[band])])
                    ],
                }
                for band in range(BLOCK_BANDS)
                if any(blocks[band])
            ]
        if has_tou or not has_blocks:
            tariff["TOUPrice"] = [
                {"@index": str(i + 1), "#text": str(price)}
                for i, price in enumerate(tou[: max(1, _used(tou))])
            ]
        kind = (
            "HybridTariff"
            if has_tou and has_blocks
            else "BlockTariff"
            if has_blocks
            else "TOUTariff"
        )
        return {f"{self.prices}/{kind}": tariff}


def _used(values: list[int]) -> int:
    """How many values up to the last non-zero one."""
    return max((i + 1 for i, v in enumerate(values) if v), default=0)


THRESHOLD_MATRIX = "ElecTariffElements/ThresholdMatrix/Thresholds"


@dataclass(frozen=True)
class BlockThresholds(ArrayCodecLike):
    """One TOU band's block thresholds (Thresholds ``@index`` = band), in index order."""

    band: int

    def build(self, body: Item) -> list[Data]:
        what = f"Thresholds {self.band}"
        node: object = body
        for step in THRESHOLD_MATRIX.split("/")[:-1]:
            node = node.get(step) if isinstance(node, dict) else None
        bands = [
            b
            for b in repeats_at(node, "Thresholds")
            if text_at(b, "@index", what) == str(self.band)
        ]
        if len(bands) != 1:
            raise TransformError(f"{what}: needs exactly one Thresholds with this index")
        values: dict[int, int] = {}
        for repeat in repeats_at(bands[0], "BlockThreshold"):
            index = number_in(text_at(repeat, "@index", what), 1, 3, what)
            values[index] = number_in(text_at(repeat, "#text", what), 0, 0xFFFFFFFF, what)
        if sorted(values) != list(range(1, len(values) + 1)) or not values:
            raise TransformError(f"{what}: BlockThreshold indexes must run 1, 2, 3")
        return [Data(DataType.DOUBLE_LONG_UNSIGNED, values[i]) for i in sorted(values)]

    def parse(self, items: list[Data]) -> Item:
        thresholds = [
            {"@index": str(i + 1), "#text": str(_int_value(d, "threshold"))}
            for i, d in enumerate(items)
        ]
        return {f"{THRESHOLD_MATRIX}[{self.band}]": {"BlockThreshold": thresholds}}
