"""Hypothesis: any bytes into an unwrap or parser give a status-word error, never a crash."""

from __future__ import annotations

import contextlib
import os

from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smarthydra.card.gp import tlv
from smarthydra.card.gp.apdu import CommandApdu
from smarthydra.card.gp.certificates import parse_certificate_store
from smarthydra.card.gp.errors import GpError
from smarthydra.card.gp.scp03 import (
    InitializeUpdateResponse,
    Scp03CardConfig,
    Scp03CardSession,
    Scp03HostSession,
    Scp03StaticKeys,
)
from smarthydra.card.gp.scp11 import AuthenticateRequest, Scp11CardConfig, Scp11CardSession

EXAMPLES = int(os.environ.get("SMARTHYDRA_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
AID = bytes.fromhex("A000000151000000")
KEYS = Scp03StaticKeys.test_keys()


def _open_pair(level: int = 0x33) -> tuple[Scp03HostSession, Scp03CardSession]:
    card = Scp03CardSession(Scp03CardConfig(aid=AID, key_sets=(KEYS,)))
    host = Scp03HostSession(KEYS, host_challenge=bytes(8), aid=AID)
    host.process_initialize_update_response(card.initialize_update(host.initialize_update()))
    card.external_authenticate(host.external_authenticate(level))
    host.mark_authenticated()
    return host, card


def _sm_like(data: bytes) -> bytes:
    # Bias towards APDUs that reach the MAC/decryption code: SM CLA, consistent Lc.
    body = data[:200]
    return bytes((0x84, 0xE6, 0x00, 0x00, len(body))) + body


@FUZZ
@given(st.one_of(st.binary(max_size=300), st.binary(max_size=200).map(_sm_like)))
def test_card_unwrap_any_bytes(raw: bytes) -> None:
    _, card = _open_pair()
    try:
        card.unwrap_command(raw)
    except GpError as exc:
        assert exc.sw in (0x6700, 0x6982, 0x6988, 0x6E00)
    assert card.process(raw)[-2:] in (
        b"\x90\x00",
        b"\x67\x00",
        b"\x69\x82",
        b"\x69\x88",
        b"\x6e\x00",
        b"\x69\x85",
        b"\x6a\x86",
        b"\x6a\x88",
        b"\x6d\x00",
        b"\x63\x00",
        b"\x6a\x80",
    )


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([0x01, 0x03, 0x11, 0x13, 0x33]))
def test_host_unwrap_any_bytes(raw: bytes, level: int) -> None:
    host, card = _open_pair(level)
    card.unwrap_command(host.wrap(bytes.fromhex("80CA006600")))
    try:
        host.unwrap(raw)
    except GpError as exc:
        assert exc.sw in (0x6700, 0x6982, 0x6988)


@FUZZ
@given(st.binary(max_size=300))
def test_parsers_any_bytes(raw: bytes) -> None:
    for parse in (
        CommandApdu.parse,
        InitializeUpdateResponse.parse,
        tlv.parse_all,
        parse_certificate_store,
        AuthenticateRequest.parse,
    ):
        with contextlib.suppress(GpError):
            parse(raw)


@FUZZ
@given(st.binary(max_size=300))
def test_scp11_card_process_any_bytes(raw: bytes) -> None:
    key = ec.derive_private_key(12345, ec.SECP256R1())
    card = Scp11CardSession(Scp11CardConfig(key, oce_ca_public_key=key.public_key()))
    out = card.process(raw)
    assert len(out) >= 2
    for ins in (0x2A, 0x82, 0x88):
        out = card.process(bytes((0x80, ins, 0x01, 0x13, min(len(raw), 255))) + raw[:255])
        assert len(out) >= 2


@FUZZ
@given(st.binary(min_size=1, max_size=300))
def test_card_initialize_update_and_external_authenticate_any_bytes(raw: bytes) -> None:
    card = Scp03CardSession(Scp03CardConfig(aid=AID, key_sets=(KEYS,)))
    out = card.process(bytes((0x80, 0x50, 0x00, 0x00, min(len(raw), 255))) + raw[:255])
    assert len(out) >= 2
    out = card.process(bytes((0x84, 0x82, raw[0], 0x00, min(len(raw), 255))) + raw[:255])
    assert len(out) == 2 or out[-2:] == b"\x90\x00"
