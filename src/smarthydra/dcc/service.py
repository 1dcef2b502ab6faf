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
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from smarthydra.clock import Clock
from smarthydra.crypto.primitives import ecdsa_verify
from smarthydra.dcc.acb import AccessControlBroker
from smarthydra.dcc.anomaly import AnomalyDetector, QuarantinedRequest
from smarthydra.dcc.audit import AuditConflict, AuditLog
from smarthydra.dcc.inventory import (
    DccUser,
    DeviceRecord,
    SmartMeteringInventory,
    SmiStatus,
    UserRegister,
    UserStatus,
)
from smarthydra.dcc.store import DuplicateRequest, RequestState, SqlDccStore, StoredRequest
from smarthydra.dcc.transform import TransformError, to_general_signing
from smarthydra.duis.codes import DccAlertCode, ResponseCode
from smarthydra.duis.matrix import ServiceRequestMatrix, ServiceRequestVariant
from smarthydra.duis.request import (
    CommandVariant,
    RequestId,
    ServiceRequest,
    SignedPreCommand,
)
from smarthydra.eui import Eui64
from smarthydra.gbcs.envelope import GeneralSigning, decode_general_signing
from smarthydra.gbcs.errors import GbcsError
from smarthydra.wan.network import WanError, WanNetwork

# Command variants whose GBCS the DCC hands back to the user for local delivery (over the HAN)
# instead of sending it over the WAN.
_RETURN_TO_USER = (
    CommandVariant.NON_CRITICAL_RETURN_GBCS,
    CommandVariant.CRITICAL_SIGNED_RETURN_GBCS,
)

# The DUIS role whose registration for the device's MPxN makes a user its owner.
_OWNING_ROLE = {"IS": "IS", "GS": "GS", "ES": "ES", "ED": "ED", "GT": "GT"}


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


