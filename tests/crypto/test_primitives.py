"""Known-answer and property tests for smarthydra.crypto.primitives."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from hypothesis import given, settings
from hypothesis import strategies as st

from smarthydra.crypto import primitives as p

RFC4493_KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
RFC4493_MESSAGE = bytes.fromhex(
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
)


@pytest.mark.parametrize(
    "length, mac",
    [
        (0, "bb1d6929e95937287fa37d129b756746"),
        (16, "070a16b46b4d4144f79bdd9dd04a287c"),
        (40, "dfa66747de9ae63030ca32611497c827"),
        (64, "51f0bebf7e3b9d92fc49741779363cfe"),
    ],
)
def test_aes_cmac_rfc4493(length: int, mac: str) -> None:
    assert p.aes_cmac(RFC4493_KEY, RFC4493_MESSAGE[:length]).hex() == mac


# McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 1, 2 and 4.
GCM_CASES = [
    ("00" * 16, "00" * 12, "", "", "", "58e2fccefa7e3061367f1d57a4e7455a"),
    (
        "00" * 16,
        "00" * 12,
        "00" * 16,
        "",
        "0388dace60b6a392f328c2b971b2fe78",
        "ab6e47d42cec13bdf53a67b21257bddf",
    ),
    (
        "feffe9928665731c6d6a8f9467308308",
        "cafebabefacedbaddecaf888",
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
        "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        "feedfacedeadbeeffeedfacedeadbeefabaddad2",
        "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
        "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
        "5bc94fbc3221a5db94fae95ae7121a47",
    ),
]


@pytest.mark.parametrize("key, iv, plaintext, aad, ciphertext, tag", GCM_CASES)
def test_aes_gcm_known_answers(
    key: str, iv: str, plaintext: str, aad: str, ciphertext: str, tag: str
) -> None:
    k, n, pt, a = (bytes.fromhex(x) for x in (key, iv, plaintext, aad))
    ct, t = p.aes_gcm_encrypt(k, n, pt, a)
    assert (ct.hex(), t.hex()) == (ciphertext, tag)
    ct12, t12 = p.aes_gcm_encrypt(k, n, pt, a, tag_length=12)
    assert ct12 == ct and t12 == t[:12]
    assert p.aes_gcm_decrypt(k, n, ct, a, t) == pt
    assert p.aes_gcm_decrypt(k, n, ct, a, t[:12]) == pt
    if not pt:
        assert p.gmac(k, n, a, 16).hex() == tag
        assert p.gmac_verify(k, n, a, bytes.fromhex(tag)[:12])


def test_aes_gcm_rejects_tampering_and_bad_tags() -> None:
    key, iv = bytes(16), bytes(12)
    ct, tag = p.aes_gcm_encrypt(key, iv, b"secret payload", b"\x31", 12)
    with pytest.raises(p.AuthenticationFailed, match="does not verify"):
        p.aes_gcm_decrypt(key, iv, ct[:-1] + bytes([ct[-1] ^ 1]), b"\x31", tag)
    with pytest.raises(p.AuthenticationFailed, match="does not verify"):
        p.aes_gcm_decrypt(key, iv, ct, b"\x30", tag)
    with pytest.raises(p.AuthenticationFailed, match=r"outside 12\.\.16"):
        p.aes_gcm_decrypt(key, iv, ct, b"\x31", tag[:8])
    assert not p.gmac_verify(key, iv, b"aad", bytes(12))


def test_aes_block_modes_fips197_and_sp800_38a() -> None:
    assert (
        p.aes_ecb_encrypt_block(
            bytes(range(16)), bytes.fromhex("00112233445566778899aabbccddeeff")
        ).hex()
        == "69c4e0d86a7b0430d8cdb78070b4c55a"
    )
    ct = p.aes_cbc_encrypt(RFC4493_KEY, bytes(range(16)), RFC4493_MESSAGE[:32])
    assert ct.hex() == "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
    assert p.aes_cbc_decrypt(RFC4493_KEY, bytes(range(16)), ct) == RFC4493_MESSAGE[:32]
    with pytest.raises(p.CryptoError, match="multiple of 16"):
        p.aes_cbc_encrypt(RFC4493_KEY, bytes(16), b"short")
    with pytest.raises(p.CryptoError, match="multiple of 16"):
        p.aes_cbc_decrypt(RFC4493_KEY, bytes(16), b"short")
    with pytest.raises(p.CryptoError, match="16 bytes"):
        p.aes_ecb_encrypt_block(RFC4493_KEY, b"x")


@settings(max_examples=50, deadline=None)
@given(
    z=st.binary(min_size=32, max_size=32),
    other_info=st.binary(max_size=64),
    length=st.integers(min_value=1, max_value=80),
)
def test_kdf_matches_cryptography_concat_kdf(z: bytes, other_info: bytes, length: int) -> None:
    expected = ConcatKDFHash(hashes.SHA256(), length, other_info).derive(z)
    assert p.kdf_single_step_sha256(z, other_info, length) == expected


# GBCS 18.4 worked example as given in shared/conformance/README.md (public).
ECS04B = bytes.fromhex(
    "DD00000000000081A91100000000DF0901000000000000000108123456789ABCDEF008FFFFFFFFFFFFFFFE000200B3"
    "35D92000000100030300700000130A00FF020300700000130A01FF020300700000130A02FF0203050000000005000000"
    "0005000000004059045AB0F554622B0360340B9D87B5A23ED5723B41DE3F206E58CDD10F915B9FE2E12E2DA3632478A8"
    "DF678E418895869AC1E55318CCE04D120D2D6B44DC167B5D832D15B57A56D620F198B3"
)
SUPPLIER_A_DS = (
    "76628E1C84EF7935548AE5D62C7BB3AD28964CF794F0387A697EEC19CDD98F46"
    "0A4D5E19087EF7216ED89C29831A6EE838C8DE88EF34F11D3F41F36D80B2A5D5"
)
ACB_KA_PRIVATE = "E4A6CFB431471CFCAE491FD566D19C87082CF9FA7722D7FA24B2B3F5669DBEFB"
DEVICE_A_KA = (
    "2DB45A3F21889438B42C8F464C75292BACF5FDDB5DA0B492501B299CBFE92D8F"
    "DB90FC8FF4026129838B1BCAD1402CAE47FE7D8084E409A41AFCE16D63579C5F"
)


def test_gbcs_worked_example_signature_ecdh_kdf_and_gmac() -> None:
    start = ECS04B.index(bytes.fromhex("DF09"))
    general_signing, mac = ECS04B[start:-12], ECS04B[-12:]
    assert general_signing[-65] == 0x40
    signed, signature = general_signing[1:-65], general_signing[-64:]
    supplier = p.public_key_from_xy(bytes.fromhex(SUPPLIER_A_DS))
    assert p.ecdsa_verify(supplier, signed, signature)
    assert not p.ecdsa_verify(supplier, signed[:-1], signature)

    z = p.ecdh(
        p.private_key_from_scalar(bytes.fromhex(ACB_KA_PRIVATE)),
        p.public_key_from_xy(bytes.fromhex(DEVICE_A_KA)),
    )
    originator, recipient = bytes.fromhex("123456789ABCDEF0"), bytes.fromhex("FFFFFFFFFFFFFFFE")
    other_info = (
        bytes.fromhex("60857406080300")
        + originator
        + b"\x09\x01"
        + (1).to_bytes(8, "big")
        + recipient
    )
    key = p.kdf_single_step_sha256(z, other_info)
    aad = bytes.fromhex("110000000000") + general_signing
    assert p.gmac(key, originator + bytes(4), aad) == mac
    assert p.gmac_verify(key, originator + bytes(4), aad, mac)


def test_ecdsa_round_trip_and_der_conversion() -> None:
    key = p.generate_private_key()
    signature = p.ecdsa_sign(key, b"message")
    assert len(signature) == p.RAW_SIGNATURE_SIZE
    assert p.der_to_raw_signature(p.raw_to_der_signature(signature)) == signature
    assert p.ecdsa_verify(key.public_key(), b"message", signature)
    assert not p.ecdsa_verify(key.public_key(), b"messagf", signature)
    assert not p.ecdsa_verify(p.generate_private_key().public_key(), b"message", signature)
    assert not p.ecdsa_verify(key.public_key(), b"message", signature[:63])
    assert not p.ecdsa_verify(key.public_key(), b"message", bytes(64))
    with pytest.raises(p.InvalidKey, match="64 bytes"):
        p.raw_to_der_signature(b"\x01" * 10)


def test_ecdh_agrees_and_key_encodings_round_trip() -> None:
    a, b = p.generate_private_key(), p.generate_private_key()
    assert p.ecdh(a, b.public_key()) == p.ecdh(b, a.public_key())
    xy = p.public_key_to_xy(a.public_key())
    assert len(xy) == 64
    assert p.public_key_from_xy(xy).public_numbers() == a.public_key().public_numbers()
    assert p.public_key_from_xy(b"\x04" + xy).public_numbers() == a.public_key().public_numbers()
    scalar = a.private_numbers().private_value.to_bytes(32, "big")
    assert p.private_key_from_scalar(scalar).private_numbers() == a.private_numbers()


@pytest.mark.parametrize(
    "xy, message",
    [
        (b"", "64 bytes"),
        (b"\x02" + bytes(64), "64 bytes"),
        (bytes(64), "not on P-256"),
        (b"\x04" + bytes(65), "64 bytes"),
    ],
)
def test_bad_public_keys(xy: bytes, message: str) -> None:
    with pytest.raises(p.InvalidKey, match=message):
        p.public_key_from_xy(xy)


@pytest.mark.parametrize("scalar", [bytes(32), b"\xff" * 32, bytes(31), bytes(33)])
def test_bad_private_scalars(scalar: bytes) -> None:
    with pytest.raises(p.InvalidKey):
        p.private_key_from_scalar(scalar)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=70))
def test_public_key_parser_never_crashes(data: bytes) -> None:
    try:
        key = p.public_key_from_xy(data)
    except p.InvalidKey:
        return
    assert isinstance(key, ec.EllipticCurvePublicKey)


@settings(max_examples=30, deadline=None)
@given(
    key=st.binary(min_size=16, max_size=16),
    iv=st.binary(min_size=12, max_size=12),
    plaintext=st.binary(max_size=100),
    aad=st.binary(max_size=40),
)
def test_gcm_matches_cryptography_aead(key: bytes, iv: bytes, plaintext: bytes, aad: bytes) -> None:
    ct, tag = p.aes_gcm_encrypt(key, iv, plaintext, aad)
    assert ct + tag == AESGCM(key).encrypt(iv, plaintext, aad)
    assert p.aes_gcm_decrypt(key, iv, ct, aad, tag[:12]) == plaintext
