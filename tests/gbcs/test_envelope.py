"""The general-ciphering / general-signing codec: decoding, encoding, errors and fuzzing."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smarthydra.gbcs import envelope
from smarthydra.gbcs.envelope import (
    CraFlag,
    GbcsMessage,
    GbtBlock,
    OtherInformation,
    decode_gbt_block,
    decode_gbt_stream,
    decode_general_signing,
    decode_length,
    decode_message,
    decode_segmented,
    encode_length,
    parse_mac_header,
    reassemble_gbt,
    segment_message,
)
from smarthydra.gbcs.errors import (
    BadField,
    BadLength,
    GbcsDecodeError,
    GbcsEncodeError,
    SegmentedMessage,
    TrailingBytes,
    Truncated,
    UnexpectedTag,
)
from smarthydra.gbcs.rtds import rtds_message_files
from tests.conftest import conformance_path
from tests.gbcs.vectors import DEVICE_A_EUI, ECS04B_COMMAND, ECS04B_MAC, SUPPLIER_A_EUI, read_hex


def test_decode_worked_example_fields() -> None:
    message = decode_message(ECS04B_COMMAND)
    assert message.is_macd
    assert message.mac == ECS04B_MAC
    assert message.security_control == 0x11
    assert message.cra_flag is CraFlag.COMMAND
    assert message.originator_counter == 1
    assert message.originator == SUPPLIER_A_EUI
    assert message.recipient == DEVICE_A_EUI
    assert message.date_time is None
    assert message.message_code == 0x00B3
    assert len(message.payload) == 0x35
    assert message.payload[0] == 0xD9
    gs = message.general_signing
    assert gs.signature is not None and len(gs.signature) == 64
    # The signed region starts after DF and stops before the 40 || r || s field.
    assert gs.signed_data() == ECS04B_COMMAND[15 : 15 + len(gs.signed_data())]
    assert gs.signed_data().endswith(message.payload)
    assert gs.wire() == ECS04B_COMMAND[14:-12]


def test_encode_rebuilds_worked_example() -> None:
    message = decode_message(ECS04B_COMMAND)
    rebuilt = GbcsMessage(
        envelope.GeneralSigning(
            message.general_signing.transaction_id,
            message.originator,
            message.recipient,
            None,
            OtherInformation(0x00B3),
            message.payload,
            message.general_signing.signature,
        ),
        mac=message.mac,
    )
    assert rebuilt.encode() == ECS04B_COMMAND
    assert rebuilt == message  # raw is not part of equality


@pytest.mark.parametrize("length", [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000, 0xFFFFFFFF])
def test_ber_length_round_trip(length: int) -> None:
    encoded = encode_length(length)
    assert decode_length(encoded + b"\xaa", 0, "x") == (length, len(encoded))


def test_ber_length_errors() -> None:
    with pytest.raises(BadLength, match="indefinite"):
        decode_length(b"\x80", 0, "content")
    with pytest.raises(BadLength, match="5 octets"):
        decode_length(b"\x85\x00\x00\x00\x00\x01", 0, "content")
    with pytest.raises(Truncated, match="content"):
        decode_length(b"\x82\x01", 0, "content")
    with pytest.raises(GbcsEncodeError):
        encode_length(-1)
    with pytest.raises(GbcsEncodeError):
        encode_length(1 << 40)


def _other(**kwargs: object) -> OtherInformation:
    return OtherInformation(0x0027, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "other",
    [
        _other(),
        _other(supplementary_remote_party_id=b"\x01" * 8),
        _other(supplementary_remote_party_id=b"\x01" * 8, supplementary_remote_party_counter=5),
        _other(
            supplementary_remote_party_id=b"\x01" * 8,
            supplementary_remote_party_counter=5,
            supplementary_originator_counter=7,
        ),
        _other(
            supplementary_remote_party_id=b"\x01" * 8,
            supplementary_remote_party_counter=5,
            supplementary_remote_party_ka_certificate=b"\x30\x10" + b"\x04" * 16,
        ),
    ],
)
def test_other_information_round_trip(other: OtherInformation) -> None:
    assert OtherInformation.from_bytes(other.to_bytes()) == other


def test_other_information_errors() -> None:
    with pytest.raises(BadLength, match="at least the message code"):
        OtherInformation.from_bytes(b"\x00")
    with pytest.raises(BadLength, match="not 2, 10, 18, 26"):
        OtherInformation.from_bytes(b"\x00" * 5)
    with pytest.raises(GbcsEncodeError, match="supplementary remote party id"):
        _other(supplementary_remote_party_counter=1).to_bytes()
    with pytest.raises(GbcsEncodeError, match="not both"):
        _other(
            supplementary_remote_party_id=b"\x01" * 8,
            supplementary_remote_party_counter=5,
            supplementary_originator_counter=7,
            supplementary_remote_party_ka_certificate=b"\x30\x00",
        ).to_bytes()


def test_signature_field_states() -> None:
    base = decode_message(ECS04B_COMMAND).general_signing
    unsigned = base.with_signature(b"")
    assert unsigned.wire().endswith(unsigned.payload + b"\x00")
    absent = base.with_signature(None)
    assert absent.wire().endswith(absent.payload)
    assert unsigned.signed_data() == absent.signed_data() == base.signed_data()
    assert decode_general_signing(absent.wire()).signature is None
    assert decode_general_signing(unsigned.wire()).signature == b""
    with pytest.raises(GbcsEncodeError, match="0 or 64"):
        base.with_signature(b"\x01" * 10)


@pytest.mark.parametrize(
    ("mutate", "error", "text"),
    [
        (lambda b: b"", Truncated, "empty"),
        (lambda b: b"\x42" + b[1:], UnexpectedTag, "0xDD or 0xDF"),
        (lambda b: b"\xe0" + b[1:], SegmentedMessage, "general-block-transfer"),
        (lambda b: b[:1] + b"\x01" + b[2:], BadField, "must be empty"),
        (lambda b: b[:-1], Truncated, "ciphered-content"),
        (lambda b: b + b"\x00", TrailingBytes, "follow the general-ciphering"),
        (lambda b: b[:14] + b"\xde" + b[15:], UnexpectedTag, "general-signing tag"),
        (lambda b: b[:16] + b"\x07" + b[17:], BadField, "CRA flag 7"),
        (lambda b: b[:25] + b"\x07" + b[26:], UnexpectedTag, "originator system title length"),
        (lambda b: b[:43] + b"\x05" + b[44:], BadLength, "date-time length is 5"),
    ],
)
def test_malformed_messages_raise_specific_errors(
    mutate: object, error: type[GbcsDecodeError], text: str
) -> None:
    with pytest.raises(error, match=text):
        decode_message(mutate(ECS04B_COMMAND))  # type: ignore[operator]


def test_bad_signature_length_and_trailing_bytes_in_general_signing() -> None:
    gs = decode_message(ECS04B_COMMAND).general_signing.wire()
    payload_end = len(gs) - 65
    with pytest.raises(BadLength, match="signature length is 3"):
        decode_general_signing(gs[:payload_end] + b"\x03abc")
    with pytest.raises(TrailingBytes, match="follow the signature"):
        decode_general_signing(gs + b"\x00")


def test_mac_header_reads_only_fixed_fields() -> None:
    header = parse_mac_header(ECS04B_COMMAND)
    assert header.originator == SUPPLIER_A_EUI
    assert header.recipient == DEVICE_A_EUI
    assert header.cra_flag is CraFlag.COMMAND
    assert header.originator_counter == 1
    assert header.mac == ECS04B_MAC
    assert header.authenticated == ECS04B_COMMAND[14:-12]
    # A broken payload length is not the MAC header's business: it still frames.
    broken = bytearray(ECS04B_COMMAND)
    broken[47] = 0xFF  # content length
    assert parse_mac_header(bytes(broken)).originator == SUPPLIER_A_EUI
    with pytest.raises(GbcsDecodeError):
        decode_message(bytes(broken))


def test_mac_header_rejects_unmacd_and_short_input() -> None:
    signing = decode_message(ECS04B_COMMAND).general_signing.wire()
    with pytest.raises(UnexpectedTag):
        parse_mac_header(signing)
    short = b"\xdd" + b"\x00" * 6 + b"\x14" + b"\x11" + b"\x00" * 19
    with pytest.raises(Truncated, match="too short"):
        parse_mac_header(short)


def test_gbt_blocks() -> None:
    blocks = [
        GbtBlock(False, False, 1, 1, 0, ECS04B_COMMAND[:100]),
        GbtBlock(True, False, 1, 2, 0, ECS04B_COMMAND[100:]),
    ]
    decoded = [decode_gbt_block(b.encode()) for b in blocks]
    assert decoded == blocks
    assert decode_message(reassemble_gbt(list(reversed(decoded)))) == decode_message(ECS04B_COMMAND)
    with pytest.raises(SegmentedMessage, match="missing"):
        reassemble_gbt([blocks[1]])
    with pytest.raises(SegmentedMessage, match="last-block"):
        reassemble_gbt([blocks[0]])
    with pytest.raises(TrailingBytes):
        decode_gbt_block(blocks[0].encode() + b"\x00")


# --- Fuzzing --------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes_only_raise_decode_errors(data: bytes) -> None:
    for parse in (decode_message, parse_mac_header, decode_general_signing, decode_gbt_block):
        with contextlib.suppress(GbcsDecodeError):
            parse(data)


@settings(max_examples=600, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, len(ECS04B_COMMAND) - 1), st.integers(0, 255)),
        min_size=1,
        max_size=4,
    ),
    st.integers(0, len(ECS04B_COMMAND)),
)
def test_fuzz_mutated_message_only_raises_decode_errors(
    edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(ECS04B_COMMAND)
    for index, value in edits:
        data[index] = value
    for candidate in (bytes(data), bytes(data[:cut])):
        try:
            message = decode_message(candidate)
        except GbcsDecodeError:
            continue
        # Whatever decodes must re-encode to a message that decodes to the same fields.
        assert decode_message(message.encode()) == message


# --- The RTDS -------------------------------------------------------------------------------


def test_every_rtds_message_decodes_and_reencodes_byte_exact() -> None:
    directory = conformance_path("gbcs", "rtds-4.5.0")
    files = rtds_message_files(directory)
    assert len(files) == 1275
    kinds: dict[str, int] = {}
    macd = 0
    for path in files:
        data = read_hex(path)
        message = decode_message(data)
        assert message.encode() == data, path.name
        assert message.wire() == data
        kind = (
            "PRECOMMAND"
            if "_PRECOMMAND_" in path.name
            else "COMMAND"
            if "_COMMAND_" in path.name
            else "RESPONSE"
            if "_RESPONSE_" in path.name
            else "ALERT"
        )
        kinds[kind] = kinds.get(kind, 0) + 1
        expected_cra = {"PRECOMMAND": 1, "COMMAND": 1, "RESPONSE": 2, "ALERT": 3}[kind]
        assert message.cra_flag == expected_cra, path.name
        if kind == "PRECOMMAND":
            assert not message.is_macd and message.general_signing.signature is None
        if message.is_macd:
            macd += 1
            header = parse_mac_header(data)
            assert header.authenticated == message.general_signing.raw
            assert header.mac == message.mac
        else:
            # Outside general-ciphering a message is a pre-command or is signed.
            assert kind == "PRECOMMAND" or message.general_signing.is_signed, path.name
    assert kinds == {"PRECOMMAND": 178, "COMMAND": 501, "RESPONSE": 503, "ALERT": 93}
    assert macd == 815


def test_gbt_stream_segment_and_decode() -> None:
    blocks = segment_message(ECS04B_COMMAND, 64)
    assert [b.block_number for b in blocks] == [1, 2, 3]
    assert [b.last_block for b in blocks] == [False, False, True]
    stream = b"".join(b.encode() for b in blocks)
    assert decode_gbt_stream(stream) == blocks
    assert decode_segmented(stream) == decode_message(ECS04B_COMMAND)
    with pytest.raises(GbcsDecodeError):
        decode_segmented(stream[:-1])
    with pytest.raises(GbcsDecodeError):
        decode_segmented(b"".join(b.encode() for b in blocks[1:]))
    with pytest.raises(GbcsEncodeError):
        segment_message(ECS04B_COMMAND, 0)
