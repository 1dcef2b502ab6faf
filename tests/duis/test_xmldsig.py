"""XMLDSig: DCC Boxed's signed messages verify; ours verify with signxml and theirs with ours."""

from __future__ import annotations

import base64
import copy
import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from signxml import SignatureConfiguration, SignatureMethod, XMLSigner, XMLVerifier

from smarthydra.clock import FixedClock
from smarthydra.crypto.keystore import KeyUsage
from smarthydra.crypto.softstore import SoftKeystore
from smarthydra.duis.codes import ResponseCode
from smarthydra.duis.request import CommandVariant, RequestId
from smarthydra.duis.xml import build_request, parse_xml
from smarthydra.duis.xmldsig import (
    DS_NS,
    BadSignatureValue,
    CertificateNotAcceptable,
    DigestMismatch,
    IssuerSerial,
    MalformedSignature,
    MissingSignature,
    UnknownCertificate,
    UnsupportedAlgorithm,
    WrongSigner,
    XmlSignatureError,
    XmlSigner,
    check_signer,
    draft_signature,
    issuer_matches,
    repository_lookup,
    rfc4514_issuer,
    static_lookup,
    verify_enveloped,
)
from smarthydra.eui import Eui64
from smarthydra.pki.certificates import OrganisationCertificate, parse_certificate
from smarthydra.pki.profile import SmkiRole
from smarthydra.sim.world import START, build_world
from tests.conftest import conformance_path

SUPPLIER = Eui64.parse("90-B3-D5-1F-30-01-00-00")
ACB_DS_ROLE = int(SmkiRole.ACCESS_CONTROL_BROKER)


def _smki(name: str) -> Path:
    return conformance_path("smki", name)


def _certificate(name: str) -> OrganisationCertificate:
    certificate = parse_certificate(_smki(name).read_bytes())
    assert isinstance(certificate, OrganisationCertificate)
    return certificate


def _dccboxed_certificates() -> list[OrganisationCertificate]:
    folder = conformance_path("smki")
    found = []
    for path in sorted(folder.glob("*.pem")):
        if path.name.endswith(".key.pem"):
            continue
        certificate = parse_certificate(path.read_bytes())
        if isinstance(certificate, OrganisationCertificate):
            found.append(certificate)
    return found


