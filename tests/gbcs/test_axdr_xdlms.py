"""A-XDR Data and the xDLMS APDUs: typed both ways, byte-exact on every RTDS xDLMS payload."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smarthydra.gbcs import axdr
from smarthydra.gbcs.axdr import BitString, CosemDateTime, Data, DataType, decode_data_exact
from smarthydra.gbcs.envelope import decode_message
from smarthydra.gbcs.errors import BadField, GbcsDecodeError, GbcsEncodeError, Truncated
from smarthydra.gbcs.payload_json import data_from_json
from smarthydra.gbcs.rtds import rtds_message_files
from smarthydra.gbcs.xdlms import (
    AccessRequest,
    AccessResponse,
    CosemDescriptor,
    DataNotification,
    RequestKind,
    RequestSpecification,
    ResponseSpecification,
    decode_xdlms,
)
from tests.conftest import conformance_path
from tests.gbcs.vectors import read_hex


@pytest.mark.parametrize(
    ("data", "wire"),
    [
        (Data(DataType.NULL_DATA), "00"),
        (Data(DataType.BOOLEAN, True), "03ff"),
        (Data(DataType.INTEGER, -2), "0ffe"),
        (Data(DataType.LONG, -300), "10fed4"),
        (axdr.unsigned(5), "1105"),
        (axdr.long_unsigned(0x34), "120034"),
        (axdr.double_long_unsigned(1000), "06000003e8"),
        (Data(DataType.DOUBLE_LONG, -1), "05ffffffff"),
        (Data(DataType.LONG64_UNSIGNED, 1), "150000000000000001"),
        (axdr.enum_value(30), "161e"),
        (axdr.octet_string(b"\x01\x02"), "09020102"),
        (Data(DataType.VISIBLE_STRING, "GB"), "0a024742"),
        (Data(DataType.BIT_STRING, BitString(10, b"\xff\xc0")), "040affc0"),
        (axdr.structure(axdr.unsigned(1), axdr.array()), "020211010100"),
        (
            Data(DataType.DATE_TIME, bytes.fromhex("07df0101ff000000008000ff")),
            "1907df0101ff000000008000ff",
        ),
        (Data(DataType.FLOAT32, 1.5), "173fc00000"),
    ],
)
def test_data_wire_forms(data: Data, wire: str) -> None:
    assert data.encode().hex() == wire
    assert decode_data_exact(bytes.fromhex(wire)) == data


def test_long_octet_string_uses_ber_length() -> None:
    value = axdr.octet_string(bytes(200))
    assert value.encode()[:3] == b"\x09\x81\xc8"
    assert decode_data_exact(value.encode()) == value


def test_cosem_date_time() -> None:
    raw = bytes.fromhex("07df0101ff000000008000ff")
    parsed = CosemDateTime.from_bytes(raw)
    assert (parsed.year, parsed.month, parsed.day, parsed.deviation) == (2015, 1, 1, -32768)
    assert parsed.to_bytes() == raw
    assert parsed.isoformat() == "2015-01-01T00:00:00"
    with pytest.raises(BadField):
        CosemDateTime.from_bytes(b"\x00")


def test_data_errors() -> None:
    with pytest.raises(BadField, match="tag 7"):
        decode_data_exact(b"\x07")
    with pytest.raises(Truncated):
        decode_data_exact(b"\x06\x00")
    with pytest.raises(Truncated, match="cannot fit"):
        decode_data_exact(b"\x01\x82\xff\xff")
    with pytest.raises(GbcsDecodeError, match="follow"):
        decode_data_exact(b"\x00\x00")
    with pytest.raises(BadField, match="deeper"):
        decode_data_exact(b"\x02\x01" * 40 + b"\x00")
    with pytest.raises(GbcsEncodeError, match="out of range"):
        axdr.unsigned(300).encode()
    with pytest.raises(GbcsEncodeError, match="list"):
        Data(DataType.STRUCTURE, b"").encode()


def _data_strategy() -> st.SearchStrategy[Data]:
    leaves = st.one_of(
        st.just(Data(DataType.NULL_DATA)),
        st.booleans().map(lambda b: Data(DataType.BOOLEAN, b)),
        st.integers(0, 255).map(axdr.unsigned),
        st.integers(-(2**31), 2**31 - 1).map(lambda v: Data(DataType.DOUBLE_LONG, v)),
        st.integers(0, 2**64 - 1).map(lambda v: Data(DataType.LONG64_UNSIGNED, v)),
        st.binary(max_size=140).map(axdr.octet_string),
        st.binary(min_size=12, max_size=12).map(lambda b: Data(DataType.DATE_TIME, b)),
    )
    return st.recursive(
        leaves,
        lambda children: st.lists(children, max_size=4).flatmap(
            lambda items: st.sampled_from(
                [Data(DataType.STRUCTURE, items), Data(DataType.ARRAY, items)]
            )
        ),
        max_leaves=12,
    )


@settings(max_examples=150, deadline=None)
@given(_data_strategy())
def test_data_round_trip_property(data: Data) -> None:
    assert decode_data_exact(data.encode()) == data
    # ... and through the JSON form `gbcs build --params` reads.
    assert data_from_json(json.loads(json.dumps(data.to_json()))) == data


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_data_and_xdlms(raw: bytes) -> None:
    with contextlib.suppress(GbcsDecodeError):
        decode_data_exact(raw)
    for tag in (b"\xd9", b"\xda", b"\x0f"):
        with contextlib.suppress(GbcsDecodeError):
            apdu = decode_xdlms(tag + raw)
            assert apdu.encode() == tag + raw


def test_build_ecs43_disable_supply_request_matches_rtds() -> None:
    path = conformance_path("gbcs", "rtds-4.5.0", "7.2_ECS43", "ECS43_7.2_SUCCESS_COMMAND_GBCS.HEX")
    payload = decode_message(read_hex(path)).payload
    request = AccessRequest(
        invoke_id=0x200003E8,
        date_time=None,
        specifications=[
            RequestSpecification(
                RequestKind.ACTION, CosemDescriptor(9, bytes.fromhex("00000A006AFF"), 1)
            )
        ],
        data=[axdr.long_unsigned(0x34)],
    )
    assert request.encode() == payload
    decoded = decode_xdlms(payload)
    assert decoded == request
    assert isinstance(decoded, AccessRequest)
    assert decoded.counter == 1000
    assert decoded.specifications[0].descriptor.obis == "0-0:10.0.106.255"


def test_ecs43_response_and_alert_shapes() -> None:
    response = AccessResponse(
        0x200003E8, None, [Data(DataType.NULL_DATA)], [ResponseSpecification(RequestKind.ACTION, 0)]
    )
    path = conformance_path(
        "gbcs", "rtds-4.5.0", "7.2_ECS43", "ECS43_7.2_SUCCESS_RESPONSE_GBCS.HEX"
    )
    assert response.encode() == decode_message(read_hex(path)).payload
    note = DataNotification(1, None, axdr.structure(axdr.long_unsigned(0x8F66)))
    assert decode_xdlms(note.encode()) == note


def test_xdlms_errors() -> None:
    with pytest.raises(GbcsDecodeError, match="D9, DA or 0F"):
        decode_xdlms(b"\x01\x00")
    with pytest.raises(BadField, match="choice 9"):
        decode_xdlms(bytes.fromhex("D9200003E8000109000900000A006AFF010100"))
    with pytest.raises(BadField, match="echo"):
        decode_xdlms(bytes.fromhex("DA200003E8000100"))
    with pytest.raises(GbcsDecodeError, match="follow"):
        decode_xdlms(bytes.fromhex("0F200003E8000000"))


def test_every_rtds_xdlms_payload_round_trips() -> None:
    count = 0
    for path in rtds_message_files(conformance_path("gbcs", "rtds-4.5.0")):
        payload = decode_message(read_hex(path)).payload
        if payload[:1] in (b"\xd9", b"\xda", b"\x0f"):
            apdu = decode_xdlms(payload)
            assert apdu.encode() == payload, path.name
            count += 1
    assert count == 743
