"""The meter's redemption rules: anti-replay, other meters, expiry, key change and rollover."""

from __future__ import annotations

from datetime import datetime

import pytest

from smarthydra.prepay.errors import (
    TidOutOfRange,
    TokenCrcError,
    TokenKeyExpired,
    TokenOld,
    TokenUsed,
)
from smarthydra.prepay.sts_algorithms import BaseDate, MeterIdentity
from smarthydra.prepay.sts_meter import TID_MEMORY, redeem
from smarthydra.prepay.sts_tokens import (
    CreditSubclass,
    CreditToken,
    ManagementSubclass,
    ManagementToken,
    tid_for,
)
from smarthydra.prepay.sts_vending import VendingServer
from tests.prepay.helpers import METER, OTHER_PAN, at, meter_state, server


def credit(vending: VendingServer, when: datetime, tenths: int = 100, subclass: int = 0) -> str:
    token = CreditToken(subclass, tid_for(when, vending.base_date), tenths, rnd=1)
    return vending.vend(METER, token).digits


def test_credit_is_added_once_and_a_second_use_refused() -> None:
    vending = server()
    state = meter_state(vending)
    digits = credit(vending, at(2010), 255)
    state, outcome = redeem(state, digits)
    assert state.credit[CreditSubclass.ELECTRICITY] == 255 and outcome.credited_tenths == 255
    with pytest.raises(TokenUsed):
        redeem(state, digits)
    assert state.credit[0] == 255


def test_token_for_another_meter_is_refused() -> None:
    vending = server()
    other = MeterIdentity(OTHER_PAN, "123456", 1, 1, 2)
    digits = vending.vend(other, CreditToken(0, tid_for(at(2010), BaseDate.Y1993), 10)).digits
    with pytest.raises(TokenCrcError):
        redeem(meter_state(vending), digits)


def test_old_tid_refused_once_memory_is_full() -> None:
    vending = server()
    state = meter_state(vending)
    oldest = credit(vending, at(2000, 1, 1, 0, 0))
    for minute in range(1, TID_MEMORY + 1):
        state, _ = redeem(state, credit(vending, at(2001, 1, 1, 0, minute), 1))
    with pytest.raises(TokenOld):
        redeem(state, oldest)


def test_tid_past_key_expiry_refused() -> None:
    vending = server()
    state = meter_state(vending)
    state = state.__class__(**{**state.__dict__, "ken": 0x40})  # expires at TID 0x40FFFF
    early = credit(vending, at(1993, 3, 1))
    state, _ = redeem(state, early)
    late = credit(vending, at(2010))
    with pytest.raises(TokenKeyExpired):
        redeem(state, late)


def test_management_tokens_apply() -> None:
    vending = server()
    state = meter_state(vending)
    state, _ = redeem(state, credit(vending, at(2010, 1, 1), 500, subclass=1))
    mpl = ManagementToken(ManagementSubclass.SET_MAXIMUM_POWER_LIMIT,
                          tid_for(at(2010, 1, 2), BaseDate.Y1993), 6000)
    state, _ = redeem(state, vending.vend(METER, mpl).digits)
    clear = ManagementToken(ManagementSubclass.CLEAR_CREDIT,
                            tid_for(at(2010, 1, 3), BaseDate.Y1993), 1)
    state, _ = redeem(state, vending.vend(METER, clear).digits)
    assert state.max_power_limit == 6000 and state.credit[1] == 0


