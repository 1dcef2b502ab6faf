"""Signed bills: equal to the ground-truth bill; tampering and unapproved applets detected."""

from __future__ import annotations

import cbor2
import pytest

from smarthydra.applets import cose
from smarthydra.applets.billing import BillingApplet
from smarthydra.applets.hub import BILLING, HydraCommandError
from smarthydra.applets.tariff import Block, Tariff, economy7, peak_tou, rising_block
from smarthydra.parties.hydra import StatementRejected, UnapprovedApplet
from smarthydra.sim.hydra import HydraParties
from tests.applets.helpers import day, home_with_days, reference_bill

BLOCK_WITH_STANDING = Tariff("BLOCK-SC", 1, standing_charge=61_000,
                             blocks=(Block(150, 21_000), Block(None, 29_500)))


@pytest.mark.parametrize("tariff", [economy7(), peak_tou(), rising_block(), BLOCK_WITH_STANDING],
                         ids=["tou-e7+standing", "tou-peak+standing", "block", "block+standing"])
def test_signed_bill_equals_ground_truth(tariff: Tariff) -> None:
    home = home_with_days(31)
    supplier = home.parties.supplier
    home.host.set_tariff(supplier.tariff_message(tariff))
    verified = supplier.receive_bill(home.host.close_period(day(0), day(30)), home.setup.meter)
    truth = [home.truth[day(n)].import_wh for n in range(31)]
    assert verified.amount_pence == reference_bill(tariff, truth)
    assert verified.amount_pence == home.ground_truth_bill(tariff, day(0), day(30))
    assert (verified.first, verified.last, verified.tariff_id) == (day(0), day(30),
                                                                   tariff.tariff_id)


@pytest.fixture(scope="module")
def billed() -> tuple[object, bytes]:
    home = home_with_days(5)
    home.host.set_tariff(home.parties.supplier.tariff_message(economy7()))
    return home, home.host.close_period(day(0), day(4))


def _reseal(home: object, statement: bytes) -> bytes:
    """What a man in the middle holding the supplier's public key could send."""
    keys = home.parties.keys["supplier"]  # type: ignore[attr-defined]
    return cose.seal(statement, sender=f"{home.setup.hub}/billing",  # type: ignore[attr-defined]
                     recipient=keys.name, recipient_xy=keys.public.agreement,
                     ephemeral=cose.HostAgreement.fresh(), iv=bytes(12))


def test_tampered_bill_detected(billed: tuple[object, bytes]) -> None:
    home, sealed = billed
    supplier = home.parties.supplier  # type: ignore[attr-defined]
    honest = supplier.receive_bill(sealed)
    flipped = bytearray(sealed)
    flipped[-5] ^= 0x40
    with pytest.raises(StatementRejected, match="cannot open"):
        supplier.receive_bill(bytes(flipped))
    # re-encrypting a statement whose amount was lowered does not help: the signature fails
    _, statement = cose.open_sealed(sealed, home.parties.keys["supplier"].agreement)  # type: ignore[attr-defined]
    tag = cbor2.loads(statement)
    payload = cbor2.loads(tag.value[2])
    payload["amount-pence"] = honest.amount_pence // 2
    forged = cose.canonical(cbor2.CBORTag(18, [tag.value[0], dict(tag.value[1]),
                                               cose.canonical(payload), tag.value[3]]))
    with pytest.raises(StatementRejected, match="does not verify"):
        supplier.receive_bill(_reseal(home, forged))


def test_bill_signed_by_another_key_detected(billed: tuple[object, bytes]) -> None:
    home, _ = billed
    from smarthydra.crypto import primitives

    rogue = primitives.generate_private_key()
    # claims to come from the billing applet, signed with a key the issuer never certified
    statement = cose.sign1({"type": "bill", "hub": home.setup.hub}, BILLING.aid,  # type: ignore[attr-defined]
                           lambda d: primitives.ecdsa_sign(rogue, d))
    with pytest.raises(StatementRejected):
        home.parties.supplier.receive_bill(_reseal(home, statement))  # type: ignore[attr-defined]


class GenerousBillingApplet(BillingApplet):
    """A tariff applet no supplier reviewed (its source, hence its hash, differs)."""

    source_modules = (*BillingApplet.source_modules, "tests.applets.test_billing")


def test_unapproved_tariff_applet_detected() -> None:
    parties = HydraParties.create()
    approved = home_with_days(2, 1, parties)
    rogue = home_with_days(2, 2, parties, classes={**approved.setup.classes,
                                                   "billing": GenerousBillingApplet},
                           post_issuance_billing=False)
    supplier = parties.supplier
    for home in (approved, rogue):
        home.host.set_tariff(supplier.tariff_message(economy7()))
    supplier.receive_bill(approved.host.close_period(day(0), day(1)))
    with pytest.raises(UnapprovedApplet):
        supplier.receive_bill(rogue.host.close_period(day(0), day(1)))


def test_bill_under_a_tariff_the_supplier_never_sent(billed: tuple[object, bytes]) -> None:
    home, _ = billed
    other = HydraParties.create().supplier  # another supplier's tariff message
    with pytest.raises(HydraCommandError) as refused:
        home.host.set_tariff(other.tariff_message(rising_block()))  # type: ignore[attr-defined]
    assert refused.value.sw == 0x6982


def test_replayed_tariff_refused(billed: tuple[object, bytes]) -> None:
    home, _ = billed
    supplier = home.parties.supplier  # type: ignore[attr-defined]
    message = supplier.tariff_message(peak_tou())
    home.host.set_tariff(message)  # type: ignore[attr-defined]
    with pytest.raises(HydraCommandError) as refused:
        home.host.set_tariff(message)  # type: ignore[attr-defined]
    assert refused.value.sw == 0x6982


def test_bill_for_wrong_meter_and_missing_data() -> None:
    home = home_with_days(3)
    supplier = home.parties.supplier
    home.host.set_tariff(supplier.tariff_message(economy7()))
    with pytest.raises(StatementRejected, match="another meter"):
        supplier.receive_bill(home.host.close_period(day(0), day(2)), "mpan-elsewhere")
    with pytest.raises(HydraCommandError) as refused:
        home.host.close_period(day(0), day(5))  # days 3..5 never arrived
    assert refused.value.sw == 0x6985


def test_no_tariff_and_bad_ranges() -> None:
    home = home_with_days(1)
    with pytest.raises(HydraCommandError) as refused:
        home.host.close_period(day(0), day(0))
    assert refused.value.sw == 0x6985
    home.host.set_tariff(home.parties.supplier.tariff_message(economy7()))
    with pytest.raises(HydraCommandError) as refused:
        home.host.close_period(day(1), day(0))
    assert refused.value.sw == 0x6A80
