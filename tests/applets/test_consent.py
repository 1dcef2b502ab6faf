"""Consent: granted, limited and revoked at the in-home display or through the supplier;
enforced by the meter-data applet and by the DCC; every release in the consumer's log."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smarthydra.applets import cose
from smarthydra.applets.consent import Consent, ConsentError, DataKind, Granularity, LogEntry
from smarthydra.applets.hub import METER_DATA, HydraCommandError
from smarthydra.parties.consent import ConsentNotRecorded, ReceiptRejected
from smarthydra.sim.hydra import HydraHome
from tests.applets.helpers import day, home_with_days


def _agent_consent(home: HydraHome, granularity: Granularity = Granularity.HOURLY,
                   kind: DataKind = DataKind.CONSUMPTION, first: int = 0, days: int = 60
                   ) -> Consent:
    return Consent(home.parties.keys["agent"].name, kind, granularity,
                   day(first).toordinal(), day(first + days).toordinal())


def test_revocation_stops_the_flow_from_the_next_cycle() -> None:
    home = home_with_days(0)
    agent = home.parties.agent
    released, refused = [], []
    for n in range(12):  # one cycle a day: the day's data, then the agent's release
        home.live_day(day(n))
        if n == 3:
            home.host.grant_at_ihd(_agent_consent(home))
        if n == 8:
            home.host.revoke_at_ihd(home.parties.keys["agent"].name)
        try:
            payload = agent.open(home.host.agent_release(day(n), day(n)))
            released.append(n)
            assert len(payload["data"]) == 24  # hourly, as consented
        except HydraCommandError as exc:
            assert exc.sw == 0x6985
            refused.append(n)
    assert released == [3, 4, 5, 6, 7]
    assert refused == [0, 1, 2, 8, 9, 10, 11]
    assert len(agent.received) == 5
    events = [(e.event, e.day - day(0).toordinal()) for e in home.host.release_log()
              if e.party == home.parties.keys["agent"].name]
    assert ("granted", 3) in events and ("revoked", 8) in events
    assert [d for event, d in events if event == "released"] == released
    assert [d for event, d in events if event == "refused"] == refused


def test_limit_granularity_and_period() -> None:
    home = home_with_days(6)
    host, agent = home.host, home.parties.agent
    host.grant_at_ihd(_agent_consent(home, Granularity.HALF_HOURLY, first=0, days=30))
    assert len(agent.open(host.agent_release(day(5), day(5)))["data"]) == 48
    # the consumer limits the contract: daily figures, and only from day 2
    host.grant_at_ihd(_agent_consent(home, Granularity.DAILY, first=2, days=30))
    payload = agent.open(host.agent_release(day(0), day(5)))
    truth = [sum(home.truth[day(n)].import_wh) for n in range(2, 6)]
    assert payload["data"] == truth and payload["first-day"] == day(2).toordinal()
    assert [c.granularity for c in host.consents()] == [Granularity.DAILY]


def test_insights_only_under_an_insights_consent() -> None:
    home = home_with_days(7)
    host, agent = home.host, home.parties.agent
    host.grant_at_ihd(_agent_consent(home, Granularity.DAILY))
    with pytest.raises(HydraCommandError):
        host.agent_release(day(0), day(6), insights=True)
    host.grant_at_ihd(_agent_consent(home, Granularity.DAILY, DataKind.INSIGHTS))
    payload = agent.open(host.agent_release(day(0), day(6), insights=True))
    assert set(payload["data"]) == {"baseload_w", "evening_peak_share", "night_ev_kwh",
                                    "high_load_half_hours"}


def test_consent_through_the_supplier_and_replay() -> None:
    home = home_with_days(2)
    supplier, host = home.parties.supplier, home.host
    instruction = supplier.consent_instruction("grant", _agent_consent(home, Granularity.DAILY))
    receipt = host.grant_via_supplier(instruction)
    assert cose.parse_sign1(receipt).payload["op"] == "grant"
    with pytest.raises(HydraCommandError) as replay:
        host.grant_via_supplier(instruction)
    assert replay.value.sw == 0x6982
    assert home.parties.agent.open(host.agent_release(day(1), day(1)))["data"]
    forged = cose.sign1({"op": "revoke", "party": "x", "seq": 99}, b"supplier",
                        home.parties.keys["agent"].sign)  # not the supplier's key
    with pytest.raises(HydraCommandError):
        host.revoke_via_supplier(forged)
    host.revoke_via_supplier(supplier.consent_instruction("revoke",
                                                          home.parties.keys["agent"].name))
    with pytest.raises(HydraCommandError):
        host.agent_release(day(1), day(1))
    vias = [e.via for e in host.release_log() if e.event in ("granted", "revoked")]
    assert vias == ["supplier", "supplier"]


def test_dcc_forwards_price_comparison_only_with_recorded_consent() -> None:
    home = home_with_days(30)
    parties, host = home.parties, home.host
    ou = parties.keys["other-user"].name
    today = day(29).toordinal()
    with pytest.raises(HydraCommandError):
        host.price_comparison()  # no consent: the applet refuses
    receipt = host.grant_at_ihd(Consent(ou, DataKind.CONSUMPTION, Granularity.DAILY,
                                        day(0).toordinal(), today + 10))
    sealed = host.price_comparison()
    with pytest.raises(ConsentNotRecorded):  # the DCC has not seen the receipt yet
        parties.dcc.forward(sealed, parties.other_user.open, today)
    parties.dcc.record(receipt, home.setup.hub)
    parties.dcc.forward(sealed, parties.other_user.open, today)
    payload = parties.other_user.received[-1]
    assert payload["data"] == [sum(home.truth[day(n)].import_wh) for n in range(30)]
    with pytest.raises(cose.EnvelopeError):  # the DCC carries it but cannot read it
        cose.open_sealed(sealed, parties.dcc_keys.agreement)
    parties.dcc.record(host.revoke_at_ihd(ou), home.setup.hub)
    with pytest.raises(ConsentNotRecorded):
        parties.dcc.forward(sealed, parties.other_user.open, today)
    assert parties.dcc.forwarded == 1 and parties.dcc.refused == 2
    with pytest.raises(ReceiptRejected):  # a sealed statement is not a consent receipt
        parties.dcc.record(sealed, home.setup.hub)


def test_thirteen_months_of_daily_consumption() -> None:
    home = home_with_days(400)
    ou = home.parties.keys["other-user"].name
    home.host.grant_at_ihd(Consent(ou, DataKind.CONSUMPTION, Granularity.DAILY,
                                   day(0).toordinal(), day(500).toordinal()))
    payload = home.parties.other_user.open(home.host.price_comparison())
    assert len(payload["data"]) == 396
    assert payload["data"][-1] == sum(home.truth[day(399)].import_wh)


def test_log_is_paged_and_readable() -> None:
    home = home_with_days(250)  # 250 power-quality releases: more than one log page
    log = home.host.release_log()
    assert len(log) == 250 and all(isinstance(e, LogEntry) for e in log)
    assert "power-quality" in log[0].describe()


@pytest.mark.parametrize("bad", [b"\xff", cose.canonical([1, 2]), cose.canonical(
    ["a", "consumption", "yearly", 1, 2]), cose.canonical(["a", "consumption", "daily", 5, 1])])
def test_malformed_consent_refused(bad: bytes) -> None:
    home = home_with_days(1)
    with pytest.raises(HydraCommandError) as refused:
        home.host.call(METER_DATA, 0x12, bad)
    assert refused.value.sw == 0x6A80
    assert home.host.consents() == []


def test_consent_model_errors() -> None:
    with pytest.raises(ConsentError):
        Consent("", DataKind.CONSUMPTION, Granularity.DAILY, 1, 2)
    with pytest.raises(ConsentError):
        Granularity.parse("weekly")
    with pytest.raises(ConsentError):
        DataKind.parse("location")


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.integers() | st.text(max_size=8) | st.binary(max_size=8),
                    lambda inner: st.lists(inner, max_size=9), max_leaves=20))
def test_payload_parsers_fail_cleanly(payload: object) -> None:
    for parse in (Consent.from_payload, LogEntry.from_payload):
        with contextlib.suppress(ConsentError):
            parse(payload)
