"""The DCC: every service request is checked, counted, transformed, MAC'd and delivered here.

Checks, in order, each with its DUIS response code:

- the sender is an active DCC user (E1) holding the role it claims, active (E3);
- the RequestID names the sender as originator (E21) with a counter above its last (E20);
- the service request variant exists (E11) and the role is eligible for it (E2);
- the command variant suits the request: critical SRVs only via CV 4 then 5-7 (E12);
- the target device is in the inventory (E19) with an SMI status that allows commands (E5);
- the sender is the party registered for the device's MPxN in that role today (E4);
- anomaly detection: over the user's or the DCC's threshold, the request is quarantined
  (acknowledged with I99 and DCC alert AD1) and held until an operator acts.

A critical request comes back as a pre-command (CV 4) for the user to sign; the signed
pre-command (CV 5-7) must match what the DCC produced, byte for byte, and carry a signature
that verifies with the user's signing key; only then does the Access Control Broker MAC it.

The GBCS is built for the device the inventory names (ESME, GSME, GPF, CHF, PPMID, ...): the
transform picks that device type's use case. Use cases the DCC sends in its own name take
the ACB's EUI-64 and a DCC originator counter that only ever rises (its floor is committed
with the request), and the request remembers that counter and its time of issue, so the
command built again after a restart is the same command.

Throughput on the durable path: the checks run in memory (users, inventory, counter floors
cached with write-through) under :attr:`DataCommsCompany.lock`; the decision then goes to a
group committer (:mod:`.batching`) and the caller waits, outside the lock, for the
transaction holding it; dispatch MACs a batch (ECDH secrets cached by the ACB) and queues it
for the WAN in one transaction.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

from smarthydra.clock import Clock
from smarthydra.crypto.primitives import ecdsa_verify
from smarthydra.dcc.acb import AccessControlBroker
from smarthydra.dcc.anomaly import AnomalyDetector, QuarantinedRequest
from smarthydra.dcc.audit import AuditLog
from smarthydra.dcc.batching import Batcher
from smarthydra.dcc.inventory import (
    DccUser,
    DeviceRecord,
    SmartMeteringInventory,
    SmiStatus,
    UserRegister,
    UserStatus,
)
from smarthydra.dcc.signing import DccSigning
from smarthydra.dcc.store import (
    Acceptance,
    Committed,
    Dispatch,
    DuplicateRequest,
    QueuedFrame,
    RequestState,
    SqlDccStore,
    StoredRequest,
)
from smarthydra.dcc.transform import (
    DccOriginator,
    EsmeVariant,
    Target,
    TransformError,
    transform,
)
from smarthydra.dcc.transform import DeviceType as TransformDeviceType
from smarthydra.dcc.transform.device import HanBackup, Inventory, InventoryDevice
from smarthydra.dcc.transform.engine import Transformed
from smarthydra.dcc.transform.restore import backup_from_alert
from smarthydra.duis.codes import DccAlertCode, ResponseCode
from smarthydra.duis.matrix import ServiceRequestMatrix, ServiceRequestVariant
from smarthydra.duis.request import (
    CommandVariant,
    RequestId,
    ServiceRequest,
    SignedPreCommand,
)
from smarthydra.eui import Eui64
from smarthydra.gbcs.envelope import GeneralSigning, decode_general_signing, decode_message
from smarthydra.gbcs.errors import GbcsError
from smarthydra.wan.coverage import WanCoverage
from smarthydra.wan.network import WanError, WanNetwork

# Command variants whose GBCS the DCC hands back to the user for local delivery (over the HAN)
# instead of sending it over the WAN.
_RETURN_TO_USER = (
    CommandVariant.NON_CRITICAL_RETURN_GBCS,
    CommandVariant.CRITICAL_SIGNED_RETURN_GBCS,
)

# The DUIS role whose registration for the device's MPxN makes a user its owner.
_OWNING_ROLE = {"IS": "IS", "GS": "GS", "ES": "ES", "ED": "ED", "GT": "GT"}

# Commands transformed at acceptance kept for dispatch (beyond this they are built again).
_PREPARED_LIMIT = 50_000


@dataclass(frozen=True)
class DccResponse:
    """What the DCC answers: a DUIS response code and, on success, GBCS bytes."""

    request_id: RequestId
    code: ResponseCode
    gbcs: bytes | None = None
    dcc_alert: DccAlertCode | None = None
    quarantine_ticket: int | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.code.is_success


@dataclass
class _Pending:
    request: ServiceRequest
    precommand: GeneralSigning


class NotCommitted(Exception):
    """A decided request whose transaction failed: not stored, so not acknowledged."""


@dataclass(frozen=True)
class _Decision:
    """A durable request decided and waiting for its commit."""

    request: ServiceRequest
    item: Acceptance
    general_signing: GeneralSigning
    device: DeviceRecord
    frame: QueuedFrame | None
    reason: str | None


@dataclass
class _Refused(Exception):
    code: ResponseCode
    detail: str


def _refusal(exc: TransformError | GbcsError) -> _Refused:
    """A transform's refusal keeps its own DUIS response code (e.g. E19 for a join's other
    device that is not in the inventory); a GBCS encoding problem is E11."""
    code = exc.code if isinstance(exc, TransformError) else ResponseCode.INVALID_REQUEST
    return _Refused(code, str(exc))


@dataclass
class DataCommsCompany:
    clock: Clock
    matrix: ServiceRequestMatrix
    inventory: SmartMeteringInventory
    users: UserRegister
    acb: AccessControlBroker
    wan: WanNetwork
    anomaly: AnomalyDetector[object] = field(default_factory=AnomalyDetector)
    audit: AuditLog = field(default_factory=AuditLog)
    store: SqlDccStore | None = None
    _last_counter: dict[Eui64, int] = field(default_factory=dict)
    _pending: dict[RequestId, _Pending] = field(default_factory=dict)
    # Guards the DCC's decisions (checks, counter floors, anomaly counts, pending pre-commands);
    # a durable decision's commit is waited for outside it.
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _dispatch_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _floors: dict[Eui64, int] = field(default_factory=dict, repr=False)
    _dcc_counter: int | None = field(default=None, repr=False)
    _prepared: dict[str, GeneralSigning] = field(default_factory=dict, repr=False)
    committer: Batcher[Acceptance, Committed | DuplicateRequest] | None = field(
        default=None, repr=False
    )
    # Durable path: MAC an accepted request's command and queue it for the WAN in the same
    # transaction that accepts it (no window between I99 and the WAN queue, one commit for
    # both). False: acknowledge first, and let :meth:`dispatch_accepted` MAC and queue later.
    dispatch_on_accept: bool = True
    # The CSPs' SM WAN coverage, for 12.1 Request WAN Matrix (None: every property Unknown).
    wan_coverage: WanCoverage | None = None
    # SMKI hooks (pki): refuse a user whose organisation certificate is revoked (E1), and
    # transforms for the security-credential SRVs (6.15.1, 6.23) built by the SMKI side.
    credential_check: Callable[[DccUser], str | None] | None = None
    extra_transforms: dict[str, Callable[[ServiceRequest, bool], GeneralSigning]] = field(
        default_factory=dict
    )
    # Consent hook (dcc/consent.py): a role with no registration (an Other User) reaches a
    # device only while this answers None; otherwise the request is refused with E4.
    consent_check: Callable[[DccUser, DeviceRecord], str | None] | None = None
    # The DCC's own signing keys, for the commands the transform marks dcc_signed (6.21,
    # 6.23 without an SMKI hook, joins sent on a user's behalf); without one they are refused.
    dcc_signing: DccSigning = field(default_factory=DccSigning)

    def __post_init__(self) -> None:
        self._transform_inventory = DccTransformInventory(self.inventory)
        if self.store is not None:
            # Resume from durable state: the audit chain continues, counters stay monotonic.
            self.audit.entries = self.store.load_audit()
            self.audit.sink = self.store.append_audit
            self.audit.resync = self.store.load_audit
            store = self.store
            audit = self.audit

            def commit(items: Sequence[Acceptance]) -> list[Committed | DuplicateRequest]:
                return store.commit_acceptances(items, audit)

            if self.committer is None and not store.shared_connection:
                self.committer = Batcher(commit, leader_commits=True)

    @contextmanager
    def _store_guard(self) -> Iterator[None]:
        """A store whose one connection every thread shares (in-memory SQLite) is used under
        the DCC's lock throughout; a file or server database needs no more than its own."""
        guard = self.lock if self.store is not None and self.store.shared_connection else None
        with guard if guard is not None else nullcontext():
            yield

    def _counter_floor(self, user: Eui64) -> int | None:
        if self.store is None:
            return self._last_counter.get(user)
        floor = self._floors.get(user)
        if floor is None:
            floor = self.store.last_counter(user)
            if floor is not None:
                self._floors[user] = floor
        return floor

    def _raise_counter_floor(self, user: Eui64, counter: int) -> None:
        if self.store is not None:
            self.store.set_last_counter(user, counter)
            self._floors[user] = counter
        else:
            self._last_counter[user] = counter

    def _next_dcc_counter(self) -> int:
        """The DCC's next GBCS originator counter: above every one it used before (the floor
        is stored under the ACB's EUI with the requests that use it) and above the current
        time in milliseconds, so a fresh database still starts above what devices saw."""
        if self._dcc_counter is None:
            floor = self._counter_floor(self.acb.eui) if self.store is not None else None
            now_ms = int(self.clock.now().timestamp() * 1000)
            self._dcc_counter = max(floor or 0, now_ms)
        self._dcc_counter += 1
        return self._dcc_counter

    # --- the two entry points ---------------------------------------------------------------

    def _checked(self, request: ServiceRequest) -> tuple[ServiceRequestVariant, DeviceRecord]:
        """The checks every CV 1-4 request passes, in DUIS order (E1/E3, E20/E21, E2, E12,
        E19/E5, E4); :class:`_Refused` with the first that fails."""
        user = self._check_user(request.sender, request.role)
        self._check_request_id(request.request_id, request.sender)
        variant = self._check_variant(request.service_reference_variant, request.role)
        self._check_command_variant(variant, request.command_variant, signed=False)
        device = self._check_device(request.request_id.target)
        self._check_ownership(user, request.role, device)
        return variant, device

    def submit(self, request: ServiceRequest) -> DccResponse:
        """A service request with command variant 1-4."""
        try:
            variant, device = self._checked(request)
            critical = variant.critical
            if not critical:
                held = self._anomaly_gate(request.sender, variant.variant, request)
                if held is not None:
                    return held
            try:
                general_signing = self._general_signing(
                    request,
                    device,
                    precommand=critical,
                    dcc_counter=self._next_dcc_counter(),
                    issued_at=self.clock.now(),
                )
            except (TransformError, GbcsError) as exc:
                raise _refusal(exc) from None
        except _Refused as refused:
            return self._refuse(request.request_id, request.sender, refused)
        self._raise_counter_floor(request.sender, request.request_id.counter)
        if critical:
            self._pending[request.request_id] = _Pending(request, general_signing)
            self._audit(request.sender, "pre-command issued", request.request_id)
            return DccResponse(request.request_id, ResponseCode.SUCCESS, general_signing.wire())
        return self._deliver(request.request_id, request.sender, device, general_signing)

    def submit_signed(self, signed: SignedPreCommand) -> DccResponse:
        """A signed pre-command (command variant 5-7) for a request transformed earlier."""
        try:
            user = self._check_user(signed.sender, signed.role)
            pending = self._pending.get(signed.request_id)
            if pending is None or pending.request.sender != signed.sender:
                raise _Refused(
                    ResponseCode.INVALID_REQUEST, "no outstanding pre-command for this RequestID"
                )
            variant = self._check_variant(signed.service_reference_variant, signed.role)
            self._check_command_variant(variant, signed.command_variant, signed=True)
            try:
                command = decode_general_signing(signed.gbcs)
            except GbcsError as exc:
                raise _Refused(ResponseCode.INVALID_REQUEST, f"signed pre-command: {exc}") from None
            if not command.signature or command.signed_data() != pending.precommand.signed_data():
                raise _Refused(
                    ResponseCode.INVALID_REQUEST,
                    "signed pre-command differs from the pre-command the DCC issued",
                )
            if not ecdsa_verify(user.signing_key, command.signed_data(), command.signature):
                raise _Refused(
                    ResponseCode.INVALID_REQUEST, "signature does not verify with the user's key"
                )
            device = self._check_device(signed.request_id.target)
            self._check_ownership(user, signed.role, device)
            held = self._anomaly_gate(signed.sender, variant.variant, (signed, device, command))
            if held is not None:
                del self._pending[signed.request_id]
                return held
        except _Refused as refused:
            return self._refuse(signed.request_id, signed.sender, refused)
        del self._pending[signed.request_id]
        return self._deliver(signed.request_id, signed.sender, device, command)

    # --- the durable path: acknowledge (I99) once committed, dispatch afterwards ---------------

    def _durable_store(self) -> SqlDccStore:
        if self.store is None:
            raise RuntimeError("the durable DCC path needs a SqlDccStore")
        return self.store

    def accept(self, request: ServiceRequest) -> DccResponse:
        """A service request (CV 1-4) on the durable path, as the DUIS gateway takes it.

        CV 4 is answered at once with the pre-command (and remembered in the database, so the
        signed pre-command may come back after a restart); CV 2 with the MAC'd command for
        local delivery. Everything else is committed to the database, with the sender's
        counter floor, before it is acknowledged with I99: with :attr:`dispatch_on_accept`
        already MAC'd and queued for the WAN in that transaction, else for
        :meth:`dispatch_accepted` to send.
        Concurrent callers' decisions are committed together (group commit); each caller
        returns only once the transaction holding its own decision has committed.
        """
        store = self._durable_store()  # refuse at once, not half-way, when there is no store
        with self.lock:
            decided = self._decide_acceptance(request)
            if isinstance(decided, DccResponse):
                return decided
            if self.committer is None:  # one shared connection: commit here, under the lock
                outcome = store.commit_acceptances([decided.item], self.audit)[0]
            else:
                waiting = self.committer.submit(decided.item)
        if self.committer is not None:
            try:
                outcome = waiting.result()
            except Exception:  # not committed, so not acknowledged: the caller sees the error
                self._forget_decision(decided)
                raise
        return self._conclude_acceptance(decided, outcome)

    def accept_many(self, requests: Sequence[ServiceRequest]) -> list[DccResponse | NotCommitted]:
        """:meth:`accept` for several requests at once, as the gateway takes a batch: every
        decision under one hold of the lock, one group commit for all of them, and each
        answered only once that commit holds its decision. The answers are in order; a
        request whose commit failed is answered :class:`NotCommitted` (never acknowledged)."""
        store = self._durable_store()
        answers: list[DccResponse | NotCommitted | None] = [None] * len(requests)
        decided: list[tuple[int, _Decision]] = []
        with self.lock:
            for index, request in enumerate(requests):
                try:
                    decision = self._decide_acceptance(request)
                except Exception as exc:  # a fault deciding one request is its own
                    answers[index] = NotCommitted(f"not decided: {type(exc).__name__}: {exc}")
                    continue
                if isinstance(decision, DccResponse):
                    answers[index] = decision
                else:
                    decided.append((index, decision))
            if self.committer is None:
                shared: list[Committed | DuplicateRequest | NotCommitted]
                try:
                    shared = list(
                        store.commit_acceptances([d.item for _, d in decided], self.audit)
                    )
                except Exception as exc:
                    shared = [NotCommitted(f"{type(exc).__name__}: {exc}")] * len(decided)
            else:
                waiting = [self.committer.submit(d.item) for _, d in decided]
        outcomes: list[Committed | DuplicateRequest | NotCommitted] = []
        if self.committer is None:
            outcomes.extend(shared)
        else:
            for pending in waiting:
                try:
                    outcomes.append(pending.result())
                except Exception as exc:  # that batch was not committed
                    outcomes.append(NotCommitted(f"{type(exc).__name__}: {exc}"))
        for (index, decision), outcome in zip(decided, outcomes, strict=True):
            if isinstance(outcome, NotCommitted):
                self._forget_decision(decision)
                answers[index] = outcome
            else:
                answers[index] = self._conclude_acceptance(decision, outcome)
        return [answer for answer in answers if answer is not None]

    def _forget_decision(self, decision: _Decision) -> None:
        """A decision that was not committed: its floor is read again from the database."""
        with self.lock:
            self._floors.pop(decision.request.sender, None)
            self._prepared.pop(decision.item.request_id, None)

    def _decide_acceptance(self, request: ServiceRequest) -> DccResponse | _Decision:
        """Under the lock: the checks, the transform and the row to commit (or the refusal)."""
        try:
            variant, device = self._checked(request)
            issued_at = self.clock.now()
            dcc_counter = self._next_dcc_counter()
            try:
                general_signing = self._general_signing(
                    request,
                    device,
                    precommand=variant.critical,
                    dcc_counter=dcc_counter,
                    issued_at=issued_at,
                )
            except (TransformError, GbcsError) as exc:
                raise _refusal(exc) from None
            reason = None if variant.critical else self._anomaly_reason(request)
        except _Refused as refused:
            return self._refuse(request.request_id, request.sender, refused)
        dcc_used = self._sent_by_dcc(general_signing)
        payload = _request_payload(request, issued_at, dcc_counter if dcc_used else None)
        if variant.critical:
            state, action = RequestState.TRANSFORMED, "pre-command issued"
        elif request.command_variant in _RETURN_TO_USER:
            state, action = RequestState.DISPATCHED, "command returned for local delivery"
        elif reason is not None:
            state, action = RequestState.QUARANTINED, "quarantined"
        elif self.dispatch_on_accept:
            state, action = RequestState.DISPATCHED, "accepted, command queued for WAN"
        else:
            state, action = RequestState.ACCEPTED, "accepted"
        key = str(request.request_id)
        frame: QueuedFrame | None = None
        if state == RequestState.DISPATCHED and request.command_variant not in _RETURN_TO_USER:
            frame = QueuedFrame(
                hub=str(device.hub),
                device=str(device.eui),
                region=str(self.inventory.region(device.eui)),
                frame=self.acb.mac_command(general_signing, device.key_agreement_key),
            )
        item = Acceptance(
            request_id=key,
            sender=request.sender,
            counter=request.request_id.counter,
            role=request.role,
            srv=request.service_reference_variant,
            command_variant=int(request.command_variant),
            payload=payload,
            at=issued_at,
            state=state,
            audit_action=action,
            quarantine_reason=reason,
            alert=None if reason is None else _quarantine_alert(request.request_id, reason),
            floors=((str(self.acb.eui), dcc_counter),) if dcc_used else (),
            frame=frame,
        )
        # The floor is taken now, so a later request of this sender cannot slip under it
        # while this one waits for its commit (the database checks it again).
        self._floors[request.sender] = request.request_id.counter
        if state == RequestState.ACCEPTED and len(self._prepared) < _PREPARED_LIMIT:
            self._prepared[key] = general_signing
        return _Decision(request, item, general_signing, device, frame, reason)

    def _conclude_acceptance(
        self, decision: _Decision, outcome: Committed | DuplicateRequest
    ) -> DccResponse:
        """The answer to a decision whose commit has finished."""
        request, state, reason = decision.request, decision.item.state, decision.reason
        general_signing, frame, device = decision.general_signing, decision.frame, decision.device
        if isinstance(outcome, DuplicateRequest):
            self._forget_decision(decision)
            return self._duplicate(request.request_id, request.sender)
        if state == RequestState.TRANSFORMED:
            return DccResponse(request.request_id, ResponseCode.SUCCESS, general_signing.wire())
        if state == RequestState.DISPATCHED and frame is None:
            wire = self.acb.mac_command(general_signing, device.key_agreement_key)
            return DccResponse(request.request_id, ResponseCode.SUCCESS, wire)
        if reason is not None:
            return DccResponse(
                request.request_id,
                ResponseCode.ACKNOWLEDGED,
                dcc_alert=DccAlertCode.QUARANTINED_REQUEST,
                quarantine_ticket=outcome.ticket,
                detail=reason,
            )
        return DccResponse(request.request_id, ResponseCode.ACKNOWLEDGED)

    def accept_signed(self, signed: SignedPreCommand) -> DccResponse:
        """A signed pre-command (CV 5-7) on the durable path: checked now, sent by dispatch."""
        store = self._durable_store()
        with self.lock, self._store_guard():
            return self._accept_signed(store, signed)

    def _accept_signed(self, store: SqlDccStore, signed: SignedPreCommand) -> DccResponse:
        try:
            user = self._check_user(signed.sender, signed.role)
            original = store.request(str(signed.request_id))
            if (
                original is None
                or original.state != RequestState.TRANSFORMED
                or original.sender != str(signed.sender)
            ):
                raise _Refused(
                    ResponseCode.INVALID_REQUEST, "no outstanding pre-command for this RequestID"
                )
            variant = self._check_variant(signed.service_reference_variant, signed.role)
            self._check_command_variant(variant, signed.command_variant, signed=True)
            device = self._check_device(signed.request_id.target)
            self._check_ownership(user, signed.role, device)
            precommand = self._rebuilt(original, device, precommand=True)
            command = self._check_signed_precommand(user, signed, precommand)
            reason = self._anomaly_reason(signed)
        except (TransformError, GbcsError) as exc:
            return self._refuse(
                signed.request_id, signed.sender, _refusal(exc)
            )
        except _Refused as refused:
            return self._refuse(signed.request_id, signed.sender, refused)
        if signed.command_variant in _RETURN_TO_USER:
            self._close_transformed(store, signed, RequestState.DISPATCHED)
            wire = self.acb.mac_command(command, device.key_agreement_key)
            self._audit(signed.sender, "command returned for local delivery", signed.request_id)
            return DccResponse(signed.request_id, ResponseCode.SUCCESS, wire)
        state = RequestState.QUARANTINED if reason else RequestState.ACCEPTED
        ticket = self._close_transformed(
            store, signed, state, gbcs=signed.gbcs, quarantine_reason=reason
        )
        return self._acknowledged(signed.request_id, signed.sender, ticket, reason)

    def _close_transformed(
        self,
        store: SqlDccStore,
        signed: SignedPreCommand,
        state: str,
        *,
        gbcs: bytes | None = None,
        quarantine_reason: str | None = None,
    ) -> int | None:
        """Turn the stored CV 4 request into the signed one, under a derived key."""
        payload: dict[str, object] = {"gbcs": gbcs.hex() if gbcs else None}
        key = f"{signed.request_id}#signed"
        try:
            return store.accept_signed(
                str(signed.request_id),
                key,
                sender=signed.sender,
                role=signed.role,
                srv=signed.service_reference_variant,
                command_variant=int(signed.command_variant),
                payload=payload,
                at=self.clock.now(),
                state=state,
                quarantine_reason=quarantine_reason,
            )
        except DuplicateRequest:
            return None

    def _general_signing(
        self,
        request: ServiceRequest,
        device: DeviceRecord,
        *,
        precommand: bool,
        dcc_counter: int,
        issued_at: dt.datetime | None,
    ) -> GeneralSigning:
        """The GBCS for a request to ``device``: an SMKI-side transform if one is registered,
        else the DUIS transform for the device type the inventory records."""
        extra = self.extra_transforms.get(request.service_reference_variant)
        if extra is not None:
            return extra(request, precommand)
        target = transform_target(device)

        def built(sender: Eui64) -> Transformed:
            return transform(
                request,
                target,
                check_variant=False,
                precommand_signature_field=not precommand,
                dcc=DccOriginator(sender.value, dcc_counter),
                issued_at=issued_at,
                inventory=self._transform_inventory,
            )

        result = built(self.acb.eui)
        if not result.dcc_signed:
            return result.general_signing
        # Signed by the DCC: sent from the EUI of the key that signs this use case.
        signer = self.dcc_signing.for_use_case(result.use_case)
        if signer is None:
            raise TransformError(
                f"{request.service_reference_variant} ({result.use_case}) is signed by the DCC, "
                "which holds no signing key for it"
            )
        if signer.eui != self.acb.eui:
            result = built(signer.eui)
        command = result.general_signing
        return command.with_signature(signer.sign(command.signed_data()))

    def _sent_by_dcc(self, command: GeneralSigning) -> bool:
        """Whether the DCC sent ``command`` in its own name (with a DCC counter)."""
        if command.originator == self.acb.eui.value:
            return True
        signing = self.dcc_signing
        keys = [signing.default, *signing.by_use_case.values()]
        return any(k is not None and k.eui.value == command.originator for k in keys)

    def _rebuilt(
        self, stored: StoredRequest, device: DeviceRecord, *, precommand: bool
    ) -> GeneralSigning:
        """The GBCS of a stored request, built again exactly as at its acceptance."""
        issued = stored.payload.get("issued_at")
        counter = stored.payload.get("dcc_counter")
        fresh = not isinstance(counter, int)  # made by a schedule, or before counters were kept
        dcc_counter = self._next_dcc_counter() if fresh else int(str(counter))
        command = self._general_signing(
            _rebuild(stored),
            device,
            precommand=precommand,
            dcc_counter=dcc_counter,
            issued_at=dt.datetime.fromisoformat(issued) if isinstance(issued, str) else None,
        )
        if fresh and self._sent_by_dcc(command) and self.store is not None:
            self._raise_counter_floor(self.acb.eui, dcc_counter)
        return command

    def _check_signed_precommand(
        self, user: DccUser, signed: SignedPreCommand, precommand: GeneralSigning
    ) -> GeneralSigning:
        try:
            command = decode_general_signing(signed.gbcs)
        except GbcsError as exc:
            raise _Refused(ResponseCode.INVALID_REQUEST, f"signed pre-command: {exc}") from None
        if not command.signature or command.signed_data() != precommand.signed_data():
            raise _Refused(
                ResponseCode.INVALID_REQUEST,
                "signed pre-command differs from the pre-command the DCC issued",
            )
        if not ecdsa_verify(user.signing_key, command.signed_data(), command.signature):
            raise _Refused(
                ResponseCode.INVALID_REQUEST, "signature does not verify with the user's key"
            )
        return command

    def _anomaly_reason(self, item: ServiceRequest | SignedPreCommand) -> str | None:
        now = self.clock.now()
        reason = self.anomaly.check(item.sender, item.service_reference_variant, now)
        if reason is None and isinstance(item, ServiceRequest):
            reason = self.anomaly.check_values(item.service_reference_variant, item.parameters)
        if reason is None:
            self.anomaly.record(item.sender, item.service_reference_variant, now)
        return reason

    def _duplicate(self, request_id: RequestId, sender: Eui64) -> DccResponse:
        return self._refuse(
            request_id,
            sender,
            _Refused(
                ResponseCode.REQUEST_ID_COUNTER_NOT_INCREASING,
                f"RequestID {request_id} was accepted before",
            ),
        )

    def _acknowledged(
        self, request_id: RequestId, sender: Eui64, ticket: int | None, reason: str | None
    ) -> DccResponse:
        if reason is None or ticket is None:
            self._audit(sender, "accepted", request_id)
            return DccResponse(request_id, ResponseCode.ACKNOWLEDGED)
        self._audit(sender, "quarantined", request_id, reason=reason, ticket=ticket)
        self._durable_store().queue_message(
            str(sender),
            str(request_id),
            "alert",
            {**_quarantine_alert(request_id, reason), "ticket": ticket},
            self.clock.now(),
        )
        return DccResponse(
            request_id,
            ResponseCode.ACKNOWLEDGED,
            dcc_alert=DccAlertCode.QUARANTINED_REQUEST,
            quarantine_ticket=ticket,
            detail=reason,
        )

    def dispatch_accepted(self, limit: int = 500) -> int:
        """MAC every accepted request and queue it for the WAN, once per RequestID.

        One batch of up to ``limit``: commands transformed at acceptance are taken as they
        are (else built again from the stored request), MAC'd, and queued in one
        transaction. Only one dispatcher runs at a time; the WAN queue's unique RequestID
        and the state check in the database keep it once per request even so.
        """
        store = self._durable_store()
        with self._dispatch_lock, self._store_guard():
            batch: list[Dispatch] = []
            now = self.clock.now()
            for stored in store.requests_in_state(RequestState.ACCEPTED, limit):
                rid = RequestId.parse(stored.request_id.split("#")[0])
                device = self.inventory.device(rid.target)
                prepared = self._prepared.pop(stored.request_id, None)
                try:
                    if device is None:
                        raise TransformError(f"device {rid.target} left the inventory")
                    if "gbcs" in stored.payload:
                        command = decode_general_signing(bytes.fromhex(str(stored.payload["gbcs"])))
                    elif prepared is not None:
                        command = prepared
                    else:
                        command = self._rebuilt(stored, device, precommand=False)
                    wire = self.acb.mac_command(command, device.key_agreement_key)
                except (TransformError, GbcsError, ValueError) as exc:
                    code = (
                        exc.code if isinstance(exc, TransformError) else ResponseCode.INVALID_REQUEST
                    )
                    store.fail_request(
                        stored.request_id,
                        _message(stored, code, detail=str(exc)),
                        stored.sender,
                        now,
                    )
                    self._audit_actor(
                        stored.sender, "failed", request_id=stored.request_id, detail=str(exc)
                    )
                    continue
                batch.append(
                    Dispatch(
                        stored.request_id,
                        stored.sender,
                        hub=str(device.hub),
                        device=str(device.eui),
                        region=str(self.inventory.region(device.eui)),
                        frame=wire,
                        at=now,
                    )
                )
            return store.dispatch_many(batch, self.audit)

    def carry_queued(self, send: Callable[[Eui64, str, bytes], bytes | None] | None = None, limit: int = 100) -> int:
        """Hand queued frames to the WAN; each device answer is queued for the user.

        ``send(hub, region, frame)`` is the CSP; by default the in-process WAN. A frame the
        WAN refuses for now (throttled, hub offline) stays queued for the next round.
        """
        store = self._durable_store()
        carried = 0
        for frame in store.queued_frames(limit):
            stored = store.request(frame.request_id)
            if stored is None:
                continue
            hub = Eui64.parse(frame.hub)
            try:
                response = (
                    send(hub, frame.region, frame.frame) if send else self.wan.deliver(hub, frame.frame)
                )
            except WanError:
                continue
            code = ResponseCode.SUCCESS if response is not None else ResponseCode.ACKNOWLEDGED
            store.frame_sent(
                frame.id,
                response,
                user=stored.sender,
                request_id=frame.request_id,
                message=_message(stored, code, gbcs=response)
                if response is not None
                else None,
                at=self.clock.now(),
            )
            self._audit_actor(
                stored.sender,
                "response returned" if response is not None else "no response from device",
                request_id=frame.request_id,
            )
            carried += 1
        return carried

    def release_durable(self, ticket: int, operator: str) -> None:
        """Operator release of a durably quarantined request: dispatch sends it next round."""
        row = self._durable_store().close_quarantine(ticket, operator, release=True)
        self._audit_actor(operator, "quarantine released", ticket=ticket, request_id=row.request_id)

    def delete_durable(self, ticket: int, operator: str) -> None:
        row = self._durable_store().close_quarantine(ticket, operator, release=False)
        self._audit_actor(operator, "quarantine deleted", ticket=ticket, request_id=row.request_id)

    # --- operator actions on quarantine -----------------------------------------------------

    def held(self) -> list[QuarantinedRequest[object]]:
        return self.anomaly.held()

    def release(self, ticket: int, operator: str) -> DccResponse:
        self._audit_actor(operator, "quarantine released", ticket=ticket)

        def send(item: object) -> DccResponse:
            if isinstance(item, ServiceRequest):
                device = self.inventory.device(item.request_id.target)
                if device is None:
                    return DccResponse(item.request_id, ResponseCode.UNKNOWN_DEVICE)
                general_signing = self._general_signing(
                    item,
                    device,
                    precommand=False,
                    dcc_counter=self._next_dcc_counter(),
                    issued_at=self.clock.now(),
                )
                return self._deliver(item.request_id, item.sender, device, general_signing)
            assert isinstance(item, tuple)
            signed, device, command = item
            return self._deliver(signed.request_id, signed.sender, device, command)

        result = self.anomaly.release(ticket, send)
        assert isinstance(result, DccResponse)
        return result

    def delete(self, ticket: int, operator: str) -> None:
        self.anomaly.delete(ticket)
        self._audit_actor(operator, "quarantine deleted", ticket=ticket)

    # --- what the DCC learns from devices ---------------------------------------------------

    def record_han_backup(self, hub: Eui64, alert: bytes) -> HanBackup:
        """Keep comms hub ``hub``'s HAN backup from its device log backup alert (CS14,
        0x8F12; the alert's GBCS, or its xDLMS payload): what a replacement hub is restored
        with (8.12.1). The hub's device log is the backup's device ids."""
        payload = alert
        if alert[:1] in (b"\xdd", b"\xdf"):
            try:
                payload = decode_message(alert).general_signing.payload
            except GbcsError as exc:
                raise TransformError(f"CS14 alert: {exc}") from None
        backup = backup_from_alert(payload)
        with self.lock:
            self.inventory.record_han_backup(hub, backup)
            self.inventory.set_device_log(hub, tuple(Eui64(eui) for eui, _ in backup.entries))
            self._audit_actor(str(hub), "HAN backup recorded", entries=len(backup.entries))
        return backup

    # --- checks -----------------------------------------------------------------------------

    def _check_user(self, sender: Eui64, role: str) -> DccUser:
        user = self.users.get(sender)
        if user is None or user.status is not UserStatus.ACTIVE:
            raise _Refused(ResponseCode.USER_NOT_AUTHORISED, f"{sender} is not an active DCC user")
        if user.roles.get(role) is not UserStatus.ACTIVE:
            raise _Refused(ResponseCode.USER_ROLE_NOT_ACTIVE, f"{sender} does not hold role {role}")
        if self.credential_check is not None:
            problem = self.credential_check(user)
            if problem is not None:
                raise _Refused(ResponseCode.USER_NOT_AUTHORISED, problem)
        return user

    def _check_request_id(self, request_id: RequestId, sender: Eui64) -> None:
        if request_id.originator != sender:
            raise _Refused(
                ResponseCode.REQUEST_ID_ORIGINATOR_MISMATCH,
                f"RequestID originator {request_id.originator} is not the sender {sender}",
            )
        last = self._counter_floor(sender)
        if last is not None and request_id.counter <= last:
            raise _Refused(
                ResponseCode.REQUEST_ID_COUNTER_NOT_INCREASING,
                f"counter {request_id.counter} is not above {last}",
            )

    def _check_variant(self, variant_name: str, role: str) -> ServiceRequestVariant:
        variant = self.matrix.get(variant_name)
        if variant is None:
            raise _Refused(
                ResponseCode.INVALID_REQUEST, f"unknown service request variant {variant_name}"
            )
        if not variant.allows(role):
            raise _Refused(
                ResponseCode.ROLE_NOT_ELIGIBLE,
                f"role {role} may not send {variant.variant} ({variant.name})",
            )
        return variant

    def _check_command_variant(
        self, variant: ServiceRequestVariant, cv: CommandVariant, *, signed: bool
    ) -> None:
        if variant.non_device:
            ok = cv is CommandVariant.NON_DEVICE
        elif variant.critical:
            ok = cv.carries_signed_precommand if signed else cv is CommandVariant.CRITICAL_TRANSFORM
        else:
            ok = not cv.is_critical and cv is not CommandVariant.NON_DEVICE and not signed
        if not ok:
            raise _Refused(
                ResponseCode.INVALID_COMMAND_VARIANT,
                f"command variant {int(cv)} is not valid for {variant.variant}",
            )

    def _check_device(self, target: Eui64) -> DeviceRecord:
        device = self.inventory.device(target)
        if device is None:
            raise _Refused(ResponseCode.UNKNOWN_DEVICE, f"device {target} is not in the inventory")
        if device.smi_status not in (SmiStatus.COMMISSIONED, SmiStatus.INSTALLED_NOT_COMMISSIONED):
            raise _Refused(
                ResponseCode.INVALID_SMI_STATUS, f"device {target} is {device.smi_status.value}"
            )
        return device

    def _check_ownership(self, user: DccUser, role: str, device: DeviceRecord) -> None:
        owning_role = _OWNING_ROLE.get(role)
        if owning_role is None and self.consent_check is not None:
            problem = self.consent_check(user, device)
            if problem is not None:
                raise _Refused(ResponseCode.NOT_DEVICE_OWNER, problem)
            return
        registered = (
            self.inventory.registered_party(device.mpxn, owning_role, self.clock.now())
            if owning_role
            else None
        )
        if registered != user.eui:
            raise _Refused(
                ResponseCode.NOT_DEVICE_OWNER,
                f"{user.eui} is not the registered {role} for MPxN {device.mpxn}",
            )

    def _anomaly_gate(self, sender: Eui64, srv: str, item: object) -> DccResponse | None:
        now = self.clock.now()
        reason = self.anomaly.check(sender, srv, now)
        if reason is None:
            self.anomaly.record(sender, srv, now)
            return None
        request_id = item.request_id if isinstance(item, ServiceRequest) else item[0].request_id  # type: ignore[index]
        entry = self.anomaly.quarantine(sender, srv, now, reason, item)
        self._audit(sender, "quarantined", request_id, reason=reason, ticket=entry.ticket)
        return DccResponse(
            request_id,
            ResponseCode.ACKNOWLEDGED,
            dcc_alert=DccAlertCode.QUARANTINED_REQUEST,
            quarantine_ticket=entry.ticket,
            detail=reason,
        )

    # --- delivery ----------------------------------------------------------------------------

    def _deliver(
        self, request_id: RequestId, sender: Eui64, device: DeviceRecord, command: GeneralSigning
    ) -> DccResponse:
        wire = self.acb.mac_command(command, device.key_agreement_key)
        self._audit(sender, "command sent", request_id, bytes=len(wire))
        try:
            response = self.wan.deliver(device.hub, wire)
        except WanError as exc:
            return DccResponse(request_id, ResponseCode.ACKNOWLEDGED, detail=f"WAN: {exc}")
        if response is None:
            self._audit(sender, "no response from device", request_id)
            return DccResponse(
                request_id, ResponseCode.ACKNOWLEDGED, detail="no response from device"
            )
        self._audit(sender, "response returned", request_id, bytes=len(response))
        return DccResponse(request_id, ResponseCode.SUCCESS, response)

    def _refuse(self, request_id: RequestId, sender: Eui64, refused: _Refused) -> DccResponse:
        self._audit(sender, "refused", request_id, code=refused.code.value, detail=refused.detail)
        return DccResponse(request_id, refused.code, detail=refused.detail)

    def _audit(self, sender: Eui64, action: str, request_id: RequestId, **detail: object) -> None:
        self.audit.append(
            self.clock.now(), str(sender), action, request_id=str(request_id), **detail
        )

    def _audit_actor(self, actor: str, action: str, **detail: object) -> None:
        self.audit.append(self.clock.now(), actor, action, **detail)


