from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smarthydra.duis.request import CommandVariant, RequestId, RequestIdError
from smarthydra.eui import Eui64, InvalidEui64


def test_request_id_round_trip_matches_duis_examples() -> None:
    text = "90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:1007"
    rid = RequestId.parse(text)
    assert rid.originator == Eui64.parse("90B3D51F30010000")
    assert rid.target == Eui64(bytes.fromhex("00DB1234567890A0"))
    assert rid.counter == 1007
    assert str(rid) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0",
        "90-B3-D5-1F-30-01-00:00-DB-12-34-56-78-90-A0:1",
        "90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:-1",
        "90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:0x10",
        "90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:18446744073709551616",
    ],
)
def test_bad_request_ids_are_refused(text: str) -> None:
    with pytest.raises(RequestIdError):
        RequestId.parse(text)


@given(st.text(max_size=80))
def test_request_id_parser_never_raises_anything_else(text: str) -> None:
    with contextlib.suppress(RequestIdError):
        RequestId.parse(text)


def test_eui_forms() -> None:
    eui = Eui64.from_int(0x00DB1234567890A0)
    assert str(eui) == "00DB1234567890A0"
    assert eui.hyphenated == "00-DB-12-34-56-78-90-A0"
    with pytest.raises(InvalidEui64):
        Eui64(b"short")
    with pytest.raises(InvalidEui64):
        Eui64.parse("00DB1234567890AZ")


def test_command_variants() -> None:
    assert CommandVariant(4).is_critical
    assert not CommandVariant(1).is_critical
    assert CommandVariant(5).carries_signed_precommand
    assert not CommandVariant(4).carries_signed_precommand
