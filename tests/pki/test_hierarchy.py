"""The CA hierarchy on a SoftHSM2 token, the device CA issuance cap, and the repository."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator

import pkcs11
import pytest
from pkcs11 import Attribute, ObjectClass

from smarthydra.crypto import primitives, softhsm
from smarthydra.crypto.keystore import KeyNotFound, KeyUsage
from smarthydra.crypto.pkcs11store import Pkcs11Keystore
from smarthydra.crypto.softstore import SoftKeystore
from smarthydra.pki import CertificateError, SmkiRole
from smarthydra.pki.hierarchy import (
    CaHierarchy,
    CertificateNotFound,
    CertificateRejected,
    DeviceCaExhausted,
    SmkiRepository,
    parse_crl,
)
from tests.crypto.softhsm_fixtures import USER_PIN

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
T1 = dt.datetime(2045, 1, 1, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
CAPACITY = int(os.environ.get("SMARTHYDRA_DEVICE_CA_CAPACITY", "3"))


@pytest.fixture
def hsm(softhsm_token: softhsm.SoftHsmToken) -> Iterator[Pkcs11Keystore]:
    store = Pkcs11Keystore(softhsm_token.module_path, softhsm_token.token_label, USER_PIN)
    yield store
    store.close()


def _labels_on_token(token: softhsm.SoftHsmToken) -> set[str]:
    """Private-key labels seen from a separate session: not through the keystore."""
    handle = pkcs11.lib(str(token.module_path)).get_token(token_label=token.token_label)
    try:
        session = handle.open(user_pin=USER_PIN)
    except pkcs11.UserAlreadyLoggedIn:
        session = handle.open()
    with session:
        return {
            str(o[Attribute.LABEL])
            for o in session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})
        }


def _device_key() -> object:
    return SoftKeystore(None, b"").generate("k", KeyUsage.KEY_AGREEMENT)


def test_device_ca_issues_at_most_n_then_its_key_is_gone(
    hsm: Pkcs11Keystore, softhsm_token: softhsm.SoftHsmToken
) -> None:
    hierarchy = CaHierarchy.create(hsm, not_before=T0, not_after=T1, device_ca_capacity=CAPACITY)
    device_ca = hierarchy.device_ca
    assert "smki-device-ca-1" in _labels_on_token(softhsm_token)
    issued = [
        device_ca.issue(
            subject_public_key=_device_key(),  # type: ignore[arg-type]
            eui64=i.to_bytes(8, "big"),
            usage=KeyUsage.KEY_AGREEMENT,
            not_before=T0,
        )
        for i in range(1, CAPACITY + 1)
    ]
    assert device_ca.retired and device_ca.issued == CAPACITY
    # the key is deleted from the token: a separate session cannot find it
    assert "smki-device-ca-1" not in _labels_on_token(softhsm_token)
    assert {"smki-root", "smki-organisation-ca"} <= _labels_on_token(softhsm_token)
    with pytest.raises(KeyNotFound):
        hsm.sign("smki-device-ca-1", b"one more")
    with pytest.raises(DeviceCaExhausted, match=f"issued its {CAPACITY} certificates"):
        device_ca.issue(
            subject_public_key=_device_key(),  # type: ignore[arg-type]
            eui64=bytes(8),
            usage=KeyUsage.KEY_AGREEMENT,
            not_before=T0,
        )
    # what it issued stays valid
    repository = SmkiRepository(hierarchy.ca_certificates)
    for certificate in issued:
        assert certificate.verify_signature(device_ca.certificate.public_key)
        repository.publish(certificate)
        repository.validate(certificate, NOW)


def test_hierarchy_rolls_to_a_new_device_ca(hsm: Pkcs11Keystore) -> None:
    hierarchy = CaHierarchy.create(hsm, not_before=T0, not_after=T1, device_ca_capacity=2)
    certificates = [
        hierarchy.issue_device(
            subject_public_key=_device_key(),  # type: ignore[arg-type]
            eui64=i.to_bytes(8, "big"),
            usage=KeyUsage.KEY_AGREEMENT,
            not_before=T0,
        )
        for i in range(5)
    ]
    issuers = [c.authority_key_id for c in certificates]
    assert len(set(issuers)) == 3  # 2 + 2 + 1
    assert len(hierarchy.retired_device_cas) == 2
    assert sorted(hsm.labels()) == [
        "smki-device-ca-3",
        "smki-organisation-ca",
        "smki-root",
    ]
    repository = SmkiRepository(hierarchy.ca_certificates)
    for certificate in certificates:
        repository.validate(certificate, NOW)


def test_ca_chain_structure(hsm: Pkcs11Keystore) -> None:
    hierarchy = CaHierarchy.create(hsm, not_before=T0, not_after=T1, device_ca_capacity=1)
    root, org_ca, device_ca = (
        hierarchy.root,
        hierarchy.organisation_ca,
        hierarchy.device_ca.certificate,
    )
    assert root.self_signed and root.path_length == 1
    assert org_ca.issuer_der == root.subject_der and org_ca.path_length == 0
    assert org_ca.authority_key_id == root.subject_key_id
    assert device_ca.authority_key_id == root.subject_key_id
    assert org_ca.subject == "OU=07, CN=Z1"
    assert org_ca.verify_signature(root.public_key)
    assert device_ca.verify_signature(root.public_key)


def test_repository_queries_revocation_and_crl(hsm: Pkcs11Keystore) -> None:
    hierarchy = CaHierarchy.create(hsm, not_before=T0, not_after=T1, device_ca_capacity=5)
    repository = SmkiRepository(hierarchy.ca_certificates)
    supplier = bytes.fromhex("90B3D51F30010000")
    network_operator = bytes.fromhex("90B3D51F30020000")
    party = SoftKeystore(None, b"")
    issued = {}
    for eui, role in ((supplier, SmkiRole.SUPPLIER), (network_operator, SmkiRole.NETWORK_OPERATOR)):
        for usage in KeyUsage:
            certificate = hierarchy.issue_organisation(
                subject_public_key=party.generate(f"{eui.hex()}-{usage.value}", usage),
                role=role,
                eui64=eui,
                usage=usage,
                not_before=T0,
                not_after=T1,
            )
            repository.publish(certificate)
            issued[(eui, usage)] = certificate
    device = hierarchy.issue_device(
        subject_public_key=_device_key(),  # type: ignore[arg-type]
        eui64=bytes.fromhex("00DB123456789001"),
        usage=KeyUsage.KEY_AGREEMENT,
        not_before=T0,
    )
    repository.publish(device)

    assert {c.serial for c in repository.by_eui64(supplier)} == {
        issued[(supplier, u)].serial for u in KeyUsage
    }
    assert repository.by_eui64(supplier, usage=KeyUsage.KEY_AGREEMENT) == [
        issued[(supplier, KeyUsage.KEY_AGREEMENT)]
    ]
    assert repository.by_eui64(supplier, role=SmkiRole.NETWORK_OPERATOR) == []
    assert [c.eui64 for c in repository.by_role(SmkiRole.NETWORK_OPERATOR)] == [
        network_operator
    ] * 2
    assert repository.by_eui64(bytes.fromhex("00DB123456789001")) == [device]
    target = issued[(supplier, KeyUsage.DIGITAL_SIGNATURE)]
    assert repository.by_serial(target.serial) == target
    with pytest.raises(CertificateNotFound):
        repository.by_serial(12345)

    repository.validate(target, NOW)
    repository.revoke(target.serial, NOW)
    assert repository.is_revoked(target.serial)
    with pytest.raises(CertificateRejected, match="revoked"):
        repository.validate(target, NOW)
    repository.validate(issued[(supplier, KeyUsage.KEY_AGREEMENT)], NOW)
    with pytest.raises(CertificateRejected, match="only organisation certificates"):
        repository.revoke(device.serial, NOW)

    crl = repository.crl(hierarchy.organisation_signer(), NOW, NOW + dt.timedelta(days=7))
    assert parse_crl(crl, hierarchy.organisation_ca) == {target.serial}
    with pytest.raises(CertificateError, match="not issued by this CA"):
        parse_crl(crl, hierarchy.root)
    tampered = bytearray(crl)
    tampered[-5] ^= 1
    with pytest.raises(CertificateError):
        parse_crl(bytes(tampered), hierarchy.organisation_ca)


def test_validation_failures(hsm: Pkcs11Keystore) -> None:
    hierarchy = CaHierarchy.create(hsm, not_before=T0, not_after=T1, device_ca_capacity=5)
    party = SoftKeystore(None, b"")
    certificate = hierarchy.issue_organisation(
        subject_public_key=party.generate("ds", KeyUsage.DIGITAL_SIGNATURE),
        role=SmkiRole.SUPPLIER,
        eui64=bytes(8),
        usage=KeyUsage.DIGITAL_SIGNATURE,
        not_before=T0,
        not_after=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
    )
    with pytest.raises(CertificateRejected, match="no CA certificate"):
        SmkiRepository([]).validate(certificate, NOW)
    repository = SmkiRepository(hierarchy.ca_certificates)
    with pytest.raises(CertificateRejected, match="not valid at"):
        repository.validate(certificate, dt.datetime(2031, 1, 1, tzinfo=dt.UTC))
    # a look-alike organisation CA (same name, other key) is not trusted
    impostor_store = SoftKeystore(None, b"")
    impostor = CaHierarchy.create(impostor_store, not_before=T0, not_after=T1, device_ca_capacity=1)
    forged = impostor.issue_organisation(
        subject_public_key=party.generate("ds2", KeyUsage.DIGITAL_SIGNATURE),
        role=SmkiRole.SUPPLIER,
        eui64=bytes(8),
        usage=KeyUsage.DIGITAL_SIGNATURE,
        not_before=T0,
        not_after=T1,
    )
    with pytest.raises(CertificateRejected, match="no CA certificate"):
        repository.validate(forged, NOW)
    assert primitives.ecdsa_verify(certificate.public_key, b"x", party.sign("ds", b"x"))
