"""The GBCS CS02b *Update Security Credentials* payloads (command and response) as typed objects.

The ASN.1 is GBCS's (the structure is confirmed against every CS02b file of the RTDS, whose
payloads re-encode byte for byte)::

    UpdateSecurityCredentials ::= SEQUENCE {
      authorisingRemotePartyControl SEQUENCE {
        credentialsReplacementMode            INTEGER,
        plaintextSymmetricKey             [0] IMPLICIT OCTET STRING OPTIONAL,
        applyTimeBasedCPVChecks           [1] IMPLICIT INTEGER {apply(0), disapply(1)} OPTIONAL,
        authorisingRemotePartyTACellIdentifier [2] IMPLICIT TrustAnchorCellIdentifier OPTIONAL,
        authorisingRemotePartySeqNumber   [3] IMPLICIT INTEGER,
        newRemotePartyFloorSeqNumber      [4] IMPLICIT INTEGER OPTIONAL,
        newRemotePartySpecialistFloorSeqNumber [5] IMPLICIT SEQUENCE OF SpecialistSeqNumber OPTIONAL,
        otherRemotePartySeqNumberChanges  [6] IMPLICIT SEQUENCE OF RemotePartySeqNumberChange OPTIONAL },
      replacements SEQUENCE OF SEQUENCE { replacementCertificate Certificate,
                                          targetTrustAnchorCell TrustAnchorCellIdentifier },
      certificationPathCertificates SEQUENCE OF Certificate,
      executionDateTime GeneralizedTime OPTIONAL }

    TrustAnchorCellIdentifier ::= SEQUENCE { remotePartyRole INTEGER, keyUsage KeyUsage,
                                             cellUsage INTEGER {management(0), prePaymentTopUp(1)}
                                             DEFAULT management }

    UpdateSecurityCredentialsResponse ::= SEQUENCE { commandAccepted NULL,
        executionOutcome SEQUENCE { authorisingRemotePartySeqNumber INTEGER,
            credentialsReplacementMode INTEGER,
            remotePartySeqNumberChanges SEQUENCE OF RemotePartySeqNumberChange,
            replacementOutcomes SEQUENCE OF SEQUENCE { affectedTrustAnchorCell
                TrustAnchorCellIdentifier, statusCode ENUMERATED, existingSubjectUniqueID,
                existingSubjectKeyIdentifier, replacingSubjectUniqueID,
                replacingSubjectKeyIdentifier OCTET STRING } } OPTIONAL }

    -- a future-dated command answers commandAccepted alone; on execution the device alerts
    -- (message code 0x00CB, signed only) 8F66 (all replaced) or 8F67 (a replacement failed):
    UpdateSecurityCredentialsAlert ::= SEQUENCE { alertCode INTEGER,
        executionDateTime GeneralizedTime, executionOutcome ExecutionOutcome }

Pure codec over bytes (``asn1crypto``); the device logic lives in ``premises.anchors``.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any

from asn1crypto import core
from asn1crypto import x509 as asn1_x509

from smarthydra.crypto.keystore import KeyUsage


class CredentialsError(ValueError):
    """A CS02b payload that does not follow the GBCS structure."""


class CredentialsReplacementMode(enum.IntEnum):
    """Which remote party authorises which cells (GBCS message codes 0x0100 + mode)."""

    ROOT_BY_SUPPLIER = 0
    ROOT_BY_WAN_PROVIDER = 1
    SUPPLIER_BY_SUPPLIER = 2
    NETWORK_OPERATOR_BY_NETWORK_OPERATOR = 3
    ACB_BY_ACB = 4
    WAN_PROVIDER_BY_WAN_PROVIDER = 5
    TRANS_COS_BY_TRANS_COS = 6
    SUPPLIER_BY_TRANS_COS = 7
    ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY = 8
    ANY_BY_CONTINGENCY = 9
    # CS02g (load controller cells), same payload; message codes 0x0125 / 0x0126 (RTDS).
    # for_message_code stays CS02b-only: device-side handling of CS02g is not modelled.
    LOAD_CONTROLLER_BY_LOAD_CONTROLLER = 10
    LOAD_CONTROLLER_BY_SUPPLIER = 11

    @property
    def message_code(self) -> int:
        return 0x0100 + int(self) if self <= 9 else 0x011B + int(self)

    @classmethod
    def for_message_code(cls, code: int) -> CredentialsReplacementMode | None:
        try:
            return cls(code - 0x0100) if 0x0100 <= code <= 0x0109 else None
        except ValueError:
            return None


class CellRole(enum.IntEnum):
    """GBCS remote party roles of trust-anchor cells."""

    ROOT = 0
    RECOVERY = 1
    SUPPLIER = 2
    NETWORK_OPERATOR = 3
    ACCESS_CONTROL_BROKER = 4
    TRANSITIONAL_COS = 5
    WAN_PROVIDER = 6
    ISSUING_AUTHORITY = 7
    OTHER = 127


class CellKeyUsage(enum.Enum):
    DIGITAL_SIGNATURE = "digital_signature"
    KEY_AGREEMENT = "key_agreement"
    KEY_CERT_SIGN = "key_cert_sign"  # the root cell

    @classmethod
    def of(cls, usage: KeyUsage) -> CellKeyUsage:
        if usage is KeyUsage.DIGITAL_SIGNATURE:
            return cls.DIGITAL_SIGNATURE
        return cls.KEY_AGREEMENT


class CellUsage(enum.IntEnum):
    MANAGEMENT = 0
    PREPAYMENT_TOP_UP = 1


class StatusCode(enum.IntEnum):
    """Per-cell outcome of a replacement (GBCS StatusCode)."""

    SUCCESS = 0
    BAD_CERTIFICATE = 5
    NO_TRUST_ANCHOR = 10
    INSUFFICIENT_MEMORY = 17
    TRUST_ANCHOR_NOT_FOUND = 25
    RESOURCES_BUSY = 30
    OTHER = 127


@dataclass(frozen=True, order=True)
class CellId:
    """A trust-anchor cell identifier: role, key usage and cell usage."""

    role: int
    key_usage: CellKeyUsage = field(compare=False)
    cell_usage: CellUsage = CellUsage.MANAGEMENT
    explicit_cell_usage: bool = field(default=False, compare=False, repr=False)

    @property
    def key(self) -> tuple[int, str, int]:
        return (self.role, self.key_usage.value, int(self.cell_usage))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CellId) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def describe(self) -> str:
        try:
            role = CellRole(self.role).name.lower()
        except ValueError:
            role = f"role-{self.role}"
        extra = " (prepayment top-up)" if self.cell_usage is CellUsage.PREPAYMENT_TOP_UP else ""
        return f"{role} {self.key_usage.value}{extra}"


ROOT_CELL = CellId(CellRole.ROOT, CellKeyUsage.KEY_CERT_SIGN)


# --- ASN.1 ----------------------------------------------------------------------------------


class _CellIdentifier(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    _fields = [  # noqa: RUF012 - asn1crypto's declaration style
        ("remote_party_role", core.Integer),
        ("key_usage", asn1_x509.KeyUsage),
        ("cell_usage", core.Integer, {"optional": True}),
    ]


class _SpecialistSeqNumber(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("seq_number_usage", core.Integer),
        ("seq_number", core.Integer),
    ]


class _SpecialistSeqNumbers(core.SequenceOf):  # type: ignore[misc]
    _child_spec = _SpecialistSeqNumber


class _SeqNumberChange(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("remote_party_role", core.Integer),
        ("floor_seq_number", core.Integer),
        ("specialist_floor_seq_numbers", _SpecialistSeqNumbers, {"optional": True}),
    ]


class _SeqNumberChanges(core.SequenceOf):  # type: ignore[misc]
    _child_spec = _SeqNumberChange


class _Control(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("credentials_replacement_mode", core.Integer),
        ("plaintext_symmetric_key", core.OctetString, {"implicit": 0, "optional": True}),
        ("apply_time_based_cpv_checks", core.Integer, {"implicit": 1, "optional": True}),
        ("authorising_cell", _CellIdentifier, {"implicit": 2, "optional": True}),
        ("authorising_seq_number", core.Integer, {"implicit": 3}),
        ("new_floor_seq_number", core.Integer, {"implicit": 4, "optional": True}),
        (
            "new_specialist_floor_seq_numbers",
            _SpecialistSeqNumbers,
            {"implicit": 5, "optional": True},
        ),
        ("other_seq_number_changes", _SeqNumberChanges, {"implicit": 6, "optional": True}),
    ]


class _Replacement(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("replacement_certificate", asn1_x509.Certificate),
        ("target_cell", _CellIdentifier),
    ]


class _Replacements(core.SequenceOf):  # type: ignore[misc]
    _child_spec = _Replacement


class _Certificates(core.SequenceOf):  # type: ignore[misc]
    _child_spec = asn1_x509.Certificate


class _Command(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("control", _Control),
        ("replacements", _Replacements),
        ("certification_path_certificates", _Certificates),
        ("execution_date_time", core.GeneralizedTime, {"optional": True}),
    ]


class _Outcome(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("affected_cell", _CellIdentifier),
        ("status_code", core.Enumerated),
        ("existing_subject_unique_id", core.OctetString),
        ("existing_subject_key_id", core.OctetString),
        ("replacing_subject_unique_id", core.OctetString),
        ("replacing_subject_key_id", core.OctetString),
    ]


# asn1crypto's Enumerated needs a _map; status codes are open-ended, so accept any value.
class _StatusEnumerated(core.Enumerated):  # type: ignore[misc]
    _map = {i: str(i) for i in range(256)}  # noqa: RUF012


_Outcome._fields[1] = ("status_code", _StatusEnumerated)


class _Outcomes(core.SequenceOf):  # type: ignore[misc]
    _child_spec = _Outcome


class _ExecutionOutcome(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("authorising_seq_number", core.Integer),
        ("credentials_replacement_mode", core.Integer),
        ("seq_number_changes", _SeqNumberChanges),
        ("replacement_outcomes", _Outcomes),
    ]


class _Response(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("command_accepted", core.Null),
        ("execution_outcome", _ExecutionOutcome, {"optional": True}),
    ]


class _Alert(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("alert_code", core.Integer),
        ("alert_time", core.GeneralizedTime),
        ("execution_outcome", _ExecutionOutcome),
    ]


# --- typed objects --------------------------------------------------------------------------


@dataclass(frozen=True)
class SeqNumberChange:
    """A remote party role's new anti-replay floor (and prepayment top-up floor, if any)."""

    role: int
    floor: int
    top_up_floor: int | None = None


