"""Token classes round-trip under every key generation and algorithm; encodings; fuzzing."""

from __future__ import annotations

import contextlib
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smarthydra.prepay.errors import (
    AmountNotRepresentable,
    StsKeyError,
    TidOutOfRange,
    TokenClassUnsupported,
    TokenCrcError,
    TokenFormatError,
    TokenRefused,
)
from smarthydra.prepay.sts_algorithms import BaseDate, MeterIdentity
from smarthydra.prepay.sts_tokens import (
    MAX_AMOUNT_TENTHS,
    CreditToken,
    KeyChangeToken1,
    KeyChangeToken2,
    KeyChangeToken3,
    KeyChangeToken4,
    ManagementToken,
    MeterTestToken,
    Token,
    crc16,
    decode_amount,
    decode_power,
    decode_token,
    encode_amount,
    encode_power,
    encode_token,
    issued_at,
    round_up_power,
    tid_for,
)
from tests.prepay.helpers import METER, OTHER_PAN, at, server

SETUPS = [("02", "07"), ("04", "07"), ("04", "11")]


def all_tokens(tid: int) -> list[Token]:
    tokens: list[Token] = [CreditToken(sub, tid, 1234, rnd=7) for sub in range(8)]
    tokens += [ManagementToken(sub, tid, 4321, rnd=3) for sub in (0, 1, 2, 5, 6, 7)]
    tokens += [KeyChangeToken1(kenho=0xF, krn=2, ro=1, kt=2, nkho=0xDEADBEEF),
               KeyChangeToken2(kenlo=0xF, ti=7, nklo=0x01234567),
               KeyChangeToken3(sgclo=0xFFF, nkmo2=0xCAFEF00D),
               KeyChangeToken4(sgcho=0x01E, nkmo1=0x89ABCDEF),
               MeterTestToken(0, control=(1 << 36) - 1, manufacturer=0xA5),
               MeterTestToken(1, control=0x1234567, manufacturer=0xBEEF)]
    return tokens


@pytest.mark.parametrize(("dkga", "ea"), SETUPS)
def test_every_token_class_round_trips(dkga: str, ea: str) -> None:
    vending = server(dkga, ea)
    key = vending.decoder_key(METER)
    tid = tid_for(at(2020), vending.base_date)
    for token in all_tokens(tid):
        digits = encode_token(token, key, vending.algorithm)
        assert len(digits) == 20 and digits.isdigit()
        assert decode_token(digits, key, vending.algorithm) == token


def test_class_1_is_not_encrypted_so_any_key_reads_it() -> None:
    token = MeterTestToken(0, control=0x123456789, manufacturer=0x42)
    digits = encode_token(token, server().decoder_key(METER), server().algorithm)
    other = server("04", "07").decoder_key(METER)
    assert decode_token(digits, other, server().algorithm) == token


def test_corrupted_digit_and_other_meter_are_refused() -> None:
    vending = server()
    token = CreditToken(0, tid_for(at(2004), BaseDate.Y1993), 100, rnd=1)
    digits = encode_token(token, vending.decoder_key(METER), vending.algorithm)
    for position in range(20):
        wrong = digits[:position] + str((int(digits[position]) + 1) % 10) + digits[position + 1:]
        with pytest.raises((TokenCrcError, TokenFormatError, TokenClassUnsupported)):
            decode_token(wrong, vending.decoder_key(METER), vending.algorithm)
    other = MeterIdentity(OTHER_PAN, "123456", 1, 1, 2)
    with pytest.raises(TokenCrcError):
        decode_token(digits, vending.decoder_key(other), vending.algorithm)


@pytest.mark.parametrize("text", ["", "1234", "1234567890123456789a", "9" * 20, "1" * 21])
def test_malformed_tokens_are_format_errors(text: str) -> None:
    with pytest.raises(TokenFormatError):
        decode_token(text, bytes(8), server().algorithm)


def test_amount_exponent_mantissa() -> None:
    assert encode_amount(1) == 1
    assert encode_amount(16383) == 16383
    assert encode_amount(16384) == 1 << 14  # e=1, m=0
    assert decode_amount(encode_amount(180214)) == 180214
    assert MAX_AMOUNT_TENTHS == 18201624
    for tenths in (0, 5, 16383, 16384, 16394, 180224, 1818624, MAX_AMOUNT_TENTHS):
        assert decode_amount(encode_amount(tenths)) == tenths
    with pytest.raises(AmountNotRepresentable, match="nearest below"):
        encode_amount(16385)
    with pytest.raises(AmountNotRepresentable):
        encode_amount(MAX_AMOUNT_TENTHS + 1)
    assert CreditToken(0, 0, 1234).amount == Decimal("123.4")


