"""The billing applet runs as a signed, DAP-verified, restricted post-issuance load file, and
its published source hash is the hash of exactly what runs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import smarthydra.applets
from smarthydra.applets import billing_card
from smarthydra.applets.hub import BILLING, HydraHost, billing_package
from smarthydra.applets.tariff import Block, Tariff, TouBand, bill, economy7, tariff_payload
from smarthydra.card.gp import management as gpm
from smarthydra.card.package import AppletPackage
from smarthydra.card.registry import LOAD_FILE_DATA_PREFIX
from smarthydra.card.sandbox import PACKAGE_CELL
from smarthydra.crypto import primitives
from smarthydra.parties.hydra import (
    DeploymentRefused,
    UnapprovedApplet,
    deploy_billing,
    parse_certificate,
)
from smarthydra.sim.hydra import HydraHome, HydraParties
from tests.applets.helpers import day, home_with_days

SOURCE_FILE = Path(smarthydra.applets.__file__).parent / "billing_card.py"


def test_the_published_hash_is_the_hash_of_what_runs() -> None:
    home = home_with_days(2)
    published = hashlib.sha256(SOURCE_FILE.read_bytes()).digest()
    package = billing_package()
    assert package.manifest.source_hash == published
    runtime = home.host.card.runtime
    entry = next(e for e in runtime.load_file_entries() if e.aid == BILLING.load_file_aid)
    assert not entry.rom  # loaded after issuance, not in the card image
    stored = runtime.nvm.read(f"{LOAD_FILE_DATA_PREFIX}{BILLING.load_file_aid.hex()}/{PACKAGE_CELL}")
    assert stored is not None and AppletPackage.decode(stored).source.encode() == \
        SOURCE_FILE.read_bytes()
    applet = runtime.applet(BILLING.aid)
    assert applet is not None and vars(type(applet)).get("_sh_package") == BILLING.load_file_aid
    certificate = parse_certificate(home.parties.issuer.certificate(home.setup.hub, BILLING.aid),
                                    home.parties.issuer.public_key)
    assert certificate.source_sha256 == published
    home.host.set_tariff(home.parties.supplier.tariff_message(economy7()))
    verified = home.parties.supplier.receive_bill(home.host.close_period(day(0), day(1)))
    assert verified.amount_pence == home.ground_truth_bill(economy7(), day(0), day(1))
    assert home.parties.supplier.received[-1]["source-sha256"] == published
    # after a power cycle the card rebuilds the load file from NVM, restricted again
    home.host.card.power_off()
    host = HydraHost(home.host.card, own_channel=True)
    host.connect("supplier", home.setup.channel_keys("supplier"))
    again = home.parties.supplier.receive_bill(host.close_period(day(0), day(1)))
    assert again.amount_pence == verified.amount_pence


def test_the_load_needs_the_suppliers_dap_and_the_issuers_token() -> None:
    parties = HydraParties.create()
    setup = parties.setup("hub-dap", "mpan-1")
    outsider = primitives.generate_private_key()
    block = billing_package().encode()
    cases = {
        "DAP by another key": gpm.sign(outsider, gpm.load_file_data_block_hash(block)),
        "DAP over another block": gpm.sign(parties.keys["supplier"].signing, bytes(32)),
    }
    for what, dap in cases.items():
        host = HydraHost.build(setup)
        with pytest.raises(DeploymentRefused, match="LOAD refused with SW 6982"):
            deploy_billing(host, setup, parties.issuer, parties.supplier, dap=dap)
        assert host.card.runtime.applet(BILLING.aid) is None, what
    # tokens from someone who is not the card issuer
    host = HydraHost.build(setup)
    impostor = dataclasses.replace(setup)
    rogue_issuer = HydraParties.create().issuer
    with pytest.raises(DeploymentRefused, match="INSTALL \\[for load\\] refused"):
        deploy_billing(host, impostor, rogue_issuer, parties.supplier)


def test_an_unapproved_source_gets_no_dap_and_a_rogue_package_is_refused() -> None:
    parties = HydraParties.create()
    setup = parties.setup("hub-rogue", "mpan-2")
    generous = billing_package().source.replace(
        "amount = (price(tariff, days)", "amount = (price(tariff, days) // 2")
    rogue = AppletPackage.build(generous, aid=BILLING.load_file_aid, name="hydra-billing",
                                applets={"BillingApplet": (BILLING.module_aid,)})
    with pytest.raises(UnapprovedApplet):
        parties.supplier.approve_load(rogue)
    # even signed by the supplier's key, code outside the card API does not load
    escaping = AppletPackage.build(billing_package().source + "\nimport os\n",
                                   aid=BILLING.load_file_aid, name="hydra-billing",
                                   applets={"BillingApplet": (BILLING.module_aid,)})
    dap = gpm.sign(parties.keys["supplier"].signing,
                   gpm.load_file_data_block_hash(escaping.encode()))
    host = HydraHost.build(setup)
    with pytest.raises(DeploymentRefused, match="LOAD refused with SW 6A80"):
        deploy_billing(host, setup, parties.issuer, parties.supplier, package=escaping, dap=dap)


TARIFFS = st.sampled_from([
    economy7(),
    Tariff("FLAT", 1, standing_charge=61_000, bands=(TouBand("all", 24_870,
                                                              frozenset(range(48))),)),
    Tariff("BLOCK-2", 1, standing_charge=12_345, blocks=(Block(3, 20_000), Block(None, 9_000))),
])


@settings(max_examples=60, deadline=None)
@given(tariff=TARIFFS, days=st.lists(st.lists(st.integers(0, 4000), min_size=48, max_size=48),
                                     min_size=1, max_size=5))
def test_the_card_source_prices_as_the_tariff_module(tariff: Tariff,
                                                    days: list[list[int]]) -> None:
    canonical = billing_card.parse_tariff(tariff_payload(tariff))
    assert canonical == tariff_payload(tariff)
    micropence = billing_card.price(canonical, days)
    assert (micropence + 500_000) // 1_000_000 == bill(tariff, days).amount_pence


@pytest.mark.parametrize("ordinal", [1, dt.date(1970, 1, 1).toordinal(),
                                     dt.date(2024, 2, 29).toordinal(),
                                     dt.date(2026, 12, 31).toordinal(),
                                     dt.date(9999, 12, 31).toordinal()])
def test_iso_dates_on_the_card(ordinal: int) -> None:
    assert billing_card.iso_date(ordinal) == dt.date.fromordinal(ordinal).isoformat()


def test_malformed_tariffs_are_refused_on_the_card() -> None:
    good = tariff_payload(economy7())
    bad = [
        {**good, "bands": good["bands"][:1]},  # half hours uncovered
        {**good, "blocks": [[None, 1]]},  # both kinds
        {**good, "version": -1},
        {**good, "extra": 1},
        {**tariff_payload(economy7()), "bands": [], "blocks": [[5, 1], [3, 1], [None, 1]]},
        {**tariff_payload(economy7()), "bands": [], "blocks": [[None, 1], [3, 1]]},
    ]
    from smarthydra.card.applet import ISOException

    for payload in bad:
        with pytest.raises(ISOException):
            billing_card.parse_tariff(payload)


@pytest.fixture(scope="module")
def supplier_home() -> HydraHome:
    home = home_with_days(3)
    home.host.set_tariff(home.parties.supplier.tariff_message(economy7()))
    return home


SEQUENCE = itertools.count(1000)
FAILURES = {0x6700, 0x6A80, 0x6982, 0x6985, 0x6A88}
VALUES = st.recursive(st.none() | st.booleans() | st.integers(-5, 60) | st.text(max_size=4)
                      | st.binary(max_size=4),
                      lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8) | st.integers(0, 3), inner,
                                        max_size=6), max_leaves=12)


@settings(max_examples=120, deadline=None)
@given(data=st.binary(max_size=300), ins=st.sampled_from([0x20, 0x22, 0x24, 0x04, 0x26]))
def test_fuzzed_commands_get_status_words_not_crashes(supplier_home: HydraHome, data: bytes,
                                                      ins: int) -> None:
    from smarthydra.applets.hub import HydraCommandError

    try:
        supplier_home.host.party_call(BILLING, ins, data)
    except HydraCommandError as exc:
        assert exc.sw in FAILURES | {0x6D00}, exc


@settings(max_examples=120, deadline=None)
@given(payload=st.dictionaries(st.sampled_from(["id", "version", "standing", "bands", "blocks",
                                                "seq", "x"]), VALUES, max_size=7))
def test_signed_but_malformed_tariffs_are_refused_cleanly(supplier_home: HydraHome,
                                                          payload: dict[str, object]) -> None:
    from smarthydra.applets import cose
    from smarthydra.applets.hub import HydraCommandError

    supplier = supplier_home.parties.supplier
    message = cose.sign1({**payload, "seq": next(SEQUENCE)}, b"supplier", supplier.keys.sign)
    try:
        supplier_home.host.set_tariff(message)
    except HydraCommandError as exc:
        assert exc.sw in FAILURES, exc