@dataclass(frozen=True)
class AuthorisingControl:
    mode: CredentialsReplacementMode
    seq_number: int
    authorising_cell: CellId | None = None
    plaintext_symmetric_key: bytes | None = None
    apply_time_based_checks: bool | None = None  # None: field absent (device default: apply)
    new_floor: int | None = None
    new_top_up_floor: int | None = None
    other_changes: tuple[SeqNumberChange, ...] = ()


@dataclass(frozen=True)
class Replacement:
    certificate: bytes  # DER
    target: CellId


@dataclass(frozen=True)
class UpdateSecurityCredentials:
    control: AuthorisingControl
    replacements: tuple[Replacement, ...]
    path: tuple[bytes, ...] = ()
    execution: dt.datetime | None = None


@dataclass(frozen=True)
class ReplacementOutcome:
    cell: CellId
    status: int
    existing_subject: bytes
    existing_key_id: bytes
    replacing_subject: bytes
    replacing_key_id: bytes


@dataclass(frozen=True)
class ExecutionOutcome:
    seq_number: int
    mode: int
    changes: tuple[SeqNumberChange, ...]
    outcomes: tuple[ReplacementOutcome, ...]


@dataclass(frozen=True)
class UpdateSecurityCredentialsResponse:
    outcome: ExecutionOutcome | None


