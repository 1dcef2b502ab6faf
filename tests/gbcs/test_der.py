"""DER codec: generic tree, byte-exact on every RTDS security payload, trust-anchor cells."""

from __future__ import annotations

import pytest
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st

from smarthydra.gbcs.der import (
    DerNode,
    TagClass,
    Universal,
    decode_der,
    embedded_certificates,
    is_der,
    trust_anchor_cells,
)
from smarthydra.gbcs.envelope import decode_message, encode_length
from smarthydra.gbcs.errors import BadField, BadLength, GbcsDecodeError, TrailingBytes, Truncated
from smarthydra.gbcs.rtds import rtds_message_files
from tests.conftest import conformance_path
from tests.gbcs.vectors import read_hex

SUPPLIER_EUI = bytes.fromhex("90b3d51f30010000")
# A cell built by hand: role 2 (supplier), keyUsage digitalSignature, status 0, 4 x 8 bytes.
CELL = bytes.fromhex(
    "3034"
    "3007020102030207800a0100"
    "0408" + SUPPLIER_EUI.hex() + "04081111111111111111"
    "0408" + SUPPLIER_EUI.hex() + "04082222222222222222"
)


def test_cell_is_recognised_and_round_trips() -> None:
    wrapped = bytes.fromhex("308200380500") + CELL
    tree = decode_der(wrapped)
    assert tree.length_octets == 2 and tree.encode() == wrapped
    (cell,) = trust_anchor_cells(tree)
    assert cell.role == 2 and cell.role_name == "supplier"
    assert cell.status == 0 and not cell.is_key_agreement
    assert cell.subject_unique_id == SUPPLIER_EUI
    assert cell.subject_key_identifier == bytes.fromhex("1111111111111111")
    assert cell.authority_key_identifier == bytes.fromhex("2222222222222222")


def test_primitive_and_constructed_nodes() -> None:
    node = DerNode(
        TagClass.UNIVERSAL,
        True,
        Universal.SEQUENCE,
        children=(
            DerNode(TagClass.UNIVERSAL, False, Universal.INTEGER, b"\x03\xeb"),
            DerNode(TagClass.CONTEXT, False, 1, b"\x01"),
            DerNode(TagClass.UNIVERSAL, False, Universal.NULL),
        ),
    )
    assert node.encode().hex() == "3009020203eb8101010500"
    assert decode_der(node.encode()) == node
    assert node.children[0].as_int() == 1003
    assert node.children[1].name == "[CONTEXT 1]"


@pytest.mark.parametrize(
    ("hex_data", "error"),
    [
        ("", Truncated),
        ("30", Truncated),
        ("3004020101", Truncated),
        ("3080020100", BadLength),  # indefinite
        ("30850000000000", BadLength),
        ("8101", Truncated),
        ("0481050000000000", BadLength),  # 81 for a short length
        ("1f0100", BadField),  # high tag number
        ("0500ff", TrailingBytes),
    ],
)
def test_malformed_der(hex_data: str, error: type[GbcsDecodeError]) -> None:
    with pytest.raises(error):
        decode_der(bytes.fromhex(hex_data))


def test_deep_nesting_is_refused() -> None:
    data = b"\x05\x00"
    for _ in range(40):
        data = b"\x30" + encode_length(len(data)) + data
    with pytest.raises(BadField, match="nesting"):
        decode_der(data)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=80))
def test_fuzz_der_only_decode_errors(data: bytes) -> None:
    try:
        tree = decode_der(data)
    except GbcsDecodeError:
        return
    assert tree.encode() == data


def test_every_rtds_der_payload_round_trips() -> None:
    root = conformance_path("gbcs", "rtds-4.5.0")
    count = sequences = cells = certificates = 0
    for path in rtds_message_files(root):
        payload = decode_message(read_hex(path)).payload
        if not is_der(payload):
            continue
        count += 1
        sequences += payload[0] == 0x30
        tree = decode_der(payload)
        assert tree.encode() == payload, path.name
        cells += len(trust_anchor_cells(tree))
        for der in embedded_certificates(tree):
            x509.load_der_x509_certificate(der)
            certificates += 1
    assert (count, sequences) == (178, 146)
    assert cells == 56
    assert certificates == 136


def test_cs02_response_cells_name_the_supplier() -> None:
    root = conformance_path("gbcs", "rtds-4.5.0")
    path = (
        root
        / "6.15.1_CS02bSupplierBySupplier"
        / "CS02bSupplierBySupplier_6.15.1_IMMEDIATE_SUCCESS_RESPONSE_GBCS.HEX"
    )
    if not path.exists():
        pytest.skip(f"RTDS file not found: {path}")
    cells = trust_anchor_cells(decode_der(decode_message(read_hex(path)).payload))
    assert [c.role for c in cells] == [2, 2]
    assert {c.subject_unique_id for c in cells} == {SUPPLIER_EUI}
    assert [c.is_key_agreement for c in cells] == [False, True]
