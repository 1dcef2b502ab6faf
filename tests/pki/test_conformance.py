"""Every published SMKI/RTDS certificate parses, and we re-issue them byte for byte.

Re-issuing: for each real certificate we sign a new one for the same subject key, serial,
names, dates and issuer key identifier with our own CA key. If our profile matches, the
TBSCertificate is byte-identical to the real one (only the outer signature differs).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.crypto.keystore import KeyUsage
from smarthydra.crypto.softstore import SoftKeystore
from smarthydra.pki import (
    CertificateSigner,
    DeviceCertificate,
    OrganisationCertificate,
    key_identifier,
    parse_certificate,
    profile,
)
from smarthydra.pki.certificates import AnyCertificate, CertificateError
from tests.conftest import conformance_path

CANONICAL_ORG_EXTENSIONS = ("2.5.29.15", "2.5.29.14", "2.5.29.32", "2.5.29.35")
CANONICAL_DEVICE_EXTENSIONS = ("2.5.29.15", "2.5.29.14", "2.5.29.17", "2.5.29.32", "2.5.29.35")


def _certificate_files() -> list[Path]:
    rtds = conformance_path("gbcs", "rtds-keystore")
    smki = conformance_path("smki")
    return sorted(
        p
        for p in [*rtds.glob("*.pem"), *smki.glob("*.pem")]
        if b"BEGIN CERTIFICATE" in p.read_bytes()
    )


def _keystore_json() -> dict[str, dict[str, dict[str, dict[str, object]]]]:
    data: dict[str, dict[str, dict[str, dict[str, object]]]] = json.loads(
        conformance_path("smki", "dccboxed-keystore.json").read_text()
    )
    return data


def _all_certificates() -> list[tuple[str, AnyCertificate]]:
    found = [(p.name, parse_certificate(p.read_bytes())) for p in _certificate_files()]
    for eui, by_usage in _keystore_json().items():
        for usage, by_serial in by_usage.items():
            for serial, entry in by_serial.items():
                pem = str(entry["certificate"]).encode()
                found.append((f"json:{eui}/{usage}/{serial}", parse_certificate(pem)))
    return found


def test_every_certificate_parses_with_profile_fields() -> None:
    certificates = _all_certificates()
    assert len(certificates) >= 400 + 35 + 33
    kinds = {type(c).__name__ for _, c in certificates}
    assert kinds == {"DeviceCertificate", "OrganisationCertificate"}
    for name, certificate in certificates:
        assert certificate.subject_key_id == key_identifier(certificate.public_key), name
        assert len(certificate.der) > 0 and certificate.serial > 0
        if isinstance(certificate, DeviceCertificate):
            assert certificate.not_after.year == 9999, name
            assert certificate.hw_type == profile.DEVICE_HW_TYPE_OID
            assert certificate.policies == (profile.DEVICE_POLICY_OID,)
            assert certificate.issuer == "CN=E357"
        else:
            assert isinstance(certificate, OrganisationCertificate)
            assert certificate.policies == (profile.ORGANISATION_POLICY_OID,), name


def test_rtds_file_names_agree_with_parsed_fields() -> None:
    mismatched = []
    for path in _certificate_files():
        if path.parent.name != "rtds-keystore":
            continue
        certificate = parse_certificate(path.read_bytes())
        assert isinstance(certificate, DeviceCertificate | OrganisationCertificate)
        eui_hex, _, kind = path.name.removesuffix(".pem").partition("-")
        expected = KeyUsage.DIGITAL_SIGNATURE if kind == "ds" else KeyUsage.KEY_AGREEMENT
        assert certificate.usage is expected, path.name
        if certificate.eui64.hex() != eui_hex:
            mismatched.append((path.name, certificate.eui64.hex()))
    # One published file is misnamed: it holds supplier 2's (90B3D51F30030000) KA certificate.
    assert mismatched == [("90b3d51f30000007-ka.pem", "90b3d51f30030000")]


def test_rtds_private_keys_match_their_certificates() -> None:
    rtds = conformance_path("gbcs", "rtds-keystore")
    checked = 0
    for key_path in sorted(rtds.glob("*.key")):
        cert_path = key_path.with_suffix(".pem")
        if not cert_path.exists():
            continue
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        certificate = parse_certificate(cert_path.read_bytes())
        assert certificate.public_key.public_numbers() == key.public_key().public_numbers()
        checked += 1
    assert checked >= 10


def test_dcc_boxed_keystore_json_agrees() -> None:
    for eui, by_usage in _keystore_json().items():
        for usage, by_serial in by_usage.items():
            for serial, entry in by_serial.items():
                certificate = parse_certificate(str(entry["certificate"]).encode())
                assert isinstance(certificate, OrganisationCertificate)
                assert certificate.eui64.hex() == eui
                assert certificate.serial == int(serial)
                assert certificate.role == entry["role"]
                assert certificate.usage is (
                    KeyUsage.DIGITAL_SIGNATURE
                    if usage == "digitalSignature"
                    else KeyUsage.KEY_AGREEMENT
                )
                key = serialization.load_pem_private_key(
                    str(entry["privateKey"]).encode(), password=None
                )
                assert isinstance(key, ec.EllipticCurvePrivateKey)
                assert certificate.public_key.public_numbers() == key.public_key().public_numbers()


def test_legacy_decimal_role_and_null_parameters_are_read() -> None:
    legacy = parse_certificate(
        conformance_path("smki", "dsp-xml-sign-90B3D51F30000002-ds-pre-1.4.1.pem").read_bytes()
    )
    assert isinstance(legacy, OrganisationCertificate) and legacy.role == 0x89
    mdr = _keystore_json()["90b3d51f30010009"]["keyAgreement"]
    (entry,) = mdr.values()
    certificate = parse_certificate(str(entry["certificate"]).encode())
    assert isinstance(certificate, OrganisationCertificate)
    assert certificate.common_name == "MDR" and certificate.role == 0x7F


def test_non_certificate_pems_are_refused_clearly() -> None:
    public = conformance_path("gbcs", "rtds-keystore", "fffffffffffffffe-ka.pem")
    with pytest.raises(CertificateError, match="PUBLIC KEY, not a CERTIFICATE"):
        parse_certificate(public.read_bytes())


def _extension_order(certificate: AnyCertificate) -> tuple[str, ...]:
    from asn1crypto import x509 as asn1_x509

    parsed = asn1_x509.Certificate.load(certificate.der)
    return tuple(e["extn_id"].dotted for e in parsed["tbs_certificate"]["extensions"])


def test_we_reissue_published_certificates_byte_for_byte() -> None:
    """Our issuer reproduces the TBSCertificate of every canonical-profile certificate."""
    store = SoftKeystore(None, b"")
    store.generate("ca", KeyUsage.DIGITAL_SIGNATURE)
    reproduced = {"organisation": 0, "device": 0}
    variants = 0
    for name, real in _all_certificates():
        order = _extension_order(real)
        signer = CertificateSigner(store, "ca", real.issuer_der, real.authority_key_id or b"")
        if isinstance(real, DeviceCertificate) and order == CANONICAL_DEVICE_EXTENSIONS:
            ours: AnyCertificate = signer.issue_device(
                subject_public_key=real.public_key,
                eui64=real.eui64,
                usage=real.usage,
                not_before=real.not_before,
                serial=real.serial,
                hw_type=real.hw_type,
                policy_oid=real.policies[0],
            )
            reproduced["device"] += 1
        elif (
            isinstance(real, OrganisationCertificate)
            and order == CANONICAL_ORG_EXTENSIONS
            and len(f"{real.role:02X}") == 2
            and b"\x0c\x0307" not in real.der  # not the decimal-OU legacy form
        ):
            ours = signer.issue_organisation(
                subject_public_key=real.public_key,
                role=real.role,
                eui64=real.eui64,
                usage=real.usage,
                not_before=real.not_before,
                not_after=real.not_after,
                serial=real.serial,
                common_name=real.common_name,
                policy_oid=real.policies[0],
            )
            reproduced["organisation"] += 1
        else:
            variants += 1
            continue
        assert ours.tbs == real.tbs, name
        assert ours.verify_signature(store.public_key("ca"))
        assert not real.verify_signature(store.public_key("ca"))
    assert reproduced["device"] == 400
    assert reproduced["organisation"] >= 40
    assert variants <= 20  # older profiles: other extension orders, basicConstraints, legacy OU
