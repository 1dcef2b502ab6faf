"""Typed payloads to JSON and back: hand-written values and specific errors."""

from __future__ import annotations

import pytest

from smarthydra.gbcs.axdr import BitString, CompactArray, Data, DataType
from smarthydra.gbcs.der import decode_der
from smarthydra.gbcs.gbz import decode_gbz
from smarthydra.gbcs.payload_json import (
    ParamsError,
    data_from_json,
    invoke_id_for,
    payload_from_json,
    payload_to_json,
)
from smarthydra.gbcs.xdlms import decode_xdlms

VALUES = [
    Data(DataType.NULL_DATA),
    Data(DataType.BOOLEAN, True),
    Data(DataType.BIT_STRING, BitString(12, b"\xab\xc0")),
    Data(DataType.COMPACT_ARRAY, CompactArray(b"\x12", b"\x00\x01\x00\x02")),
    Data(DataType.VISIBLE_STRING, "GB meter"),
    Data(DataType.UTF8_STRING, "£5 top-up"),
    Data(DataType.DATE_TIME, bytes.fromhex("07e3010fff090000008000ff")),
    Data(DataType.DATE, bytes.fromhex("07e3010fff")),
    Data(DataType.TIME, bytes.fromhex("09000000")),
    Data(DataType.FLOAT64, 2.5),
    Data(DataType.LONG64, -(1 << 40)),
    Data(DataType.STRUCTURE, [Data(DataType.ENUM, 3), Data(DataType.ARRAY, [])]),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda d: d.type.name)
def test_data_round_trip(value: Data) -> None:
    assert data_from_json(value.to_json()) == value


def test_date_time_may_be_given_as_hex_only() -> None:
    value = data_from_json({"date_time": "07e3010fff090000008000ff"})
    assert value.encode().hex() == "1907e3010fff090000008000ff"


def test_xdlms_gbz_der_round_trip() -> None:
    request = decode_xdlms(bytes.fromhex("D9200003E8000103000900000A006AFF0101120034"))
    assert payload_from_json(payload_to_json(request)) == request
    # A GBZ read with a manufacturer-specific ZCL frame and a from-date-time.
    gbz = decode_gbz(bytes.fromhex("010901110702000b1234567805341207000004"))
    assert payload_from_json(payload_to_json(gbz)) == gbz
    der = decode_der(bytes.fromhex("3082000602010504010a"))
    back = payload_from_json(payload_to_json(der))
    assert back == der and back.encode() == der.encode()


def test_invoke_id_auto() -> None:
    obj = {"xdlms": {"apdu": "data-notification", "body": {"unsigned": 1}}}
    apdu = payload_from_json(obj, counter=0x1_0000_0005)
    assert apdu.encode()[1:5] == invoke_id_for(5).to_bytes(4, "big")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"structure": "x"}, "expected a JSON array"),
        ({"unsigned": "zz"}, "not an integer"),
        ({"octet_string": "0g"}, "not hex"),
        ({"boolean": 1}, "true or false"),
        ({"bit_string": {"bits": 9, "hex": "ff"}}, "expected 2 bytes"),
        ({"date_time": "2020-01-01"}, "not hex"),
        ({"float32": "1"}, "expected a number"),
        ({"unsigned": 1, "integer": 2}, "exactly one of"),
        ([], "expected a JSON object"),
    ],
)
def test_data_errors(value: object, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        data_from_json(value)


def test_deep_nesting_is_refused() -> None:
    value: object = {"unsigned": 1}
    for _ in range(40):
        value = {"structure": [value]}
    with pytest.raises(ParamsError, match="deeper"):
        data_from_json(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"gbz": {"components": [{"control": 1}]}}, "missing 'zcl'"),
        ({"gbz": {"hash": "00"}}, "belong to alert payloads"),
        ({"gbz": {"components": [{"control": 1, "cluster_id": 1794,
                                  "zcl": {"frame_control": 0, "sequence": 0, "command_id": 0},
                                  "body": {"read_attributes": [70000]}}]}}, "outside"),
        ({"der": {"identifier": 31}}, "high-tag-number"),
        ({"der": {"identifier": 48, "length_octets": 9}}, "outside"),
        ({"xdlms": {"apdu": "access-response", "invoke_id": 1, "data": [],
                    "results": [{"kind": "teleport", "result": 0}]}}, "not one of"),
        ({"xdlms": {"apdu": "access-response", "invoke_id": 1, "data": [],
                    "results": [{"kind": "get", "result": "awful"}]}}, "DLMS result"),
    ],
)  # fmt: skip
def test_payload_errors(value: object, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        payload_from_json(value)
