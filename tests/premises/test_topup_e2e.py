"""GB top-up end to end: the supplier vends a UTRN with its prepayment top-up key, sends it by
DUIS SRV 2.2 -> DCC (transform to CS01a, ACB MAC) -> WAN -> hub -> ESME, which checks the MAC
(Z = its KA key x the supplier's prepayment top-up key from its trust anchors) and the
anti-replay rules, credits it, and answers -> DUIS response. And locally: the consumer types
the UTRN at the PPMID -> HAN -> hub -> the same meter checks, the same counter cache.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from typer.testing import CliRunner

from smarthydra.cli.main import app
from smarthydra.crypto.keystore import Keystore, KeyUsage
from smarthydra.crypto.pkcs11store import Pkcs11Keystore
from smarthydra.crypto.softstore import SoftKeystore
from smarthydra.dcc.responses import device_alert, response_message
from smarthydra.eui import Eui64
from smarthydra.gbcs.envelope import decode_message
from smarthydra.gbcs.utrn import (
    ALERT_DUPLICATE_UTRN,
    ALERT_UTRN_EXCEEDS_MAX_CREDIT,
    ALERT_UTRN_LOCKED_OUT,
    ALERT_UTRN_MANUAL_ENTRY_SUSPENDED,
    ALERT_UTRN_NOT_AUTHENTIC,
    MESSAGE_CODE_PECS01,
    Ptut,
    encode_utrn,
    generate_utrn,
    parse_utrn,
)
from smarthydra.gbcs.xdlms import DataNotification, decode_xdlms
from smarthydra.premises.cosem import CosemError
from smarthydra.premises.esme import ElectricityMeter
from smarthydra.premises.esme_model import (
    EVENT_TOP_UP,
    UTRN_LOCKOUT,
    UTRN_LOCKOUT_FAILURES,
    PaymentMode,
    PowerCut,
)
from smarthydra.premises.hub import DeviceKind
from smarthydra.premises.inhome import PrepaymentInterface
from smarthydra.prepay.gb_topup import (
    TopUpAgent,
    TopUpOutcome,
    TopUpStatus,
    UtrnVendor,
    VendedUtrn,
)
from smarthydra.sim.scenarios.cos import run_cos
from smarthydra.sim.scenarios.smki import NEW_SUPPLIER_EUI
from smarthydra.sim.world import TOP_UP_LABEL, World, build_world, softhsm_keystores
from tests.conftest import CONFORMANCE, conformance_path
from tests.crypto.softhsm_fixtures import require_softhsm
from tests.premises.shapes import payload_shape, rtds_message, shapes_match

PENCE = 1000  # each top-up here: GBP 10.00 (the meter counts 1e-5 GBP)
CREDIT = PENCE * 1000


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    conformance_path("duis", "service-request-matrix.json")  # SRV 2.2 is in the full matrix
    world = build_world(homes=2, seed=29, conformance=CONFORMANCE)
    for home in world.homes:
        home.esme.model.credit.mode = PaymentMode.PREPAYMENT
    yield world


def _device_ka(world: World) -> UtrnVendor:
    def keys(eui: Eui64) -> ec.EllipticCurvePublicKey | None:
        found = world.supplier.devices(eui)  # from the meter's SMKI device certificates
        return None if found is None else found.key_agreement_key

    return UtrnVendor(world.supplier.eui, world.supplier.keystore, world.clock, keys)


@pytest.fixture(scope="module")
def agent(world: World) -> TopUpAgent:
    return TopUpAgent(_device_ka(world), "IS", world.dcc.submit, world.supplier.next_request_id)


def _esme(world: World, index: int = 0) -> ElectricityMeter:
    return world.home(index).esme


def _alerts(esme: ElectricityMeter) -> list[int]:
    codes = []
    for wire in esme.drain_alerts():
        apdu = decode_xdlms(decode_message(wire).payload)
        assert isinstance(apdu, DataNotification)
        body = apdu.body.value
        assert isinstance(body, list)
        code = body[0].value
        assert isinstance(code, int)
        codes.append(code)
    return codes


def _resend(agent: TopUpAgent, vended: VendedUtrn, device: Eui64, utrn: str) -> TopUpOutcome:
    return agent.send(dataclasses.replace(vended, device=device.value, utrn=utrn))


def test_accepted_once_through_the_dcc_and_the_replay_is_refused(
    world: World, agent: TopUpAgent
) -> None:
    esme = _esme(world)
    credit = esme.model.credit
    before = credit.meter_balance
    outcome = agent.top_up(esme.eui, PENCE)
    assert outcome.status is TopUpStatus.ACCEPTED, outcome.detail
    assert outcome.action_result == 0
    assert credit.meter_balance == before + CREDIT
    assert esme.model.event_log[-1].code == EVENT_TOP_UP
    assert outcome.vended.counter in credit.utrn_counters.counters
    # the DUIS response the supplier gets: a ResponseMessage for SRV 2.2 carrying the GBCS
    assert outcome.response is not None
    duis = response_message(outcome.response, service_reference_variant="2.2",
                            at=world.clock.now(), request_id=outcome.request_id)
    text = etree.tostring(duis).decode()
    assert "<sr:ServiceReferenceVariant>2.2<" in text and str(outcome.request_id) in text

    again = agent.send(outcome.vended)  # the same UTRN, in a fresh, valid DUIS request
    assert again.status is TopUpStatus.REFUSED_BY_METER and again.action_result == 1
    assert credit.meter_balance == before + CREDIT
    assert _alerts(esme) == [ALERT_DUPLICATE_UTRN]


def test_responses_have_the_rtds_structure(world: World, agent: TopUpAgent) -> None:
    rtds = conformance_path("gbcs", "rtds-4.5.0", "2.2_CS01a")
    ok = agent.top_up(_esme(world).eui, PENCE)
    refused = agent.send(ok.vended)
    assert ok.response is not None and refused.response is not None
    for outcome, name in ((ok, "SUCCESS"), (refused, "ERROR")):
        assert outcome.response is not None
        theirs = rtds_message(rtds, f"CS01a_2.2_{name}_RESPONSE_GBCS.HEX")
        ours = decode_message(outcome.response)
        assert ours.message_code == theirs.message_code == 0x0007
        assert shapes_match(payload_shape(ours), payload_shape(theirs))
    _alerts(_esme(world))


def test_a_utrn_for_another_meter_is_refused(world: World, agent: TopUpAgent) -> None:
    mine, other = _esme(world, 0), _esme(world, 1)
    for_other = agent.vendor.vend(other.eui, PENCE)
    before = mine.model.credit.meter_balance
    refused = _resend(agent, for_other, mine.eui, for_other.utrn)
    assert refused.status is TopUpStatus.REFUSED_BY_METER
    assert mine.model.credit.meter_balance == before
    assert _alerts(mine) == [ALERT_UTRN_NOT_AUTHENTIC]
    assert mine.model.event_log[-1].detail == b"mac"
    other_before = other.model.credit.meter_balance
    assert agent.send(for_other).status is TopUpStatus.ACCEPTED  # still good where it belongs
    assert other.model.credit.meter_balance == other_before + CREDIT


def test_tampered_utrns_are_refused(world: World, agent: TopUpAgent) -> None:
    esme = _esme(world)
    vended = agent.vendor.vend(esme.eui, PENCE)
    before = esme.model.credit.meter_balance
    utrn = vended.utrn
    mistyped = utrn[:7] + str((int(utrn[7]) + 3) % 10) + utrn[8:]  # the check digit catches it
    assert _resend(agent, vended, esme.eui, mistyped).status is TopUpStatus.REFUSED_BY_METER
    assert esme.model.event_log[-1].detail == b"check-digit"
    ptut = parse_utrn(utrn)  # a forger raising the value and fixing the check digit: the MAC
    forged = encode_utrn(Ptut(ptut.counter, ptut.value + 1, ptut.value_class, ptut.mac))
    assert _resend(agent, vended, esme.eui, forged).status is TopUpStatus.REFUSED_BY_METER
    assert esme.model.event_log[-1].detail == b"mac"
    assert esme.model.credit.meter_balance == before
    assert _alerts(esme) == [ALERT_UTRN_NOT_AUTHENTIC, ALERT_UTRN_NOT_AUTHENTIC]
    assert agent.send(vended).status is TopUpStatus.ACCEPTED  # the genuine one still works


def test_only_the_prepayment_top_up_key_makes_utrns(world: World, agent: TopUpAgent) -> None:
    esme = _esme(world)
    keystore = world.supplier.keystore
    top_up = keystore.public_key(TOP_UP_LABEL)
    assert top_up != keystore.public_key("ka")  # a key of its own, with its own certificate
    assert world.supplier_top_up is not None and world.supplier_top_up.public_key == top_up
    # a UTRN MAC'd with the supplier's ordinary KA key is not authentic
    z = keystore.derive_shared_secret("ka", esme.key_agreement_key)
    counter = agent.vendor.next_counter(esme.eui)
    wrong_key = generate_utrn(z, world.supplier.eui.value, esme.eui.value, counter, PENCE)
    vended = VendedUtrn(esme.eui.value, counter, PENCE, wrong_key)
    before = esme.model.credit.meter_balance
    assert agent.send(vended).status is TopUpStatus.REFUSED_BY_METER
    assert esme.model.credit.meter_balance == before
    assert _alerts(esme) == [ALERT_UTRN_NOT_AUTHENTIC]


def test_maximum_credit_threshold(world: World, agent: TopUpAgent) -> None:
    esme = _esme(world, 1)
    credit = esme.model.credit
    credit.max_credit_threshold = credit.meter_balance + CREDIT // 2
    try:
        outcome = agent.top_up(esme.eui, PENCE)
        assert outcome.status is TopUpStatus.REFUSED_BY_METER
        assert _alerts(esme) == [ALERT_UTRN_EXCEEDS_MAX_CREDIT]
        assert outcome.vended.counter not in credit.utrn_counters.counters  # not used up
        credit.max_credit_threshold = None
        assert agent.send(outcome.vended).status is TopUpStatus.ACCEPTED
    finally:
        credit.max_credit_threshold = None


def test_the_alert_reaches_the_supplier_as_duis(world: World, agent: TopUpAgent) -> None:
    esme = _esme(world)
    outcome = agent.top_up(esme.eui, PENCE)
    agent.send(outcome.vended)
    (wire,) = esme.drain_alerts()
    duis = etree.tostring(device_alert(wire, at=world.clock.now())).decode()
    assert "DeviceAlertMessage" in duis and "8F51" in duis.upper()


# --- locally, at the PPMID ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def ppmid(world: World) -> PrepaymentInterface:
    device = PrepaymentInterface(Eui64.parse("00DB1234567890E2"))
    world.home(0).hub.join(device, kind=DeviceKind.PPMID)
    return device


def test_ppmid_top_up_shares_the_anti_replay_with_the_dcc(
    world: World, agent: TopUpAgent, ppmid: PrepaymentInterface
) -> None:
    esme, hub = _esme(world), world.home(0).hub
    credit = esme.model.credit
    # typed at the PPMID first: accepted once, then refused there and through the DCC
    local = agent.vendor.vend(esme.eui, PENCE)
    before = credit.meter_balance
    assert ppmid.enter_top_up(hub.receive_from_han, local.utrn)
    assert credit.meter_balance == before + CREDIT
    assert MESSAGE_CODE_PECS01 in [e.code for e in esme.model.event_log[-2:]]
    assert not ppmid.enter_top_up(hub.receive_from_han, local.utrn)
    assert agent.send(local).status is TopUpStatus.REFUSED_BY_METER
    assert credit.meter_balance == before + CREDIT
    # sent through the DCC first: the consumer cannot then type it in again
    remote = agent.top_up(esme.eui, PENCE)
    assert remote.status is TopUpStatus.ACCEPTED
    assert not ppmid.enter_top_up(hub.receive_from_han, remote.vended.utrn)
    assert credit.meter_balance == before + 2 * CREDIT
    # a mistyped digit at the keypad
    typo = local.utrn[:-1] + str((int(local.utrn[-1]) + 1) % 10)
    assert not ppmid.enter_top_up(hub.receive_from_han, typo)
    assert credit.meter_balance == before + 2 * CREDIT
    assert _alerts(esme) == [ALERT_DUPLICATE_UTRN] * 3 + [ALERT_UTRN_NOT_AUTHENTIC]


# --- a power cut during redemption ------------------------------------------------------------


def _cut_at(point: str) -> Callable[[str], None]:
    def hook(at: str) -> None:
        if at == point:
            raise PowerCut(at)

    return hook


@pytest.mark.parametrize("point", ["before-commit", "after-commit"])
def test_a_power_cut_never_credits_twice_nor_loses_credit(
    world: World, agent: TopUpAgent, point: str
) -> None:
    esme = _esme(world)
    model, credit = esme.model, esme.model.credit
    vended = agent.vendor.vend(esme.eui, PENCE)
    before = credit.meter_balance
    model.power_cut = _cut_at(point)
    try:
        with pytest.raises(PowerCut):
            model.redeem_utrn(vended.utrn.encode())  # typed at the meter; power fails
    finally:
        model.power_cut = None
    committed = point == "after-commit"
    assert credit.meter_balance == before + (CREDIT if committed else 0)
    assert (vended.counter in credit.utrn_counters.counters) is committed
    # power back; the supplier (not knowing the outcome) sends the UTRN through the DCC
    retry = agent.send(vended)
    assert retry.status is (TopUpStatus.REFUSED_BY_METER if committed else TopUpStatus.ACCEPTED)
    assert credit.meter_balance == before + CREDIT  # exactly once either way
    _alerts(esme)


def test_a_refused_utrn_raises_a_cosem_error_and_changes_nothing(world: World) -> None:
    model = _esme(world).model
    snapshot = (model.credit.meter_balance, model.credit.utrn_counters)
    with pytest.raises(CosemError):
        model.redeem_utrn(b"not digits")
    with pytest.raises(CosemError):
        model.redeem_utrn(bytes([0xFF]) * 20)
    assert (model.credit.meter_balance, model.credit.utrn_counters) == snapshot
    _alerts(_esme(world))


def test_rtds_utrn_counters_are_unix_times() -> None:
    # the evidence for the counter's place in the PTUT: the top 32 bits of the RTDS UTRNs
    import datetime as dt

    from smarthydra.gbcs.rtds import read_hex_file
    from smarthydra.gbcs.utrn import utrn_from_cs01

    folder = conformance_path("gbcs", "rtds-4.5.0")
    for name in ("2.2_CS01a/CS01a_2.2_SUCCESS_COMMAND_GBCS.HEX",
                 "2.2_CS01a/CS01a_2.2_ERROR_COMMAND_GBCS.HEX",
                 "2.2_CS01b/CS01b_2.2_SUCCESS_COMMAND_GBCS.HEX"):
        utrn = utrn_from_cs01(read_hex_file(Path(folder, name)))
        at = dt.datetime.fromtimestamp(int(utrn[:19]) >> 32, dt.UTC)
        assert dt.datetime(2024, 7, 23, tzinfo=dt.UTC) <= at < dt.datetime(2024, 7, 25, tzinfo=dt.UTC)


# --- the CLI with the same keys --------------------------------------------------------------


def test_cli_utrns_from_the_suppliers_keystore_are_accepted_once(tmp_path: Path) -> None:
    passphrase = "top-up test"

    def keystores(name: str) -> Keystore:  # every party's and meter's keys in a keystore file
        return SoftKeystore(tmp_path / f"{name}.keystore", passphrase=passphrase.encode())

    world = build_world(homes=1, seed=31, keystores=keystores)
    esme = world.home(0).esme
    esme.model.credit.mode = PaymentMode.PREPAYMENT
    meter_cert = world.repository.by_eui64(esme.eui.value, usage=KeyUsage.KEY_AGREEMENT)[0]
    (tmp_path / "meter-ka.pem").write_text(meter_cert.to_pem())
    assert world.supplier_top_up is not None
    (tmp_path / "supplier-pp-ka.pem").write_text(world.supplier_top_up.to_pem())
    runner = CliRunner(env={"SMARTHYDRA_KEYSTORE_PASSPHRASE": passphrase})
    ids = ["--supplier", world.supplier.eui.value.hex(), "--device", esme.eui.value.hex()]
    counter = str(int(world.clock.now().timestamp()))
    made = runner.invoke(app, [
        "utrn", "generate", *ids, "--value", "750", "--counter", counter,
        "--keystore", str(tmp_path / "supplier.keystore"), "--peer", str(tmp_path / "meter-ka.pem"),
    ])
    assert made.exit_code == 0, made.output
    utrn = made.output.strip()
    # the meter's own check, from the CLI with the meter's keystore file
    meter = ["--keystore", str(tmp_path / f"esme-{esme.eui}.keystore"),
             "--peer", str(tmp_path / "supplier-pp-ka.pem"), "--json"]
    checked = runner.invoke(app, ["utrn", "verify", utrn, *ids, *meter])
    assert json.loads(checked.output) == {"accepted": True, "counter": int(counter), "pence": 750}
    # and the meter itself: credited once, then refused
    before = esme.model.credit.meter_balance
    assert esme.model.redeem_utrn(utrn.encode()) == 750 * 1000
    with pytest.raises(CosemError):
        esme.model.redeem_utrn(utrn.encode())
    assert esme.model.credit.meter_balance == before + 750 * 1000
    # a UTRN made with the supplier's ordinary KA key (--key-label ka) is not authentic
    wrong = runner.invoke(app, [
        "utrn", "generate", *ids, "--value", "750", "--counter", str(int(counter) + 1),
        "--keystore", str(tmp_path / "supplier.keystore"), "--key-label", "ka",
        "--peer", str(tmp_path / "meter-ka.pem"),
    ])
    assert wrong.exit_code == 0
    refused = runner.invoke(app, ["utrn", "verify", wrong.output.strip(), *ids, *meter])
    assert refused.exit_code == 1 and json.loads(refused.stdout)["reason"] == "mac"


@pytest.mark.softhsm
def test_the_prepayment_top_up_key_in_an_hsm(tmp_path: Path) -> None:
    require_softhsm()
    world = build_world(homes=1, seed=33, keystores=softhsm_keystores(tmp_path / "hsm"))
    assert isinstance(world.supplier.keystore, Pkcs11Keystore)
    assert TOP_UP_LABEL in world.supplier.keystore.labels()
    esme = world.home(0).esme
    esme.model.credit.mode = PaymentMode.PREPAYMENT
    vended = _device_ka(world).vend(esme.eui, PENCE)  # ECDH inside the token
    before = esme.model.credit.meter_balance
    assert esme.model.redeem_utrn(vended.utrn.encode()) == CREDIT
    with pytest.raises(CosemError):
        esme.model.redeem_utrn(vended.utrn.encode())
    assert esme.model.credit.meter_balance == before + CREDIT


def test_after_a_change_of_supplier_the_losing_suppliers_utrns_are_refused() -> None:
    conformance_path("duis", "service-request-matrix.json")
    world = build_world(homes=1, seed=37, conformance=CONFORMANCE)
    esme = _esme(world)
    esme.model.credit.mode = PaymentMode.PREPAYMENT
    losing = TopUpAgent(_device_ka(world), "IS", world.dcc.submit, world.supplier.next_request_id)
    assert losing.top_up(esme.eui, PENCE).status is TopUpStatus.ACCEPTED
    _alerts(esme)
    report = run_cos(world=world)
    assert report.ok, report.to_dict()
    # the meter's top-up key is now the one in its CS02b-replaced prepayment top-up cell
    supplier, key, _floor = esme.prepayment_anchor()
    assert supplier == NEW_SUPPLIER_EUI.value
    assert key != world.supplier.keystore.public_key(TOP_UP_LABEL)
    vended = losing.vendor.vend(esme.eui, PENCE)
    assert losing.send(vended).status is TopUpStatus.DCC_REFUSED  # no longer registered
    before = esme.model.credit.meter_balance
    with pytest.raises(CosemError):  # nor does the meter take it, typed in at the PPMID
        esme.model.enter_token(vended.utrn.encode())
    assert esme.model.credit.meter_balance == before
    assert ALERT_UTRN_NOT_AUTHENTIC in _alerts(esme)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=st.binary(max_size=24) | st.from_regex(r"\A[0-9]{20}\Z").map(str.encode))
def test_fuzz_meter_redemption_refuses_cleanly(world: World, token: bytes) -> None:
    model = _esme(world, 1).model
    snapshot = (model.credit.meter_balance, model.credit.utrn_counters)
    with pytest.raises(CosemError):  # a random UTRN is never authentic
        model.redeem_utrn(token)
    assert (model.credit.meter_balance, model.credit.utrn_counters) == snapshot
    model.outbox.clear()


def test_repeated_bad_entries_at_the_ppmid_suspend_manual_entry(
    world: World, agent: TopUpAgent
) -> None:
    esme, hub = _esme(world, 1), world.home(1).hub
    ppmid = PrepaymentInterface(Eui64.parse("00DB1234567890E3"))
    hub.join(ppmid, kind=DeviceKind.PPMID)
    _alerts(esme)
    good = agent.vendor.vend(esme.eui, PENCE)
    guess = encode_utrn(Ptut(good.counter, PENCE, 0, 0))  # a forger guessing the MAC
    for _ in range(UTRN_LOCKOUT_FAILURES):
        assert not ppmid.enter_top_up(hub.receive_from_han, guess)
    before = esme.model.credit.meter_balance
    assert not ppmid.enter_top_up(hub.receive_from_han, good.utrn)  # locked out, even a good one
    assert esme.model.credit.meter_balance == before
    assert _alerts(esme) == [ALERT_UTRN_NOT_AUTHENTIC] * UTRN_LOCKOUT_FAILURES + [
        ALERT_UTRN_MANUAL_ENTRY_SUSPENDED, ALERT_UTRN_LOCKED_OUT]
    assert agent.send(good).status is TopUpStatus.ACCEPTED  # the DCC route is not suspended
    world.clock.advance(UTRN_LOCKOUT)
    other = agent.vendor.vend(esme.eui, PENCE)
    assert ppmid.enter_top_up(hub.receive_from_han, other.utrn)  # the suspension has ended
    assert esme.model.credit.meter_balance == before + 2 * CREDIT