FUTURE_DATED_EXECUTED = 0x8F66
FUTURE_DATED_FAILED = 0x8F67
CREDENTIALS_ALERT_MESSAGE_CODE = 0x00CB  # the message code of the CS02b alerts (RTDS)


@dataclass(frozen=True)
class CredentialsAlert:
    """The alert a device sends when it executes a future-dated CS02b command: 8F66 when
    every replacement succeeded, 8F67 otherwise; the time is the execution date-time."""

    alert_code: int
    time: dt.datetime
    outcome: ExecutionOutcome


# --- conversions ----------------------------------------------------------------------------


def _cell_to_asn1(cell: CellId, implicit: int | None = None) -> Any:
    value: dict[str, Any] = {
        "remote_party_role": cell.role,
        "key_usage": {cell.key_usage.value},
    }
    if cell.cell_usage is not CellUsage.MANAGEMENT or cell.explicit_cell_usage:
        value["cell_usage"] = int(cell.cell_usage)
    if implicit is None:
        return _CellIdentifier(value)
    return _CellIdentifier(value, implicit=implicit)


def _cell_from_asn1(node: Any) -> CellId:
    bits = set(node["key_usage"].native)
    if len(bits) != 1:
        raise CredentialsError(f"a trust-anchor cell names exactly one key usage, got {bits}")
    try:
        key_usage = CellKeyUsage(bits.pop())
    except ValueError as exc:
        raise CredentialsError(f"unsupported trust-anchor key usage: {exc}") from None
    present = node["cell_usage"].native is not None
    try:
        cell_usage = CellUsage(node["cell_usage"].native if present else 0)
    except ValueError:
        raise CredentialsError(f"unknown cell usage {node['cell_usage'].native}") from None
    return CellId(int(node["remote_party_role"].native), key_usage, cell_usage, present)


