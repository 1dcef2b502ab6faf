"""A device's trust-anchor cells and its processing of CS02b *Update Security Credentials*.

The cells (GBCS): root, recovery, supplier (DS, KA and prepayment top-up KA), network
operator (DS, KA), access control broker (KA), WAN provider (DS), transitional CoS (DS). Each
holds the subject's EUI-64, subject key identifier and public key, taken from a certificate the
device validated. The meter asks this module who its remote parties are; every change comes
through :meth:`DeviceTrustAnchors.process`, which checks, in order:

1. the payload parses and names a replacement mode matching the message code;
2. the ACB MAC was present (checked by the meter) unless the mode is recovery or contingency,
   which GBCS lets travel signed only, so a compromised ACB cannot block a recovery;
3. the authorising cell is the one the mode requires and the originator is its subject;
4. the authorising sequence number and originator counter are above their floors;
5. the signature verifies with the authorising cell's key (ACB-by-ACB is authorised by the
   ACB MAC itself; contingency uses the contingency key, held wrapped on the device and
   unwrapped with the symmetric key the command reveals);
6. every replacement targets a cell the mode may touch, and its certificate follows the
   profile, matches the cell's role and key usage, and chains to the root through the
   certification-path certificates (time checks unless the command disapplies them).

Each replacement stands alone, as in the RTDS error example (6.15.1 IMMEDIATE_ERROR: the KA
certificate from another CA reports ``noTrustAnchor`` and keeps the old cell, the DS and
prepayment cells are replaced, and the floors still move). Once at least one cell was replaced
the floors move as GBCS says: the new remote party's floor (and prepayment top-up floor) for
the authorising role, the other roles' floors from the command, and the authorising party's
floor to its sequence number. A floor is set exactly only when a new party takes the role;
for the same party it never goes down (an old ACB-MAC'd command of that party cannot be
replayed after a key change).

Future-dated commands (``executionDateTime`` after the device's now): the command is
authenticated and its authorising floors raised on receipt, and the device answers
``commandAccepted`` alone. :meth:`DeviceTrustAnchors.execute_due` runs it once the time has
come and returns the signed-only alert (message code 0x00CB) to the authorising party: 8F66
if every replacement succeeded, 8F67 if one failed, with the execution outcome and the
execution date-time (the RTDS alerts). Certificate validity periods are judged at the time the
command was received (the RTDS future-dated examples execute in 2030 with certificates that
expire in 2026 and report success); the chain is checked against the cells as they are at
execution. A device keeps one pending command per mode (a newer one replaces it); an
``executionDateTime`` of 9999-12-31T23:59:59Z cancels the pending command of that mode.

Root replacement: *normal* (modes rootBySupplier, rootByWanProvider, and recovery's
"any except abnormal root") needs a link certificate from the current root certifying the new
root key; *abnormal* (the current root is compromised) only by contingency. This is our
policy, not a confirmed GBCS rule: the GBCS text on root replacement (section 13.3) was not
available to us, and the RTDS has no normal root replacement example (only the contingency
response, which replaces the root first and then cells chaining to it, as we do). GBCS's own
wording we could confirm (13.3.3.1) is only that recovery and contingency commands are
signed and carry no ACB MAC.

Beyond GB: **dual certification** (``independent_root``). A device may hold a second root from
an independent CA. Then every replacement certificate (and a new root) must be vouched for by
both: the path must carry a second certificate for the same public key, EUI-64, role and key
usage that chains to the independent root. A single compromised CA, even a root with its
contingency key, can then no longer install a trust anchor. Cost: one more certificate per
replacement on the wire and two more ECDSA verifications per replacement on the device
(measured in ``bench/bench_smki.py``).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from smarthydra.clock import Clock
from smarthydra.crypto import primitives
from smarthydra.crypto.keystore import Keystore
from smarthydra.eui import Eui64
from smarthydra.gbcs import security
from smarthydra.gbcs.builder import build_general_signing, sign_message
from smarthydra.gbcs.envelope import CraFlag, GeneralSigning, decode_general_signing
from smarthydra.gbcs.errors import GbcsError
from smarthydra.gbcs.esme_payloads import cosem_date_time
from smarthydra.pki.certificates import (
    CaCertificate,
    CertificateError,
    OrganisationCertificate,
    SmkiCertificate,
    parse_certificate,
)
from smarthydra.pki.credentials import (
    CREDENTIALS_ALERT_MESSAGE_CODE,
    FUTURE_DATED_EXECUTED,
    FUTURE_DATED_FAILED,
    ROOT_CELL,
    CellId,
    CellKeyUsage,
    CellRole,
    CellUsage,
    CredentialsAlert,
    CredentialsError,
    CredentialsReplacementMode,
    ExecutionOutcome,
    Replacement,
    ReplacementOutcome,
    SeqNumberChange,
    StatusCode,
    UpdateSecurityCredentials,
    UpdateSecurityCredentialsResponse,
    decode_command,
    encode_alert,
    encode_response,
)
from smarthydra.premises.esme import RemoteParty, TrustAnchorRole

Mode = CredentialsReplacementMode

ROOT_SUBJECT = bytes(8)  # the root cell has no EUI-64

# The cells a device is made with (GBCS: ESME / GSME).
STANDARD_CELLS: tuple[CellId, ...] = (
    ROOT_CELL,
    CellId(CellRole.RECOVERY, CellKeyUsage.DIGITAL_SIGNATURE),
    CellId(CellRole.SUPPLIER, CellKeyUsage.DIGITAL_SIGNATURE),
    CellId(CellRole.SUPPLIER, CellKeyUsage.KEY_AGREEMENT),
    CellId(CellRole.SUPPLIER, CellKeyUsage.KEY_AGREEMENT, CellUsage.PREPAYMENT_TOP_UP),
    CellId(CellRole.NETWORK_OPERATOR, CellKeyUsage.DIGITAL_SIGNATURE),
    CellId(CellRole.NETWORK_OPERATOR, CellKeyUsage.KEY_AGREEMENT),
    CellId(CellRole.ACCESS_CONTROL_BROKER, CellKeyUsage.KEY_AGREEMENT),
    CellId(CellRole.WAN_PROVIDER, CellKeyUsage.DIGITAL_SIGNATURE),
    CellId(CellRole.TRANSITIONAL_COS, CellKeyUsage.DIGITAL_SIGNATURE),
)

# Who authorises each mode (role of the authorising cell) and which roles it may replace.
AUTHORISER: dict[Mode, CellId] = {
    Mode.ROOT_BY_SUPPLIER: CellId(CellRole.SUPPLIER, CellKeyUsage.DIGITAL_SIGNATURE),
    Mode.ROOT_BY_WAN_PROVIDER: CellId(CellRole.WAN_PROVIDER, CellKeyUsage.DIGITAL_SIGNATURE),
    Mode.SUPPLIER_BY_SUPPLIER: CellId(CellRole.SUPPLIER, CellKeyUsage.DIGITAL_SIGNATURE),
    Mode.NETWORK_OPERATOR_BY_NETWORK_OPERATOR: CellId(
        CellRole.NETWORK_OPERATOR, CellKeyUsage.DIGITAL_SIGNATURE
    ),
    Mode.ACB_BY_ACB: CellId(CellRole.ACCESS_CONTROL_BROKER, CellKeyUsage.KEY_AGREEMENT),
    Mode.WAN_PROVIDER_BY_WAN_PROVIDER: CellId(
        CellRole.WAN_PROVIDER, CellKeyUsage.DIGITAL_SIGNATURE
    ),
    Mode.TRANS_COS_BY_TRANS_COS: CellId(CellRole.TRANSITIONAL_COS, CellKeyUsage.DIGITAL_SIGNATURE),
    Mode.SUPPLIER_BY_TRANS_COS: CellId(CellRole.TRANSITIONAL_COS, CellKeyUsage.DIGITAL_SIGNATURE),
    Mode.ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY: CellId(
        CellRole.RECOVERY, CellKeyUsage.DIGITAL_SIGNATURE
    ),
    Mode.ANY_BY_CONTINGENCY: ROOT_CELL,  # the contingency key stands behind the root
}
_ANY = frozenset(int(r) for r in CellRole)
_TARGETS: dict[Mode, frozenset[int]] = {
    Mode.ROOT_BY_SUPPLIER: frozenset({CellRole.ROOT}),
    Mode.ROOT_BY_WAN_PROVIDER: frozenset({CellRole.ROOT}),
    Mode.SUPPLIER_BY_SUPPLIER: frozenset({CellRole.SUPPLIER}),
    Mode.NETWORK_OPERATOR_BY_NETWORK_OPERATOR: frozenset({CellRole.NETWORK_OPERATOR}),
    Mode.ACB_BY_ACB: frozenset({CellRole.ACCESS_CONTROL_BROKER}),
    Mode.WAN_PROVIDER_BY_WAN_PROVIDER: frozenset({CellRole.WAN_PROVIDER}),
    Mode.TRANS_COS_BY_TRANS_COS: frozenset({CellRole.TRANSITIONAL_COS}),
    Mode.SUPPLIER_BY_TRANS_COS: frozenset({CellRole.SUPPLIER}),
    Mode.ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY: _ANY,
    Mode.ANY_BY_CONTINGENCY: _ANY,
}
SIGNED_ONLY_MODES = frozenset({Mode.ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY, Mode.ANY_BY_CONTINGENCY})
# An executionDateTime this late cancels the pending future-dated command (RTDS CANCELLATION).
CANCELLATION_DATE_TIME = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)


class AnchorDrop(enum.Enum):
    """Why a CS02b command was dropped without a response (logged)."""

    MALFORMED = "payload is not an Update Security Credentials command"
    MODE_MISMATCH = "replacement mode does not match the message code"
    MAC_REQUIRED = "this mode must carry the ACB MAC"
    WRONG_AUTHORISER = "the authorising cell or originator is not the one the mode requires"
    REPLAY = "sequence number or originator counter not above its floor"
    SIGNATURE = "the authorising signature is missing or does not verify"
    CONTINGENCY_KEY = "the plaintext symmetric key does not unwrap the contingency key"


@dataclass(frozen=True)
class AnchorEvent:
    at: dt.datetime
    reason: AnchorDrop
    originator: bytes
    counter: int
    detail: str = ""


@dataclass(frozen=True)
class AnchorCell:
    """The contents of one trust-anchor cell."""

    cell: CellId
    subject: bytes
    key_id: bytes
    public_key: ec.EllipticCurvePublicKey

    @classmethod
    def from_certificate(
        cls, cell: CellId, certificate: OrganisationCertificate | CaCertificate
    ) -> AnchorCell:
        subject = (
            certificate.eui64 if isinstance(certificate, OrganisationCertificate) else ROOT_SUBJECT
        )
        return cls(cell, subject, certificate.subject_key_id, certificate.public_key)


def wrap_contingency_key(public_key: ec.EllipticCurvePublicKey, symmetric_key: bytes) -> bytes:
    """The contingency public key as a device stores it: AES key wrap (RFC 3394) under a
    symmetric key the SMKI keeps offline and reveals only in an anyByContingency command."""
    return aes_key_wrap(symmetric_key, primitives.public_key_to_xy(public_key))


@dataclass(frozen=True)
class PendingUpdate:
    """A future-dated CS02b command the device accepted and will execute later."""

    mode: CredentialsReplacementMode
    update: UpdateSecurityCredentials
    originator: bytes
    received_at: dt.datetime

    @property
    def execute_at(self) -> dt.datetime:
        assert self.update.execution is not None
        return self.update.execution


@dataclass
class _Check:
    status: StatusCode
    cell: AnchorCell | None = None
    detail: str = ""


@dataclass
class DeviceTrustAnchors:
    """The trust-anchor cells of one device, with the CS02b processing rules above."""

    device: bytes
    keystore: Keystore
    clock: Clock
    cells: dict[CellId, AnchorCell]
    wrapped_contingency_key: bytes | None = None
    independent_root: AnchorCell | None = None
    signing_label: str = "ds"
    seq_floors: dict[int, int] = field(default_factory=dict)
    top_up_floors: dict[int, int] = field(default_factory=dict)
    originator_floors: dict[bytes, int] = field(default_factory=dict)
    log: list[AnchorEvent] = field(default_factory=list)
    on_change: Callable[[RemoteParty], None] | None = None
    pending: dict[Mode, PendingUpdate] = field(default_factory=dict)
    alert_counter: int = 0

    # --- set-up ------------------------------------------------------------------------

    @classmethod
    def manufacture(
        cls,
        device: Eui64 | bytes,
        keystore: Keystore,
        clock: Clock,
        *,
        root: CaCertificate,
        anchors: Iterable[tuple[CellId, OrganisationCertificate]],
        wrapped_contingency_key: bytes | None = None,
        independent_root: CaCertificate | None = None,
    ) -> DeviceTrustAnchors:
        """Cells as installed at manufacture and commissioning (no CS02 involved)."""
        cells = {ROOT_CELL: AnchorCell.from_certificate(ROOT_CELL, root)}
        for cell, certificate in anchors:
            cells[cell] = AnchorCell.from_certificate(cell, certificate)
        return cls(
            device.value if isinstance(device, Eui64) else device,
            keystore,
            clock,
            cells,
            wrapped_contingency_key=wrapped_contingency_key,
            independent_root=None
            if independent_root is None
            else AnchorCell.from_certificate(ROOT_CELL, independent_root),
        )

    def bind(self, meter: AnchoredMeter) -> None:
        """Make ``meter`` consult these cells: its remote parties, ACB and floors."""
        self.originator_floors = meter.anti_replay_floor
        self.on_change = meter.trust
        meter.anchors = self
        for role in (CellRole.SUPPLIER, CellRole.NETWORK_OPERATOR, CellRole.ACCESS_CONTROL_BROKER):
            party = self.remote_party(role)
            if party is not None:
                meter.trust(party)

    def cell(self, cell: CellId) -> AnchorCell | None:
        return self.cells.get(cell)

    def subject(self, role: int) -> bytes | None:
        """The EUI-64 holding ``role`` (from its DS cell, else its KA cell)."""
        for usage in (CellKeyUsage.DIGITAL_SIGNATURE, CellKeyUsage.KEY_AGREEMENT):
            found = self.cells.get(CellId(role, usage))
            if found is not None:
                return found.subject
        return None

    def remote_party(self, role: int) -> RemoteParty | None:
        """The meter's view of the party in ``role``: EUI-64, KA and DS keys."""
        ka = self.cells.get(CellId(role, CellKeyUsage.KEY_AGREEMENT))
        ds = self.cells.get(CellId(role, CellKeyUsage.DIGITAL_SIGNATURE))
        if ka is None:
            return None
        try:
            anchor_role = TrustAnchorRole(role)
        except ValueError:
            return None
        return RemoteParty(
            Eui64(ka.subject), anchor_role, ka.public_key, None if ds is None else ds.public_key
        )

    # --- CS02b -----------------------------------------------------------------------------

    @staticmethod
    def handles(message_code: int) -> bool:
        return Mode.for_message_code(message_code) is not None

    def _drop(self, reason: AnchorDrop, command: GeneralSigning, detail: str = "") -> None:
        self.log.append(
            AnchorEvent(
                self.clock.now(), reason, command.originator, command.originator_counter, detail
            )
        )

    def process(self, command: GeneralSigning, *, maced: bool) -> bytes | None:
        """Handle one CS02b command; the signed response bytes, or None if dropped."""
        mode = Mode.for_message_code(command.message_code)
        if mode is None:
            self._drop(AnchorDrop.MODE_MISMATCH, command)
            return None
        try:
            update = decode_command(command.payload)
        except CredentialsError as exc:
            self._drop(AnchorDrop.MALFORMED, command, str(exc))
            return None
        control = update.control
        if control.mode is not mode:
            self._drop(AnchorDrop.MODE_MISMATCH, command, f"{control.mode.name} in {mode.name}")
            return None
        if not maced and mode not in SIGNED_ONLY_MODES:
            self._drop(AnchorDrop.MAC_REQUIRED, command)
            return None
        authoriser_id = AUTHORISER[mode]
        if control.authorising_cell is not None and control.authorising_cell != authoriser_id:
            self._drop(AnchorDrop.WRONG_AUTHORISER, command, control.authorising_cell.describe())
            return None
        authoriser = self.cells.get(authoriser_id)
        if authoriser is None or (
            mode is not Mode.ANY_BY_CONTINGENCY and command.originator != authoriser.subject
        ):
            self._drop(AnchorDrop.WRONG_AUTHORISER, command, command.originator.hex())
            return None
        role_floor = self.seq_floors.get(authoriser_id.role, -1)
        originator_floor = self.originator_floors.get(command.originator, -1)
        if control.seq_number <= role_floor or command.originator_counter <= originator_floor:
            self._drop(AnchorDrop.REPLAY, command, f"floors {role_floor}/{originator_floor}")
            return None
        if mode is not Mode.ACB_BY_ACB:
            key = self._authorising_key(mode, authoriser, control.plaintext_symmetric_key)
            if key is None:
                self._drop(AnchorDrop.CONTINGENCY_KEY, command)
                return None
            if not command.is_signed or not security.verify_signature(command, key):
                self._drop(AnchorDrop.SIGNATURE, command)
                return None
        # Authentic and fresh: raise the authorising floors first, so it cannot be replayed.
        self.seq_floors[authoriser_id.role] = control.seq_number
        self.originator_floors[command.originator] = command.originator_counter
        now = self.clock.now()
        if update.execution is not None and update.execution >= CANCELLATION_DATE_TIME:
            self.pending.pop(mode, None)
            return self._respond(command, None)
        if update.execution is not None and update.execution > now:
            self.pending[mode] = PendingUpdate(mode, update, command.originator, now)
            return self._respond(command, None)
        outcome = self._replace(mode, update, now)
        return self._respond(command, outcome)

    def execute_due(self) -> list[bytes]:
        """Execute the future-dated commands whose time has come; their alerts (8F66 / 8F67),
        signed, oldest execution first."""
        now = self.clock.now()
        due = sorted(
            (p for p in self.pending.values() if p.execute_at <= now), key=lambda p: p.execute_at
        )
        alerts = []
        for pending in due:
            del self.pending[pending.mode]
            outcome = self._replace(pending.mode, pending.update, pending.received_at)
            executed = all(o.status == StatusCode.SUCCESS for o in outcome.outcomes)
            code = FUTURE_DATED_EXECUTED if executed else FUTURE_DATED_FAILED
            alerts.append(self._alert(pending, CredentialsAlert(code, pending.execute_at, outcome)))
        return alerts

    def _alert(self, pending: PendingUpdate, alert: CredentialsAlert) -> bytes:
        self.alert_counter += 1
        message = build_general_signing(
            cra_flag=CraFlag.ALERT,
            originator=self.device,
            recipient=pending.originator,
            counter=self.alert_counter,
            message_code=CREDENTIALS_ALERT_MESSAGE_CODE,
            payload=encode_alert(alert),
        )
        return sign_message(message, keystore=self.keystore, label=self.signing_label).wire()

    def process_signed_only(self, wire: bytes, recipient: bytes) -> bytes | None:
        """A signed-only ``DF`` command (recovery and contingency may arrive without a MAC)."""
        try:
            command = decode_general_signing(wire)
        except GbcsError as exc:
            self.log.append(AnchorEvent(self.clock.now(), AnchorDrop.MALFORMED, b"", -1, str(exc)))
            return None
        if command.recipient != recipient or command.cra_flag is not CraFlag.COMMAND:
            self._drop(AnchorDrop.MALFORMED, command, "not a command for this device")
            return None
        return self.process(command, maced=False)

    def _authorising_key(
        self, mode: Mode, authoriser: AnchorCell, symmetric_key: bytes | None
    ) -> ec.EllipticCurvePublicKey | None:
        if mode is not Mode.ANY_BY_CONTINGENCY:
            return authoriser.public_key
        if self.wrapped_contingency_key is None or symmetric_key is None:
            return None
        try:
            xy = aes_key_unwrap(symmetric_key, self.wrapped_contingency_key)
            return primitives.public_key_from_xy(xy)
        except (InvalidUnwrap, ValueError, primitives.InvalidKey):
            return None

    # --- replacement -----------------------------------------------------------------------

    def _replace(
        self, mode: Mode, update: UpdateSecurityCredentials, validity_at: dt.datetime
    ) -> ExecutionOutcome:
        """Check and apply each replacement on its own; validity periods at ``validity_at``."""
        control = update.control
        check_time = control.apply_time_based_checks is not False
        path: list[SmkiCertificate] = []
        for der in update.path:
            try:
                path.append(parse_certificate(der))
            except CertificateError:
                continue  # a bad path certificate simply fails to chain anything
        path_cas = [c for c in path if isinstance(c, CaCertificate)]
        # A contingency root replacement comes first: the rest must chain to the new root.
        ordered = sorted(update.replacements, key=lambda r: r.target != ROOT_CELL)
        root = self.cells[ROOT_CELL]
        checks: list[tuple[Replacement, _Check]] = []
        for replacement in ordered:
            check = self._check(mode, replacement, root, path_cas, path, validity_at, check_time)
            if replacement.target == ROOT_CELL and check.cell is not None:
                root = check.cell
            checks.append((replacement, check))
        outcomes: list[ReplacementOutcome] = []
        by_target = {id(r): c for r, c in checks}
        changed_roles: dict[int, bool] = {}
        for replacement in update.replacements:  # report in the command's order
            check = by_target[id(replacement)]
            existing = self.cells.get(replacement.target)
            old_subject = existing.subject if existing else bytes(8)
            old_key_id = existing.key_id if existing else bytes(8)
            # A failed replacement leaves its cell as it was (RTDS: existing == replacing).
            new = check.cell if check.cell is not None else existing
            outcomes.append(
                ReplacementOutcome(
                    replacement.target,
                    int(check.status),
                    old_subject,
                    old_key_id,
                    new.subject if new else old_subject,
                    new.key_id if new else old_key_id,
                )
            )
        changes: list[SeqNumberChange] = []
        applied = [(r, c.cell) for r, c in checks if c.cell is not None]
        if applied:
            for replacement, cell in applied:
                previous = self.cells.get(replacement.target)
                role = replacement.target.role
                moved = previous is None or previous.subject != cell.subject
                changed_roles[role] = changed_roles.get(role, False) or moved
                self.cells[replacement.target] = cell
            authoriser_role = AUTHORISER[mode].role
            if control.new_floor is not None:
                changes.append(
                    SeqNumberChange(authoriser_role, control.new_floor, control.new_top_up_floor)
                )
            changes.extend(control.other_changes)
            for change in changes:
                self._move_floor(change, changed_roles.get(change.role, False))
            for role in changed_roles:
                party = self.remote_party(role)
                if party is not None and self.on_change is not None:
                    self.on_change(party)
        return ExecutionOutcome(control.seq_number, int(mode), tuple(changes), tuple(outcomes))

    def _move_floor(self, change: SeqNumberChange, new_party: bool) -> None:
        def move(floors: dict[int, int], value: int) -> None:
            old = floors.get(change.role)
            floors[change.role] = value if new_party or old is None else max(old, value)

        move(self.seq_floors, change.floor)
        if change.top_up_floor is not None:
            move(self.top_up_floors, change.top_up_floor)
        subject = self.subject(change.role)
        if subject is not None:
            old = self.originator_floors.get(subject)
            self.originator_floors[subject] = (
                change.floor if new_party or old is None else max(old, change.floor)
            )

    def _check(
        self,
        mode: Mode,
        replacement: Replacement,
        root: AnchorCell,
        path_cas: list[CaCertificate],
        path: list[SmkiCertificate],
        now: dt.datetime,
        check_time: bool,
    ) -> _Check:
        target = replacement.target
        if target.role not in _TARGETS[mode] or target not in self.cells:
            if target not in self.cells and target.role in _TARGETS[mode]:
                return _Check(StatusCode.TRUST_ANCHOR_NOT_FOUND, detail="no such cell")
            return _Check(
                StatusCode.OTHER, detail=f"{mode.name} may not replace {target.describe()}"
            )
        try:
            certificate = parse_certificate(replacement.certificate)
        except CertificateError as exc:
            return _Check(StatusCode.BAD_CERTIFICATE, detail=str(exc))
        if check_time and not certificate.not_before <= now <= certificate.not_after:
            return _Check(StatusCode.BAD_CERTIFICATE, detail="outside its validity period")
        if target == ROOT_CELL:
            return self._check_root(mode, certificate, path_cas)
        if not isinstance(certificate, OrganisationCertificate):
            return _Check(StatusCode.BAD_CERTIFICATE, detail="not an organisation certificate")
        if (
            certificate.role != target.role
            or CellKeyUsage.of(certificate.usage) != target.key_usage
        ):
            return _Check(StatusCode.BAD_CERTIFICATE, detail="role or key usage differs from cell")
        if not _chains(certificate, path_cas, root):
            return _Check(StatusCode.NO_TRUST_ANCHOR, detail="does not chain to the root")
        if self.independent_root is not None and not _independently_vouched(
            certificate, path, path_cas, self.independent_root
        ):
            return _Check(StatusCode.NO_TRUST_ANCHOR, detail="not dual-certified")
        return _Check(StatusCode.SUCCESS, AnchorCell.from_certificate(target, certificate))

    def _check_root(
        self, mode: Mode, certificate: SmkiCertificate, path_cas: list[CaCertificate]
    ) -> _Check:
        if not isinstance(certificate, CaCertificate) or not certificate.self_signed:
            return _Check(StatusCode.BAD_CERTIFICATE, detail="a root must be a self-signed CA")
        if not certificate.verify_signature(certificate.public_key):
            return _Check(StatusCode.BAD_CERTIFICATE, detail="the root's self-signature fails")
        current = self.cells[ROOT_CELL]
        if mode is not Mode.ANY_BY_CONTINGENCY and not _linked(certificate, path_cas, current):
            # Normal root replacement: the current root vouches for its successor.
            return _Check(StatusCode.NO_TRUST_ANCHOR, detail="no link certificate from the root")
        if self.independent_root is not None and not _linked(
            certificate, path_cas, self.independent_root
        ):
            return _Check(StatusCode.NO_TRUST_ANCHOR, detail="new root not cross-certified")
        return _Check(StatusCode.SUCCESS, AnchorCell.from_certificate(ROOT_CELL, certificate))

    def _respond(self, command: GeneralSigning, outcome: ExecutionOutcome | None) -> bytes:
        payload = encode_response(UpdateSecurityCredentialsResponse(outcome))
        response = build_general_signing(
            cra_flag=CraFlag.RESPONSE,
            originator=self.device,
            recipient=command.originator,
            counter=command.originator_counter,
            message_code=command.message_code,
            payload=payload,
            date_time=cosem_date_time(self.clock.now()),
        )
        return sign_message(response, keystore=self.keystore, label=self.signing_label).wire()


