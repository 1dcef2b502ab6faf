"""SCP03 host <-> card round trips with our own keys, error status words, and KDF cross-checks."""

from __future__ import annotations

import itertools
import random

import pytest
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.kdf.kbkdf import KBKDFCMAC, CounterLocation, Mode

from smarthydra.card.gp.errors import GpError
from smarthydra.card.gp.kdf import kcv_aes, pad80, scp03_kdf, unpad80
from smarthydra.card.gp.scp03 import (
    I_PSEUDO_RANDOM_CHALLENGE,
    I_R_MAC,
    Scp03CardConfig,
    Scp03CardSession,
    Scp03HostSession,
    Scp03StaticKeys,
    precompute_scp03_script,
    pseudo_random_card_challenge,
)
from smarthydra.card.gp.sm import VALID_SECURITY_LEVELS

AID = bytes.fromhex("A000000151000000")
LEVELS = sorted(VALID_SECURITY_LEVELS - {0x00})


def _keys(size: int, seed: int = 1) -> Scp03StaticKeys:
    rng = random.Random(seed)
    return Scp03StaticKeys(rng.randbytes(size), rng.randbytes(size), rng.randbytes(size), 0x31)


def _pair(
    size: int, s_mode: int, level: int, seed: int = 1
) -> tuple[Scp03HostSession, Scp03CardSession]:
    keys = _keys(size, seed)
    card = Scp03CardSession(Scp03CardConfig(aid=AID, sequence_counter=41, key_sets=(keys,)))
    rng = random.Random(seed + 100)
    host = Scp03HostSession(keys, host_challenge=rng.randbytes(s_mode), s_mode=s_mode, aid=AID)
    host.process_initialize_update_response(card.initialize_update(host.initialize_update()))
    assert card.external_authenticate(host.external_authenticate(level)) == b"\x90\x00"
    host.process_external_authenticate_response(b"\x90\x00")
    return host, card


def _echo(apdu: object) -> tuple[bytes, int]:
    from smarthydra.card.gp.apdu import CommandApdu

    assert isinstance(apdu, CommandApdu)
    return apdu.data[::-1] + bytes((apdu.ins,)), 0x9000


@pytest.mark.parametrize(
    ("size", "s_mode", "level"), list(itertools.product((16, 24, 32), (8, 16), LEVELS))
)
def test_round_trip_every_level_key_size_and_mode(size: int, s_mode: int, level: int) -> None:
    host, card = _pair(size, s_mode, level)
    commands = [
        bytes.fromhex("80F22002"),  # case 1
        bytes.fromhex("80CA006600"),  # case 2
        bytes.fromhex("80E60200") + bytes((20,)) + bytes(range(20)),  # case 3
        bytes.fromhex("80F2400202") + b"\x4f\x00" + b"\x00",  # case 4
        bytes.fromhex("80E8000010") + bytes(16),  # exactly one block: a full padding block
    ]
    for plain in commands:
        wrapped = host.wrap(plain)
        if level:
            assert wrapped[0] & 0x04 and wrapped != plain
        received = card.unwrap_command(wrapped)
        assert received.to_bytes() == plain
        data, sw = _echo(received)
        response = card.wrap_response(data, sw)
        if level & 0x20 and len(data) >= 4:
            assert data not in response
        assert host.unwrap(response).data == data
    # the chaining value and counter move in lock step on both sides
    assert host.sm is not None and card.sm is not None
    assert host.sm.mac_chaining_value == card.sm.mac_chaining_value
    assert host.sm.encryption_counter == card.sm.encryption_counter


