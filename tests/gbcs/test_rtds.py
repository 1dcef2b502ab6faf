"""The RTDS keystore loader and the per-message checker."""

from __future__ import annotations

from pathlib import Path

import pytest

from smarthydra.gbcs import security
from smarthydra.gbcs.envelope import decode_message
from smarthydra.gbcs.rtds import (
    KeyKind,
    Outcome,
    RtdsKeystore,
    RtdsKeystoreError,
    check_message,
    default_keystore_dir,
    rtds_message_files,
    verify_rtds,
)
from smarthydra.gbcs.sensitive import find_protected_blocks
from tests.conftest import conformance_path
from tests.gbcs.vectors import ECS04B_COMMAND, read_hex

ACB = bytes.fromhex("90B3D51F30000002")
SUPPLIER = bytes.fromhex("90B3D51F30010000")
ESME = bytes.fromhex("00DB1234567890A0")


@pytest.fixture(scope="module")
def keys() -> RtdsKeystore:
    return RtdsKeystore.load(conformance_path("gbcs", "rtds-keystore"))


def test_keystore_roles_and_device_keys(keys: RtdsKeystore) -> None:
    assert keys.access_control_broker == ACB
    assert keys.parties[ACB].role == "04"
    assert keys.parties[SUPPLIER].role == "02"
    esme = keys.parties[ESME]
    assert esme.is_device and not esme.private
    assert set(esme.public) == {KeyKind.DS, KeyKind.KA}
    assert KeyKind.PP_KA in keys.parties[SUPPLIER].private
    # Two devices: no private half on either side, so no shared secret.
    assert keys.shared_secret(ESME, bytes.fromhex("00DB1234567890A3")) is None
    assert keys.shared_secret(ACB, ESME) == keys.shared_secret(ESME, ACB)
    assert keys.shared_secret(ACB, b"\x00" * 8) is None


def test_keystore_worked_example_keys(keys: RtdsKeystore) -> None:
    # abababababababab-ka.key is the worked example's ACB key; fffffffffffffffe its device.
    message = decode_message(ECS04B_COMMAND)
    z = keys.shared_secret(bytes.fromhex("ABABABABABABABAB"), message.recipient)
    assert z is not None
    assert security.verify_mac(security.message_mac_key(z, message), message)


def test_keystore_errors(tmp_path: Path) -> None:
    with pytest.raises(RtdsKeystoreError, match="not found"):
        RtdsKeystore.load(tmp_path / "missing")
    (tmp_path / "0011223344556677-ka.pem").write_text("not a pem")
    with pytest.raises(RtdsKeystoreError, match=r"0011223344556677-ka\.pem"):
        RtdsKeystore.load(tmp_path)


def test_unrelated_files_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "README.txt").write_text("x")
    (tmp_path / "zz-ka.pem").write_text("x")
    (tmp_path / "0011223344556677-xx.pem").write_text("x")
    assert RtdsKeystore.load(tmp_path).parties == {}


def test_default_keystore_dir_walks_up() -> None:
    root = conformance_path("gbcs")
    expected = root / "rtds-keystore"
    assert default_keystore_dir(root) == expected
    assert default_keystore_dir(root / "rtds-4.5.0" / "7.2_ECS43").resolve() == expected.resolve()


def test_check_message_outcomes(keys: RtdsKeystore) -> None:
    folder = conformance_path("gbcs", "rtds-4.5.0", "7.2_ECS43")
    command = check_message("c", read_hex(folder / "ECS43_7.2_SUCCESS_COMMAND_GBCS.HEX"), keys)
    assert (command.mac, command.signature, command.failed) == (Outcome.VALID, Outcome.VALID, False)
    pre = check_message("p", read_hex(folder / "ECS43_7.2_SUCCESS_PRECOMMAND_GBCS.HEX"), keys)
    assert (pre.mac, pre.signature) == (Outcome.NOT_APPLICABLE, Outcome.UNSIGNED)
    tampered = bytearray(read_hex(folder / "ECS43_7.2_SUCCESS_COMMAND_GBCS.HEX"))
    tampered[60] ^= 0x01  # inside the payload: both MAC and signature break
    bad = check_message("t", bytes(tampered), keys)
    assert (bad.mac, bad.signature, bad.failed) == (Outcome.INVALID, Outcome.INVALID, True)
    garbage = check_message("g", b"\x01\x02", keys)
    assert not garbage.parsed and garbage.failed and "UnexpectedTag" in (garbage.error or "")


def test_sensitive_response_decrypts_to_dlms_data(keys: RtdsKeystore) -> None:
    path = conformance_path(
        "gbcs", "rtds-4.5.0", "4.1.1_ECS17b", "ECS17b_4.1.1_SINGLE_SUCCESS_RESPONSE_GBCS.HEX"
    )
    check = check_message(path.name, read_hex(path), keys)
    assert check.protected_blocks == check.decrypted_blocks == 1
    # The plaintext is A-XDR data: a structure/array tag then the register values.
    assert check.decrypted[0][0] in (0x01, 0x02)
    message = decode_message(read_hex(path))
    (block,) = find_protected_blocks(message.payload)
    corrupted = bytearray(read_hex(path))
    corrupted[read_hex(path).index(block) + 3] ^= 0xFF
    bad = check_message("bad", bytes(corrupted), keys)
    assert bad.protected_blocks == 1 and bad.decrypted_blocks == 0 and bad.failed


def test_whole_rtds_numbers(keys: RtdsKeystore) -> None:
    files = rtds_message_files(conformance_path("gbcs", "rtds-4.5.0"))
    summary = verify_rtds(files, keys)
    assert summary.files == summary.parsed == 1275
    assert summary.mac_valid >= 811
    # PCS01/PCS02 commands and responses: HAN-only, MAC'd device to device (no published key).
    assert summary.mac_invalid == 0 and summary.mac_skipped == 4
    assert summary.signature_valid == 472 and summary.signature_invalid == 0
    assert summary.decrypted_ok == 48 and summary.decrypted_failed == 0
    assert summary.failures == []