class AnchoredMeter(Protocol):
    """What :meth:`DeviceTrustAnchors.bind` needs of a meter."""

    anti_replay_floor: dict[bytes, int]
    anchors: DeviceTrustAnchors | None

    def trust(self, party: RemoteParty) -> None: ...


def _signed_by(certificate: SmkiCertificate, issuer_key: ec.EllipticCurvePublicKey) -> bool:
    return certificate.verify_signature(issuer_key)


def _chains(certificate: SmkiCertificate, path_cas: list[CaCertificate], root: AnchorCell) -> bool:
    """``certificate`` is signed by the root or by a path CA the root signed."""
    if certificate.authority_key_id == root.key_id and _signed_by(certificate, root.public_key):
        return True
    for ca in path_cas:
        if (
            ca.subject_key_id == certificate.authority_key_id
            and ca.authority_key_id == root.key_id
            and _signed_by(certificate, ca.public_key)
            and _signed_by(ca, root.public_key)
        ):
            return True
    return False


def _linked(new_root: CaCertificate, path_cas: list[CaCertificate], anchor: AnchorCell) -> bool:
    """A path certificate from ``anchor`` certifies the new root's public key."""
    wanted = primitives.public_key_to_xy(new_root.public_key)
    return any(
        not ca.self_signed
        and primitives.public_key_to_xy(ca.public_key) == wanted
        and ca.authority_key_id == anchor.key_id
        and _signed_by(ca, anchor.public_key)
        for ca in path_cas
    )