def test_process_runs_a_whole_session_and_reports_status_words() -> None:
    keys = Scp03StaticKeys.test_keys()
    card = Scp03CardSession(Scp03CardConfig(aid=AID, key_sets=(keys,)))
    host = Scp03HostSession(keys, host_challenge=bytes(8), aid=AID)
    host.process_initialize_update_response(card.process(host.initialize_update()))
    host.process_external_authenticate_response(card.process(host.external_authenticate(0x33)))
    out = card.process(host.wrap(bytes.fromhex("80CA00E000")), _echo)
    assert host.unwrap(out).data == b"\xca"
    # a tampered command gets 6982 and closes the session
    tampered = bytearray(host.wrap(bytes.fromhex("80CA00E000")))
    tampered[-2] ^= 0xFF
    assert card.process(bytes(tampered)) == b"\x69\x82"
    assert card.security_level == 0
    assert card.process(host.wrap(bytes.fromhex("80CA00E000"))) == b"\x69\x82"


def test_pseudo_random_challenge_and_counter() -> None:
    keys = Scp03StaticKeys.test_keys()
    card = Scp03CardSession(Scp03CardConfig(aid=AID, sequence_counter=7, key_sets=(keys,)))
    response = card.initialize_update(
        Scp03HostSession(keys, host_challenge=bytes(8)).initialize_update()
    )
    assert card.sequence_counter == 8
    assert response[-5:-2] == b"\x00\x00\x08"
    assert response[13:21] == pseudo_random_card_challenge(keys.enc, 8, AID)
    # the host checks the challenge against the counter when it knows the AID
    other = Scp03HostSession(keys, host_challenge=bytes(8), aid=bytes.fromhex("A000000151000001"))
    with pytest.raises(GpError) as err:
        other.process_initialize_update_response(response)
    assert err.value.sw == 0x6300


def test_random_challenge_comes_from_the_injected_source() -> None:
    keys = Scp03StaticKeys.test_keys()
    config = Scp03CardConfig(i_param=I_R_MAC, key_sets=(keys,))
    card = Scp03CardSession(config, random_bytes=lambda n: b"\xab" * n)
    response = card.initialize_update(
        Scp03HostSession(keys, host_challenge=bytes(8)).initialize_update()
    )
    assert response[13:21] == b"\xab" * 8
    assert len(response) == 10 + 3 + 8 + 8 + 2  # no sequence counter without pseudo-random


def test_precomputed_script_is_accepted_one_way() -> None:
    keys = _keys(16, 5)
    card = Scp03CardSession(Scp03CardConfig(aid=AID, sequence_counter=99, key_sets=(keys,)))
    commands = [bytes.fromhex("80E60C0005") + b"hello", bytes.fromhex("80F28002024F0000")]
    script = precompute_scp03_script(
        keys, aid=AID, sequence_counter=100, commands=commands, host_challenge=b"\x11" * 8
    )
    replies = [card.process(apdu) for apdu in script]
    assert all(reply.endswith(b"\x90\x00") for reply in replies)
    # the same script replayed later fails: the counter moved on, the challenge differs
    replays = [card.process(apdu) for apdu in script]
    assert replays[1] == b"\x63\x00"


def test_error_responses_are_not_protected() -> None:
    host, card = _pair(16, 8, 0x33)
    host.wrap(bytes.fromhex("80CA00FF00"))
    card_raw = card.wrap_response(b"secret", 0x6A88)
    assert card_raw == b"\x6a\x88"
    assert host.unwrap(card_raw).sw == 0x6A88


@pytest.mark.parametrize(
    ("command", "sw"),
    [
        ("8082010010" + "00" * 16, 0x6985),  # EXTERNAL AUTHENTICATE before INITIALIZE UPDATE
    ],
)
def test_out_of_sequence(command: str, sw: int) -> None:
    card = Scp03CardSession(Scp03CardConfig(aid=AID, key_sets=(Scp03StaticKeys.test_keys(),)))
    assert card.process(bytes.fromhex(command)) == sw.to_bytes(2, "big")


def _initialized(i_param: int = 0x70) -> tuple[Scp03HostSession, Scp03CardSession]:
    keys = Scp03StaticKeys.test_keys()
    card = Scp03CardSession(Scp03CardConfig(i_param=i_param, aid=AID, key_sets=(keys,)))
    host = Scp03HostSession(keys, host_challenge=bytes(range(8)), aid=AID)
    host.process_initialize_update_response(card.process(host.initialize_update()))
    return host, card


