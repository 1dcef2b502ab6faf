"""Console sessions and the parsers of what operators type (no conformance data)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smarthydra.console.app import FormRefused, operator_name, parse_ticket
from smarthydra.console.queries import REQUEST_STATES, FilterError, parse_state, parse_user
from smarthydra.console.session import SessionBook, token_matches


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_session_is_found_by_its_cookie_until_it_expires() -> None:
    clock = Clock()
    book = SessionBook(b"k" * 32, lifetime=100, now=clock)
    session, cookie = book.open()
    assert book.find(cookie) == session
    clock.now += 101
    assert book.find(cookie) is None


def test_a_cookie_signed_with_another_key_is_refused() -> None:
    _, cookie = SessionBook(b"a" * 32).open()
    other = SessionBook(b"b" * 32)
    assert other.find(cookie) is None
    assert other.find(None) is None and other.find("") is None and other.find("x.y.z") is None


def test_a_tampered_cookie_is_refused() -> None:
    book = SessionBook(b"k" * 32)
    _, cookie = book.open()
    # The first character of the signed value: all six of its bits count (the last one of a
    # base64 text may carry unused bits, and changing only those changes nothing).
    flipped = ("A" if cookie[0] != "A" else "B") + cookie[1:]
    assert book.find(flipped) is None
    signature_at = cookie.rindex(".") + 1
    forged = cookie[:signature_at] + ("A" if cookie[signature_at] != "A" else "B") + cookie[signature_at + 1 :]
    assert book.find(forged) is None
    assert book.find(cookie) is not None


def test_closing_a_session_ends_it() -> None:
    book = SessionBook()
    session, cookie = book.open()
    book.close(session)
    assert book.find(cookie) is None


def test_sessions_are_bounded() -> None:
    book = SessionBook(max_sessions=3)
    cookies = [book.open()[1] for _ in range(5)]
    assert sum(book.find(c) is not None for c in cookies) == 3
    assert book.find(cookies[-1]) is not None


def test_csrf_tokens_are_per_session() -> None:
    book = SessionBook()
    first, _ = book.open()
    second, _ = book.open()
    assert first.csrf != second.csrf
    assert book.csrf_matches(first, first.csrf)
    assert not book.csrf_matches(first, second.csrf)
    assert not book.csrf_matches(first, None) and not book.csrf_matches(first, "")
    assert not book.csrf_matches(first, "\udcff")  # not encodable as it is: no crash


def test_the_operator_name_is_remembered_per_session() -> None:
    book = SessionBook()
    session, cookie = book.open()
    book.remember_operator(session, "Ada")
    found = book.find(cookie)
    assert found is not None and found.operator == "Ada" and found.csrf == session.csrf


def test_token_comparison() -> None:
    assert token_matches("t0ken", "t0ken")
    assert not token_matches("t0ken", "t0ke")
    assert not token_matches("t0ken", None)
    assert not token_matches(None, "") and not token_matches("", "")
    assert not token_matches("t0ken", "t0kén")


def test_operator_names() -> None:
    assert operator_name("  Ada Lovelace ") == "Ada Lovelace"
    for bad in (None, "", "   ", "x" * 65, "a\nb", "tab\there"):
        with pytest.raises(FormRefused) as refused:
            operator_name(bad)
        assert refused.value.status == 400


def test_tickets() -> None:
    assert parse_ticket("17") == 17
    for bad in ("", "0x1", "-1", "1.0", "١٢", "9" * 12, " 1"):
        with pytest.raises(FormRefused):
            parse_ticket(bad)


def test_user_and_state_filters() -> None:
    assert parse_user("90-b3-d5-1f-30-01-00-00") == "90B3D51F30010000"
    assert parse_user("  ") == ""
    assert parse_state("dispatched") == "dispatched" and parse_state("") == ""
    with pytest.raises(FilterError):
        parse_user("90B3")
    with pytest.raises(FilterError):
        parse_state("DISPATCHED")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_operator_text_is_parsed_or_refused_never_crashes(text: str) -> None:
    for parse in (operator_name, parse_ticket):
        try:
            parse(text)
        except FormRefused as exc:
            assert 400 <= exc.status < 500
    try:
        user = parse_user(text)
        assert user == "" or (len(user) == 16 and user == user.upper() and int(user, 16) >= 0)
    except FilterError as exc:
        assert "EUI-64" in str(exc)
    try:
        assert parse_state(text) in ("", *REQUEST_STATES)
    except FilterError as exc:
        assert "is not one of" in str(exc)