def _specialist(top_up: int) -> Any:
    return _SpecialistSeqNumbers([{"seq_number_usage": 0, "seq_number": top_up}])


def _top_up_from(node: Any) -> int | None:
    for entry in node:
        if int(entry["seq_number_usage"].native) == 0:
            return int(entry["seq_number"].native)
    return None


def _change_to_asn1(change: SeqNumberChange) -> dict[str, Any]:
    value: dict[str, Any] = {"remote_party_role": change.role, "floor_seq_number": change.floor}
    if change.top_up_floor is not None:
        value["specialist_floor_seq_numbers"] = _specialist(change.top_up_floor)
    return value


def _change_from_asn1(node: Any) -> SeqNumberChange:
    specialist = node["specialist_floor_seq_numbers"]
    return SeqNumberChange(
        int(node["remote_party_role"].native),
        int(node["floor_seq_number"].native),
        None if specialist.native is None else _top_up_from(specialist),
    )


def encode_command(command: UpdateSecurityCredentials) -> bytes:
    control = command.control
    value: dict[str, Any] = {
        "credentials_replacement_mode": int(control.mode),
        "authorising_seq_number": control.seq_number,
    }
    if control.plaintext_symmetric_key is not None:
        value["plaintext_symmetric_key"] = control.plaintext_symmetric_key
    if control.apply_time_based_checks is not None:
        value["apply_time_based_cpv_checks"] = 0 if control.apply_time_based_checks else 1
    if control.authorising_cell is not None:
        value["authorising_cell"] = _cell_to_asn1(control.authorising_cell, implicit=2)
    if control.new_floor is not None:
        value["new_floor_seq_number"] = control.new_floor
    if control.new_top_up_floor is not None:
        value["new_specialist_floor_seq_numbers"] = _SpecialistSeqNumbers(
            [{"seq_number_usage": 0, "seq_number": control.new_top_up_floor}], implicit=5
        )
    if control.other_changes:
        value["other_seq_number_changes"] = _SeqNumberChanges(
            [_change_to_asn1(c) for c in control.other_changes], implicit=6
        )
    body: dict[str, Any] = {
        "control": _Control(value),
        "replacements": _Replacements(
            [
                {
                    "replacement_certificate": asn1_x509.Certificate.load(r.certificate),
                    "target_cell": _cell_to_asn1(r.target),
                }
                for r in command.replacements
            ]
        ),
        "certification_path_certificates": _Certificates(
            [asn1_x509.Certificate.load(c) for c in command.path]
        ),
    }
    if command.execution is not None:
        body["execution_date_time"] = command.execution.astimezone(dt.UTC)
    return bytes(_Command(body).dump(force=False))


def _load(kind: Any, data: bytes, what: str) -> Any:
    try:
        parsed = kind.load(bytes(data), strict=True)
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise CredentialsError(f"malformed {what}: {exc}") from None
    return parsed


def decode_command(payload: bytes) -> UpdateSecurityCredentials:
    """Parse a CS02b command payload; :class:`CredentialsError` names what is wrong."""
    parsed = _load(_Command, payload, "Update Security Credentials command")
    try:
        control = parsed["control"]
        try:
            mode = CredentialsReplacementMode(int(control["credentials_replacement_mode"].native))
        except ValueError:
            raise CredentialsError(
                f"unknown credentials replacement mode {control['credentials_replacement_mode'].native}"
            ) from None
        cpv = control["apply_time_based_cpv_checks"].native
        specialist = control["new_specialist_floor_seq_numbers"]
        others = control["other_seq_number_changes"]
        key = control["plaintext_symmetric_key"].native
        authorising = control["authorising_cell"]
        execution = parsed["execution_date_time"].native
        return UpdateSecurityCredentials(
            AuthorisingControl(
                mode=mode,
                seq_number=int(control["authorising_seq_number"].native),
                authorising_cell=None
                if authorising.native is None
                else _cell_from_asn1(authorising),
                plaintext_symmetric_key=None if key is None else bytes(key),
                apply_time_based_checks=None if cpv is None else cpv == 0,
                new_floor=control["new_floor_seq_number"].native,
                new_top_up_floor=None if specialist.native is None else _top_up_from(specialist),
                other_changes=()
                if others.native is None
                else tuple(_change_from_asn1(c) for c in others),
            ),
            tuple(
                Replacement(r["replacement_certificate"].dump(), _cell_from_asn1(r["target_cell"]))
                for r in parsed["replacements"]
            ),
            tuple(c.dump() for c in parsed["certification_path_certificates"]),
            execution,
        )
    except CredentialsError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        raise CredentialsError(f"malformed Update Security Credentials command: {exc}") from None


