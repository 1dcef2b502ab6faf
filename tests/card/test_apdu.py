from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smarthydra.card.apdu import SW, APDUFormatError, ClassByte, CommandAPDU, ResponseAPDU


@pytest.mark.parametrize(
    ("raw", "case", "nc", "ne", "extended"),
    [
        ("00A40400", 1, 0, 0, False),
        ("00B0000010", 2, 0, 16, False),
        ("00B0000000", 2, 0, 256, False),
        ("00A4040003A0B0C0", 3, 3, 0, False),
        ("00A4040003A0B0C000", 4, 3, 256, False),
        ("00B00000000100", 2, 0, 256, True),
        ("00B00000000000", 2, 0, 65536, True),
    ],
)
def test_parse_cases(raw: str, case: int, nc: int, ne: int, extended: bool) -> None:
    command = CommandAPDU.parse(bytes.fromhex(raw))
    assert (command.case, len(command.data), command.ne, command.is_extended) == (
        case, nc, ne, extended)
    assert command.encode() == bytes.fromhex(raw)


def test_extended_case_3_and_4() -> None:
    data = bytes(range(256)) * 2
    c3 = bytes.fromhex("80E20000") + b"\x00" + len(data).to_bytes(2, "big") + data
    c4 = c3 + b"\x00\x00"
    assert CommandAPDU.parse(c3) == CommandAPDU(0x80, 0xE2, 0, 0, data, extended=True)
    parsed = CommandAPDU.parse(c4)
    assert parsed.case == 4 and parsed.ne == 65536 and parsed.data == data
    assert parsed.encode() == c4


@pytest.mark.parametrize(
    "raw",
    ["", "00", "00A404", "00A4040003A0B0", "00A4040003A0B0C00000",
     "00A404000000", "00A40400000003A0B0", "00A4040000000000"],
)
def test_malformed_lengths_are_6700(raw: str) -> None:
    with pytest.raises(APDUFormatError) as info:
        CommandAPDU.parse(bytes.fromhex(raw))
    assert info.value.sw == SW.WRONG_LENGTH


def test_class_byte_channels_and_chaining() -> None:
    assert ClassByte.decode(0x00) == ClassByte(0, False, 0, False)
    assert ClassByte.decode(0x13).chained and ClassByte.decode(0x13).channel == 3
    assert ClassByte.decode(0x0C).secure_messaging == 3
    assert ClassByte.decode(0x45).channel == 9
    assert ClassByte.decode(0x5F).chained and ClassByte.decode(0x4F).channel == 19
    assert ClassByte.decode(0x84).proprietary and ClassByte.decode(0x84).secure_messaging == 1
    assert ClassByte.decode(0xE1).channel == 5
    for bad in (0xFF, 0x20, 0x3F):
        with pytest.raises(APDUFormatError) as info:
            ClassByte.decode(bad)
        assert info.value.sw == SW.CLA_NOT_SUPPORTED
    for channel in range(20):
        assert ClassByte.decode(ClassByte.with_channel(0x80, channel)).channel == channel
        assert ClassByte.decode(ClassByte.with_channel(0x10, channel)).chained


def test_response_roundtrip_and_errors() -> None:
    response = ResponseAPDU.parse(bytes.fromhex("01029000"))
    assert response.data == b"\x01\x02" and response.sw == 0x9000 and response.sw1 == 0x90
    assert response.encode() == bytes.fromhex("01029000")
    with pytest.raises(APDUFormatError):
        ResponseAPDU.parse(b"\x90")


def test_constructor_rejects_bad_fields() -> None:
    with pytest.raises(ValueError):
        CommandAPDU(0x100, 0, 0, 0)
    with pytest.raises(ValueError):
        CommandAPDU(0, 0, 0, 0, ne=65537)
    with pytest.raises(ValueError):
        CommandAPDU(0, 0, 0, 0, bytes(65536))


commands = st.builds(
    CommandAPDU,
    cla=st.integers(0, 255), ins=st.integers(0, 255), p1=st.integers(0, 255),
    p2=st.integers(0, 255), data=st.binary(max_size=600), ne=st.integers(0, 65536),
    extended=st.booleans(),
)


@given(commands)
def test_encode_parse_roundtrip(command: CommandAPDU) -> None:
    parsed = CommandAPDU.parse(command.encode())
    assert (parsed.cla, parsed.ins, parsed.p1, parsed.p2, parsed.data, parsed.ne) == (
        command.cla, command.ins, command.p1, command.p2, command.data, command.ne)
    if command.case != 1:
        assert parsed.is_extended == command.is_extended


@given(st.binary(max_size=300))
def test_parse_never_raises_anything_else(raw: bytes) -> None:
    try:
        command = CommandAPDU.parse(raw)
    except APDUFormatError as exc:
        assert exc.sw == SW.WRONG_LENGTH
    else:
        assert command.encode() == raw or len(raw) >= 7
