"""Revoked organisation certificates are refused by the DCC with E1, from the signed CRL."""

from __future__ import annotations

import datetime as dt

from smarthydra.crypto.keystore import KeyUsage
from smarthydra.duis.codes import ResponseCode
from smarthydra.duis.request import CommandVariant, ServiceRequest, SignedPreCommand
from smarthydra.gbcs.builder import sign_precommand
from smarthydra.pki.hierarchy import SmkiRepository
from smarthydra.pki.revocation import RevocationCheck
from smarthydra.sim.scenarios.smki import enable_smki
from smarthydra.sim.world import SUPPLIER_EUI, World, build_world


def _revoke_supplier_ds(world: World, when: dt.datetime) -> None:
    for certificate in world.repository.by_eui64(
        SUPPLIER_EUI.value, usage=KeyUsage.DIGITAL_SIGNATURE
    ):
        world.repository.revoke(certificate.serial, when)


def test_request_signed_under_a_revoked_certificate_gets_e1() -> None:
    world = build_world(1)
    operations = enable_smki(world)
    esme = world.homes[0].esme.eui
    rid = world.supplier.next_request_id(esme)
    ok = world.dcc.submit(ServiceRequest(rid, SUPPLIER_EUI, "IS", "4.1.1", CommandVariant(1)))
    assert ok.code is ResponseCode.SUCCESS
    # Revocation published as a CRL; a fresh DCC view that only knows the CRL refuses.
    now = world.clock.now()
    repository_copy = SmkiRepository.from_json(world.repository.to_json())
    _revoke_supplier_ds(world, now)
    crl = world.repository.crl(world.smki.organisation_signer(), now, now + dt.timedelta(days=1))
    check = RevocationCheck(repository_copy)
    assert check.refresh(crl, world.smki.organisation_ca) == 1
    world.dcc.credential_check = check.check_user
    rid = world.supplier.next_request_id(esme)
    refused = world.dcc.submit(ServiceRequest(rid, SUPPLIER_EUI, "IS", "4.1.1", CommandVariant(1)))
    assert refused.code is ResponseCode.USER_NOT_AUTHORISED
    assert "revoked" in refused.detail
    assert operations.revocation.check_user(world.dcc.users.get(SUPPLIER_EUI)) is not None  # type: ignore[arg-type]


def test_pre_command_signed_after_revocation_gets_e1() -> None:
    world = build_world(1)
    enable_smki(world)
    esme = world.homes[0].esme.eui
    rid = world.supplier.next_request_id(esme)
    first = world.dcc.submit(ServiceRequest(rid, SUPPLIER_EUI, "IS", "7.2", CommandVariant(4)))
    assert first.code is ResponseCode.SUCCESS and first.gbcs is not None
    signed = sign_precommand(first.gbcs, keystore=world.supplier.keystore, label="ds")
    _revoke_supplier_ds(world, world.clock.now())
    second = world.dcc.submit_signed(
        SignedPreCommand(rid, SUPPLIER_EUI, "IS", "7.2", CommandVariant(5), signed.wire())
    )
    assert second.code is ResponseCode.USER_NOT_AUTHORISED
    assert world.homes[0].esme.supply.value == "enabled"  # nothing reached the meter


def test_unrevoked_replacement_certificate_restores_service() -> None:
    world = build_world(1)
    operations = enable_smki(world)
    _revoke_supplier_ds(world, world.clock.now())
    user = world.dcc.users.get(SUPPLIER_EUI)
    assert user is not None and operations.revocation.check_user(user) is not None
    # The same key re-certified (e.g. after a mistaken revocation) is live again.
    world.repository.publish(
        world.smki.issue_organisation(
            subject_public_key=user.signing_key,
            role=2,
            eui64=SUPPLIER_EUI.value,
            usage=KeyUsage.DIGITAL_SIGNATURE,
            not_before=world.clock.now(),
            not_after=world.clock.now() + dt.timedelta(days=30),
        )
    )
    assert operations.revocation.check_user(user) is None
