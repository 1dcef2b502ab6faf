"""The CS02b Update Security Credentials codec against every RTDS CS02b payload."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smarthydra.gbcs.envelope import decode_general_signing, decode_message
from smarthydra.pki.credentials import (
    ROOT_CELL,
    AuthorisingControl,
    CellId,
    CellKeyUsage,
    CellRole,
    CellUsage,
    CredentialsError,
    CredentialsReplacementMode,
    Replacement,
    SeqNumberChange,
    UpdateSecurityCredentials,
    decode_alert,
    decode_command,
    decode_response,
    encode_alert,
    encode_command,
    encode_response,
)
from tests.conftest import conformance_path


def _general_signing(path: Path):  # type: ignore[no-untyped-def]
    data = bytes.fromhex("".join(path.read_text().split()))
    try:
        return decode_message(data).general_signing
    except Exception:  # signed-only (DF...) files
        return decode_general_signing(data)


def _cs02b_files() -> list[Path]:
    root = conformance_path("gbcs", "rtds-4.5.0")
    return sorted(p for p in root.glob("*CS02b*/*.HEX") if "ALERT" not in p.name)


def test_every_rtds_cs02b_payload_round_trips() -> None:
    files = _cs02b_files()
    assert len(files) >= 30
    for path in files:
        gs = _general_signing(path)
        mode = CredentialsReplacementMode.for_message_code(gs.message_code)
        assert mode is not None, path.name
        if gs.cra_flag == 1:
            command = decode_command(gs.payload)
            assert command.control.mode is mode, path.name
            assert encode_command(command) == gs.payload, path.name
        else:
            response = decode_response(gs.payload)
            assert encode_response(response) == gs.payload, path.name
            if response.outcome is not None:
                assert response.outcome.mode == mode


def test_supplier_by_supplier_fields() -> None:
    root = conformance_path("gbcs", "rtds-4.5.0", "6.15.1_CS02bSupplierBySupplier")
    gs = _general_signing(
        root / "CS02bSupplierBySupplier_6.15.1_IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX"
    )
    command = decode_command(gs.payload)
    control = command.control
    assert control.seq_number == gs.originator_counter == 1000
    assert control.authorising_cell == CellId(CellRole.SUPPLIER, CellKeyUsage.DIGITAL_SIGNATURE)
    assert control.apply_time_based_checks is False  # [1] 01: disapply
    assert (control.new_floor, control.new_top_up_floor) == (0, 0)
    targets = [r.target for r in command.replacements]
    assert targets == [
        CellId(CellRole.SUPPLIER, CellKeyUsage.DIGITAL_SIGNATURE),
        CellId(CellRole.SUPPLIER, CellKeyUsage.KEY_AGREEMENT),
        CellId(CellRole.SUPPLIER, CellKeyUsage.KEY_AGREEMENT, CellUsage.PREPAYMENT_TOP_UP),
    ]
    assert len(command.path) == 1
    response = decode_response(
        _general_signing(
            root / "CS02bSupplierBySupplier_6.15.1_IMMEDIATE_ERROR_RESPONSE_GBCS.HEX"
        ).payload
    )
    assert response.outcome is not None
    assert [o.status for o in response.outcome.outcomes] == [0, 10, 0]
    assert response.outcome.changes == (SeqNumberChange(2, 0, 0),)


def test_contingency_response_reports_the_root_cell() -> None:
    root = conformance_path("gbcs", "rtds-4.5.0", "NA_CS02bAnyByContingency")
    gs = _general_signing(root / "CS02bAnyByContingency_NA_SUCCESS_RESPONSE_GBCS.HEX")
    response = decode_response(gs.payload)
    assert response.outcome is not None
    assert response.outcome.outcomes[0].cell == ROOT_CELL
    assert response.outcome.outcomes[0].existing_subject == bytes(8)


def test_encode_rejects_nothing_it_made() -> None:
    command = UpdateSecurityCredentials(
        AuthorisingControl(CredentialsReplacementMode.ACB_BY_ACB, 5, new_floor=0),
        (),
        (),
        dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
    )
    assert decode_command(encode_command(command)) == command


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "malformed"),
        (b"\x30\x03\x02\x01\x63", "malformed"),
        (bytes.fromhex("300a3006020102830101"), "malformed"),  # replacements missing
    ],
)
def test_malformed_commands_are_named(payload: bytes, message: str) -> None:
    with pytest.raises(CredentialsError, match=message):
        decode_command(payload)


def test_unknown_mode_is_refused() -> None:
    # SEQUENCE { control SEQUENCE { mode 99, [3] seq 1 }, replacements {}, path {} }
    payload = bytes.fromhex("300c" + "3006020163830101" + "3000" + "3000")
    with pytest.raises(CredentialsError, match="unknown credentials replacement mode 99"):
        decode_command(payload)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_payloads_only_raise_credentials_error(data: bytes) -> None:
    for decode in (decode_command, decode_response, decode_alert):
        with contextlib.suppress(CredentialsError):
            decode(data)


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255), st.data())
def test_fuzz_mutated_rtds_command(position: int, value: int, data: st.DataObject) -> None:
    root = conformance_path("gbcs", "rtds-4.5.0", "6.15.1_CS02bNOByNO")
    payload = bytearray(
        _general_signing(root / "CS02bNOByNO_6.15.1_SUCCESS_COMMAND_GBCS.HEX").payload
    )
    payload[position % len(payload)] = value
    cut = data.draw(st.integers(min_value=0, max_value=len(payload)))
    with contextlib.suppress(CredentialsError):
        decode_command(bytes(payload[:cut] if cut else payload))


def test_replacement_round_trip_keeps_certificate_bytes() -> None:
    root = conformance_path("gbcs", "rtds-4.5.0", "8.5_CS02bACBByACB")
    gs = _general_signing(root / "CS02bACBByACB_8.5_SUCCESS_COMMAND_GBCS.HEX")
    command = decode_command(gs.payload)
    assert command.control.authorising_cell is None
    rebuilt = UpdateSecurityCredentials(
        command.control,
        tuple(Replacement(r.certificate, r.target) for r in command.replacements),
        command.path,
    )
    assert encode_command(rebuilt) == gs.payload


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255), st.data())
def test_fuzz_mutated_rtds_alert(position: int, value: int, data: st.DataObject) -> None:
    root = conformance_path("gbcs", "rtds-4.5.0", "6.15.1_CS02bSupplierBySupplier")
    payload = bytearray(
        _general_signing(
            root / "CS02bSupplierBySupplier_6.15.1_8F67_FUTURE_DATED_ERROR_ALERT_GBCS.HEX"
        ).payload
    )
    payload[position % len(payload)] = value
    cut = data.draw(st.integers(min_value=0, max_value=len(payload)))
    with contextlib.suppress(CredentialsError):
        alert = decode_alert(bytes(payload[:cut] if cut else payload))
        assert decode_alert(encode_alert(alert)) == alert


def test_alert_fields_and_a_response_is_not_an_alert() -> None:
    root = conformance_path("gbcs", "rtds-4.5.0", "6.15.1_CS02bSupplierBySupplier")
    alert = decode_alert(
        _general_signing(
            root / "CS02bSupplierBySupplier_6.15.1_8F67_FUTURE_DATED_ERROR_ALERT_GBCS.HEX"
        ).payload
    )
    assert alert.alert_code == 0x8F67
    assert alert.time == dt.datetime(2030, 1, 15, tzinfo=dt.UTC)
    assert alert.outcome.seq_number == 1004
    assert [o.status for o in alert.outcome.outcomes] == [0, 10, 0]
    response = _general_signing(
        root / "CS02bSupplierBySupplier_6.15.1_IMMEDIATE_SUCCESS_RESPONSE_GBCS.HEX"
    ).payload
    with pytest.raises(CredentialsError, match="alert"):
        decode_alert(response)
