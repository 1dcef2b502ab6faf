from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smarthydra.applets.tariff import (
    Block,
    Tariff,
    TariffError,
    TouBand,
    bill,
    economy7,
    peak_tou,
    rising_block,
    tariff_from_payload,
    tariff_payload,
)
from tests.applets.helpers import reference_bill

day_values = st.lists(st.integers(0, 4000), min_size=48, max_size=48)


def test_block_split_across_threshold() -> None:
    tariff = Tariff("b", 1, blocks=(Block(1, 10_000), Block(None, 20_000)))
    # 600 Wh then 600 Wh: the second half hour straddles the 1 kWh threshold
    breakdown = bill(tariff, [[600, 600] + [0] * 46])
    assert breakdown.energy_wh == {"block1": 1000, "block2": 200}
    assert breakdown.total_micropence == 1000 * 10_000 + 200 * 20_000
    assert breakdown.amount_pence == 14


def test_standing_charge_and_rounding() -> None:
    tariff = Tariff("s", 1, standing_charge=50_500, bands=(TouBand("all", 1, frozenset(range(48))),))
    assert bill(tariff, [[0] * 48] * 3).amount_pence == 152  # 151.5 p rounds half up


@pytest.mark.parametrize("tariff", [economy7(), peak_tou(), rising_block()])
def test_payload_round_trip(tariff: Tariff) -> None:
    assert tariff_from_payload(tariff_payload(tariff)) == tariff


@pytest.mark.parametrize("bad", [
    {"id": "x"},
    {"id": "x", "version": 1, "standing": 0, "bands": [], "blocks": []},
    {"id": "x", "version": 1, "standing": 0, "bands": [["a", 1, [0, 1]]], "blocks": []},
    {"id": "x", "version": 1, "standing": 0, "bands": [], "blocks": [[None, 1], [5, 2]]},
    {"id": "x", "version": 1, "standing": 0, "bands": [], "blocks": [[5, 1], [3, 1], [None, 1]]},
    {"id": "x", "version": 1, "standing": -1, "bands": [], "blocks": [[None, 1]]},
    {"id": "x", "version": 1, "standing": 0, "bands": "no", "blocks": []},
])
def test_malformed_tariffs_refused(bad: object) -> None:
    with pytest.raises(TariffError):
        tariff_from_payload(bad)


def test_bad_days_refused() -> None:
    with pytest.raises(TariffError):
        bill(economy7(), [[1] * 47])
    with pytest.raises(TariffError):
        bill(economy7(), [[-1] + [0] * 47])


@settings(max_examples=150, deadline=None)
@given(st.lists(day_values, min_size=1, max_size=5),
       st.sampled_from([economy7(), peak_tou(), rising_block(),
                        Tariff("b2", 1, 40_000, blocks=(Block(2, 5_000), Block(None, 30_000)))]))
def test_bill_equals_independent_reference(days: list[list[int]], tariff: Tariff) -> None:
    assert bill(tariff, days).amount_pence == reference_bill(tariff, days)
