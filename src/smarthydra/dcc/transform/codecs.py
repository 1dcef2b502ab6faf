"""Payloads built in code: DER structures whose length and shape follow the request.

Each codec builds a use case's payload from the DUIS body and parses it back (the inverse,
which the RTDS-derived tests use to find the DUIS request an RTDS command came from).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass

from smarthydra.dcc.transform.spec import (
    CANCELLATION_DATETIME,
    Body,
    BodyCodec,
    TransformError,
)
from smarthydra.gbcs.der import (
    Universal,
    decode_der,
    der_integer,
    der_primitive,
    der_sequence,
)
from smarthydra.gbcs.errors import GbcsError
from smarthydra.pki.credentials import (
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
    decode_command,
    encode_command,
)

# GBCS: a DER execution date-time of 9999-12-31T23:59:59Z cancels a future-dated command.
DER_CANCELLATION = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
GENERALIZED_TIME_FORMAT = "%Y%m%d%H%M%SZ"


def _der_execution(execution: dt.datetime | None) -> dt.datetime | None:
    if execution is None:
        return None
    return DER_CANCELLATION if execution == CANCELLATION_DATETIME else execution


def _duis_execution(execution: dt.datetime | None) -> dt.datetime | None:
    if execution is None:
        return None
    return CANCELLATION_DATETIME if execution == DER_CANCELLATION else execution


def _text(body: Body, name: str, what: str) -> str:
    value = body.get(name)
    if value is None or isinstance(value, (dict, list)):
        raise TransformError(f"{what}: {name} is missing")
    return str(value).strip()


def _certificate(text: str, what: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise TransformError(f"{what} is not base64") from None


def _b64(der: bytes) -> str:
    return base64.b64encode(der).decode("ascii")


def _uint(text: str, what: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise TransformError(f"{what}: {text!r} is not a non-negative integer")
    return int(text)


def _xs_boolean(text: str, what: str) -> bool:
    flag = text.lower()
    if flag not in ("true", "false", "1", "0"):
        raise TransformError(f"{what}: {text!r} is not an xs:boolean")
    return flag in ("true", "1")


@dataclass(frozen=True)
class FirmwareActivation(BodyCodec):
    """CS06 Activate Firmware: the image hash, the originator counter (which names the
    activation in the device's alerts) and, when future-dated, the execution date-time."""

    future_dated: bool = True

    def build(
        self,
        body: Body,
        execution: dt.datetime | None,
        counter: int,
        issued_at: dt.datetime | None = None,
    ) -> bytes:
        text = _text(body, "FirmwareHash", "ActivateFirmware")
        try:
            digest = bytes.fromhex(text)
        except ValueError:
            raise TransformError(f"FirmwareHash {text!r} is not hexBinary") from None
        if len(digest) != 32:
            raise TransformError(f"FirmwareHash is {len(digest)} bytes, not 32")
        items = [der_primitive(Universal.OCTET_STRING, digest), der_integer(counter)]
        when = _der_execution(execution)
        if when is not None:
            stamp = when.astimezone(dt.UTC).strftime(GENERALIZED_TIME_FORMAT)
            items.append(der_primitive(Universal.GENERALIZED_TIME, stamp.encode("ascii")))
        return der_sequence(*items).encode()

    def parse(self, payload: bytes) -> tuple[Body, dt.datetime | None]:
        try:
            tree = decode_der(payload)
        except GbcsError as exc:
            raise TransformError(f"CS06 payload: {exc}") from None
        items = tree.children
        if len(items) not in (2, 3) or not items[0].is_universal(Universal.OCTET_STRING):
            raise TransformError("CS06 payload is not (hash, counter[, execution])")
        execution = None
        if len(items) == 3:
            stamp = items[2].content.decode("ascii")
            moment = dt.datetime.strptime(stamp, GENERALIZED_TIME_FORMAT).replace(tzinfo=dt.UTC)
            execution = _duis_execution(moment)
        return {"FirmwareHash": items[0].content.hex().upper()}, execution


# --- CS02b Update Security Credentials -------------------------------------------------------

Mode = CredentialsReplacementMode

# DUIS RemotePartyRole -> the X-by-X replacement mode a KRP (6.15.1) or handover (6.21) uses.
# A load controller's cells are replaced by the supplier (CS02g): the load controller is not
# a DUIS user, so it cannot send 6.15.1 itself.
KRP_MODES: dict[str, Mode] = {
    "Supplier": Mode.SUPPLIER_BY_SUPPLIER,
    "NetworkOperator": Mode.NETWORK_OPERATOR_BY_NETWORK_OPERATOR,
    "LoadController": Mode.LOAD_CONTROLLER_BY_SUPPLIER,
}
LOAD_CONTROLLER_ROLE = 8  # GBCS remote party role of the load controller's cells
# The role whose cells each mode replaces.
ROLE_OF_MODE: dict[Mode, int] = {
    Mode.SUPPLIER_BY_SUPPLIER: CellRole.SUPPLIER,
    Mode.NETWORK_OPERATOR_BY_NETWORK_OPERATOR: CellRole.NETWORK_OPERATOR,
    Mode.ACB_BY_ACB: CellRole.ACCESS_CONTROL_BROKER,
    Mode.LOAD_CONTROLLER_BY_SUPPLIER: LOAD_CONTROLLER_ROLE,
}
# Modes authorised by another party than the one replaced (its own floor is not changed; the
# replaced party's floors go in otherSeqNumberChanges).
AUTHORISER_OF_MODE: dict[Mode, int] = {Mode.LOAD_CONTROLLER_BY_SUPPLIER: CellRole.SUPPLIER}
CERTIFICATES = "ReplacementCertificates"
WRAPPER = "SupplierOrNetworkOperatorCertificates"
# The replacement certificates by DUIS element: key usage and cell usage of the target cell.
CERTIFICATE_CELLS: tuple[tuple[str, CellKeyUsage, CellUsage], ...] = (
    ("DigitalSigningCertificate", CellKeyUsage.DIGITAL_SIGNATURE, CellUsage.MANAGEMENT),
    ("KeyAgreementCertificate", CellKeyUsage.KEY_AGREEMENT, CellUsage.MANAGEMENT),
    ("KeyAgreementTopUpCertificate", CellKeyUsage.KEY_AGREEMENT, CellUsage.PREPAYMENT_TOP_UP),
)


def _replacements(certificates: object, role: int, what: str) -> tuple[Replacement, ...]:
    if not isinstance(certificates, dict):
        raise TransformError(f"{what}: no replacement certificates")
    out = []
    for name, key_usage, cell_usage in CERTIFICATE_CELLS:
        text = certificates.get(name)
        if text is None:
            continue
        if not isinstance(text, str):
            raise TransformError(f"{what}: {name} is not one certificate")
        cell = CellId(role, key_usage, cell_usage, cell_usage is CellUsage.PREPAYMENT_TOP_UP)
        out.append(Replacement(_certificate(text, name), cell))
    if not out:
        raise TransformError(f"{what}: no replacement certificates")
    return tuple(out)


def _replacement_body(replacements: tuple[Replacement, ...]) -> dict[str, object]:
    body: dict[str, object] = {}
    for name, key_usage, cell_usage in CERTIFICATE_CELLS:
        for replacement in replacements:
            target = replacement.target
            if target.key_usage is key_usage and target.cell_usage is cell_usage:
                body[name] = _b64(replacement.certificate)
    return body


def _path(body: Body) -> tuple[bytes, ...]:
    node = body.get("CertificationPathCertificates")
    if not isinstance(node, dict) or "Certificate" not in node:
        raise TransformError("CertificationPathCertificates is missing")
    raw = node["Certificate"]
    items = raw if isinstance(raw, list) else [raw]
    return tuple(_certificate(str(item), "CertificationPathCertificates") for item in items)


def _path_body(path: tuple[bytes, ...]) -> dict[str, object]:
    encoded = [_b64(c) for c in path]
    return {"Certificate": encoded[0] if len(encoded) == 1 else encoded}


def _optional_uint(body: Body, name: str) -> int | None:
    value = body.get(name)
    return None if value is None else _uint(str(value).strip(), name)


def _time_based_checks(body: Body) -> bool | None:
    # DUIS always says; GBCS leaves the field out when the checks apply (the default).
    apply = _xs_boolean(_text(body, "ApplyTimeBasedCPVChecks", "CS02b"), "ApplyTimeBasedCPVChecks")
    return None if apply else False


def _encode(update: UpdateSecurityCredentials) -> bytes:
    try:
        return encode_command(update)
    except (CredentialsError, ValueError, TypeError) as exc:
        raise TransformError(f"CS02b: {exc}") from None


def _decode(payload: bytes) -> UpdateSecurityCredentials:
    try:
        return decode_command(payload)
    except CredentialsError as exc:
        raise TransformError(f"CS02b: {exc}") from None


@dataclass(frozen=True)
class CredentialsUpdate(BodyCodec):
    """CS02b for 6.15.1 (a known remote party replaces its own cells), 6.21 (handover of a
    DCC-controlled device: the DCC replaces its cells with the user's) and 8.5 (service opt
    out: the ACB's cells).

    The DUIS RemotePartyRole gives the replacement mode (:data:`KRP_MODES`); ``fixed`` names
    the mode when the body has no RemotePartyRole (8.5).
    """

    fixed: Mode | None = None
    # 6.15.1 wraps the certificates in a SupplierOrNetworkOperatorCertificates choice.
    wrapped: bool = False
    future_dated: bool = True

    def _mode(self, body: Body) -> Mode:
        if self.fixed is not None:
            return self.fixed
        role = _text(body, "RemotePartyRole", "CS02b")
        mode = KRP_MODES.get(role)
        if mode is None:
            raise TransformError(f"RemotePartyRole {role} cannot replace its credentials here")
        return mode

    def build(
        self,
        body: Body,
        execution: dt.datetime | None,
        counter: int,
        issued_at: dt.datetime | None = None,
    ) -> bytes:
        mode = self._mode(body)
        role = ROLE_OF_MODE[mode]
        replacements_node = body.get(CERTIFICATES)
        if self.wrapped and isinstance(replacements_node, dict):
            replacements_node = replacements_node.get(WRAPPER)
        floor_name = "ACBFloorSeqNumber" if mode is Mode.ACB_BY_ACB else "RemotePartyFloorSeqNumber"
        floor = _optional_uint(body, floor_name)
        top_up_floor = _optional_uint(body, "RemotePartyPrepaymentTopUpFloorSeqNumber")
        authoriser = AUTHORISER_OF_MODE.get(mode, role)
        changes: tuple[SeqNumberChange, ...] = ()
        if authoriser != role:
            if floor is not None:
                changes = (SeqNumberChange(role, floor, top_up_floor),)
            elif top_up_floor is not None:
                raise TransformError(f"{mode.name}: a top-up floor needs a floor")
            floor = top_up_floor = None
        update = UpdateSecurityCredentials(
            AuthorisingControl(
                mode=mode,
                seq_number=counter,
                # X by X: the party's own signing cell authorises (the ACB's MAC does for 8.5).
                authorising_cell=None
                if mode is Mode.ACB_BY_ACB
                else CellId(authoriser, CellKeyUsage.DIGITAL_SIGNATURE),
                apply_time_based_checks=_time_based_checks(body),
                new_floor=floor,
                new_top_up_floor=top_up_floor,
                other_changes=changes,
            ),
            _replacements(replacements_node, role, CERTIFICATES),
            _path(body),
            # 8.5 is future-dated by the DCC, which sends the command when it falls due.
            _der_execution(execution) if self.future_dated else None,
        )
        return _encode(update)

    def parse(self, payload: bytes) -> tuple[Body, dt.datetime | None]:
        update = _decode(payload)
        control = update.control
        body: Body = {}
        if self.fixed is None:
            role = next((r for r, m in KRP_MODES.items() if m is control.mode), None)
            if role is None:
                raise TransformError(f"CS02b mode {control.mode.name} has no DUIS role")
            body["RemotePartyRole"] = role
        floor, top_up_floor = control.new_floor, control.new_top_up_floor
        replaced = ROLE_OF_MODE.get(control.mode)
        for change in control.other_changes:
            if change.role == replaced:  # set by another party (CS02g: the supplier)
                floor, top_up_floor = change.floor, change.top_up_floor
        if floor is not None:
            name = (
                "ACBFloorSeqNumber"
                if self.fixed is Mode.ACB_BY_ACB
                else "RemotePartyFloorSeqNumber"
            )
            body[name] = str(floor)
        if top_up_floor is not None:
            body["RemotePartyPrepaymentTopUpFloorSeqNumber"] = str(top_up_floor)
        certificates = _replacement_body(update.replacements)
        body[CERTIFICATES] = {WRAPPER: certificates} if self.wrapped else certificates
        body["CertificationPathCertificates"] = _path_body(update.path)
        body["ApplyTimeBasedCPVChecks"] = (
            "false" if control.apply_time_based_checks is False else "true"
        )
        return body, _duis_execution(update.execution)


@dataclass(frozen=True)
class ChangeOfSupplierCredentialsUpdate(BodyCodec):
    """CS02b Supplier by Transitional CoS (6.23): the DCC, as transitional CoS party, puts
    the gaining supplier's certificates in the supplier cells and resets the supplier's
    floor sequence numbers. The DUIS ImportMPxN is the DCC's to check, not the device's."""

    future_dated: bool = True

    def build(
        self,
        body: Body,
        execution: dt.datetime | None,
        counter: int,
        issued_at: dt.datetime | None = None,
    ) -> bytes:
        when = _der_execution(execution)
        changes: tuple[SeqNumberChange, ...] = ()
        if when != DER_CANCELLATION:  # a cancellation only names the command it cancels
            changes = (
                SeqNumberChange(
                    CellRole.SUPPLIER,
                    _uint(_text(body, "SupplierFloorSeqNumber", "6.23"), "SupplierFloorSeqNumber"),
                    _optional_uint(body, "SupplierPrepaymentTopUpFloorSeqNumber"),
                ),
            )
        update = UpdateSecurityCredentials(
            AuthorisingControl(
                mode=Mode.SUPPLIER_BY_TRANS_COS,
                seq_number=counter,
                authorising_cell=CellId(CellRole.TRANSITIONAL_COS, CellKeyUsage.DIGITAL_SIGNATURE),
                apply_time_based_checks=_time_based_checks(body),
                other_changes=changes,
            ),
            _replacements(
                body.get("SupplierReplacementCertificates"),
                CellRole.SUPPLIER,
                "SupplierReplacementCertificates",
            ),
            _path(body),
            when,
        )
        return _encode(update)

    def parse(self, payload: bytes) -> tuple[Body, dt.datetime | None]:
        update = _decode(payload)
        control = update.control
        body: Body = {}
        supplier = next((c for c in control.other_changes if c.role == CellRole.SUPPLIER), None)
        # A cancellation carries no floors; any value gives the same command.
        body["SupplierFloorSeqNumber"] = str(supplier.floor if supplier else 0)
        if supplier is not None and supplier.top_up_floor is not None:
            body["SupplierPrepaymentTopUpFloorSeqNumber"] = str(supplier.top_up_floor)
        body["SupplierReplacementCertificates"] = _replacement_body(update.replacements)
        body["CertificationPathCertificates"] = _path_body(update.path)
        body["ApplyTimeBasedCPVChecks"] = (
            "false" if control.apply_time_based_checks is False else "true"
        )
        return body, _duis_execution(update.execution)


# --- CS02a / CS02f Provide Security Credentials Details --------------------------------------

# DUIS RemotePartyRole -> the GBCS remote party role number of its trust anchor cells.
REMOTE_PARTY_ROLES: dict[str, int] = {
    "Root": CellRole.ROOT,
    "Recovery": CellRole.RECOVERY,
    "Supplier": CellRole.SUPPLIER,
    "NetworkOperator": CellRole.NETWORK_OPERATOR,
    "ACB": CellRole.ACCESS_CONTROL_BROKER,
    "TransCoS": CellRole.TRANSITIONAL_COS,
    "LoadController": 8,
}
KEY_AGREEMENT_USAGE = b"\x03\x08"  # DER BIT STRING content: keyAgreement


@dataclass(frozen=True)
class CredentialDetails(BodyCodec):
    """CS02a/CS02f: which roles' credentials the device is to describe, the response MACed
    with the ACB's key agreement key (the first, fixed, cell reference)."""

    def build(
        self,
        body: Body,
        execution: dt.datetime | None,
        counter: int,
        issued_at: dt.datetime | None = None,
    ) -> bytes:
        raw = body.get("RemotePartyRole")
        names = raw if isinstance(raw, list) else [raw]
        roles = []
        for name in names:
            role = REMOTE_PARTY_ROLES.get(str(name).strip()) if isinstance(name, str) else None
            if role is None:
                raise TransformError(f"RemotePartyRole {name!r} is not a remote party role")
            roles.append(role)
        mac_cell = der_sequence(
            der_integer(CellRole.ACCESS_CONTROL_BROKER),
            der_primitive(Universal.BIT_STRING, KEY_AGREEMENT_USAGE),
        )
        return der_sequence(mac_cell, der_sequence(*(der_integer(r) for r in roles))).encode()

    def parse(self, payload: bytes) -> tuple[Body, dt.datetime | None]:
        try:
            tree = decode_der(payload)
        except GbcsError as exc:
            raise TransformError(f"CS02a payload: {exc}") from None
        if len(tree.children) != 2:
            raise TransformError("CS02a payload is not (cell, roles)")
        names = {number: name for name, number in REMOTE_PARTY_ROLES.items()}
        roles = [names[child.as_int()] for child in tree.children[1].children]
        return {"RemotePartyRole": roles if len(roles) > 1 else roles[0]}, None
