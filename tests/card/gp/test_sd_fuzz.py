"""Hypothesis against the on-card security domain's command parser: any command, in or out of
an authenticated session, gets a status word; the SD never fails with an exception (6F00)
and the card keeps working."""

from __future__ import annotations

import contextlib
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smarthydra.card.card import Card
from smarthydra.card.gp import tlv
from smarthydra.card.gp.client import GpClient
from smarthydra.card.gp.scp03 import Scp03StaticKeys

from .gpcards import gp_card, note_package

EXAMPLES = int(os.environ.get("SMARTHYDRA_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
GP_INS = [0x50, 0x82, 0x2A, 0x88, 0xE6, 0xE8, 0xE4, 0xF2, 0xF0, 0xD8, 0xE2, 0xCA, 0xCB]


def _lv_fields() -> st.SearchStrategy[bytes]:
    field = st.one_of(st.just(b""), st.binary(min_size=1, max_size=20),
                      st.sampled_from([bytes.fromhex("A000000151535041"),
                                       bytes.fromhex("A0000001515350"),
                                       bytes.fromhex("A000000151000000"),
                                       note_package().aid]))
    return st.lists(field, max_size=7).map(lambda fs: b"".join(bytes((len(f),)) + f for f in fs))


def _tlvs() -> st.SearchStrategy[bytes]:
    tag = st.sampled_from([0x4F, 0x5C, 0x9E, 0xB6, 0xD0, 0xD2, 0xC4, 0xE2, 0xC3, 0xA6, 0x83,
                           0x5F49, 0x42, 0x45, 0xBF21, 0x7F21, 0x88, 0xB0, 0xB1])
    item = st.tuples(tag, st.binary(max_size=24)).map(lambda t: tlv.encode(*t))
    return st.lists(item, max_size=5).map(b"".join)


DATA = st.one_of(st.binary(max_size=120), _lv_fields(), _tlvs())
COMMAND = st.tuples(st.sampled_from([0x80, 0x84, 0x00, 0x81]),
                    st.one_of(st.sampled_from(GP_INS), st.integers(0, 255)),
                    st.integers(0, 255), st.integers(0, 255), DATA)

_CARD: list[Card] = []


def _card() -> Card:
    if not _CARD:
        _CARD.append(gp_card(seed=b"fuzz"))
    return _CARD[0]


def _open(card: Card, level: int) -> GpClient:
    client = GpClient(card.transmit)
    client.select()
    client.open_scp03(Scp03StaticKeys.test_keys(), security_level=level)
    return client


def _check(card: Card, response: bytes) -> None:
    assert len(response) >= 2
    sw = int.from_bytes(response[-2:], "big")
    assert 0x6000 <= sw <= 0x9FFF
    assert sw != 0x6F00, card.runtime.last_error


@FUZZ
@given(st.lists(COMMAND, min_size=1, max_size=4))
def test_sd_answers_any_command_inside_a_session_with_a_status_word(commands: list[tuple[
        int, int, int, int, bytes]]) -> None:
    card = _card()
    client = _open(card, 0x00)  # authenticated, no secure messaging: commands reach the SD
    for cla, ins, p1, p2, data in commands:
        raw = bytes((cla, ins, p1, p2)) + (bytes((len(data),)) + data if data else b"") + b"\0"
        _check(card, card.transmit(raw))
    client.select()
    assert client.send(bytes.fromhex("80CA006600")).sw == 0x9000


@FUZZ
@given(COMMAND)
def test_sd_answers_any_command_outside_a_session(command: tuple[int, int, int, int, bytes]
                                                  ) -> None:
    card = _card()
    GpClient(card.transmit).select()
    cla, ins, p1, p2, data = command
    _check(card, card.transmit(bytes((cla, ins, p1, p2, len(data))) + data))


@FUZZ
@given(st.binary(max_size=80), st.sampled_from([0x01, 0x03, 0x13, 0x33]))
def test_garbage_under_secure_messaging_closes_the_session_with_a_status_word(
        garbage: bytes, level: int) -> None:
    card = _card()
    _open(card, level)
    response = card.transmit(bytes((0x84, 0xF2, 0x40, 0x02, len(garbage))) + garbage)
    _check(card, response)
    assert response[-2:] in (b"\x69\x82", b"\x69\x88", b"\x67\x00")


@FUZZ
@given(st.binary(max_size=200), st.integers(1, 0x7F), st.booleans())
def test_put_key_parser_raises_only_wrong_data(data: bytes, kid: int, encrypted: bool) -> None:
    from smarthydra.card.gp.errors import WrongData
    from smarthydra.card.gp.keystore import decode_put_key

    with contextlib.suppress(WrongData):
        decode_put_key(data, kid, bytes(16) if encrypted else None)


@FUZZ
@given(st.sampled_from([0x02, 0x04, 0x08, 0x0C, 0x10, 0x20, 0x40]),
       st.one_of(st.binary(max_size=120), _lv_fields(), _tlvs()))
def test_management_parsers_raise_only_wrong_data(p1: int, data: bytes) -> None:
    from smarthydra.card.applet import ISOException
    from smarthydra.card.gp import management as gpm
    from smarthydra.card.gp.errors import WrongData
    from smarthydra.card.gp.sd import parse_dgis

    parsers = (lambda: gpm.InstallData.parse(p1, data), lambda: gpm.DeleteData.parse(data),
               lambda: gpm.LoadFile.parse(data), lambda: gpm.StatusEntry.parse_tlv(data),
               lambda: gpm.Confirmation.parse(data), lambda: parse_dgis(data))
    for parse in parsers:
        with contextlib.suppress(WrongData, ISOException):
            parse()
