"""The STS applet on the simulated secure element, including power cuts during redemption."""

from __future__ import annotations

import pytest

from smarthydra.card.card import Card
from smarthydra.card.memory import MemoryBacking, NvmState, PowerCut, PowerCutInjector
from smarthydra.card.rng import DeterministicRandom
from smarthydra.prepay.errors import TokenCrcError, TokenKeyExpired, TokenUsed
from smarthydra.prepay.sts_applet import StsMeterClient, sts_meter_profile
from smarthydra.prepay.sts_meter import MeterState
from smarthydra.prepay.sts_tokens import CreditToken, ManagementToken, tid_for
from tests.prepay.helpers import METER, at, meter_state, server

VENDING = server("04", "11", 2014)


def _card(backing: MemoryBacking, state: MeterState,
          injector: PowerCutInjector | None = None) -> Card:
    card = Card(backing, sts_meter_profile(state), rng=DeterministicRandom(b"sts"),
                injector=injector)
    card.power_on()
    return card


def _token(minute: int, tenths: int = 1000) -> str:
    token = CreditToken(0, tid_for(at(2020, 1, 1, 0, minute), VENDING.base_date), tenths)
    return VENDING.vend(METER, token).digits


def test_applet_redeems_and_refuses_with_specific_reasons() -> None:
    state = meter_state(VENDING)
    client = StsMeterClient(_card(MemoryBacking(), state))
    digits = _token(1, 1234)
    assert client.redeem(digits) == (0, 0, 1234, False)
    assert client.credit()[0] == 1234
    with pytest.raises(TokenUsed):
        client.redeem(digits)
    with pytest.raises(TokenCrcError):
        client.redeem(digits[:-1] + str((int(digits[-1]) + 1) % 10))
    assert client.credit()[0] == 1234
    mpl = ManagementToken(0, tid_for(at(2020, 2, 1), VENDING.base_date), 5000)
    assert client.redeem(VENDING.vend(METER, mpl).digits)[:2] == (2, 0)


def test_applet_state_survives_power_off() -> None:
    backing = MemoryBacking()
    state = meter_state(VENDING)
    StsMeterClient(_card(backing, state)).redeem(_token(2, 50))
    again = StsMeterClient(_card(backing, state))
    assert again.credit()[0] == 50
    with pytest.raises(TokenUsed):
        again.redeem(_token(2, 50))


def test_applet_key_expiry() -> None:
    state = meter_state(VENDING)
    expired = MeterState(**{**state.__dict__, "ken": 0})  # the key expired at TID 0x00FFFF
    with pytest.raises(TokenKeyExpired):
        StsMeterClient(_card(MemoryBacking(), expired)).redeem(_token(3))


def test_power_cut_at_every_write_never_double_credits_or_loses_credit() -> None:
    state = meter_state(VENDING)
    setup = MemoryBacking()
    client = StsMeterClient(_card(setup, state))
    client.redeem(_token(10, 500))  # some history
    base: NvmState = setup.load()
    digits = _token(11, 700)

    # reference run: how many physical writes one redemption makes
    counter = PowerCutInjector()
    reference = _card(MemoryBacking(base.copy()), state, counter)
    before = counter.writes
    StsMeterClient(reference).redeem(digits)
    writes = counter.writes - before
    assert writes >= 2  # credit register and TID memory at least

    outcomes = set()
    for k in range(writes + 1):  # k == writes: the cut comes after the last write
        backing = MemoryBacking(base.copy())
        injector = PowerCutInjector()
        card = _card(backing, state, injector)
        injector.arm(k)
        if k < writes:
            with pytest.raises(PowerCut):
                StsMeterClient(card).redeem(digits)
        else:
            StsMeterClient(card).redeem(digits)
        recovered = StsMeterClient(_card(backing, state))
        credit = recovered.credit()[0]
        assert credit in (500, 1200), f"cut before write {k}: credit {credit}"
        if credit == 500:  # not applied: the token must still be accepted, once
            assert recovered.redeem(digits)[2] == 700
            outcomes.add("retry")
        else:  # applied: the token must now be refused
            with pytest.raises(TokenUsed):
                recovered.redeem(digits)
            outcomes.add("done")
        assert recovered.credit()[0] == 1200
    assert outcomes == {"retry", "done"}


def test_applet_128_bit_key_change_across_power_offs_and_rollover() -> None:
    from smarthydra.prepay.sts_algorithms import MeterIdentity

    old = server("04", "11", 1993)
    state = meter_state(old)
    backing = MemoryBacking()
    StsMeterClient(_card(backing, state)).credit()  # installs the applet
    new_meter = MeterIdentity(METER.pan, "400123", 4, 2, METER.kt)
    change = old.key_change(METER, new_meter, ken=200, rollover=True)
    for index in (2, 0, 3):  # the first three sections, each on a fresh power-up
        reply = StsMeterClient(_card(backing, state)).redeem(change.tokens[index].digits)
        assert reply == (2, change.tokens[index].token.subclass, 0, False)
    assert StsMeterClient(_card(backing, state)).key_state()["sgc"] is None
    # power cut during the last section: either the old key with the pending sections, or the
    # new key; never a half-changed key
    counter = PowerCutInjector()
    last = change.tokens[1].digits
    StsMeterClient(_card(MemoryBacking(backing.load().copy()), state, counter)).redeem(last)
    writes = counter.writes
    assert writes >= 2  # key, config, settings and pending change together
    for k in range(writes):
        trial = MemoryBacking(backing.load().copy())
        injector = PowerCutInjector()
        card = _card(trial, state, injector)
        injector.arm(k)
        with pytest.raises(PowerCut):
            StsMeterClient(card).redeem(last)
        recovered = StsMeterClient(_card(trial, state))
        if recovered.key_state()["krn"] == 1:  # not applied: the section can be entered again
            assert recovered.redeem(last)[3] is True
        assert recovered.key_state() == {"base_year": 2014, "krn": 2, "kt": 2, "ti": 4,
                                         "ken": 200, "sgc": 400123}
    client = StsMeterClient(_card(backing, state))
    assert client.redeem(last)[3] is True
    assert client.key_state() == {"base_year": 2014, "krn": 2, "kt": 2, "ti": 4, "ken": 200,
                                  "sgc": 400123}
    new = server("04", "11", 2014)
    token = CreditToken(0, tid_for(at(2025, 1, 1), new.base_date), 42)
    assert client.redeem(new.vend(new_meter, token).digits) == (0, 0, 42, False)
    with pytest.raises(TokenCrcError):  # the old key is gone
        client.redeem(old.vend(METER, CreditToken(0, tid_for(at(2020), old.base_date), 1))
                      .digits)