def test_bad_host_cryptogram_is_6300_and_resets() -> None:
    host, card = _initialized()
    ext = bytearray(host.external_authenticate(0x01))
    ext[6] ^= 1
    assert card.process(bytes(ext)) == b"\x63\x00"
    assert card.process(bytes(ext)) == b"\x69\x85"  # must start again with INITIALIZE UPDATE


def test_bad_ext_auth_mac_is_6982() -> None:
    host, card = _initialized()
    ext = bytearray(host.external_authenticate(0x01))
    ext[-1] ^= 1
    assert card.process(bytes(ext)) == b"\x69\x82"


def test_invalid_or_unsupported_security_level_is_6a86() -> None:
    host, card = _initialized(i_param=I_PSEUDO_RANDOM_CHALLENGE)  # no R-MAC support
    ext = bytearray(host.external_authenticate(0x01))
    ext[2] = 0x11
    assert card.process(bytes(ext)) == b"\x6a\x86"
    host, card = _initialized()
    ext = bytearray(host.external_authenticate(0x01))
    ext[2] = 0x31
    assert card.process(bytes(ext)) == b"\x6a\x86"


def test_unknown_key_version_is_6a88() -> None:
    keys = Scp03StaticKeys.test_keys(0x30)
    card = Scp03CardSession(Scp03CardConfig(aid=AID, key_sets=(keys,)))
    host = Scp03HostSession(keys, host_challenge=bytes(8), kvn=0x35)
    assert card.process(host.initialize_update()) == b"\x6a\x88"


def test_wrong_keys_fail_the_card_cryptogram() -> None:
    card = Scp03CardSession(Scp03CardConfig(aid=AID, key_sets=(_keys(16, 1),)))
    host = Scp03HostSession(_keys(16, 2), host_challenge=bytes(8), kvn=0x31)
    with pytest.raises(GpError, match="card cryptogram") as err:
        host.process_initialize_update_response(card.process(host.initialize_update()))
    assert err.value.sw == 0x6300


def test_unprotected_command_at_c_mac_level_is_refused() -> None:
    _, card = _pair(16, 8, 0x01)
    assert card.process(bytes.fromhex("80CA006600")) == b"\x69\x82"


def test_tampered_response_mac_is_detected() -> None:
    host, card = _pair(16, 16, 0x13)
    card.unwrap_command(host.wrap(bytes.fromhex("80CA006600")))
    response = bytearray(card.wrap_response(b"data", 0x9000))
    response[0] ^= 1
    with pytest.raises(GpError) as err:
        host.unwrap(bytes(response))
    assert err.value.sw == 0x6982


@pytest.mark.parametrize("size", [16, 24, 32])
@pytest.mark.parametrize("bits", [64, 128, 192, 256])
def test_scp03_kdf_matches_cryptography_kbkdf(size: int, bits: int) -> None:
    # Independent computation: cryptography's SP 800-108 implementation, counter mid-fixed.
    rng = random.Random(size * bits)
    key, context = rng.randbytes(size), rng.randbytes(16)
    prefix = bytes(11) + b"\x04\x00" + bits.to_bytes(2, "big")
    kdf = KBKDFCMAC(
        algorithm=algorithms.AES,
        mode=Mode.CounterMode,
        length=bits // 8,
        rlen=1,
        llen=None,
        location=CounterLocation.MiddleFixed,
        label=None,
        context=None,
        fixed=prefix + context,
        break_location=len(prefix),
    )
    assert scp03_kdf(key, 0x04, context, bits) == kdf.derive(key)


def test_padding_and_kcv() -> None:
    assert pad80(b"") == b"\x80" + bytes(15)
    assert len(pad80(bytes(16))) == 32
    assert unpad80(pad80(b"abc")) == b"abc"
    with pytest.raises(GpError):
        unpad80(bytes(16))
    assert kcv_aes(bytes(range(16))).hex() == "c35280"
