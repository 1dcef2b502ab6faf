"""Supplier tariffs and the bill they give for half-hourly consumption (pure, integer exact).

A tariff is one of the forms a GB smart meter supports:

* **time of use** - each half hour of the day belongs to one band, each band has a unit
  price (e.g. day / night / peak);
* **block** - the unit price steps up (or down) as consumption in the billing period
  crosses thresholds; a half hour that straddles a threshold is split at it;
* either with a **standing charge** per day of the period.

Money is integer: prices in millipence per kWh and millipence per day, so a half hour's
cost ``Wh * price`` is an exact number of micropence; the period total is rounded once,
half up, to whole pence. The tariff travels to the billing applet as canonical CBOR signed
by the supplier (:func:`tariff_payload`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from smarthydra.applets.cose import canonical

SLOTS = 48
MICRO_PER_PENNY = 1_000_000


class TariffError(Exception):
    """A tariff is malformed or cannot price the data given."""


@dataclass(frozen=True)
class TouBand:
    name: str
    price: int  # millipence per kWh
    slots: frozenset[int]  # half-hour indices 0..47 of the day


@dataclass(frozen=True)
class Block:
    upto_kwh: int | None  # cumulative kWh in the period where this block ends (None: no end)
    price: int  # millipence per kWh


@dataclass(frozen=True)
class Tariff:
    tariff_id: str
    version: int
    standing_charge: int = 0  # millipence per day
    bands: tuple[TouBand, ...] = ()
    blocks: tuple[Block, ...] = ()

    def __post_init__(self) -> None:
        if bool(self.bands) == bool(self.blocks):
            raise TariffError("a tariff is either time of use (bands) or block (blocks)")
        if self.standing_charge < 0 or self.version < 0:
            raise TariffError("standing charge and version are non-negative")
        if self.bands:
            covered: list[int] = sorted(s for band in self.bands for s in band.slots)
            if covered != list(range(SLOTS)):
                raise TariffError("time-of-use bands must cover each half hour exactly once")
        if self.blocks:
            ends = [b.upto_kwh for b in self.blocks]
            if ends[-1] is not None or any(e is None for e in ends[:-1]):
                raise TariffError("only the last block is open-ended")
            bounded = [e for e in ends[:-1] if e is not None]
            if bounded != sorted(set(bounded)) or any(e <= 0 for e in bounded):
                raise TariffError("block thresholds must increase")
        if any(b.price < 0 for b in self.bands) or any(b.price < 0 for b in self.blocks):
            raise TariffError("prices are non-negative")

    @property
    def kind(self) -> str:
        return "tou" if self.bands else "block"

    def encode(self) -> bytes:
        return canonical(tariff_payload(self))

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.encode()).digest()


def tariff_payload(tariff: Tariff) -> dict[str, Any]:
    return {
        "id": tariff.tariff_id,
        "version": tariff.version,
        "standing": tariff.standing_charge,
        "bands": [[b.name, b.price, sorted(b.slots)] for b in tariff.bands],
        "blocks": [[b.upto_kwh, b.price] for b in tariff.blocks],
    }


def tariff_from_payload(payload: Any) -> Tariff:
    try:
        if not isinstance(payload, dict) or set(payload) != {"id", "version", "standing",
                                                              "bands", "blocks"}:
            raise TariffError("tariff fields are id, version, standing, bands, blocks")
        bands = tuple(TouBand(str(n), int(p), frozenset(int(s) for s in slots))
                      for n, p, slots in payload["bands"])
        blocks = tuple(Block(None if u is None else int(u), int(p)) for u, p in payload["blocks"])
        return Tariff(str(payload["id"]), int(payload["version"]), int(payload["standing"]),
                      bands, blocks)
    except (TypeError, ValueError) as exc:
        raise TariffError(f"malformed tariff: {exc}") from None


@dataclass
class BillBreakdown:
    """How a bill was made: energy per band or block, their cost, the standing charge."""

    tariff_id: str
    days: int
    energy_wh: dict[str, int] = field(default_factory=dict)
    cost_micropence: dict[str, int] = field(default_factory=dict)
    standing_micropence: int = 0

    @property
    def total_micropence(self) -> int:
        return sum(self.cost_micropence.values()) + self.standing_micropence

    @property
    def amount_pence(self) -> int:
        """The total rounded half up to whole pence."""
        return (self.total_micropence + MICRO_PER_PENNY // 2) // MICRO_PER_PENNY

    def to_payload(self) -> dict[str, Any]:
        return {"tariff": self.tariff_id, "days": self.days, "energy-wh": self.energy_wh,
                "cost-micropence": self.cost_micropence,
                "standing-micropence": self.standing_micropence, "amount": self.amount_pence}


def bill(tariff: Tariff, days: Sequence[Sequence[int]]) -> BillBreakdown:
    """The bill for consecutive days of 48 half-hourly import readings (Wh) under ``tariff``."""
    breakdown = BillBreakdown(tariff.tariff_id, len(days))
    breakdown.standing_micropence = tariff.standing_charge * 1000 * len(days)
    used_wh = 0
    band_of = {s: band for band in tariff.bands for s in band.slots}
    for day in days:
        if len(day) != SLOTS:
            raise TariffError(f"a day has {SLOTS} half hours, got {len(day)}")
        for slot, wh in enumerate(day):
            if wh < 0:
                raise TariffError("consumption is non-negative")
            if tariff.bands:
                band = band_of[slot]
                _add(breakdown, band.name, wh, band.price)
                continue
            remaining = wh
            for index, block in enumerate(tariff.blocks):  # split the slot across blocks
                upper_wh = None if block.upto_kwh is None else block.upto_kwh * 1000
                room = remaining if upper_wh is None else min(remaining, upper_wh - used_wh)
                if room > 0:
                    _add(breakdown, f"block{index + 1}", room, block.price)
                    used_wh += room
                    remaining -= room
                if remaining == 0:
                    break
    return breakdown


def _add(breakdown: BillBreakdown, name: str, wh: int, price: int) -> None:
    breakdown.energy_wh[name] = breakdown.energy_wh.get(name, 0) + wh
    breakdown.cost_micropence[name] = breakdown.cost_micropence.get(name, 0) + wh * price


def period_days(start: dt.date, end: dt.date) -> list[dt.date]:
    """Days from ``start`` to ``end`` inclusive."""
    if end < start:
        raise TariffError("a billing period ends on or after its start")
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]


# --- example tariffs (used by the demo, the simulation and the tests) -----------------------


def economy7(version: int = 1) -> Tariff:
    night = frozenset(range(1, 15))  # 00:30-07:30
    return Tariff("E7-2026", version, standing_charge=53_000, bands=(
        TouBand("night", 13_500, night),
        TouBand("day", 31_200, frozenset(range(SLOTS)) - night),
    ))


def peak_tou(version: int = 1) -> Tariff:
    peak = frozenset(range(32, 38))  # 16:00-19:00
    night = frozenset(range(0, 14))
    return Tariff("AGILE-LIKE-TOU", version, standing_charge=47_000, bands=(
        TouBand("night", 9_800, night),
        TouBand("peak", 41_000, peak),
        TouBand("day", 24_500, frozenset(range(SLOTS)) - peak - night),
    ))


def rising_block(version: int = 1) -> Tariff:
    return Tariff("BLOCK-3", version, standing_charge=0, blocks=(
        Block(100, 18_000), Block(300, 26_000), Block(None, 34_000),
    ))
