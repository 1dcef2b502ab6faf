"""GBCS responses and alerts to DUIS: every RTDS RESPONSE and ALERT maps to a schema-valid
DUIS message, signed by the DCC XML-signing key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree

from smarthydra.crypto.keystore import KeyUsage
from smarthydra.crypto.softstore import SoftKeystore
from smarthydra.dcc.responses import (
    ResponseMappingError,
    dcc_alert,
    decode_device_message,
    device_alert,
    response_message,
    to_duis,
)
from smarthydra.duis.xml import SR_NS, DuisSchema, SchemaInvalid, parse_xml, read_response
from smarthydra.duis.xmldsig import (
    XmlSignatureError,
    XmlSigner,
    check_signer,
    static_lookup,
    verify_enveloped,
)
from smarthydra.gbcs.envelope import CraFlag
from smarthydra.gbcs.rtds import read_hex_file
from smarthydra.pki.certificates import OrganisationCertificate, parse_certificate
from tests.conftest import conformance_path

AT = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
SR = f"{{{SR_NS}}}"


def _rtds() -> Path:
    return conformance_path("gbcs", "rtds-4.5.0")


def _schema() -> DuisSchema:
    return DuisSchema.load(conformance_path("duis"))


def message_code_index(rtds: Path) -> dict[int, str]:
    """Message code -> service request variant, from the RTDS folders of DUIS requests."""
    index: dict[int, str] = {}
    for folder in sorted(rtds.iterdir()):
        srv = folder.name.split("_", 1)[0]
        if srv == "NA":
            continue
        for path in folder.iterdir():
            if any(kind in path.name for kind in ("_RESPONSE_", "_COMMAND_", "_ALERT_")):
                index.setdefault(decode_device_or_command_code(path), srv)
    return index


def decode_device_or_command_code(path: Path) -> int:
    from smarthydra.gbcs.envelope import decode_general_signing, decode_message

    data = read_hex_file(path)
    gs = decode_general_signing(data) if data[0] == 0xDF else decode_message(data).general_signing
    return gs.message_code


def test_every_rtds_response_and_alert_maps_to_valid_duis() -> None:
    rtds, schema = _rtds(), _schema()
    index = message_code_index(rtds)
    counts = {"response": 0, "alert": 0, "future-dated": 0}
    internal: list[str] = []
    failures: list[str] = []
    for path in sorted(rtds.glob("*/*")):
        if "_RESPONSE_" not in path.name and "_ALERT_" not in path.name:
            continue
        srv = path.parent.name.split("_", 1)[0]
        data = read_hex_file(path)
        message = decode_device_message(data)
        try:
            if message.cra_flag is CraFlag.RESPONSE:
                if srv == "NA":
                    internal.append(path.name)  # DCC-internal use case: no DUIS request
                    continue
                root = response_message(data, service_reference_variant=srv, at=AT, schema=schema)
                counts["response"] += 1
                assert read_response(root).gbcs == data
            else:
                root = device_alert(data, at=AT, service_reference_for=index.get, schema=schema)
                fd = root.find(f"{SR}Body/{SR}ResponseMessage/{SR}FutureDatedDeviceAlertMessage")
                counts["future-dated" if fd is not None else "alert"] += 1
        except ResponseMappingError as exc:
            failures.append(f"{path.name}: {exc}")
    print(f"\nRTDS responses/alerts to DUIS: {counts}, DCC-internal responses: {len(internal)}")
    assert failures == []
    assert counts["response"] + counts["alert"] + counts["future-dated"] + len(internal) == 596


def test_alert_code_is_read_from_each_payload_kind() -> None:
    rtds = _rtds()
    for name in (
        "CS09_NA_8F8B_ALERT_GBCS.HEX",  # DER
        "FDRA-ZigBee_NA_8F72_ALERT_GBCS.HEX",  # GBZ
        "ECS102_NA_8F87_OUTPUT_ALERT_GBCS.HEX",  # xDLMS
    ):
        (path,) = rtds.glob(f"*/{name}")
        message = decode_device_message(read_hex_file(path))
        assert message.alert_code == int(name.split("_")[2], 16)


def dcc_signer() -> XmlSigner:
    """The DCC Boxed DSP XML-signing key and certificate (90-B3-D5-1F-30-00-00-02)."""
    name = "dsp-xml-sign-90B3D51F30000002-ds"
    key = serialization.load_pem_private_key(
        conformance_path("smki", f"{name}.key.pem").read_bytes(), None
    )
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    keystore = SoftKeystore(None, passphrase=b"test")
    keystore.import_private_key("xml-sign", key, KeyUsage.DIGITAL_SIGNATURE)
    certificate = parse_certificate(conformance_path("smki", f"{name}.pem").read_bytes())
    assert isinstance(certificate, OrganisationCertificate)
    return XmlSigner(keystore, "xml-sign", certificate)


def test_response_and_alert_are_signed_by_the_dcc_and_verify() -> None:
    rtds, schema, signer = _rtds(), _schema(), dcc_signer()
    lookup = static_lookup([signer.certificate])
    (response,) = rtds.glob("7.2_ECS43/ECS43_7.2_SUCCESS_RESPONSE_GBCS.HEX")
    (alert,) = rtds.glob("NA_ECS80/*ALERT*")
    for root in (
        response_message(
            read_hex_file(response),
            service_reference_variant="7.2",
            at=AT,
            schema=schema,
            signer=signer,
        ),
        device_alert(read_hex_file(alert), at=AT, schema=schema, signer=signer),
    ):
        data = etree.tostring(root)
        reparsed = parse_xml(data)
        schema.validate(reparsed)
        verified = verify_enveloped(reparsed, lookup)
        check_signer(verified, signer.eui)
        # Tampering with the GBCS payload breaks the signature.
        tampered = parse_xml(data.replace(b"<sr:GBCSPayload>", b"<sr:GBCSPayload>AAAA"))
        with pytest.raises(XmlSignatureError):
            verify_enveloped(tampered, lookup)


def test_dcc_alert_is_schema_valid_and_signed() -> None:
    schema, signer = _schema(), dcc_signer()
    failure = etree.Element(f"{SR}CommandFailure")
    etree.SubElement(
        failure, f"{SR}CommandRequestID"
    ).text = "90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:1000"
    etree.SubElement(failure, f"{SR}DeviceID").text = "00-DB-12-34-56-78-90-A0"
    root = dcc_alert("N12", failure, at=AT, schema=schema, signer=signer)
    verify_enveloped(parse_xml(etree.tostring(root)), static_lookup([signer.certificate]))
    broken = etree.Element(f"{SR}CommandFailure")
    etree.SubElement(broken, f"{SR}RequestID").text = "not-a-request-id"
    with pytest.raises(SchemaInvalid):
        dcc_alert("N12", broken, at=AT, schema=schema)


def test_command_is_refused() -> None:
    (path,) = _rtds().glob("4.1.1_ECS17b/ECS17b_4.1.1_SINGLE_SUCCESS_COMMAND_GBCS.HEX")
    with pytest.raises(ResponseMappingError):
        to_duis(read_hex_file(path), at=AT, service_reference_for=lambda _: "4.1.1")


def test_garbage_is_refused() -> None:
    for data in (b"\xdd\x00\x01", b"", b"\xdf\x09"):
        with pytest.raises(ResponseMappingError):
            decode_device_message(data)


def test_unknown_message_code_is_refused() -> None:
    (path,) = _rtds().glob("4.1.1_ECS17b/ECS17b_4.1.1_SINGLE_SUCCESS_RESPONSE_GBCS.HEX")
    with pytest.raises(ResponseMappingError):
        to_duis(read_hex_file(path), at=AT, service_reference_for=lambda _: None)


def test_response_document_round_trips() -> None:
    (path,) = _rtds().glob("4.1.1_ECS17b/ECS17b_4.1.1_SINGLE_SUCCESS_RESPONSE_GBCS.HEX")
    data = read_hex_file(path)
    root = to_duis(data, at=AT, service_reference_for=lambda _: "4.1.1", schema=_schema())
    parsed = read_response(etree.fromstring(etree.tostring(root)))
    assert parsed.service_reference_variant == "4.1.1"
    assert parsed.gbcs == data
    assert parsed.response_id is not None and parsed.request_id is not None
    assert parsed.response_id.originator == parsed.request_id.target
