"""Every RTDS CS02b command replayed through our device: the same response, byte for byte.

The device is given the RTDS trust anchors: the party certificates of ``rtds-keystore`` and
the RTDS root, whose certificate is not published. Its public key is recovered from the
organisation CA certificate's ECDSA signature (SEC 1 section 4.1.6, via the ``ecdsa``
package): of the two candidate keys, the one whose GBCS key identifier equals the CA
certificate's authorityKeyIdentifier. Every RTDS command then runs through
:class:`DeviceTrustAnchors` unchanged (signatures verified with the anchored keys, chains to
the recovered root), and the payload and header of our response (signature and date-time
aside, which are not deterministic) equal the RTDS response. Future-dated commands answer
``commandAccepted`` and, once executed, send the RTDS 8F66 / 8F67 alerts byte for byte.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.clock import FixedClock
from smarthydra.crypto.keystore import KeyUsage
from smarthydra.crypto.softstore import SoftKeystore
from smarthydra.gbcs.envelope import CraFlag, GeneralSigning, decode_general_signing, decode_message
from smarthydra.pki.certificates import OrganisationCertificate, parse_certificate
from smarthydra.pki.credentials import (
    CREDENTIALS_ALERT_MESSAGE_CODE,
    FUTURE_DATED_EXECUTED,
    FUTURE_DATED_FAILED,
    ROOT_CELL,
    CellId,
    CellKeyUsage,
    CellUsage,
    StatusCode,
    decode_alert,
    decode_command,
    decode_response,
    encode_alert,
    encode_response,
)
from smarthydra.pki.issue import key_identifier
from smarthydra.premises.anchors import ROOT_SUBJECT, AnchorCell, DeviceTrustAnchors
from tests.conftest import conformance_path

ecdsa = pytest.importorskip("ecdsa")

RTDS_NOW = dt.datetime(2020, 6, 1, tzinfo=dt.UTC)  # inside every RTDS certificate's validity
DS, KA = CellKeyUsage.DIGITAL_SIGNATURE, CellKeyUsage.KEY_AGREEMENT


def _rtds() -> Path:
    return conformance_path("gbcs", "rtds-4.5.0")


def _hex(path: Path) -> bytes:
    return bytes.fromhex("".join(path.read_text().split()))


def _general_signing(wire: bytes) -> GeneralSigning:
    return (
        decode_general_signing(wire)
        if wire[:1] == b"\xdf"
        else decode_message(wire).general_signing
    )


def _command_files() -> list[Path]:
    return sorted(_rtds().glob("*CS02b*/*_COMMAND_GBCS.HEX"))


def _rtds_root() -> AnchorCell:
    """The RTDS root's public key, recovered from the organisation CA's signature."""
    command = _general_signing(
        _hex(_rtds() / "6.15.1_CS02bNOByNO" / "CS02bNOByNO_6.15.1_SUCCESS_COMMAND_GBCS.HEX")
    )
    ca_der = decode_command(command.payload).path[0]
    ca = asn1_x509.Certificate.load(ca_der)
    wanted = parse_certificate(ca_der).authority_key_id
    candidates = ecdsa.VerifyingKey.from_public_key_recovery(
        ca["signature_value"].native,
        ca["tbs_certificate"].dump(),
        ecdsa.NIST256p,
        hashfunc=hashlib.sha256,
        sigdecode=ecdsa.util.sigdecode_der,
    )
    for candidate in candidates:
        key = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), candidate.to_string("uncompressed")
        )
        if key_identifier(key) == wanted:
            return AnchorCell(ROOT_CELL, ROOT_SUBJECT, wanted, key)
    raise AssertionError("no recovered key matches the root's key identifier")


def _rtds_device(recipient: bytes, *, handover: bool = False) -> DeviceTrustAnchors:
    """A device holding the RTDS anchors (for 6.21 handover the DCC, 90B3D51F30000002,
    holds the supplier and network operator cells, as the RTDS handover responses show)."""
    keystore = SoftKeystore(None, passphrase=b"rtds device")
    keystore.generate("ds", KeyUsage.DIGITAL_SIGNATURE)
    supplier = "90b3d51f30000002" if handover else "90b3d51f30010000"
    operator = "90b3d51f30000002" if handover else "90b3d51f30020000"
    table = [
        (CellId(1, DS), "90b3d51f30000001-ds"),
        (CellId(2, DS), f"{supplier}-ds"),
        (CellId(2, KA), f"{supplier}-ka"),
        (
            CellId(2, KA, CellUsage.PREPAYMENT_TOP_UP),
            f"{supplier}-ka" if handover else "90b3d51f30010000-pp-ka",
        ),
        (CellId(3, DS), f"{operator}-ds"),
        (CellId(3, KA), f"{operator}-ka"),
        (CellId(4, KA), "90b3d51f30000002-ka"),
        (CellId(5, DS), "90b3d51f30000004-ds"),
        (CellId(6, DS), "90b3d51f30000007-ds"),
    ]
    keystore_dir = conformance_path("gbcs", "rtds-keystore")
    cells = {ROOT_CELL: _rtds_root()}
    for cell, name in table:
        certificate = parse_certificate((keystore_dir / f"{name}.pem").read_bytes())
        assert isinstance(certificate, OrganisationCertificate), name
        cells[cell] = AnchorCell.from_certificate(cell, certificate)
    return DeviceTrustAnchors(recipient, keystore, FixedClock(RTDS_NOW), cells)


def _header(gs: GeneralSigning) -> tuple[object, ...]:
    return (gs.cra_flag, gs.originator, gs.recipient, gs.originator_counter, gs.message_code)


def _replay(path: Path) -> tuple[DeviceTrustAnchors, GeneralSigning]:
    wire = _hex(path)
    command = _general_signing(wire)
    device = _rtds_device(command.recipient, handover="Handover" in path.name)
    out = device.process(command, maced=wire[:1] != b"\xdf")
    assert out is not None, (path.name, device.log)
    return device, decode_general_signing(out)


def test_every_rtds_cs02b_variant_is_present() -> None:
    modes = {_general_signing(_hex(p)).message_code for p in _command_files()}
    # supplierBySupplier, NOByNO, ACBByACB, WPByWP, transCoSByTransCoS, supplierByTransCoS,
    # anyExceptAbnormalRootByRecovery; anyByContingency has responses only (tested below).
    assert modes == {0x0102, 0x0103, 0x0104, 0x0105, 0x0106, 0x0107, 0x0108}
    assert len(_command_files()) == 15


@pytest.mark.parametrize("index", range(15))
def test_rtds_command_gives_the_rtds_response_byte_for_byte(index: int) -> None:
    path = _command_files()[index]
    device, ours = _replay(path)
    reference = _general_signing(_hex(Path(str(path).replace("_COMMAND_", "_RESPONSE_"))))
    assert _header(ours) == _header(reference), path.name
    assert ours.payload == reference.payload, path.name
    assert ours.is_signed and reference.is_signed
    if b"FUTURE_DATED" in path.name.encode():
        assert device.pending  # answered commandAccepted, executes later
    else:
        assert not device.pending


def test_rtds_error_example_applies_the_valid_cells() -> None:
    """6.15.1 IMMEDIATE_ERROR: the KA certificate from another CA is refused (noTrustAnchor)
    and keeps the old cell; the DS and prepayment top-up cells are replaced."""
    path = _rtds() / "6.15.1_CS02bSupplierBySupplier"
    device, ours = _replay(path / "CS02bSupplierBySupplier_6.15.1_IMMEDIATE_ERROR_COMMAND_GBCS.HEX")
    outcome = decode_response(ours.payload).outcome
    assert outcome is not None
    assert [o.status for o in outcome.outcomes] == [0, StatusCode.NO_TRUST_ANCHOR, 0]
    assert device.cells[CellId(2, DS)].key_id == outcome.outcomes[0].replacing_key_id
    assert device.cells[CellId(2, KA)].key_id == bytes.fromhex("405b8c62687d8f70")  # unchanged
    assert (
        device.cells[CellId(2, KA, CellUsage.PREPAYMENT_TOP_UP)].key_id
        == outcome.outcomes[2].replacing_key_id
    )
    # The floors still move: the top-up floor is set; the same supplier's floor is not lowered
    # below the command's own sequence number.
    assert device.top_up_floors[2] == 0 and device.seq_floors[2] == 1003


@pytest.mark.parametrize(
    ("directory", "command", "alert", "code"),
    [
        (
            "6.15.1_CS02bSupplierBySupplier",
            "CS02bSupplierBySupplier_6.15.1_FUTURE_DATED_SUCCESS_COMMAND_GBCS.HEX",
            "CS02bSupplierBySupplier_6.15.1_8F66_FUTURE_DATED_SUCCESS_ALERT_GBCS.HEX",
            FUTURE_DATED_EXECUTED,
        ),
        (
            "6.15.1_CS02bSupplierBySupplier",
            "CS02bSupplierBySupplier_6.15.1_FUTURE_DATED_ERROR_COMMAND_GBCS.HEX",
            "CS02bSupplierBySupplier_6.15.1_8F67_FUTURE_DATED_ERROR_ALERT_GBCS.HEX",
            FUTURE_DATED_FAILED,
        ),
        (
            "6.23_CS02bSupplierByTransCoS",
            "CS02bSupplierByTransCoS_6.23_FUTURE_DATED_SUCCESS_COMMAND_GBCS.HEX",
            "CS02bSupplierByTransCoS_6.23_8F66_FUTURE_DATED_SUCCESS_ALERT_GBCS.HEX",
            FUTURE_DATED_EXECUTED,
        ),
    ],
)
def test_future_dated_execution_sends_the_rtds_alert(
    directory: str, command: str, alert: str, code: int
) -> None:
    device, _ = _replay(_rtds() / directory / command)
    before = dict(device.cells)
    execute_at = next(iter(device.pending.values())).execute_at
    assert device.execute_due() == []  # not yet
    assert device.cells == before
    device.clock.current = execute_at  # type: ignore[attr-defined]
    (wire,) = device.execute_due()
    ours = decode_general_signing(wire)
    reference = _general_signing(_hex(_rtds() / directory / alert))
    assert ours.cra_flag is CraFlag.ALERT and ours.is_signed
    assert ours.message_code == reference.message_code == CREDENTIALS_ALERT_MESSAGE_CODE
    assert (ours.originator, ours.recipient) == (reference.originator, reference.recipient)
    assert ours.payload == reference.payload
    parsed = decode_alert(ours.payload)
    assert parsed.alert_code == code and parsed.time == execute_at
    assert not device.pending and device.execute_due() == []
    assert device.cells != before


def test_cancellation_removes_the_pending_command() -> None:
    directory = _rtds() / "6.15.1_CS02bSupplierBySupplier"
    future = _general_signing(
        _hex(directory / "CS02bSupplierBySupplier_6.15.1_FUTURE_DATED_SUCCESS_COMMAND_GBCS.HEX")
    )
    cancel = _general_signing(
        _hex(directory / "CS02bSupplierBySupplier_6.15.1_CANCELLATION_SUCCESS_COMMAND_GBCS.HEX")
    )
    device = _rtds_device(future.recipient)
    before = dict(device.cells)
    assert device.process(future, maced=True) is not None and device.pending
    response = device.process(cancel, maced=True)
    assert response is not None
    assert decode_response(decode_general_signing(response).payload).outcome is None
    assert not device.pending
    device.clock.current = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)  # type: ignore[attr-defined]
    assert device.execute_due() == [] and device.cells == before
    # The future-dated command cannot be replayed once the cancellation raised the floor.
    assert device.process(future, maced=True) is None


def _responses_and_alerts() -> list[Path]:
    rtds = _rtds()
    return sorted(
        [*rtds.glob("*CS02b*/*_RESPONSE_GBCS.HEX"), *rtds.glob("*CS02b*/*_ALERT_GBCS.HEX")]
    )


def test_codec_reencodes_every_rtds_cs02b_response_and_alert() -> None:
    files = _responses_and_alerts()
    assert len(files) == 20
    for path in files:
        payload = _general_signing(_hex(path)).payload
        if "_ALERT_" in path.name:
            assert encode_alert(decode_alert(payload)) == payload, path.name
        else:
            assert encode_response(decode_response(payload)) == payload, path.name


def test_a_newer_future_dated_command_replaces_the_pending_one() -> None:
    directory = _rtds() / "6.15.1_CS02bSupplierBySupplier"
    first = _general_signing(
        _hex(directory / "CS02bSupplierBySupplier_6.15.1_FUTURE_DATED_SUCCESS_COMMAND_GBCS.HEX")
    )
    second = _general_signing(
        _hex(directory / "CS02bSupplierBySupplier_6.15.1_FUTURE_DATED_ERROR_COMMAND_GBCS.HEX")
    )
    device = _rtds_device(first.recipient)
    assert device.process(first, maced=True) is not None
    assert device.process(second, maced=True) is not None
    assert len(device.pending) == 1
    device.clock.current = dt.datetime(2030, 1, 15, tzinfo=dt.UTC)  # type: ignore[attr-defined]
    (wire,) = device.execute_due()
    alert = decode_alert(decode_general_signing(wire).payload)
    assert alert.alert_code == FUTURE_DATED_FAILED and alert.outcome.seq_number == 1004


def test_an_execution_date_time_already_past_executes_on_receipt() -> None:
    """The same future-dated command received after its date-time is executed at once; the
    certificates (valid to 2026) are then judged at receipt (2031) and refused."""
    directory = _rtds() / "6.15.1_CS02bSupplierBySupplier"
    command = _general_signing(
        _hex(directory / "CS02bSupplierBySupplier_6.15.1_FUTURE_DATED_SUCCESS_COMMAND_GBCS.HEX")
    )
    device = _rtds_device(command.recipient)
    before = dict(device.cells)
    device.clock.current = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)  # type: ignore[attr-defined]
    response = device.process(command, maced=True)
    assert response is not None and not device.pending
    outcome = decode_response(decode_general_signing(response).payload).outcome
    assert outcome is not None
    assert [o.status for o in outcome.outcomes] == [StatusCode.BAD_CERTIFICATE] * 3
    assert outcome.changes == ()  # nothing replaced: the floors stay
    assert device.cells == before