def _dccboxed_signer(eui: str) -> tuple[XmlSigner, ec.EllipticCurvePrivateKey]:
    key = serialization.load_der_private_key(_smki(f"xml-sign-{eui}-ds.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    keystore = SoftKeystore(None, passphrase=b"test")
    keystore.import_private_key("xml", key, KeyUsage.DIGITAL_SIGNATURE)
    return XmlSigner(keystore, "xml", _certificate(f"xml-sign-{eui}-ds.pem")), key


def _example(name: str) -> etree._Element:
    return parse_xml(conformance_path("duis", "examples", name).read_bytes())


def _strip_signature(root: etree._Element) -> etree._Element:
    signature = root.find(f"{{{DS_NS}}}Signature")
    assert signature is not None
    root.remove(signature)
    return root


def _serialise(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


# --- DCC Boxed's own signatures ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "certificate", "roles"),
    [
        # signed by DCC Boxed with its ACB digital-signing certificate (role 04) before 1.4.1
        ("message.xml", "Z1-accessControlBroker-ds.pem", frozenset({ACB_DS_ROLE})),
        # signed with the DSP XML-signing certificate (role 0x89)
        ("readfw-response.xml", "dsp-xml-sign-90B3D51F30000002-ds-pre-1.4.1.pem", None),
    ],
)
def test_dccboxed_signed_responses_verify(name: str, certificate: str, roles: frozenset[int] | None) -> None:
    root = _example(name)
    lookup = static_lookup(_dccboxed_certificates(), **({"roles": roles} if roles else {}))
    verified = verify_enveloped(root, lookup)
    assert verified.certificate == _certificate(certificate)
    assert verified.signer == Eui64.parse("90B3D51F30000002")


def test_dccboxed_response_signed_with_a_non_xml_certificate_is_refused_by_default() -> None:
    with pytest.raises(CertificateNotAcceptable, match="not an XML-signing role") as caught:
        verify_enveloped(_example("message.xml"), static_lookup(_dccboxed_certificates()))
    assert caught.value.code is ResponseCode.USER_NOT_AUTHORISED


def test_dccboxed_response_with_changed_payload_fails() -> None:
    root = _example("readfw-response.xml")
    payload = next(root.iter("{http://www.dccinterface.co.uk/ServiceUserGateway}GBCSPayload"))
    payload.text = base64.b64encode(b"\xdd" + b"\x00" * 20).decode()
    with pytest.raises(DigestMismatch):
        verify_enveloped(root, static_lookup(_dccboxed_certificates()))


def test_certificate_validity_is_checked_at_the_given_time() -> None:
    lookup = static_lookup(_dccboxed_certificates(), roles=frozenset({ACB_DS_ROLE}), at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    with pytest.raises(CertificateNotAcceptable, match="not valid at 2030"):
        verify_enveloped(_example("message.xml"), lookup)


def test_placeholder_signatures_of_the_example_requests_are_refused() -> None:
    for name in ("GCS13a_4.1.1_SUCCESS_RELIABLE_GSME_REQUEST_DUIS.XML", "CS02aMAC_6.24.1_SUCCESS_REQUEST_DUIS.XML"):
        with pytest.raises(UnknownCertificate, match="1234567890"):
            verify_enveloped(_example(name), static_lookup(_dccboxed_certificates()))


def test_unsigned_example_is_missing_a_signature() -> None:
    with pytest.raises(MissingSignature):
        verify_enveloped(_example("message2.xml"), static_lookup(_dccboxed_certificates()))


# --- signing with a keystore, cross-checked with signxml ------------------------------------------


def test_example_request_resigned_with_dccboxed_supplier_key_verifies_both_ways() -> None:
    signer, key = _dccboxed_signer("90B3D51F30010000")
    root = _strip_signature(_example("GCS13a_4.1.1_SUCCESS_RELIABLE_GSME_REQUEST_DUIS.XML"))
    data = signer.sign_bytes(root)

    verified = verify_enveloped(parse_xml(data), static_lookup(_dccboxed_certificates()))
    assert verified.signer == SUPPLIER
    check_signer(verified, RequestId.parse("90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A3:1000").originator)

    # signxml checks the same signature with the same certificate
    pem = _smki("xml-sign-90B3D51F30010000-ds.pem").read_text()
    result = XMLVerifier().verify(data, x509_cert=pem, expect_config=SignatureConfiguration(require_x509=False))
    assert result.signed_xml is not None
    # and the KeyInfo names the certificate the DCC Boxed way
    issuer_name = parse_xml(data).find(f".//{{{DS_NS}}}X509IssuerName")
    assert issuer_name is not None and issuer_name.text == "CN=Z1,OU=07"
    assert key.public_key().public_numbers() == signer.certificate.public_key.public_numbers()


@pytest.mark.parametrize("explicit_c14n_transform", [True, False])
def test_signxml_signed_request_verifies_with_ours(explicit_c14n_transform: bool) -> None:
    signer, key = _dccboxed_signer("90B3D51F30010000")
    root = build_request(
        RequestId(SUPPLIER, Eui64.parse("00DB1234567890A0"), 5), CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1"
    )
    key_info = etree.Element(f"{{{DS_NS}}}KeyInfo", nsmap={"ds": DS_NS})
    issuer_serial = etree.SubElement(etree.SubElement(key_info, f"{{{DS_NS}}}X509Data"), f"{{{DS_NS}}}X509IssuerSerial")
    etree.SubElement(issuer_serial, f"{{{DS_NS}}}X509IssuerName").text = rfc4514_issuer(signer.certificate)
    etree.SubElement(issuer_serial, f"{{{DS_NS}}}X509SerialNumber").text = str(signer.certificate.serial)
    signed = XMLSigner(
        signature_algorithm=SignatureMethod.ECDSA_SHA256,
        c14n_algorithm="http://www.w3.org/2001/10/xml-exc-c14n#",
    ).sign(root, key=key, key_info=key_info, exclude_c14n_transform_element=not explicit_c14n_transform)
    data = _serialise(signed)
    verified = verify_enveloped(parse_xml(data), static_lookup(_dccboxed_certificates()))
    assert verified.signer == SUPPLIER


def test_signer_must_be_the_request_originator() -> None:
    signer, _ = _dccboxed_signer("90B3D51F30020000")  # the network operator's XML key
    root = build_request(
        RequestId(SUPPLIER, Eui64.parse("00DB1234567890A0"), 5), CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1"
    )
    verified = verify_enveloped(parse_xml(signer.sign_bytes(root)), static_lookup(_dccboxed_certificates()))
    with pytest.raises(WrongSigner, match="originator is 90-B3-D5-1F-30-01-00-00") as caught:
        check_signer(verified, SUPPLIER)
    assert caught.value.code is ResponseCode.REQUEST_ID_ORIGINATOR_MISMATCH


# --- tampering and malformed signatures --------------------------------------------------------------


@pytest.fixture
def signed() -> bytes:
    signer, _ = _dccboxed_signer("90B3D51F30010000")
    root = build_request(
        RequestId(SUPPLIER, Eui64.parse("00DB1234567890A0"), 9), CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1"
    )
    return signer.sign_bytes(root)


def _verify(data: bytes) -> None:
    verify_enveloped(parse_xml(data), static_lookup(_dccboxed_certificates()))


def test_untouched_signature_verifies(signed: bytes) -> None:
    _verify(signed)


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        (b"00-DB-12-34-56-78-90-A0:9", b"00-DB-12-34-56-78-90-A1:9", DigestMismatch),
        (b"<sr:CommandVariant>1<", b"<sr:CommandVariant>2<", DigestMismatch),
        (b'URI=""', b'URI="#body"', MalformedSignature),
        (b"xmldsig-more#ecdsa-sha256", b"xmldsig-more#rsa-sha256", UnsupportedAlgorithm),
        (b"xmlenc#sha256", b"xmlenc#sha512", UnsupportedAlgorithm),
        (b"xml-exc-c14n#", b"xml-c14n11", UnsupportedAlgorithm),
        (b"xmldsig#enveloped-signature", b"xmldsig#base64", UnsupportedAlgorithm),
        (b"<ds:X509SerialNumber>", b"<ds:X509SerialNumber>1", UnknownCertificate),
        (b"CN=Z1,OU=07", b"CN=Z2,OU=07", UnknownCertificate),
        (b"<ds:X509SerialNumber>", b"<ds:X509SerialNumber>x", MalformedSignature),
        (b"<ds:DigestValue>", b"<ds:DigestValue>!", MalformedSignature),
    ],
)
def test_tampering_gives_a_specific_error(signed: bytes, old: bytes, new: bytes, error: type[XmlSignatureError]) -> None:
    assert old in signed
    with pytest.raises(error):
        _verify(signed.replace(old, new, 1))


def test_changed_signature_value_fails(signed: bytes) -> None:
    root = parse_xml(signed)
    value = root.find(f".//{{{DS_NS}}}SignatureValue")
    assert value is not None
    raw = bytearray(base64.b64decode(value.text or ""))
    raw[10] ^= 1
    value.text = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(BadSignatureValue, match="does not verify"):
        verify_enveloped(root, static_lookup(_dccboxed_certificates()))
    value.text = base64.b64encode(bytes(raw[:40])).decode()
    with pytest.raises(BadSignatureValue, match="40 bytes"):
        verify_enveloped(root, static_lookup(_dccboxed_certificates()))


def test_second_or_misplaced_signature_is_refused(signed: bytes) -> None:
    root = parse_xml(signed)
    signature = root.find(f"{{{DS_NS}}}Signature")
    assert signature is not None
    root.append(copy.deepcopy(signature))
    with pytest.raises(MalformedSignature, match="2 ds:Signature"):
        verify_enveloped(root, static_lookup(_dccboxed_certificates()))
    root.remove(root[-1])
    root[0].append(signature)  # inside the Header
    with pytest.raises(MalformedSignature, match="child of the root"):
        verify_enveloped(root, static_lookup(_dccboxed_certificates()))


def test_signing_twice_is_refused(signed: bytes) -> None:
    signer, _ = _dccboxed_signer("90B3D51F30010000")
    with pytest.raises(MalformedSignature, match="already signed"):
        signer.sign(parse_xml(signed))


def test_whitespace_after_the_signature_is_kept_in_the_digest() -> None:
    signer, _ = _dccboxed_signer("90B3D51F30010000")
    root = parse_xml(b'<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway">\n  <sr:Header/>\n</sr:Request>')
    data = signer.sign_bytes(root)
    # Move the closing whitespace after the Signature: the enveloped transform keeps text nodes.
    reparsed = parse_xml(data)
    header, signature = reparsed[0], reparsed[1]
    signature.tail, header.tail = header.tail, "\n  "
    header.tail = None
    signature.tail = "\n"
    rewritten = bytes(etree.tostring(reparsed))
    assert b"</ds:Signature>\n</sr:Request>" in rewritten
    verify_enveloped(parse_xml(rewritten), static_lookup(_dccboxed_certificates()))
    pem = _smki("xml-sign-90B3D51F30010000-ds.pem").read_text()
    XMLVerifier().verify(rewritten, x509_cert=pem, expect_config=SignatureConfiguration(require_x509=False))


# --- certificates from the SMKI repository ------------------------------------------------------------


def test_repository_lookup_checks_role_and_revocation() -> None:
    world = build_world(1, seed=5)
    keystore = SoftKeystore(None, passphrase=b"x")
    keystore.generate("xml", KeyUsage.DIGITAL_SIGNATURE)

    def issue(role: SmkiRole) -> OrganisationCertificate:
        certificate = world.smki.issue_organisation(
            subject_public_key=keystore.public_key("xml"),
            role=int(role),
            eui64=world.supplier.eui.value,
            usage=KeyUsage.DIGITAL_SIGNATURE,
            not_before=START,
            not_after=START + dt.timedelta(days=30),
        )
        world.repository.publish(certificate)
        return certificate

    good, wrong_role = issue(SmkiRole.XML_SIGNING_USER), issue(SmkiRole.SUPPLIER)
    clock = FixedClock(START + dt.timedelta(days=1))
    lookup = repository_lookup(world.repository, clock)
    root = build_request(RequestId(world.supplier.eui, world.home(0).esme.eui, 1), CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1")
    data = XmlSigner(keystore, "xml", good).sign_bytes(root)
    assert verify_enveloped(parse_xml(data), lookup).certificate == good
    assert issuer_matches(good, rfc4514_issuer(good))

    wrong = XmlSigner(keystore, "xml", wrong_role).sign_bytes(copy.deepcopy(_strip_signature(parse_xml(data))))
    with pytest.raises(CertificateNotAcceptable, match="role 02"):
        verify_enveloped(parse_xml(wrong), lookup)

    clock.advance(dt.timedelta(days=60))
    with pytest.raises(CertificateNotAcceptable, match="not valid"):
        verify_enveloped(parse_xml(data), lookup)
    clock.advance(dt.timedelta(days=-60))
    world.repository.revoke(good.serial, clock.now())
    with pytest.raises(CertificateNotAcceptable, match="revoked"):
        verify_enveloped(parse_xml(data), lookup)
    with pytest.raises(UnknownCertificate):
        lookup(IssuerSerial(rfc4514_issuer(good), 12345))


def test_cryptography_reads_the_certificates_we_name() -> None:
    # X509IssuerName as we write it equals the RFC 4514 form of the issuer for DCC Boxed's certificates.
    pem = _smki("xml-sign-90B3D51F30010000-ds.pem").read_bytes()
    issuer = x509.load_pem_x509_certificate(pem).issuer.rfc4514_string()
    assert issuer == rfc4514_issuer(_certificate("xml-sign-90B3D51F30010000-ds.pem"))


# --- the one-pass draft (canonical octets as the document) against the tree-built one -------------


def _world_signer() -> XmlSigner:
    world = build_world(1, seed=11)
    keystore = SoftKeystore(None, passphrase=b"test")
    certificate = world.smki.issue_organisation(
        subject_public_key=keystore.generate("xml", KeyUsage.DIGITAL_SIGNATURE),
        role=int(SmkiRole.XML_SIGNING_USER),
        eui64=SUPPLIER.value,
        usage=KeyUsage.DIGITAL_SIGNATURE,
        not_before=START,
        not_after=START + dt.timedelta(days=30),
    )
    return XmlSigner(keystore, "xml", certificate)


def _signxml_verifies(data: bytes, signer: XmlSigner) -> None:
    pem = x509.load_der_x509_certificate(signer.certificate.der).public_bytes(serialization.Encoding.PEM)
    result = XMLVerifier().verify(data, x509_cert=pem.decode(), expect_config=SignatureConfiguration(require_x509=False, verification_time=START + dt.timedelta(days=1)))
    assert result.signed_xml is not None


def test_one_pass_draft_signs_what_the_tree_built_signature_signs() -> None:
    signer = _world_signer()
    root = build_request(RequestId(SUPPLIER, Eui64.parse("00DB1234567890A0"), 7), CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1")
    fast = draft_signature(root, signer.certificate)
    # the tree-built path, taken for documents with comments, gives the same SignedInfo octets
    commented = copy.deepcopy(root)
    commented.append(etree.Comment("not digested"))
    slow = draft_signature(commented, signer.certificate)
    assert fast.signed_info == slow.signed_info
    assert root.find(f"{{{DS_NS}}}Signature") is None and commented.find(f"{{{DS_NS}}}Signature") is None
    for draft in (fast, slow):
        data = draft.finish(signer.keystore.sign(signer.label, draft.signed_info))
        assert verify_enveloped(parse_xml(data), static_lookup([signer.certificate])).signer == SUPPLIER
        _signxml_verifies(data, signer)
    slow_data = slow.finish(signer.keystore.sign(signer.label, slow.signed_info))
    assert b"<!--not digested-->" in slow_data


_SIGNER = _world_signer()


@settings(max_examples=60, deadline=None)
@given(text=st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\t\n\r&<>\"'"), max_size=40))
def test_one_pass_draft_verifies_whatever_the_text(text: str) -> None:
    signer = _SIGNER
    root = build_request(RequestId(SUPPLIER, Eui64.parse("00DB1234567890A0"), 8), CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1")
    body = root[-1]
    element = etree.SubElement(body, "free", attr=text)
    element.text = text
    element.tail = text
    data = signer.sign_bytes(root)
    parsed = parse_xml(data)
    free = parsed.find(".//free")
    assert free is not None  # canonical XML escapes CR, tabs and newlines, so all survive
    assert ((free.text or ""), free.get("attr"), (free.tail or "")) == (text, text, text)
    assert verify_enveloped(parsed, static_lookup([signer.certificate])).signer == SUPPLIER
    _signxml_verifies(data, signer)
