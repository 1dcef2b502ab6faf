"""Issuing and parsing SMKI certificates: profile fields, errors, and parser fuzzing."""

from __future__ import annotations

import datetime as dt

import pytest
from asn1crypto import x509 as asn1_x509
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from smarthydra.crypto import softhsm
from smarthydra.crypto.keystore import KeyUsage, KeyUsageError
from smarthydra.crypto.pkcs11store import Pkcs11Keystore
from smarthydra.crypto.softstore import SoftKeystore
from smarthydra.pki import (
    CaCertificate,
    CertificateError,
    CertificateSigner,
    DeviceCertificate,
    IssuanceError,
    OrganisationCertificate,
    SmkiRole,
    ca_name,
    load_pem_bundle,
    parse_certificate,
    profile,
)
from tests.crypto.softhsm_fixtures import USER_PIN

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
T1 = dt.datetime(2035, 1, 1, tzinfo=dt.UTC)
SUPPLIER_EUI = bytes.fromhex("90B3D51F30010000")
DEVICE_EUI = bytes.fromhex("00DB123456789001")


@pytest.fixture
def signer() -> CertificateSigner:
    store = SoftKeystore(None, b"")
    store.generate("ca", KeyUsage.DIGITAL_SIGNATURE)
    return CertificateSigner.self_signing(store, "ca", ca_name("Z1"))


def _organisation(signer: CertificateSigner, usage: KeyUsage) -> OrganisationCertificate:
    subject = SoftKeystore(None, b"").generate("k", usage)
    return signer.issue_organisation(
        subject_public_key=subject,
        role=SmkiRole.SUPPLIER,
        eui64=SUPPLIER_EUI,
        usage=usage,
        not_before=T0,
        not_after=T1,
    )


@pytest.mark.parametrize("usage", list(KeyUsage))
def test_organisation_certificate_fields(signer: CertificateSigner, usage: KeyUsage) -> None:
    certificate = _organisation(signer, usage)
    assert certificate.role == 0x02 and certificate.role_name == "supplier"
    assert certificate.eui64 == SUPPLIER_EUI
    assert certificate.usage is usage
    assert certificate.issuer == "OU=07, CN=Z1"
    assert certificate.not_before == T0 and certificate.not_after == T1
    assert certificate.policies == (profile.ORGANISATION_POLICY_OID,)
    assert certificate.authority_key_id == signer.key_identifier
    assert len(certificate.serial.to_bytes(16, "big")) == 16 and certificate.serial >> 126 == 1
    assert certificate.verify_signature(signer.keystore.public_key("ca"))
    again = parse_certificate(certificate.to_pem().encode())
    assert again == certificate
    # cryptography agrees it is a valid X.509 certificate with the same key
    from cryptography import x509

    loaded = x509.load_der_x509_certificate(certificate.der)
    assert loaded.public_key().public_numbers() == certificate.public_key.public_numbers()  # type: ignore[union-attr]
    key_usage = loaded.extensions.get_extension_for_class(x509.KeyUsage)
    assert key_usage.critical
    assert key_usage.value.digital_signature is (usage is KeyUsage.DIGITAL_SIGNATURE)
    assert key_usage.value.key_agreement is (usage is KeyUsage.KEY_AGREEMENT)


def test_device_certificate_fields(signer: CertificateSigner) -> None:
    public = SoftKeystore(None, b"").generate("k", KeyUsage.KEY_AGREEMENT)
    certificate = signer.issue_device(
        subject_public_key=public, eui64=DEVICE_EUI, usage=KeyUsage.KEY_AGREEMENT, not_before=T0
    )
    assert isinstance(certificate, DeviceCertificate)
    assert certificate.eui64 == DEVICE_EUI
    assert certificate.not_after == dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
    assert certificate.hw_type == profile.DEVICE_HW_TYPE_OID
    assert certificate.usage is KeyUsage.KEY_AGREEMENT
    parsed = asn1_x509.Certificate.load(certificate.der)
    assert parsed.subject.dump() == bytes.fromhex("3000")
    assert parsed["tbs_certificate"]["validity"]["not_after"].name == "general_time"
    assert parsed["tbs_certificate"]["validity"]["not_before"].name == "utc_time"


def test_bundle_loading(signer: CertificateSigner) -> None:
    first = _organisation(signer, KeyUsage.DIGITAL_SIGNATURE)
    second = _organisation(signer, KeyUsage.KEY_AGREEMENT)
    bundle = (
        first.to_pem()
        + "-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----\n"
        + second.to_pem()
    ).encode()
    assert [c.serial for c in load_pem_bundle(bundle)] == [first.serial, second.serial]


def test_ca_signing_with_pkcs11_key(softhsm_token: softhsm.SoftHsmToken) -> None:
    with Pkcs11Keystore(softhsm_token.module_path, softhsm_token.token_label, USER_PIN) as hsm:
        hsm.generate("root", KeyUsage.DIGITAL_SIGNATURE)
        root_signer = CertificateSigner.self_signing(hsm, "root", ca_name("ROOT"))
        root = root_signer.issue_ca(
            subject_name_der=root_signer.name_der,
            subject_public_key=hsm.public_key("root"),
            not_before=T0,
            not_after=T1,
            path_length=1,
        )
        assert isinstance(root, CaCertificate) and root.self_signed
        assert root.authority_key_id is None and root.path_length == 1
        assert root.verify_signature(root.public_key)
        certificate = _organisation(
            CertificateSigner.for_ca(hsm, "root", root), KeyUsage.DIGITAL_SIGNATURE
        )
        assert certificate.verify_signature(root.public_key)


