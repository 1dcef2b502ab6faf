"""What the card API gained for restricted applets: the CBOR codec and keyless crypto."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smarthydra.applets import cose
from smarthydra.card.apdu import SW
from smarthydra.card.applet import CBOR, ISOException
from smarthydra.card.keys import CardCrypto
from smarthydra.card.sandbox import SandboxViolation, compile_applet
from smarthydra.crypto import primitives

PLAIN = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=40)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
        st.text(max_size=8) | st.integers(-100, 100), inner, max_size=5),
    max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(value=PLAIN)
def test_cbor_is_canonical_and_round_trips(value: object) -> None:
    encoded = CBOR.encode(value)
    assert encoded == cose.canonical(value)
    assert CBOR.decode(encoded) == value


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=64))
def test_cbor_decode_answers_6a80_for_anything_bad(data: bytes) -> None:
    try:
        CBOR.decode(data)
    except ISOException as exc:
        assert exc.sw == SW.WRONG_DATA


def test_cbor_refuses_what_is_not_plain_data() -> None:
    import cbor2

    for bad in (cbor2.dumps(1.5), cbor2.dumps([cbor2.CBORTag(1, 0)]),
                cbor2.dumps([[[[[[[[[[[[[[[[[[[0]]]]]]]]]]]]]]]]]]]), b"\xff", b""):
        with pytest.raises(ISOException) as refused:
            CBOR.decode(bad)
        assert refused.value.sw == SW.WRONG_DATA
    # one outer tag (COSE_Sign1) is stripped
    assert CBOR.decode(CBOR.encode([1, b"x"], 18)) == [1, b"x"]
    with pytest.raises(ISOException):
        CBOR.encode({"x": 1.5})


def test_card_crypto() -> None:
    key = primitives.generate_private_key()
    xy = primitives.public_key_to_xy(key.public_key())
    signature = primitives.ecdsa_sign(key, b"statement")
    assert CardCrypto.ecdsa_verify(xy, b"statement", signature)
    assert not CardCrypto.ecdsa_verify(xy, b"statement!", signature)
    assert not CardCrypto.ecdsa_verify(b"\x01" * 64, b"statement", signature)
    assert CardCrypto.is_p256_point(xy) and not CardCrypto.is_p256_point(b"\x00" * 64)
    assert CardCrypto.sha256(b"abc").hex().startswith("ba7816bf")


def test_restricted_code_reaches_the_codec_but_not_cbor2() -> None:
    ok = ("from smarthydra.card.applet import CBOR\nfrom smarthydra.card.keys import CardCrypto\n"
          "def f(x):\n    return CardCrypto.sha256(CBOR.encode([x]))\n")
    compile_applet(ok)
    with pytest.raises(SandboxViolation):
        compile_applet("import cbor2\n")
    with pytest.raises(SandboxViolation):
        compile_applet("from smarthydra.applets.cose import canonical\n")
