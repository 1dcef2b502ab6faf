"""DUIS XML: the schema, the published examples, reading requests, building responses."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from smarthydra.duis.codes import DccAlertCode, ResponseCode
from smarthydra.duis.request import CommandVariant, RequestId
from smarthydra.duis.xml import (
    BODY_ELEMENTS,
    SR_NS,
    BodyMismatch,
    DuisResponse,
    DuisSchema,
    DuisXmlError,
    MalformedXml,
    SchemaInvalid,
    SchemaNotFound,
    build_request,
    build_response,
    build_signed_precommand_request,
    canonical_response,
    element_to_value,
    parse_xml,
    read_request,
    read_response,
    response_id,
    service_reference_of,
)
from smarthydra.eui import Eui64
from tests.conftest import conformance_path

RID = RequestId.parse("90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:1007")
AT = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def schema() -> DuisSchema:
    return DuisSchema.load(conformance_path("duis", "duis-5.4.xsd").parent)


def _examples() -> list[Path]:
    from tests.conftest import CONFORMANCE

    folder = CONFORMANCE / "duis" / "examples"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def _tostring(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


# --- the published examples -------------------------------------------------------------------


@pytest.mark.parametrize("path", _examples(), ids=lambda p: p.name)
def test_every_published_example_parses_and_validates(schema: DuisSchema, path: Path) -> None:
    root = parse_xml(path.read_bytes())
    schema.validate(root)
    if root.tag == f"{{{SR_NS}}}Request":
        request = read_request(root)
        assert request.request_id.originator == Eui64.parse("90-B3-D5-1F-30-01-00-00")
        assert request.body_element == BODY_ELEMENTS[request.service_reference_variant]
    else:
        response = read_response(root)
        assert response.service_reference_variant == "11.2"


def test_examples_are_present() -> None:
    conformance_path("duis", "examples")
    assert len(_examples()) >= 7


def test_example_requests_read_as_the_files_say(schema: DuisSchema) -> None:
    folder = conformance_path("duis", "examples")
    read = read_request(parse_xml((folder / "GCS13a_4.1.1_SUCCESS_RELIABLE_GSME_REQUEST_DUIS.XML").read_bytes()))
    assert (read.service_reference, read.service_reference_variant) == ("4.1", "4.1.1")
    assert read.command_variant is CommandVariant.NON_CRITICAL_TO_DEVICE
    assert read.request_id.target == Eui64.parse("00DB1234567890A3")
    assert read.parameters == {}

    krp = read_request(parse_xml((folder / "CS02aMAC_6.24.1_SUCCESS_REQUEST_DUIS.XML").read_bytes()))
    assert krp.parameters == {"RemotePartyRole": ["Supplier", "NetworkOperator"]}

    tariff = read_request(
        parse_xml((folder / "ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_REQUEST_DUIS.XML").read_bytes())
    )
    assert tariff.command_variant is CommandVariant.CRITICAL_TRANSFORM
    assert tariff.request_id.counter == 1007
    elements = tariff.parameters["ElecTariffElements"]
    assert isinstance(elements, dict)
    assert elements["CurrencyUnits"] == "GBP"
    thresholds = elements["ThresholdMatrix"]["Thresholds"]  # type: ignore[index]
    assert thresholds[0]["BlockThreshold"][2] == {"@index": "3", "#text": "4294967295"}


def test_example_responses_read_as_the_files_say() -> None:
    folder = conformance_path("duis", "examples")
    message = read_response(parse_xml((folder / "message.xml").read_bytes()))
    assert message.code is ResponseCode.SUCCESS
    assert message.response_id == RequestId.parse("00-07-81-D7-00-00-36-CE:90-B3-D5-1F-30-01-00-00:1655397248260")
    assert message.gbcs is not None and message.gbcs[:1] == b"\xdd"  # a GBCS general-ciphering APDU
    error = read_response(parse_xml((folder / "acknowledgement-error.xml").read_bytes()))
    assert error.code == "E65"  # valid in the XSD, not one this DCC produces
    assert error.gbcs is None


def test_body_element_table_matches_schema_and_matrix(schema: DuisSchema) -> None:
    xsd = etree.parse(str(schema.path))
    xs = "{http://www.w3.org/2001/XMLSchema}"
    request_type = next(c for c in xsd.getroot() if c.tag == f"{xs}complexType" and c.get("name") == "Request")
    body = next(e for e in request_type.iter(f"{xs}element") if e.get("name") == "Body")
    choice = {e.get("name") for e in body.find(f"{xs}complexType/{xs}choice") if isinstance(e.tag, str)}
    assert set(BODY_ELEMENTS.values()) <= choice
    assert choice - set(BODY_ELEMENTS.values()) == {"SignedPreCommand"}
    matrix = json.loads(conformance_path("duis", "service-request-matrix.json").read_text())
    assert {row["Service Reference Variant"] for row in matrix} == set(BODY_ELEMENTS)
    variant_type = next(
        c for c in xsd.getroot() if c.tag == f"{xs}simpleType" and c.get("name") == "ServiceReferenceVariant"
    )
    variants = {e.get("value") for e in variant_type.iter(f"{xs}enumeration")}
    assert set(BODY_ELEMENTS) <= variants


def test_missing_schema_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SchemaNotFound, match=r"duis-5\.4\.xsd"):
        DuisSchema.load(tmp_path)


# --- building and reading requests ---------------------------------------------------------------


def test_4_1_1_request_round_trip(schema: DuisSchema) -> None:
    root = build_request(
        RID, CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1", {"ExecutionDateTime": "2026-02-01T00:00:00Z"}
    )
    parsed = parse_xml(_tostring(root))
    schema.validate(parsed)
    request = read_request(parsed)
    assert request.service_reference == "4.1"
    assert request.body_element == "ReadInstantaneousImportRegisters"
    assert request.execution_datetime == dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    service_request = request.to_service_request(RID.originator, "IS")
    assert service_request.service_reference_variant == "4.1.1"
    assert service_request.execution_datetime == request.execution_datetime
    assert service_request.parameters == {"ExecutionDateTime": "2026-02-01T00:00:00Z"}


def test_7_2_transform_and_signed_precommand_round_trip(schema: DuisSchema) -> None:
    transform = parse_xml(_tostring(build_request(RID, CommandVariant.CRITICAL_TRANSFORM, "7.2")))
    schema.validate(transform)
    read = read_request(transform)
    assert (read.service_reference, read.body_element, read.parameters) == ("7.2", "DisableSupply", {})
    assert not read.is_signed_precommand

    gbcs = bytes(range(40))
    signed = parse_xml(
        _tostring(build_signed_precommand_request(RID, CommandVariant.CRITICAL_SIGNED_TO_DEVICE, "7.2", gbcs))
    )
    schema.validate(signed)
    read = read_request(signed)
    assert read.is_signed_precommand and read.gbcs == gbcs
    precommand = read.to_signed_precommand(RID.originator, "IS")
    assert (precommand.gbcs, precommand.command_variant) == (gbcs, CommandVariant.CRITICAL_SIGNED_TO_DEVICE)


def test_every_variant_builds_a_header_the_schema_accepts(schema: DuisSchema) -> None:
    # Bodies with content would need real parameters; those whose type is empty validate as is.
    accepted = 0
    for variant in BODY_ELEMENTS:
        root = build_request(RID, CommandVariant.NON_CRITICAL_TO_DEVICE, variant)
        header = root.find(f"{{{SR_NS}}}Header")
        assert header is not None
        assert header[2].text == service_reference_of(variant)
        try:
            schema.validate(parse_xml(_tostring(root)))
        except SchemaInvalid as exc:
            assert "Header" not in str(exc) and "ServiceReference" not in str(exc), exc
            continue
        assert read_request(root).body_element == BODY_ELEMENTS[variant]
        accepted += 1
    assert accepted >= 20


def test_unknown_body_element_is_refused_with_e11(schema: DuisSchema) -> None:
    root = build_request(RID, CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1", body_element="FrobnicateMeter")
    with pytest.raises(SchemaInvalid) as caught:
        schema.validate(root)
    assert caught.value.code is ResponseCode.INVALID_REQUEST
    assert caught.value.request_id == RID
    assert "FrobnicateMeter" in str(caught.value)


def test_body_of_another_variant_is_refused(schema: DuisSchema) -> None:
    root = build_request(RID, CommandVariant.NON_CRITICAL_TO_DEVICE, "7.2", body_element="ReadInstantaneousImportRegisters")
    schema.validate(root)  # each part is valid on its own
    with pytest.raises(BodyMismatch, match=r"does not belong to service reference variant 7\.2") as caught:
        read_request(root)
    assert caught.value.code is ResponseCode.INVALID_REQUEST and caught.value.request_id == RID


def test_command_variant_and_body_must_agree() -> None:
    signed_with_cv1 = build_signed_precommand_request(RID, CommandVariant.CRITICAL_SIGNED_TO_DEVICE, "7.2", b"x")
    header = signed_with_cv1.find(f"{{{SR_NS}}}Header")
    assert header is not None
    header[1].text = "1"
    with pytest.raises(BodyMismatch, match="needs command variant 5-7"):
        read_request(signed_with_cv1)
    with pytest.raises(BodyMismatch, match="needs a SignedPreCommand body"):
        read_request(build_request(RID, CommandVariant.CRITICAL_SIGNED_TO_DEVICE, "7.2"))
    with pytest.raises(BodyMismatch):
        build_signed_precommand_request(RID, CommandVariant.CRITICAL_TRANSFORM, "7.2", b"x")


def test_reference_and_variant_must_agree() -> None:
    root = build_request(RID, CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1")
    header = root.find(f"{{{SR_NS}}}Header")
    assert header is not None
    header[2].text = "7.2"
    with pytest.raises(BodyMismatch, match=r"not a variant of ServiceReference 7\.2"):
        read_request(root)


# --- hostile and broken input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"   ", "empty"),
        (b"<sr:Request", "not well-formed"),
        (b"\xff\xfe<a/>", "not well-formed"),
        (b"<a>&undefined;</a>", "not well-formed"),
        (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
            b"<lolz>&lol2;</lolz>",
            "DTD",
        ),
        (b'<!DOCTYPE a SYSTEM "http://example.invalid/a.dtd"><a/>', "DTD"),
    ],
)
def test_malformed_input_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(MalformedXml, match=message) as caught:
        parse_xml(data)
    assert caught.value.request_id is None


def test_oversize_input_is_refused_before_parsing() -> None:
    with pytest.raises(MalformedXml, match="limit is 100"):
        parse_xml(b"<a>" + b"x" * 200 + b"</a>", max_bytes=100)


def test_wrong_root_is_schema_invalid(schema: DuisSchema) -> None:
    with pytest.raises(SchemaInvalid):
        schema.validate(parse_xml(b"<a/>"))
    with pytest.raises(SchemaInvalid, match="expected sr:Request"):
        read_request(parse_xml(b"<a/>"))
    with pytest.raises(SchemaInvalid, match="expected sr:Response"):
        read_response(parse_xml(b"<a/>"))


_VALID = _tostring(build_request(RID, CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_fuzz_random_bytes_only_raise_duis_errors(schema: DuisSchema, data: bytes) -> None:
    try:
        root = parse_xml(data)
        schema.validate(root)
        read_request(root)
    except DuisXmlError as exc:
        assert exc.code.value.startswith("E")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, len(_VALID) - 1), st.integers(0, 30), st.binary(max_size=12))
def test_fuzz_mutated_request_only_raises_duis_errors(schema: DuisSchema, at: int, cut: int, insert: bytes) -> None:
    data = _VALID[:at] + insert + _VALID[at + cut :]
    try:
        root = parse_xml(data)
        schema.validate(root)
        read_request(root)
    except DuisXmlError as exc:
        assert str(exc)


# --- responses -------------------------------------------------------------------------------------


def _round_trip(schema: DuisSchema, response: DuisResponse) -> DuisResponse:
    root = parse_xml(_tostring(build_response(response)))
    schema.validate(root)
    return read_response(root)


def test_device_response_round_trip(schema: DuisSchema) -> None:
    gbcs = bytes.fromhex("DD000000000000451100000000DF09")
    sent = DuisResponse(RID, ResponseCode.SUCCESS, AT, "4.1.1", response_id=response_id(RID), gbcs=gbcs)
    got = _round_trip(schema, sent)
    assert got == DuisResponse(RID, ResponseCode.SUCCESS, AT, "4.1.1", "4.1", response_id(RID), gbcs)
    assert got.response_id is not None and got.response_id.originator == RID.target


def test_precommand_response_round_trip(schema: DuisSchema) -> None:
    got = _round_trip(schema, DuisResponse(RID, ResponseCode.SUCCESS, AT, "7.2", precommand=b"\xdf\x09abc"))
    assert (got.precommand, got.gbcs, got.gbcs_version) == (b"\xdf\x09abc", None, "4.3")


@pytest.mark.parametrize("code", list(ResponseCode))
def test_every_response_code_builds_a_valid_acknowledgement(schema: DuisSchema, code: ResponseCode) -> None:
    got = _round_trip(schema, DuisResponse(RID, code, AT, "4.1.1"))
    assert (got.code, got.request_id, got.gbcs, got.service_reference) == (code, RID, None, "4.1")
    assert code.meaning


def test_quarantine_alert_round_trip(schema: DuisSchema) -> None:
    sent = DuisResponse(
        RID, ResponseCode.ACKNOWLEDGED, AT, "7.2", dcc_alert=DccAlertCode.QUARANTINED_REQUEST, quarantine_ticket=17
    )
    got = _round_trip(schema, sent)
    assert (got.dcc_alert, got.quarantine_ticket, got.request_id) == (DccAlertCode.QUARANTINED_REQUEST, 17, RID)
    with pytest.raises(ValueError, match="quarantine ticket"):
        build_response(DuisResponse(RID, ResponseCode.ACKNOWLEDGED, AT, "7.2", dcc_alert=DccAlertCode.QUARANTINED_REQUEST))


_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\r\n\t&<>\"'"), max_size=12)


@settings(max_examples=150, deadline=None)
@given(
    code=st.sampled_from(list(ResponseCode)) | _TEXT,
    variant=_TEXT,
    reference=st.none() | _TEXT,
    with_request_id=st.booleans(),
    with_response_id=st.booleans(),
    payload=st.sampled_from(["none", "gbcs", "precommand"]),
    data=st.binary(max_size=40),
    version=st.none() | _TEXT,
    microseconds=st.integers(0, 999_999),
)
def test_canonical_response_is_the_c14n_of_the_built_tree(
    code: ResponseCode | str,
    variant: str,
    reference: str | None,
    with_request_id: bool,
    with_response_id: bool,
    payload: str,
    data: bytes,
    version: str | None,
    microseconds: int,
) -> None:
    response = DuisResponse(
        RID if with_request_id else None,
        code,
        AT.replace(microsecond=microseconds),
        variant,
        reference,
        response_id(RID) if with_response_id else None,
        gbcs=data if payload == "gbcs" else None,
        precommand=data if payload == "precommand" else None,
        gbcs_version=version,
    )
    expected = etree.tostring(build_response(response), method="c14n")
    assert canonical_response(response) == expected


def test_canonical_response_leaves_alerts_and_bodies_to_the_tree() -> None:
    alert = DuisResponse(RID, ResponseCode.ACKNOWLEDGED, AT, "7.2", dcc_alert=DccAlertCode.QUARANTINED_REQUEST, quarantine_ticket=3)
    inventory = DuisResponse(RID, ResponseCode.SUCCESS, AT, "8.2", body=("DSPInventory", {}))
    assert canonical_response(alert) is None and canonical_response(inventory) is None
    with pytest.raises(ValueError, match="variant"):
        canonical_response(DuisResponse(RID, ResponseCode.SUCCESS, AT, None))


def test_response_with_bad_payload_is_refused() -> None:
    root = build_response(DuisResponse(RID, ResponseCode.SUCCESS, AT, "4.1.1", gbcs=b"abc"))
    payload = root.find(f".//{{{SR_NS}}}GBCSPayload")
    assert payload is not None
    assert base64.b64decode(payload.text or "") == b"abc"
    payload.text = "%%%"  # libxml2's xs:base64Binary check lets this through; the reader does not
    with pytest.raises(SchemaInvalid, match="base64"):
        read_response(root)


def test_generic_body_decoding_is_the_inverse_of_building() -> None:
    parameters: dict[str, object] = {
        "A": "1",
        "B": {"C": ["x", "y"], "D": {}},
        "E": {"@index": "2", "#text": "z"},
    }
    root = build_request(RID, CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1", parameters)
    body = root.find(f"{{{SR_NS}}}Body")
    assert body is not None
    assert element_to_value(body[0]) == parameters
