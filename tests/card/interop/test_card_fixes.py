"""Unit tests for the card changes interop testing led to (see docs/interop.md)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smarthydra.card.gp.errors import WrongData
from smarthydra.card.gp.kdf import kcv_aes
from smarthydra.card.gp.keystore import KeyType, SdKey, decode_put_key, encode_put_key
from smarthydra.card.gp.scp03 import Scp03HostSession, Scp03StaticKeys
from smarthydra.card.gp.sm import lc_field
from smarthydra.crypto.primitives import aes_cbc_encrypt
from tests.card.gp.gpcards import gp_card

DEK = bytes(range(0x40, 0x50))


def _yubikit_style_block(key: bytes) -> bytes:
    """88 | len | DEK-encrypted key | 03 | KCV: no key-length byte (yubikit's PUT KEY)."""
    secret = aes_cbc_encrypt(DEK, bytes(16), key)
    return bytes((0x88, len(secret))) + secret + b"\x03" + kcv_aes(key)


def test_put_key_accepts_both_aes_key_block_forms() -> None:
    keys = [SdKey(0x31, kid, KeyType.AES, bytes([kid]) * 16) for kid in (1, 2, 3)]
    gp_form = encode_put_key(0x31, keys, DEK)
    yubikit_form = b"\x31" + b"".join(_yubikit_style_block(k.value) for k in keys)
    assert gp_form != yubikit_form
    assert decode_put_key(gp_form, 1, DEK) == decode_put_key(yubikit_form, 1, DEK) == (0x31,
                                                                                        keys)


def test_put_key_length_less_form_still_checks_the_kcv() -> None:
    block = bytearray(_yubikit_style_block(b"\x07" * 16))
    block[-1] ^= 0xFF
    with pytest.raises(WrongData, match="key check value"):
        decode_put_key(b"\x31" + bytes(block), 1, DEK)


def test_clear_personalisation_keys_keep_the_gp_form_only() -> None:
    """Without a DEK (clear DGI values) a 16-byte value is not read as a bare key."""
    with pytest.raises(WrongData):
        decode_put_key(b"\x31\x88\x10" + b"\x07" * 16 + b"\x00", 1, None)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120))
def test_put_key_parser_never_crashes(data: bytes) -> None:
    with contextlib.suppress(WrongData):
        decode_put_key(data, 1, DEK)


def test_lc_field() -> None:
    assert lc_field(0x18, extended=False) == b"\x18"
    assert lc_field(0x18, extended=True) == b"\x00\x00\x18"


def _extended(apdu: bytes) -> bytes:
    """Re-encode a short case-3/4 APDU as extended length (Lc 00 HH LL, Le 2 bytes)."""
    lc = apdu[4]
    data = apdu[5:5 + lc]
    le = apdu[5 + lc:]
    return apdu[:4] + lc_field(lc, True) + data + (b"\x00" + le if le else b"")


def test_extended_length_secure_messaging_must_mac_the_extended_lc() -> None:
    """An extended-length EXTERNAL AUTHENTICATE MACed over the short Lc is refused; MACed
    over the Lc as sent (00 00 10) it opens the session."""
    for mac_extended, expected in ((False, b"\x69\x82"), (True, b"\x90\x00")):
        card = gp_card()
        card.transmit(bytes.fromhex("00A4040008A000000151000000"))
        host = Scp03HostSession(Scp03StaticKeys.test_keys())
        response = card.transmit(host.initialize_update())
        if response[-2] == 0x61:
            response = card.transmit(bytes((0x00, 0xC0, 0, 0, response[-1])))
        host.process_initialize_update_response(response)
        short = host.external_authenticate(0x33)
        if mac_extended:
            assert host.sm is not None
            from smarthydra.crypto.primitives import aes_cmac

            header = short[:4] + lc_field(short[4], True)
            mac = aes_cmac(host.sm.keys.s_mac, bytes(16) + header + short[5:13])[:8]
            short = short[:13] + mac
        assert card.transmit(_extended(short)) == expected
