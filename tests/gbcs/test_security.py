"""MAC keys, MACs, signatures and sensitive-payload encryption."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from smarthydra.crypto import primitives
from smarthydra.gbcs import security
from smarthydra.gbcs.envelope import (
    CraFlag,
    GbcsMessage,
    OtherInformation,
    decode_message,
    parse_mac_header,
)
from smarthydra.gbcs.errors import DecryptionFailed, GbcsEncodeError, SignatureMissing
from tests.gbcs.vectors import (
    ACB_KA_PRIVATE,
    DEVICE_A_EUI,
    DEVICE_A_KA_XY,
    ECS04B_COMMAND,
    ECS04B_MAC,
    SUPPLIER_A_DS_XY,
    SUPPLIER_A_EUI,
)


def _z() -> bytes:
    acb = primitives.private_key_from_scalar(ACB_KA_PRIVATE)
    return security.shared_secret(acb, primitives.public_key_from_xy(DEVICE_A_KA_XY))


def test_worked_example_signature_verifies() -> None:
    message = decode_message(ECS04B_COMMAND)
    key = primitives.public_key_from_xy(SUPPLIER_A_DS_XY)
    assert security.verify_signature(message, key)
    assert security.verify_signature(message.general_signing, key)


def test_worked_example_mac_is_reproduced() -> None:
    message = decode_message(ECS04B_COMMAND)
    key = security.mac_key(_z(), SUPPLIER_A_EUI, CraFlag.COMMAND, 1, DEVICE_A_EUI)
    assert key == security.message_mac_key(_z(), message)
    assert security.compute_mac(key, SUPPLIER_A_EUI, ECS04B_COMMAND[14:-12]) == ECS04B_MAC
    assert security.verify_mac(key, message)
    assert security.verify_mac(key, parse_mac_header(ECS04B_COMMAND))


def test_mac_key_is_the_sp800_56a_kdf_with_gbcs_other_info() -> None:
    z = bytes(range(32))
    other = (
        bytes.fromhex("60857406080300")
        + SUPPLIER_A_EUI
        + bytes.fromhex("09 02 0000000000000005")
        + DEVICE_A_EUI
    )
    expected = hashlib.sha256(b"\x00\x00\x00\x01" + z + other).digest()[:16]
    assert security.mac_key(z, SUPPLIER_A_EUI, 2, 5, DEVICE_A_EUI) == expected
    enc_other = (
        bytes.fromhex("60857406080300")
        + SUPPLIER_A_EUI
        + bytes.fromhex("09 04 0000000000000005")
        + DEVICE_A_EUI
    )
    expected_enc = hashlib.sha256(b"\x00\x00\x00\x01" + z + enc_other).digest()[:16]
    assert security.encryption_key(z, SUPPLIER_A_EUI, 5, DEVICE_A_EUI) == expected_enc


@pytest.mark.parametrize(
    "index", [9, 20, 40, 60, len(ECS04B_COMMAND) - 13, len(ECS04B_COMMAND) - 1]
)
def test_any_flipped_bit_breaks_the_mac(index: int) -> None:
    tampered = bytearray(ECS04B_COMMAND)
    tampered[index] ^= 0x01
    key = security.mac_key(_z(), SUPPLIER_A_EUI, CraFlag.COMMAND, 1, DEVICE_A_EUI)
    assert not security.verify_mac(key, parse_mac_header(bytes(tampered)))


def test_wrong_key_or_missing_mac_does_not_verify() -> None:
    message = decode_message(ECS04B_COMMAND)
    assert not security.verify_mac(b"\x00" * 16, message)
    unmacd = GbcsMessage(message.general_signing)
    assert not security.verify_mac(b"\x00" * 16, unmacd)


def test_signature_checks() -> None:
    message = decode_message(ECS04B_COMMAND)
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert not security.verify_signature(message, other)
    with pytest.raises(SignatureMissing):
        security.verify_signature(message.general_signing.with_signature(b""), other)
    assert security.signed_data(message.general_signing) == ECS04B_COMMAND[15 : -12 - 65]
    pre = message.general_signing.with_signature(None).wire()
    assert security.signed_data(pre) == pre[1:]


def test_sign_with_private_key_and_keystore_label() -> None:
    from tests.gbcs.memory_keystore import MemoryKeystore

    message = decode_message(ECS04B_COMMAND)
    private = ec.generate_private_key(ec.SECP256R1())
    signature = security.sign(message.general_signing, private_key=private)
    assert primitives.ecdsa_verify(
        private.public_key(), message.general_signing.signed_data(), signature
    )
    store = MemoryKeystore()
    store.import_private_key("supplier-ds", private, usage=None)  # type: ignore[arg-type]
    signature = security.sign(message.general_signing, keystore=store, label="supplier-ds")
    assert primitives.ecdsa_verify(
        private.public_key(), message.general_signing.signed_data(), signature
    )
    with pytest.raises(GbcsEncodeError, match="keystore"):
        security.sign(message.general_signing)


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=200), st.binary(min_size=16, max_size=16))
def test_payload_encryption_round_trip(plaintext: bytes, key: bytes) -> None:
    sealed = security.encrypt_payload(key, DEVICE_A_EUI, plaintext)
    assert len(sealed) == len(plaintext) + 12
    assert security.decrypt_payload(key, DEVICE_A_EUI, sealed) == plaintext
    block = security.seal_sensitive(key, DEVICE_A_EUI, plaintext)
    assert block[:5] == bytes.fromhex("3100000000")
    assert security.open_sensitive(key, DEVICE_A_EUI, block) == plaintext


def test_payload_decryption_failures() -> None:
    key = bytes(16)
    sealed = bytearray(security.encrypt_payload(key, DEVICE_A_EUI, b"secret reading"))
    sealed[0] ^= 1
    with pytest.raises(DecryptionFailed, match="does not authenticate"):
        security.decrypt_payload(key, DEVICE_A_EUI, bytes(sealed))
    with pytest.raises(DecryptionFailed, match="cannot hold"):
        security.decrypt_payload(key, DEVICE_A_EUI, b"short")
    with pytest.raises(DecryptionFailed, match="expected 3100000000"):
        security.open_sensitive(key, DEVICE_A_EUI, b"\x30" + bytes(20))
    # The originator is part of the IV: another originator does not decrypt.
    good = security.encrypt_payload(key, DEVICE_A_EUI, b"x")
    with pytest.raises(DecryptionFailed):
        security.decrypt_payload(key, SUPPLIER_A_EUI, good)


def test_encryption_parameters_use_supplementary_fields() -> None:
    gs = decode_message(ECS04B_COMMAND).general_signing
    assert security.encryption_parameters(gs) == (SUPPLIER_A_EUI, 1, DEVICE_A_EUI)
    party = bytes.fromhex("90B3D51F30020000")
    with_party = gs.__class__(
        gs.transaction_id,
        gs.originator,
        gs.recipient,
        None,
        OtherInformation(0x00B3, party, 9),
        gs.payload,
        b"",
    )
    assert security.encryption_parameters(with_party) == (SUPPLIER_A_EUI, 1, party)
    with_counter = gs.__class__(
        gs.transaction_id,
        gs.originator,
        gs.recipient,
        None,
        OtherInformation(0x00B3, party, 9, 0x77),
        gs.payload,
        b"",
    )
    assert security.encryption_parameters(with_counter) == (SUPPLIER_A_EUI, 0x77, party)
    z = bytes(32)
    assert security.message_encryption_key(z, with_counter) == security.encryption_key(
        z, SUPPLIER_A_EUI, 0x77, party
    )


def test_bad_parameters_are_rejected() -> None:
    with pytest.raises(GbcsEncodeError, match="8 bytes"):
        security.mac_key(bytes(32), b"\x01", 1, 1, DEVICE_A_EUI)
    with pytest.raises(GbcsEncodeError, match="CRA flag"):
        security.mac_key(bytes(32), SUPPLIER_A_EUI, 9, 1, DEVICE_A_EUI)
    with pytest.raises(GbcsEncodeError, match="counter"):
        security.mac_key(bytes(32), SUPPLIER_A_EUI, 1, 1 << 64, DEVICE_A_EUI)