@dataclass
class _Refused(Exception):
    code: ResponseCode
    detail: str


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
    # SMKI hooks (pki): refuse a user whose organisation certificate is revoked (E1), and
    # transforms for the security-credential SRVs (6.15.1, 6.23) built by the SMKI side.
    credential_check: Callable[[DccUser], str | None] | None = None
    extra_transforms: dict[str, Callable[[ServiceRequest, bool], GeneralSigning]] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        if self.store is not None:
            # Resume from durable state: the audit chain continues, counters stay monotonic.
            self.audit.entries = self.store.load_audit()
            self.audit.sink = self.store.append_audit
            self.audit.resync = self.store.load_audit

    def _counter_floor(self, user: Eui64) -> int | None:
        if self.store is not None:
            return self.store.last_counter(user)
        return self._last_counter.get(user)

    def _raise_counter_floor(self, user: Eui64, counter: int) -> None:
        if self.store is not None:
            self.store.set_last_counter(user, counter)
        else:
            self._last_counter[user] = counter

    # --- the two entry points ---------------------------------------------------------------

    def submit(self, request: ServiceRequest) -> DccResponse:
        """A service request with command variant 1-4."""
        try:
            user = self._check_user(request.sender, request.role)
            self._check_request_id(request.request_id, request.sender)
            variant = self._check_variant(request.service_reference_variant, request.role)
            self._check_command_variant(variant, request.command_variant, signed=False)
            device = self._check_device(request.request_id.target)
            self._check_ownership(user, request.role, device)
            critical = variant.critical
            if not critical:
                held = self._anomaly_gate(request.sender, variant.variant, request)
                if held is not None:
                    return held
            try:
                extra = self.extra_transforms.get(request.service_reference_variant)
                if extra is not None:
                    general_signing = extra(request, critical)
                else:
                    _, general_signing = to_general_signing(request, precommand=critical)
            except (TransformError, GbcsError) as exc:
                raise _Refused(ResponseCode.INVALID_REQUEST, str(exc)) from None
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
        counter floor, before it is acknowledged with I99; :meth:`dispatch_accepted` sends it.
        """
        self._durable_store()  # refuse at once, not half-way, when there is no store
        try:
            user = self._check_user(request.sender, request.role)
            self._check_request_id(request.request_id, request.sender)
            variant = self._check_variant(request.service_reference_variant, request.role)
            self._check_command_variant(variant, request.command_variant, signed=False)
            device = self._check_device(request.request_id.target)
            self._check_ownership(user, request.role, device)
            try:
                general_signing = self._general_signing(request, precommand=variant.critical)
            except (TransformError, GbcsError) as exc:
                raise _Refused(ResponseCode.INVALID_REQUEST, str(exc)) from None
            reason = None if variant.critical else self._anomaly_reason(request)
        except _Refused as refused:
            return self._refuse(request.request_id, request.sender, refused)
        payload = _request_payload(request)
        if variant.critical or request.command_variant in _RETURN_TO_USER:
            state = RequestState.TRANSFORMED if variant.critical else RequestState.DISPATCHED
            if not self._record(request.request_id, request, payload, state):
                return self._duplicate(request.request_id, request.sender)
            if variant.critical:
                self._audit(request.sender, "pre-command issued", request.request_id)
                return DccResponse(request.request_id, ResponseCode.SUCCESS, general_signing.wire())
            wire = self.acb.mac_command(general_signing, device.key_agreement_key)
            self._audit(request.sender, "command returned for local delivery", request.request_id)
            return DccResponse(request.request_id, ResponseCode.SUCCESS, wire)
        return self._acknowledge(request.request_id, request, payload, reason)

    def accept_signed(self, signed: SignedPreCommand) -> DccResponse:
        """A signed pre-command (CV 5-7) on the durable path: checked now, sent by dispatch."""
        store = self._durable_store()
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
            precommand = self._general_signing(_rebuild(original), precommand=True)
            command = self._check_signed_precommand(user, signed, precommand)
            device = self._check_device(signed.request_id.target)
            self._check_ownership(user, signed.role, device)
            reason = self._anomaly_reason(signed)
        except (TransformError, GbcsError) as exc:
            return self._refuse(
                signed.request_id, signed.sender, _Refused(ResponseCode.INVALID_REQUEST, str(exc))
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

    def _general_signing(self, request: ServiceRequest, *, precommand: bool) -> GeneralSigning:
        """The GBCS for a request: an SMKI-side transform if one is registered, else E's."""
        extra = self.extra_transforms.get(request.service_reference_variant)
        if extra is not None:
            return extra(request, precommand)
        return to_general_signing(request, precommand=precommand)[1]

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

    def _record(
        self, request_id: RequestId, request: ServiceRequest, payload: dict[str, object], state: str
    ) -> bool:
        try:
            self._durable_store().accept_request(
                request_id=str(request_id),
                sender=request.sender,
                counter=request_id.counter,
                role=request.role,
                srv=request.service_reference_variant,
                command_variant=int(request.command_variant),
                payload=payload,
                at=self.clock.now(),
                state=state,
            )
        except DuplicateRequest:
            return False
        return True

    def _duplicate(self, request_id: RequestId, sender: Eui64) -> DccResponse:
        return self._refuse(
            request_id,
            sender,
            _Refused(
                ResponseCode.REQUEST_ID_COUNTER_NOT_INCREASING,
                f"RequestID {request_id} was accepted before",
            ),
        )

    def _acknowledge(
        self,
        request_id: RequestId,
        request: ServiceRequest,
        payload: dict[str, object],
        reason: str | None,
    ) -> DccResponse:
        store = self._durable_store()
        for _attempt in range(3):
            # The audit record of an accepted request is committed with it: one commit each.
            entry = (
                None
                if reason
                else self.audit.next_entry(
                    self.clock.now(), str(request.sender), "accepted", request_id=str(request_id)
                )
            )
            try:
                ticket = store.accept_request(
                    request_id=str(request_id),
                    sender=request.sender,
                    counter=request_id.counter,
                    role=request.role,
                    srv=request.service_reference_variant,
                    command_variant=int(request.command_variant),
                    payload=payload,
                    at=self.clock.now(),
                    state=RequestState.QUARANTINED if reason else RequestState.ACCEPTED,
                    quarantine_reason=reason,
                    audit=entry,
                )
            except DuplicateRequest:
                return self._duplicate(request_id, request.sender)
            except AuditConflict:
                self.audit.entries = store.load_audit()  # an operator's CLI wrote meanwhile
                continue
            if entry is not None:
                self.audit.record(entry)
                return DccResponse(request_id, ResponseCode.ACKNOWLEDGED)
            return self._acknowledged(request_id, request.sender, ticket, reason)
        raise AuditConflict("the audit log kept moving; try again")

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
            {
                "request_id": str(request_id),
                "code": ResponseCode.ACKNOWLEDGED.value,
                "alert": DccAlertCode.QUARANTINED_REQUEST.value,
                "breach": _breach_kind(reason),
                "ticket": ticket,
                "detail": reason,
            },
            self.clock.now(),
        )
        return DccResponse(
            request_id,
            ResponseCode.ACKNOWLEDGED,
            dcc_alert=DccAlertCode.QUARANTINED_REQUEST,
            quarantine_ticket=ticket,
            detail=reason,
        )

    def dispatch_accepted(self, limit: int = 100) -> int:
        """MAC every accepted request and queue it for the WAN, once per RequestID."""
        store = self._durable_store()
        dispatched = 0
        for stored in store.requests_in_state(RequestState.ACCEPTED, limit):
            rid = RequestId.parse(stored.request_id.split("#")[0])
            device = self.inventory.device(rid.target)
            try:
                if device is None:
                    raise TransformError(f"device {rid.target} left the inventory")
                if "gbcs" in stored.payload:
                    command = decode_general_signing(bytes.fromhex(str(stored.payload["gbcs"])))
                else:
                    command = self._general_signing(_rebuild(stored), precommand=False)
                wire = self.acb.mac_command(command, device.key_agreement_key)
            except (TransformError, GbcsError, ValueError) as exc:
                store.fail_request(
                    stored.request_id,
                    _message(stored, ResponseCode.INVALID_REQUEST, detail=str(exc)),
                    stored.sender,
                    self.clock.now(),
                )
                self._audit_actor(stored.sender, "failed", request_id=stored.request_id, detail=str(exc))
                continue
            region = self.inventory.region(device.eui)
            for _attempt in range(3):
                entry = self.audit.next_entry(
                    self.clock.now(),
                    stored.sender,
                    "command queued for WAN",
                    request_id=stored.request_id,
                )
                try:
                    queued = store.dispatch(
                        stored.request_id,
                        hub=str(device.hub),
                        device=str(device.eui),
                        region=str(region),
                        frame=wire,
                        at=self.clock.now(),
                        audit=entry,
                    )
                except AuditConflict:
                    self.audit.entries = store.load_audit()  # an operator's CLI wrote meanwhile
                    continue
                if queued:
                    self.audit.record(entry)
                    dispatched += 1
                break
        return dispatched

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
                _, general_signing = to_general_signing(item)
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


def _request_payload(request: ServiceRequest) -> dict[str, object]:
    return {
        "parameters": request.parameters,
        "execution": request.execution_datetime.isoformat()
        if request.execution_datetime
        else None,
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