class DccTransformInventory(Inventory):
    """The transform's view of the DCC's smart metering inventory: the other device of a
    join (its type and key-agreement certificate), the device log of a gas proxy or hub, and
    a comms hub's HAN backup, read live from ``source``."""

    def __init__(self, source: SmartMeteringInventory) -> None:
        super().__init__({}, {})
        object.__setattr__(self, "_source", source)

    @property
    def source(self) -> SmartMeteringInventory:
        source = self.__dict__["_source"]
        assert isinstance(source, SmartMeteringInventory)
        return source

    def device(self, eui: bytes) -> InventoryDevice | None:
        record = self.source.device(Eui64(eui))
        if record is None:
            return None
        return InventoryDevice(
            TransformDeviceType(record.device_type.value), record.key_agreement_certificate
        )

    def device_log(self, eui: bytes) -> tuple[bytes, ...] | None:
        entries = self.source.device_log(Eui64(eui))
        return None if entries is None else tuple(e.value for e in entries)

    def han_backup(self, hub: bytes) -> HanBackup | None:
        return self.source.han_backup(Eui64(hub))


def transform_target(device: DeviceRecord) -> Target:
    """What the transform needs to know of the target device, from the inventory: its type
    and, for an ESME, its variant (single element, twin element, polyphase)."""
    try:
        variant = EsmeVariant(device.esme_variant)
    except ValueError:
        raise TransformError(
            f"device {device.eui} has ESME variant {device.esme_variant!r}, not A, B or C"
        ) from None
    return Target(TransformDeviceType(device.device_type.value), variant)