@given(st.integers(0, 0xFFFF))
def test_every_16_bit_amount_decodes_and_re_encodes(raw: int) -> None:
    assert encode_amount(decode_amount(raw)) == raw


def test_tid_base_dates_and_rollover() -> None:
    assert tid_for(at(1993, 1, 1, 0, 0), BaseDate.Y1993) == 0
    assert tid_for(at(2014, 1, 1, 0, 1), BaseDate.Y2014) == 1
    assert issued_at(5, BaseDate.Y2035) == at(2035, 1, 1, 0, 5)
    # the 1993 base date runs out on 2024-11-24: the TID rollover
    last = issued_at((1 << 24) - 1, BaseDate.Y1993)
    assert (last.year, last.month, last.day) == (2024, 11, 24)
    with pytest.raises(TidOutOfRange, match="rollover"):
        tid_for(at(2024, 11, 25), BaseDate.Y1993)
    with pytest.raises(TidOutOfRange):
        tid_for(at(2013), BaseDate.Y2014)
    assert tid_for(at(2024, 11, 25), BaseDate.Y2014) > 0


def test_crc16_known_value() -> None:
    # CRC-16/MODBUS of "123456789" is 0x4B37; STS sends its bytes swapped
    assert crc16(b"123456789") == 0x374B


def test_key_generation_rejects_bad_identities() -> None:
    with pytest.raises(StsKeyError):
        MeterIdentity("1234", "123456", 1, 1, 2)
    with pytest.raises(StsKeyError):
        MeterIdentity("600727000000000009", "12345", 1, 1, 2)
    with pytest.raises(StsKeyError):
        server("02", "11")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30) | st.from_regex(r"\A[0-9]{20}\Z"))
def test_fuzz_decoder_only_raises_token_refusals(text: str) -> None:
    vending = server("04", "11")
    key = vending.decoder_key(METER)
    with contextlib.suppress(TokenRefused):
        decode_token(text, key, vending.algorithm)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, (1 << 66) - 1))
def test_fuzz_decoder_any_66_bit_number(number: int) -> None:
    vending = server()
    try:
        token = decode_token(f"{number:020d}", vending.decoder_key(METER), vending.algorithm)
    except TokenRefused:
        return
    assert token.token_class in (0, 1, 2)


def test_power_limit_uses_the_exponent_mantissa_form() -> None:
    # STS 531-1-0-04 CTSA12 boundaries: 16383 W is the largest exponent-0 value
    assert encode_power(16383) == 16383 and encode_power(16384) == 1 << 14
    assert encode_power(18201624) == 0xFFFF and decode_power(0xFFFF) == 18201624
    with pytest.raises(AmountNotRepresentable, match="20004"):
        encode_power(20000)
    assert [round_up_power(w) for w in (0, 20000, 180223, 1818623)] == [0, 20004, 180224,
                                                                         1818624]
    with pytest.raises(AmountNotRepresentable, match="largest"):
        round_up_power(18201625)
    with pytest.raises(AmountNotRepresentable):
        encode_token(ManagementToken(0, 0, 20000), bytes(8), server().algorithm)


@given(st.integers(0, 18201624))
def test_round_up_power_is_the_next_carried_value(watts: int) -> None:
    carried = round_up_power(watts)
    raw = encode_power(carried)
    assert carried >= watts and decode_power(raw) == carried
    if carried > watts:  # nothing a token can carry lies between the two
        assert decode_power(raw - 1) < watts


def test_key_change_fields_are_range_checked() -> None:
    with pytest.raises(TokenFormatError, match="SGCLO"):
        encode_token(KeyChangeToken3(sgclo=1 << 12, nkmo2=0), bytes(16), server("04", "11")
                     .algorithm)
    with pytest.raises(TokenFormatError, match="NKMO1"):
        encode_token(KeyChangeToken4(sgcho=0, nkmo1=1 << 32), bytes(16), server("04", "11")
                     .algorithm)
