from __future__ import annotations

import contextlib

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smarthydra.applets import cose
from smarthydra.crypto import primitives


@pytest.fixture(scope="module")
def key() -> object:
    return primitives.generate_private_key()


def test_sign1_round_trip_and_tamper(key: object) -> None:
    signed = cose.sign1({"amount": 1234}, b"kid", lambda d: primitives.ecdsa_sign(key, d))
    assert cose.verify_sign1(signed, key.public_key()) == {"amount": 1234}  # type: ignore[attr-defined]
    statement = cose.parse_sign1(signed)
    assert statement.kid == b"kid"
    other = primitives.generate_private_key()
    with pytest.raises(cose.EnvelopeError, match="does not verify"):
        cose.verify_sign1(signed, other.public_key())
    forged = cbor2.loads(signed)
    body = cose.canonical({"amount": 1})
    tampered = cose.canonical(cbor2.CBORTag(18, [forged.value[0], {}, body, forged.value[3]]))
    with pytest.raises(cose.EnvelopeError):
        cose.verify_sign1(tampered, key.public_key())  # type: ignore[attr-defined]


def test_sign1_is_cose_structure(key: object) -> None:
    signed = cbor2.loads(cose.sign1([1], b"k", lambda d: primitives.ecdsa_sign(key, d)))
    assert signed.tag == 18
    protected, unprotected, payload, signature = signed.value
    assert cbor2.loads(protected) == {1: -7}  # ES256
    assert unprotected[4] == b"k" and cbor2.loads(payload) == [1] and len(signature) == 64


def test_seal_opens_only_for_the_recipient() -> None:
    recipient, other = primitives.generate_private_key(), primitives.generate_private_key()
    sealed = cose.seal(b"secret", sender="hub/x", recipient="party",
                       recipient_xy=primitives.public_key_to_xy(recipient.public_key()),
                       ephemeral=cose.HostAgreement.fresh(), iv=bytes(12))
    header, plaintext = cose.open_sealed(sealed, recipient)
    assert plaintext == b"secret" and header.sender == "hub/x" and header.recipient == "party"
    assert b"secret" not in sealed
    with pytest.raises(cose.EnvelopeError):
        cose.open_sealed(sealed, other)


def test_relabelled_header_does_not_open() -> None:
    recipient = primitives.generate_private_key()
    sealed = cose.seal(b"x", sender="hub/a", recipient="p",
                       recipient_xy=primitives.public_key_to_xy(recipient.public_key()),
                       ephemeral=cose.HostAgreement.fresh(), iv=bytes(12))
    protected, iv, body = cbor2.loads(sealed)
    header = cbor2.loads(protected)
    header["from"] = "hub/b"
    relabelled = cose.canonical([cose.canonical(header), iv, body])
    with pytest.raises(cose.EnvelopeError):
        cose.open_sealed(relabelled, recipient)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_parsers_fail_cleanly(data: bytes) -> None:
    key = primitives.private_key_from_scalar(bytes(31) + b"\x07")
    for action in (lambda: cose.parse_sign1(data), lambda: cose.open_sealed(data, key),
                   lambda: cose.sealed_header(data)):
        with contextlib.suppress(cose.EnvelopeError):
            action()
