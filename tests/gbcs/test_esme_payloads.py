"""The ESME payloads of the walking skeleton, rebuilt byte for byte from the RTDS."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smarthydra.gbcs.envelope import decode_message
from smarthydra.gbcs.errors import GbcsDecodeError
from smarthydra.gbcs.esme_payloads import (
    ImportRegisters,
    action_result,
    action_result_response,
    cosem_date_time,
    open_load_switch_command,
    read_import_registers_command,
    read_import_registers_response,
)
from tests.conftest import conformance_path

SUPPLIER = bytes.fromhex("90B3D51F30010000")
ESME = bytes.fromhex("00DB1234567890A0")


def _rtds(name: str) -> bytes:
    folder = name.split("_")[1] + "_" + name.split("_")[0]
    return decode_message(
        bytes.fromhex(conformance_path("gbcs", "rtds-4.5.0", folder, name).read_text().strip())
    ).payload


def test_ecs17b_command_matches_rtds() -> None:
    expected = _rtds("ECS17b_4.1.1_SINGLE_SUCCESS_COMMAND_GBCS.HEX")
    assert read_import_registers_command(1000, SUPPLIER, ESME) == expected


def test_ecs17b_response_framing_matches_rtds() -> None:
    expected = _rtds("ECS17b_4.1.1_SINGLE_SUCCESS_RESPONSE_GBCS.HEX")
    block = expected[expected.index(b"\x31\x00\x00\x00\x00") :][:43]
    assert read_import_registers_response(1000, ESME, SUPPLIER, block) == expected


def test_ecs17b_register_plaintext_matches_rtds_decryption() -> None:
    # What the RTDS response decrypts to (checked by the verify-rtds conformance test).
    plaintext = bytes.fromhex("02010204060000000a02020f00161e060000000a02020f001620")
    registers = ImportRegisters.from_plaintext(plaintext)
    assert registers == ImportRegisters(10, 10)
    assert registers.to_plaintext() == plaintext


def test_ecs43_command_and_responses_match_rtds() -> None:
    assert open_load_switch_command(1000) == _rtds("ECS43_7.2_SUCCESS_COMMAND_GBCS.HEX")
    assert action_result_response(1000, 0) == _rtds("ECS43_7.2_SUCCESS_RESPONSE_GBCS.HEX")
    assert action_result_response(1001, 1) == _rtds("ECS43_7.2_ERROR_RESPONSE_GBCS.HEX")
    assert action_result(action_result_response(5, 0)) == 0


def test_bad_register_data_is_refused() -> None:
    with pytest.raises(GbcsDecodeError):
        ImportRegisters.from_plaintext(b"\x02\x01")
    with pytest.raises(GbcsDecodeError):
        ImportRegisters.from_plaintext(bytes(26))
    with pytest.raises(GbcsDecodeError):
        action_result(b"\xda")


def test_cosem_date_time_matches_rtds_form() -> None:
    assert cosem_date_time(datetime(2015, 1, 1, tzinfo=UTC)).hex() == "07df0101ff000000008000ff"
