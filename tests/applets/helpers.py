"""Shared set-up for the applet tests: the parties, a home with its hub, raw ground truth."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from smarthydra.applets.tariff import Tariff
from smarthydra.sim.hydra import HydraHome, HydraParties

JAN1 = dt.date(2026, 1, 1)


def day(n: int) -> dt.date:
    return JAN1 + dt.timedelta(days=n)


def home_with_days(count: int, index: int = 1, parties: HydraParties | None = None,
                   **overrides: object) -> HydraHome:
    home = HydraHome.create(parties or HydraParties.create(), index, **overrides)
    for n in range(count):
        home.live_day(day(n))
    return home


def reference_bill(tariff: Tariff, days: list[list[int]]) -> int:
    """The bill computed a second, independent way (decimal kWh; blocks from the total)."""
    pence = Decimal(tariff.standing_charge) / 1000 * len(days)
    if tariff.bands:
        price = {s: Decimal(b.price) / 1000 for b in tariff.bands for s in b.slots}
        for values in days:
            pence += sum(Decimal(wh) / 1000 * price[s] for s, wh in enumerate(values))
    else:
        # a block tariff's energy cost depends only on the period's total consumption
        total, lower = Decimal(sum(map(sum, days))) / 1000, Decimal(0)
        for block in tariff.blocks:
            upper = Decimal(block.upto_kwh) if block.upto_kwh is not None else total
            if total > lower:
                pence += (min(total, upper) - lower) * Decimal(block.price) / 1000
            lower = upper
    return int(pence.quantize(Decimal(1), rounding=ROUND_HALF_UP))