def _outcome_to_asn1(outcome: ExecutionOutcome) -> dict[str, Any]:
    return {
        "authorising_seq_number": outcome.seq_number,
        "credentials_replacement_mode": outcome.mode,
        "seq_number_changes": [_change_to_asn1(c) for c in outcome.changes],
        "replacement_outcomes": [
            {
                "affected_cell": _cell_to_asn1(o.cell),
                "status_code": _StatusEnumerated(o.status),
                "existing_subject_unique_id": o.existing_subject,
                "existing_subject_key_id": o.existing_key_id,
                "replacing_subject_unique_id": o.replacing_subject,
                "replacing_subject_key_id": o.replacing_key_id,
            }
            for o in outcome.outcomes
        ],
    }


def _outcome_from_asn1(outcome: Any) -> ExecutionOutcome:
    return ExecutionOutcome(
        int(outcome["authorising_seq_number"].native),
        int(outcome["credentials_replacement_mode"].native),
        tuple(_change_from_asn1(c) for c in outcome["seq_number_changes"]),
        tuple(
            ReplacementOutcome(
                _cell_from_asn1(o["affected_cell"]),
                int(o["status_code"].native),
                bytes(o["existing_subject_unique_id"].native),
                bytes(o["existing_subject_key_id"].native),
                bytes(o["replacing_subject_unique_id"].native),
                bytes(o["replacing_subject_key_id"].native),
            )
            for o in outcome["replacement_outcomes"]
        ),
    )


def encode_response(response: UpdateSecurityCredentialsResponse) -> bytes:
    """The response: ``commandAccepted`` alone for a future-dated (or cancelling) command,
    with the execution outcome for one executed on receipt."""
    value: dict[str, Any] = {"command_accepted": core.Null()}
    outcome = response.outcome
    if outcome is not None:
        value["execution_outcome"] = _outcome_to_asn1(outcome)
    encoded = _Response(value).dump(force=False)
    return _fixed_lengths(bytes(encoded)) if outcome is not None else bytes(encoded)


def encode_alert(alert: CredentialsAlert) -> bytes:
    """The 8F66 / 8F67 alert payload, in the devices' fixed two-octet length form."""
    value = {
        "alert_code": alert.alert_code,
        "alert_time": alert.time.astimezone(dt.UTC),
        "execution_outcome": _outcome_to_asn1(alert.outcome),
    }
    return _fixed_lengths(bytes(_Alert(value).dump(force=False)))


def decode_alert(payload: bytes) -> CredentialsAlert:
    parsed = _load(_Alert, payload, "Update Security Credentials alert")
    try:
        return CredentialsAlert(
            int(parsed["alert_code"].native),
            parsed["alert_time"].native,
            _outcome_from_asn1(parsed["execution_outcome"]),
        )
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        raise CredentialsError(f"malformed Update Security Credentials alert: {exc}") from None


def _fixed_lengths(encoded: bytes) -> bytes:
    """Re-emit every ``81 xx`` length as ``82 00 xx``: devices send fixed two-octet long
    lengths (every RTDS CS02b response does), which BER allows and DER does not."""

    def walk(data: bytes, start: int, end: int) -> bytes:
        out = bytearray()
        pos = start
        while pos < end:
            tag = data[pos]
            first = data[pos + 1]
            if first < 0x80:
                length, header = first, 2
            else:
                count = first & 0x7F
                length = int.from_bytes(data[pos + 2 : pos + 2 + count], "big")
                header = 2 + count
            body_start, body_end = pos + header, pos + header + length
            body = walk(data, body_start, body_end) if tag & 0x20 else data[body_start:body_end]
            if len(body) < 0x80:
                out += bytes([tag, len(body)])
            else:
                out += bytes([tag, 0x82]) + len(body).to_bytes(2, "big")
            out += body
            pos = body_end
        return bytes(out)

    return walk(encoded, 0, len(encoded))


def decode_response(payload: bytes) -> UpdateSecurityCredentialsResponse:
    parsed = _load(_Response, payload, "Update Security Credentials response")
    try:
        outcome = parsed["execution_outcome"]
        if outcome.native is None:
            return UpdateSecurityCredentialsResponse(None)
        return UpdateSecurityCredentialsResponse(_outcome_from_asn1(outcome))
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        raise CredentialsError(f"malformed Update Security Credentials response: {exc}") from None