def _independently_vouched(
    certificate: OrganisationCertificate,
    path: list[SmkiCertificate],
    path_cas: list[CaCertificate],
    independent_root: AnchorCell,
) -> bool:
    wanted = primitives.public_key_to_xy(certificate.public_key)
    for other in path:
        if (
            isinstance(other, OrganisationCertificate)
            and other.der != certificate.der
            and primitives.public_key_to_xy(other.public_key) == wanted
            and other.eui64 == certificate.eui64
            and other.role == certificate.role
            and other.usage is certificate.usage
            and _chains(other, path_cas, independent_root)
        ):
            return True
    return False


def cell_for(certificate: OrganisationCertificate, *, top_up: bool = False) -> CellId:
    """The cell an organisation certificate goes into."""
    return CellId(
        certificate.role,
        CellKeyUsage.of(certificate.usage),
        CellUsage.PREPAYMENT_TOP_UP if top_up else CellUsage.MANAGEMENT,
    )


def root_cell_from(root: CaCertificate) -> AnchorCell:
    return AnchorCell(ROOT_CELL, ROOT_SUBJECT, root.subject_key_id, root.public_key)


__all__ = [
    "AUTHORISER",
    "STANDARD_CELLS",
    "AnchorCell",
    "AnchorDrop",
    "AnchorEvent",
    "DeviceTrustAnchors",
    "PendingUpdate",
    "cell_for",
    "root_cell_from",
    "wrap_contingency_key",
]