def _request_payload(
    request: ServiceRequest, issued_at: dt.datetime, dcc_counter: int | None
) -> dict[str, object]:
    payload: dict[str, object] = {
        "parameters": request.parameters,
        "execution": request.execution_datetime.isoformat()
        if request.execution_datetime
        else None,
        "issued_at": issued_at.isoformat(),
    }
    if dcc_counter is not None:
        payload["dcc_counter"] = dcc_counter
    return payload


def _quarantine_alert(request_id: RequestId, reason: str) -> dict[str, object]:
    """The DCC alert (AD1) telling the user its request is held; the ticket is added."""
    return {
        "request_id": str(request_id),
        "code": ResponseCode.ACKNOWLEDGED.value,
        "alert": DccAlertCode.QUARANTINED_REQUEST.value,
        "breach": _breach_kind(reason),
        "detail": reason,
    }


def _rebuild(stored: StoredRequest) -> ServiceRequest:
    """The ServiceRequest an accepted row was made from."""
    execution = stored.payload.get("execution")
    parameters = stored.payload.get("parameters")
    return ServiceRequest(
        RequestId.parse(stored.request_id.split("#")[0]),
        Eui64.parse(stored.sender),
        stored.role,
        stored.srv,
        CommandVariant(stored.command_variant),
        dict(parameters) if isinstance(parameters, dict) else {},
        dt.datetime.fromisoformat(execution) if isinstance(execution, str) else None,
    )


def _message(
    stored: StoredRequest, code: ResponseCode, *, gbcs: bytes | None = None, detail: str = ""
) -> dict[str, object]:
    """What a response to the user says; the gateway writes and signs the DUIS document."""
    return {
        "request_id": stored.request_id.split("#")[0],
        "srv": stored.srv,
        "code": code.value,
        "gbcs": gbcs.hex() if gbcs is not None else None,
        "detail": detail,
    }


def _breach_kind(reason: str) -> str:
    if reason.startswith("DCC threshold"):
        return "ADDCCThresholdBreach"
    if reason.startswith("value limit"):
        return "ADAttributeLimitsBreach"
    return "ADUserThresholdBreach"