@pytest.mark.parametrize("dkga", ["02", "04"])
def test_key_change_with_rollover_moves_meter_across_2024(dkga: str) -> None:
    old_server = server(dkga, "07", 1993)
    state = meter_state(old_server)
    state, _ = redeem(state, credit(old_server, at(2024, 6, 1)))
    # after 2024-11-24 the 1993 base date cannot express the issue time
    with pytest.raises(TidOutOfRange):
        credit(old_server, at(2024, 12, 1))
    new_meter = MeterIdentity(METER.pan, METER.sgc, METER.ti, 2, METER.kt)
    change = old_server.key_change(METER, new_meter, rollover=True)
    new_key = change.new_key
    first, second = change.tokens
    state, _ = redeem(state, first.digits)
    state, outcome = redeem(state, second.digits)
    assert outcome.key_changed and state.decoder_key == new_key
    assert state.base_date is BaseDate.Y2014 and state.tids == () and state.krn == 2
    new_server = server(dkga, "07", 2014)
    assert new_server.decoder_key(new_meter) == new_key
    digits = new_server.vend(new_meter, CreditToken(0, tid_for(at(2024, 12, 1), BaseDate.Y2014),
                                                    70)).digits
    state, _ = redeem(state, digits)
    assert state.credit[0] == 170
    # tokens under the old key no longer work
    with pytest.raises(TokenCrcError):
        redeem(state, credit(old_server, at(2024, 6, 2)))


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 1, 0, 2), (2, 3, 1, 0)])
def test_128_bit_key_change_needs_all_four_sections_in_any_order(order: tuple[int, ...]) -> None:
    old_server = server("04", "11", 1993)
    state = meter_state(old_server)
    new_meter = MeterIdentity(METER.pan, "654321", 7, 3, METER.kt)
    change = old_server.key_change(METER, new_meter, ken=0xA7, rollover=True)
    assert [int(vend.token.subclass) for vend in change.tokens] == [3, 4, 8, 9]
    old_key = state.decoder_key
    for step, index in enumerate(order):
        state, outcome = redeem(state, change.tokens[index].digits)
        if step < 3:  # an incomplete set leaves the key alone
            assert not outcome.key_changed and state.decoder_key == old_key
            assert state.pending is not None and len(state.pending.sections) == step + 1
    assert outcome.key_changed and state.pending is None
    assert state.decoder_key == change.new_key == server("04", "11", 2014).decoder_key(new_meter)
    assert (state.sgc, state.ti, state.krn, state.ken) == (654321, 7, 3, 0xA7)
    assert state.base_date is BaseDate.Y2014 and state.tids == ()


def test_repeated_section_replaces_the_earlier_copy() -> None:
    old_server = server("04", "11", 2014)
    state = meter_state(old_server)
    change = old_server.key_change(METER, MeterIdentity(METER.pan, METER.sgc, 2, 2, METER.kt))
    for vend in (change.tokens[0], change.tokens[0], *change.tokens[1:3]):
        state, outcome = redeem(state, vend.digits)
        assert not outcome.key_changed
    state, outcome = redeem(state, change.tokens[3].digits)
    assert outcome.key_changed and state.decoder_key == change.new_key


def test_64_bit_meter_refuses_128_bit_key_sections() -> None:
    from smarthydra.prepay.errors import TokenClassUnsupported
    from smarthydra.prepay.sts_tokens import KeyChangeToken3, encode_token

    vending = server("02", "07")
    state = meter_state(vending)
    digits = encode_token(KeyChangeToken3(sgclo=1, nkmo2=2), state.decoder_key, state.algorithm)
    with pytest.raises(TokenClassUnsupported, match="128-bit"):
        redeem(state, digits)


def test_64_bit_key_change_sections_in_reverse_order() -> None:
    vending = server("02", "07")
    state = meter_state(vending)
    change = vending.key_change(METER, MeterIdentity(METER.pan, METER.sgc, 1, 2, METER.kt))
    assert len(change.tokens) == 2
    state, outcome = redeem(state, change.tokens[1].digits)
    assert not outcome.key_changed
    state, outcome = redeem(state, change.tokens[0].digits)
    assert outcome.key_changed and state.decoder_key == change.new_key and state.sgc is None


def test_power_limit_is_carried_in_watts_and_rounded_up_when_vended() -> None:
    vending = server("04", "11", 2014)
    state = meter_state(vending)
    mpl = vending.build(2, ManagementSubclass.SET_MAXIMUM_POWER_LIMIT, "20000", at(2020))
    assert isinstance(mpl, ManagementToken) and mpl.value == 20004
    state, _ = redeem(state, vending.vend(METER, mpl).digits)
    assert state.max_power_limit == 20004
