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

from dataclasses import dataclass, field

from smarthydra.clock import Clock
from smarthydra.crypto.primitives import ecdsa_verify
from smarthydra.dcc.acb import AccessControlBroker
from smarthydra.dcc.anomaly import AnomalyDetector, QuarantinedRequest
from smarthydra.dcc.audit import AuditLog
from smarthydra.dcc.inventory import (
    DccUser,
    DeviceRecord,
    SmartMeteringInventory,
    SmiStatus,
    UserRegister,
    UserStatus,
)
from smarthydra.dcc.store import SqlDccStore
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

    def __post_init__(self) -> None:
        if self.store is not None:
            # Resume from durable state: the audit chain continues, counters stay monotonic.
            self.audit.entries = self.store.load_audit()
            self.audit.sink = self.store.append_audit

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
