"""GBZ codec: hand-built frames, every RTDS GBZ payload byte-exact, encrypted components."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smarthydra.gbcs.envelope import CraFlag, decode_message
from smarthydra.gbcs.errors import (
    BadField,
    BadLength,
    GbcsDecodeError,
    GbcsEncodeError,
    TrailingBytes,
    Truncated,
    UnexpectedTag,
)
from smarthydra.gbcs.gbz import (
    AttributeRecord,
    ClusterPayload,
    DefaultResponse,
    EncryptedZcl,
    FutureDatedAlert,
    GbzAlertHeader,
    GbzComponent,
    GbzPayload,
    ReadAttributes,
    ReadAttributesResponse,
    WriteAttributes,
    WriteAttributesResponse,
    ZclHeader,
    ZclType,
    ZclValue,
    decode_gbz,
    decode_zcl_body,
    is_gbz,
)
from smarthydra.gbcs.rtds import RtdsKeystore, check_message, rtds_message_files
from smarthydra.gbcs.sensitive import find_protected_blocks
from tests.conftest import conformance_path
from tests.gbcs.vectors import read_hex

# A prepayment "set low credit warning level"-shaped command built by hand:
# profile 0109, 1 component, control 01 (last), cluster 0705, length 0x0010,
# ZCL 01 00 09 then 13 payload bytes.
CLUSTER_COMMAND = bytes.fromhex("0109010107050010010009804a371c00000000005a5a0000")


def test_cluster_command_fields() -> None:
    payload = decode_gbz(CLUSTER_COMMAND)
    (component,) = payload.components
    assert component.is_last and not component.is_encrypted
    assert component.cluster_id == 0x0705 and component.cluster_name == "Prepayment"
    assert component.zcl == ZclHeader(0x01, 0x00, 0x09)
    assert component.body == ClusterPayload(bytes.fromhex("804a371c00000000005a5a0000"))
    assert payload.encode() == CLUSTER_COMMAND


def test_default_response_and_read_attributes_multi_component() -> None:
    built = GbzPayload(
        2,
        (
            GbzComponent(0x00, 0x0702, ZclHeader(0x00, 1, 0x00), ReadAttributes((0x0000, 0x0302))),
            GbzComponent(0x01, 0x0705, ZclHeader(0x08, 2, 0x0B), DefaultResponse(0x05, 0xC0)),
        ),
    )
    wire = built.encode()
    assert wire.hex() == "010902000702000700010000000203010705000508020b05c0"
    assert decode_gbz(wire) == built


def test_read_attributes_response_typed_values() -> None:
    body = ReadAttributesResponse(
        (
            AttributeRecord(0x0000, 0, ZclValue(ZclType.UINT48, 0x010203040506)),
            AttributeRecord(0x0307, 0, ZclValue(ZclType.OCTET_STRING, b"GB")),
            AttributeRecord(0x0001, 0, ZclValue(ZclType.INT32, -5)),
            AttributeRecord(0x0205, 0x86),
        )
    )
    wire = body.encode()
    assert wire.hex() == ("00000025060504030201070300410247420100002bfbffffff050286")
    assert decode_zcl_body(0x08, 0x01, wire) == body


def test_write_attributes_and_response() -> None:
    body = WriteAttributes(())
    assert decode_zcl_body(0x00, 0x02, b"") == body
    assert decode_zcl_body(0x08, 0x04, b"\x00") == WriteAttributesResponse()
    failures = decode_zcl_body(0x08, 0x04, bytes.fromhex("8d0100"))
    assert failures == WriteAttributesResponse(((0x8D, 0x0001),))
    assert failures.encode().hex() == "8d0100"


def test_from_date_time_component() -> None:
    component = GbzComponent(
        0x11, 0x0700, ZclHeader(0x09, 0, 0x04), ClusterPayload(b"\x01\x02"), 0x38818890
    )
    wire = GbzPayload(1, (component,)).encode()
    assert wire.hex() == "0109011107000009388188900900040102"
    assert decode_gbz(wire).components[0].from_date_time == 0x38818890


def test_encrypted_component_framing() -> None:
    ciphertext = bytes(range(20))
    component = GbzComponent(0x03, 0x0702, ZclHeader(0x19, 0, 0x06), EncryptedZcl(0, 0, ciphertext))
    payload = GbzPayload(1, (component,))
    wire = payload.encode()
    assert wire.hex().startswith("0109010307020020000019000600193100000000")
    assert decode_gbz(wire) == payload
    assert payload.protected_blocks() == [ciphertext]
    assert find_protected_blocks(wire, alert=False) == [ciphertext]


def test_future_dated_alert() -> None:
    alert = GbzPayload(
        1,
        alert=GbzAlertHeader(0x8F66, 0x38818890),
        future_dated=FutureDatedAlert(0x006B, 0x3ED, 0x0700, 0x09, 0x06),
    )
    wire = alert.encode()
    assert wire.hex() == "0109018f66388188900e006b00000000000003ed07000906"
    assert decode_gbz(wire, alert=True) == alert


def test_alert_forms() -> None:
    bare = bytes.fromhex("0109008f301c374a80")
    assert decode_gbz(bare, alert=True) == GbzPayload(0, alert=GbzAlertHeader(0x8F30, 0x1C374A80))
    hashed = bytes.fromhex("0109018f721c374a800904a1a2a3a4")
    assert decode_gbz(hashed, alert=True).hash == bytes.fromhex("a1a2a3a4")
    specific = bytes.fromhex("01090181a01c374a800005")
    decoded = decode_gbz(specific, alert=True)
    assert decoded.specific == b"\x00\x05" and decoded.encode() == specific


@pytest.mark.parametrize(
    ("hex_payload", "alert", "error"),
    [
        ("0108010107050005080", False, UnexpectedTag),
        ("01", False, Truncated),
        ("010901010705000508000b05", False, Truncated),
        ("010901010705000508000b05c0ff", False, TrailingBytes),
        ("010901010705000503000b05c0", False, BadField),  # reserved frame type 3
        ("010901010705000408000bc0", False, BadLength),  # default response of 1 byte
        ("010901010705000308000b", False, BadLength),
        ("0109018f661c374a800d00", True, BadLength),
        ("0109018f721c374a800905a1", True, BadField),
        ("010901030702000e00001900060007310000000001", False, Truncated),
        ("010901030702000d00001900060006320000000aaa", False, UnexpectedTag),
    ],
)
def test_malformed_gbz(hex_payload: str, alert: bool, error: type[GbcsDecodeError]) -> None:
    if len(hex_payload) % 2:
        hex_payload += "0"
    with pytest.raises(error):
        decode_gbz(bytes.fromhex(hex_payload), alert=alert)


def test_unsupported_zcl_type_is_specific() -> None:
    with pytest.raises(BadField, match="0x4C"):
        decode_zcl_body(0x08, 0x01, bytes.fromhex("0000004c00"))


def test_encode_rejects_inconsistent_values() -> None:
    with pytest.raises(GbcsEncodeError):
        GbzPayload(2, ()).encode()
    with pytest.raises(GbcsEncodeError):
        GbzComponent(0x01, 0x0700, ZclHeader(1, 0, 0), EncryptedZcl(0, 0, b"x")).encode()
    with pytest.raises(GbcsEncodeError):
        ZclValue(ZclType.UINT8, 256).encode()
    with pytest.raises(GbcsEncodeError):
        AttributeRecord(1, 0).encode()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80), st.booleans())
def test_fuzz_gbz_only_decode_errors(data: bytes, alert: bool) -> None:
    try:
        payload = decode_gbz(data, alert=alert)
    except GbcsDecodeError:
        return
    assert payload.encode() == data


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60), st.booleans())
def test_fuzz_gbz_with_valid_prefix(tail: bytes, alert: bool) -> None:
    data = b"\x01\x09" + tail
    try:
        payload = decode_gbz(data, alert=alert)
    except GbcsDecodeError:
        return
    assert payload.encode() == data


# --- Conformance ----------------------------------------------------------------------------


def _rtds_gbz() -> list[tuple[Path, bytes, bool]]:
    root = conformance_path("gbcs", "rtds-4.5.0")
    out = []
    for path in rtds_message_files(root):
        message = decode_message(read_hex(path))
        if is_gbz(message.payload):
            out.append((path, message.payload, message.cra_flag is CraFlag.ALERT))
    return out


def test_every_rtds_gbz_payload_round_trips() -> None:
    payloads = _rtds_gbz()
    assert len(payloads) == 354
    kinds: dict[str, int] = {}
    for path, payload, alert in payloads:
        decoded = decode_gbz(payload, alert=alert)
        assert decoded.encode() == payload, path.name
        for component in decoded.components:
            kinds[type(component.body).__name__] = kinds.get(type(component.body).__name__, 0) + 1
    # Typed profile-wide commands are present, not just opaque bytes.
    assert kinds["DefaultResponse"] > 100
    assert kinds["ReadAttributes"] > 10
    assert kinds["ReadAttributesResponse"] > 10
    assert kinds["EncryptedZcl"] > 10


def test_every_encrypted_gbz_component_decrypts() -> None:
    keys = RtdsKeystore.load(conformance_path("gbcs", "rtds-keystore"))
    encrypted = 0
    for path, payload, alert in _rtds_gbz():
        decoded = decode_gbz(payload, alert=alert)
        if not decoded.protected_blocks():
            continue
        check = check_message(path.name, read_hex(path), keys)
        assert not check.decryption_skipped, path.name
        assert check.decrypted_blocks == check.protected_blocks == len(decoded.protected_blocks())
        encrypted += 1
    assert encrypted >= 20