def test_issuance_errors(signer: CertificateSigner) -> None:
    public = SoftKeystore(None, b"").generate("k", KeyUsage.DIGITAL_SIGNATURE)
    common = {"subject_public_key": public, "usage": KeyUsage.DIGITAL_SIGNATURE}
    with pytest.raises(IssuanceError, match="8 bytes"):
        signer.issue_device(eui64=b"\x01" * 7, not_before=T0, **common)  # type: ignore[arg-type]
    with pytest.raises(IssuanceError, match="timezone-aware"):
        signer.issue_device(eui64=DEVICE_EUI, not_before=dt.datetime(2025, 1, 1), **common)  # type: ignore[arg-type]
    with pytest.raises(IssuanceError, match="later than"):
        signer.issue_organisation(
            role=2,
            eui64=SUPPLIER_EUI,
            not_before=T1,
            not_after=T0,
            **common,  # type: ignore[arg-type]
        )
    with pytest.raises(IssuanceError, match="positive"):
        signer.issue_device(eui64=DEVICE_EUI, not_before=T0, serial=0, **common)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one byte"):
        signer.issue_organisation(
            role=0x100,
            eui64=SUPPLIER_EUI,
            not_before=T0,
            not_after=T1,
            **common,  # type: ignore[arg-type]
        )


def test_signer_key_must_be_a_signing_key_and_match() -> None:
    store = SoftKeystore(None, b"")
    store.generate("ka", KeyUsage.KEY_AGREEMENT)
    store.generate("other", KeyUsage.DIGITAL_SIGNATURE)
    bad = CertificateSigner.self_signing(store, "ka", ca_name("Z1"))
    with pytest.raises(KeyUsageError):
        _organisation(bad, KeyUsage.DIGITAL_SIGNATURE)
    good = CertificateSigner.self_signing(store, "other", ca_name("Z1"))
    root = good.issue_ca(
        subject_name_der=good.name_der,
        subject_public_key=store.public_key("other"),
        not_before=T0,
        not_after=T1,
    )
    with pytest.raises(IssuanceError, match="does not match"):
        CertificateSigner.for_ca(store, "ka", root)


def _tampered(certificate: OrganisationCertificate, edit: object) -> bytes:
    parsed = asn1_x509.Certificate.load(certificate.der)
    edit(parsed["tbs_certificate"])  # type: ignore[operator]
    return bytes(parsed.dump(force=True))


def _set_extension(oid: str, field: str, value: object) -> object:
    def edit(tbs: asn1_x509.TbsCertificate) -> None:
        for extension in tbs["extensions"]:
            if extension["extn_id"].dotted == oid:
                extension[field] = value

    return edit


def _drop_extension(oid: str) -> object:
    def edit(tbs: asn1_x509.TbsCertificate) -> None:
        tbs["extensions"] = [e for e in tbs["extensions"] if e["extn_id"].dotted != oid]

    return edit


@pytest.mark.parametrize(
    "edit, message",
    [
        (_set_extension("2.5.29.15", "critical", False), "key usage extension must be critical"),
        (_set_extension("2.5.29.32", "critical", False), "policies extension must be critical"),
        (
            _set_extension(
                "2.5.29.15",
                "extn_value",
                asn1_x509.KeyUsage({"digital_signature", "key_agreement"}),
            ),
            "exactly one of",
        ),
        (_drop_extension("2.5.29.15"), "key usage extension is missing"),
        (_drop_extension("2.5.29.14"), "subject key identifier extension is missing"),
        (_drop_extension("2.5.29.32"), "policies extension is missing"),
        (lambda tbs: tbs.__setitem__("version", "v1"), "X.509 v3"),
    ],
)
def test_profile_violations_are_named(
    signer: CertificateSigner, edit: object, message: str
) -> None:
    certificate = _organisation(signer, KeyUsage.DIGITAL_SIGNATURE)
    with pytest.raises(CertificateError, match=message):
        parse_certificate(_tampered(certificate, edit))


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "malformed"),
        (b"\x30\x03\x02\x01\x01", "malformed"),
        (b"-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n", "PRIVATE KEY"),
        (b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n", "bad PEM|malformed"),
    ],
)
def test_garbage_is_refused_clearly(data: bytes, message: str) -> None:
    with pytest.raises(CertificateError, match=message):
        parse_certificate(data)


_REFERENCE: list[bytes] = []


def _reference_der() -> bytes:
    if not _REFERENCE:
        store = SoftKeystore(None, b"")
        store.generate("ca", KeyUsage.DIGITAL_SIGNATURE)
        signer = CertificateSigner.self_signing(store, "ca", ca_name("Z1"))
        _REFERENCE.append(_organisation(signer, KeyUsage.DIGITAL_SIGNATURE).der)
    return _REFERENCE[0]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    position=st.integers(min_value=0, max_value=10_000),
    value=st.integers(0, 255),
    cut=st.integers(min_value=0, max_value=10_000),
)
@example(position=246, value=0, cut=0)  # once raised IndexError inside asn1crypto
def test_parser_fuzz_mutated_certificates(position: int, value: int, cut: int) -> None:
    der = bytearray(_reference_der())
    der[position % len(der)] = value
    data = bytes(der[: max(1, len(der) - cut % 40)])
    try:
        result = parse_certificate(data)
    except CertificateError:
        return
    assert isinstance(result, OrganisationCertificate | DeviceCertificate | CaCertificate)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_parser_fuzz_random_bytes(data: bytes) -> None:
    try:
        parse_certificate(data)
    except CertificateError:
        return
