"""The DCC's DUIS gateway: signed XML over HTTPS with mutual TLS, as DCC Boxed serves it.

Three endpoints, one per kind of command variant:

- ``POST /api/v1/serviceS``: send a command (CV 1-3, and 5-7 with a signed pre-command);
- ``POST /api/v1/serviceT``: transform (CV 4), answered with the pre-command to sign;
- ``POST /api/v1/serviceN``: non-device services (CV 8).

In durable mode (the dccboxed profile) a device request is committed and answered I99, then
dispatched by :meth:`DccGateway.work`; responses and alerts wait in the outbox, are POSTed to
the user's endpoint (:mod:`smarthydra.dcc.delivery`) and can be polled with
``GET /api/v1/responses``. ``/api/v1/operator/quarantine`` lists, releases and deletes held
requests for a holder of the operator token.

A request travels: size limit -> well-formed XML without DTD -> DUIS 5.4 schema -> XMLDSig
(certificate by X509IssuerSerial from the SMKI repository, an XML-signing role, signer ==
RequestID originator) -> body matches the service reference variant -> command variant suits
the URL (E13) -> :class:`~smarthydra.dcc.service.DataCommsCompany`. Every answer the DCC makes
is a DUIS ``Response`` signed with the DCC's XML-signing key. Input that cannot be answered in
DUIS (not XML, oversize, no readable RequestID) gets an RFC 7807 ``problem+json``; a request
refused before the DCC looks at it (schema, signature) gets its signed DUIS error with HTTP 400;
decisions of the DCC itself (I0, I99, E1-E21) come with HTTP 200. A request refused before
the DCC looked at it also says why, machine-readably (DUIS has one code, E1, for a bad
signature, an unknown or a revoked certificate alike): the ``X-DUIS-Refusal`` header, the
``reason`` member of a problem document, and a ``<!--smarthydra:refusal=...-->`` comment in
the signed DUIS response (see :class:`~smarthydra.duis.codes.RefusalReason`).

Throughput: FastAPI runs each request in a worker thread; authentication and response
drafting may run in worker processes (:class:`~smarthydra.dcc.frontdoor.FrontDoorPool`), and
the durable DCC commits concurrent decisions together.

:class:`DccGateway` is the sans-I/O core (bytes in, reply out); :func:`create_app` wraps it in
FastAPI and :func:`serve` runs it under uvicorn.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import logging
import os
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from smarthydra.clock import Clock
from smarthydra.dcc.batching import Batcher
from smarthydra.dcc.frontdoor import (
    Authenticated,
    FrontDoorError,
    FrontDoorPool,
    Refused,
    authenticate,
    exception_kind,
    response_draft,
)
from smarthydra.dcc.nondevice import NonDeviceServices
from smarthydra.dcc.operators import (
    FailureThrottle,
    InvalidOperatorName,
    OperatorRegistry,
    claimed_name,
)
from smarthydra.dcc.service import DataCommsCompany, DccResponse, NotCommitted
from smarthydra.dcc.store import OutboxState, StoreError
from smarthydra.duis.codes import RefusalReason, ResponseCode
from smarthydra.duis.request import CommandVariant, RequestId, ServiceRequest
from smarthydra.duis.xml import (
    DuisRequest,
    DuisResponse,
    DuisSchema,
    build_response,
    response_id,
)
from smarthydra.duis.xmldsig import (
    CertificateLookup,
    SignatureDraft,
    XmlSignatureError,
    XmlSigner,
)
from smarthydra.eui import Eui64, InvalidEui64

if TYPE_CHECKING:
    import uvicorn

    from smarthydra.dcc.pipeline import GatewayPipeline

XML_CONTENT_TYPE = "application/xml"
PROBLEM_CONTENT_TYPE = "application/problem+json"
XML_SIGNING_LABEL = "xml-sign"
DEFAULT_GATEWAY_BATCH = 64
_LOG = logging.getLogger(__name__)
# Connections and requests in progress at once; beyond it uvicorn answers 503 at once, so a
# flood cannot queue requests (up to the body limit each) without bound.
MAX_CONCURRENT_REQUESTS = 1024
DEFAULT_MAX_BODY = 256 * 1024  # a large DUIS request (a tariff) is a few kB
DETAIL_HEADER = "X-DUIS-Detail"
REFUSAL_HEADER = "X-DUIS-Refusal"  # a RefusalReason value: why E1/E11/E21 before any decision


class TlsIdentityMismatch(XmlSignatureError):
    """The mutual-TLS client and the XML signer are different users."""

    reason = RefusalReason.TLS_IDENTITY_MISMATCH


class GatewayConfigError(Exception):
    """The gateway cannot be started as asked (missing TLS files, no schema, ...)."""


class Endpoint(enum.Enum):
    SEND = "serviceS"
    TRANSFORM = "serviceT"
    NON_DEVICE = "serviceN"

    @property
    def path(self) -> str:
        return f"/api/v1/{self.value}"

    def accepts(self, cv: CommandVariant) -> bool:
        if self is Endpoint.TRANSFORM:
            return cv is CommandVariant.CRITICAL_TRANSFORM
        if self is Endpoint.NON_DEVICE:
            return cv is CommandVariant.NON_DEVICE
        return cv not in (CommandVariant.CRITICAL_TRANSFORM, CommandVariant.NON_DEVICE)


@dataclass(frozen=True)
class GatewayReply:
    """What goes back over HTTP."""

    status: int
    content_type: str
    body: bytes
    detail: str = ""
    # Why a request was refused before the DCC decided (X-DUIS-Refusal), if it was.
    reason: RefusalReason | None = None

    @property
    def is_problem(self) -> bool:
        return self.content_type == PROBLEM_CONTENT_TYPE


def problem(
    status: int, kind: str, title: str, detail: str, *, reason: RefusalReason | None = None
) -> GatewayReply:
    """An RFC 7807 problem document (with the refusal reason as the extension member
    ``reason`` when there is one)."""
    document: dict[str, object] = {
        "type": f"urn:smarthydra:duis:problem:{kind}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if reason is not None:
        document["reason"] = reason.value
    return GatewayReply(
        status, PROBLEM_CONTENT_TYPE, json.dumps(document).encode(), detail, reason
    )


@dataclass
class DccGateway:
    """The sans-I/O gateway: signed DUIS bytes in, a :class:`GatewayReply` out."""

    dcc: DataCommsCompany
    schema: DuisSchema
    signer: XmlSigner  # the DCC's XML-signing key and certificate (SMKI role 0x89)
    certificates: CertificateLookup
    clock: Clock | None = None
    # The CSP: (hub, region, frame) -> the device's answer; None: the DCC's in-process WAN.
    wan_send: Callable[[Eui64, str, bytes], bytes | None] | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY
    alerts: list[bytes] = field(default_factory=list)  # signed DCC alerts awaiting delivery
    # Durable mode (needs the DCC's SqlDccStore): requests are committed, acknowledged with
    # I99 and dispatched afterwards; responses and alerts go through the outbox.
    durable: bool = False
    # When set, a request over mutual TLS must be signed by the user the client certificate
    # names (its EUI-64); a different XML signer is refused with E1.
    tie_tls_identity: bool = False
    # Bearer token for the operator API (/api/v1/operator/...); None: the API is closed.
    operator_token: str | None = None
    # Named operator accounts (Bearer NAME:TOKEN): the audit log then names who proved it.
    operators: OperatorRegistry | None = None
    # Failed operator logins (API and console), per client address and overall.
    operator_throttle: FailureThrottle = field(default_factory=FailureThrottle)
    # Worker processes for authentication and response drafting (None: in this process).
    front_door: FrontDoorPool | None = None
    # Concurrent requests are taken in batches of up to this many by whichever caller leads
    # (see :meth:`handle`); 1: each request on its own.
    max_batch: int = DEFAULT_GATEWAY_BATCH
    _batcher: Batcher[Arrival, GatewayReply | BaseException] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # A leader-commit batcher starts no thread: a lone caller handles its own request.
        self._batcher = Batcher(self.handle_batch, max_batch=self.max_batch, leader_commits=True)

    def now(self) -> dt.datetime:
        return (self.clock or self.dcc.clock).now()

    # --- the one entry point --------------------------------------------------------------

    def handle(
        self, endpoint: Endpoint, body: bytes, tls_client: Eui64 | None = None
    ) -> GatewayReply:
        """One request, answered. Concurrent callers' requests are handled together: the first
        caller with nobody else at work takes every request waiting and handles them as one
        batch (authenticated together, in the front-door workers if there are any; decided
        under one hold of the DCC's lock; committed in one transaction; answered together),
        while the other callers wait parked. Each caller gets its own reply only once the
        transaction holding its request has committed, as before. Threads taking turns on a
        lock per request instead spent more CPU handing the interpreter lock over than on the
        requests themselves (2.2 against 1.1 ms a request with two users)."""
        if len(body) > self.max_body_bytes:
            return problem(
                413,
                "too-large",
                "Request too large",
                f"{len(body)} bytes; the limit is {self.max_body_bytes}",
            )
        outcome = self._batcher.run(Arrival(endpoint, body, tls_client))
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    # --- the stages of a batch (see also dcc/pipeline.py, which runs them on threads) --------

    def handle_batch(self, arrivals: Sequence[Arrival]) -> list[GatewayReply | BaseException]:
        """Requests in, a reply (or the exception handling it raised) for each, in order."""
        return self.sign_batch(self.decide_batch(arrivals))

    def authenticate_batch(self, arrivals: Sequence[Arrival]) -> list[Arrival]:
        """Stage one: the front door's checks (in its workers if there are any)."""
        results = self._authenticate_all([arrival.body for arrival in arrivals])
        return [
            replace(arrival, authenticated=result)
            for arrival, result in zip(arrivals, results, strict=True)
        ]

    def decide_batch(self, arrivals: Sequence[Arrival]) -> list[Answer | GatewayReply | BaseException]:
        """Stage two: authenticated (unless done before) and decided, the accepted requests
        committed in one transaction; the DUIS answers, not yet signed."""
        waiting = [arrival for arrival in arrivals if arrival.authenticated is None]
        done = iter(self.authenticate_batch(waiting))
        arrivals = [next(done) if a.authenticated is None else a for a in arrivals]
        answers: list[Answer | GatewayReply | BaseException | None] = [None] * len(arrivals)
        batched: list[tuple[int, DuisRequest, ServiceRequest]] = []
        for index, arrival in enumerate(arrivals):
            try:
                if arrival.authenticated is None:
                    raise RuntimeError("a request in the batch was not authenticated")
                admitted = self._admit(arrival.authenticated, arrival.tls_client)
                if not isinstance(admitted, Authenticated):
                    answers[index] = admitted
                    continue
                request, sender = admitted.request, admitted.signer
                if (
                    self.durable
                    and arrival.endpoint is Endpoint.SEND
                    and arrival.endpoint.accepts(request.command_variant)
                    and not request.is_signed_precommand
                ):
                    role = self._role(sender, request.service_reference_variant,
                                      request.request_id.target)
                    batched.append((index, request, request.to_service_request(sender, role)))
                else:
                    answers[index] = self._decide(arrival.endpoint, request, sender)
            except Exception as exc:  # this request's failure is its own, not the batch's
                answers[index] = exc
        if batched:
            decided = self.dcc.accept_many([service for _, _, service in batched])
            for (index, request, _), response in zip(batched, decided, strict=True):
                if isinstance(response, NotCommitted):
                    answers[index] = problem(
                        503, "not-committed", "Request not accepted; send it again", str(response)
                    )
                else:
                    answers[index] = self._from_dcc(request, response)
        return [
            RuntimeError("a request in the batch was left unanswered") if a is None else a
            for a in answers
        ]

    def _authenticate_all(self, bodies: list[bytes]) -> list[Authenticated | Refused | GatewayReply]:
        if self.front_door is None:
            return [
                authenticate(body, self.schema, self.certificates, max_body_bytes=self.max_body_bytes)
                for body in bodies
            ]
        try:
            results = self.front_door.authenticate_many(bodies)
        except FrontDoorError as exc:
            unavailable = problem(503, "unavailable", "DUIS gateway unavailable", str(exc))
            return [unavailable] * len(bodies)
        return [self._recheck(r) if isinstance(r, Authenticated) else r for r in results]

    def _admit(
        self, result: Authenticated | Refused | GatewayReply, tls_client: Eui64 | None
    ) -> Authenticated | Answer | GatewayReply:
        """An authenticated request from the user its TLS connection names; else the answer."""
        if isinstance(result, GatewayReply):
            return result
        if isinstance(result, Authenticated) and self.tie_tls_identity and tls_client != result.signer:
            mismatch = TlsIdentityMismatch(
                f"the TLS client is {tls_client.hyphenated if tls_client else 'unnamed'}, "
                f"the XML signer {result.signer.hyphenated}"
            )
            result = _refused(mismatch, result.request)
        if isinstance(result, Authenticated):
            return result
        if result.request_id is None:
            return problem(
                result.status, result.kind, result.title, result.detail, reason=result.reason
            )
        return self._answer(
            DuisResponse(result.request_id, result.code or ResponseCode.INVALID_REQUEST,
                         self.now(), result.variant),
            status=result.status,
            detail=result.detail,
            reason=result.reason,
        )

    def _recheck(self, result: Authenticated) -> Authenticated | Refused:
        """A worker verified with its fixed certificate list: is that certificate still
        acceptable to this process's live lookup (revocation, validity dates)?"""
        try:
            certificate = self.certificates(result.issuer_serial)
        except XmlSignatureError as exc:
            return _refused(exc, result.request)
        if certificate.der != result.certificate_der:
            return _refused(
                XmlSignatureError(
                    f"certificate {result.issuer_serial.serial} is not the one the request "
                    "was verified with"
                ),
                result.request,
            )
        return result

    # --- after authentication -------------------------------------------------------------

    def _decide(
        self, endpoint: Endpoint, request: DuisRequest, sender: Eui64
    ) -> Answer | GatewayReply:
        variant = request.service_reference_variant
        if not endpoint.accepts(request.command_variant):
            return self._error(
                request,
                ResponseCode.WRONG_URL_FOR_COMMAND_VARIANT,
                f"command variant {int(request.command_variant)} is not accepted at {endpoint.path}",
            )
        role = self._role(sender, variant, request.request_id.target)
        if endpoint is Endpoint.NON_DEVICE:
            if not self.durable:
                return self._error(
                    request,
                    ResponseCode.INVALID_REQUEST,
                    f"non-device service {variant} needs the durable DCC",
                )
            with self.dcc.lock:
                answer = NonDeviceServices(self.dcc).handle(
                    request.to_service_request(sender, role)
                )
            return self._answer(
                DuisResponse(request.request_id, answer.code, self.now(), variant, body=answer.body),
                status=200,
                detail=answer.detail,
            )
        if self.durable:
            # The DCC takes its own lock for the decision and waits for the (group) commit
            # outside it, so concurrent requests share transactions.
            if request.is_signed_precommand:
                response = self.dcc.accept_signed(request.to_signed_precommand(sender, role))
            else:
                response = self.dcc.accept(request.to_service_request(sender, role))
        else:
            with self.dcc.lock:  # the DCC's in-memory state is not thread-safe
                if request.is_signed_precommand:
                    response = self.dcc.submit_signed(request.to_signed_precommand(sender, role))
                else:
                    response = self.dcc.submit(request.to_service_request(sender, role))
        return self._from_dcc(request, response)

    def _role(self, sender: Eui64, variant: str, target: Eui64 | None = None) -> str:
        """The user role a request is made in: DUIS carries none, so the DCC takes the sender's
        active role that is eligible for the service and, of those, the one the sender is
        registered in for the target device's MPxN today (a supplier of gas and electricity
        reads its gas meter as GS, its electricity meter as IS); else any eligible role, else
        any role (which the DCC then refuses)."""
        user = self.dcc.users.get(sender)
        if user is None or not user.roles:
            return ""
        srv = self.dcc.matrix.get(variant)
        roles = list(user.roles)
        eligible = [r for r in roles if srv.allows(r)] if srv is not None else []
        device = self.dcc.inventory.device(target) if target is not None else None
        if device is not None and len(eligible) > 1:
            now = self.now()
            for role in eligible:
                if self.dcc.inventory.registered_party(device.mpxn, role, now) == sender:
                    return role
        return eligible[0] if eligible else roles[0]

    def _from_dcc(self, request: DuisRequest, response: DccResponse) -> Answer | GatewayReply:
        variant = request.service_reference_variant
        at = self.now()
        if (
            not self.durable
            and response.dcc_alert is not None
            and response.quarantine_ticket is not None
        ):
            alert = DuisResponse(
                response.request_id,
                ResponseCode.ACKNOWLEDGED,
                at,
                variant,
                dcc_alert=response.dcc_alert,
                quarantine_ticket=response.quarantine_ticket,
            )
            self.alerts.append(self.signer.sign_bytes(build_response(alert)))
        if response.code is ResponseCode.SUCCESS and response.gbcs is not None:
            if request.command_variant is CommandVariant.CRITICAL_TRANSFORM:
                answer = DuisResponse(
                    response.request_id, response.code, at, variant, precommand=response.gbcs
                )
            else:
                answer = DuisResponse(
                    response.request_id,
                    response.code,
                    at,
                    variant,
                    response_id=response_id(response.request_id),
                    gbcs=response.gbcs,
                )
        else:
            answer = DuisResponse(response.request_id, response.code, at, variant)
        return self._answer(answer, status=200, detail=response.detail)

    def render(self, message: dict[str, object]) -> bytes:
        """The signed DUIS document for an outbox message (a device response or a DCC alert)."""
        request_id = RequestId.parse(str(message["request_id"]))
        code_text = str(message["code"])
        code: ResponseCode | str
        try:
            code = ResponseCode(code_text)
        except ValueError:
            code = code_text
        gbcs_hex = message.get("gbcs")
        gbcs = bytes.fromhex(gbcs_hex) if isinstance(gbcs_hex, str) else None
        ticket = message.get("ticket")
        document = DuisResponse(
            request_id,
            code,
            self.now(),
            str(message["srv"]) if message.get("srv") else None,
            response_id=response_id(request_id) if gbcs is not None else None,
            gbcs=gbcs,
            dcc_alert=str(message["alert"]) if message.get("alert") else None,
            quarantine_ticket=int(ticket) if isinstance(ticket, int) else None,
            breach=str(message.get("breach") or "ADUserThresholdBreach"),
        )
        return self.signer.sign_bytes(build_response(document))

    def poll(self, user: Eui64) -> GatewayReply:
        """The oldest undelivered response or alert for ``user`` (204 when none is waiting)."""
        store = self.dcc.store
        if store is None or not self.durable:
            return problem(404, "no-polling", "Polling needs the durable DCC", "no outbox")
        for message in store.messages(user=str(user), state=OutboxState.PENDING):
            document = self.render(message.message)
            store.mark_delivered(message.id, self.now())
            return GatewayReply(200, XML_CONTENT_TYPE, document)
        return GatewayReply(204, XML_CONTENT_TYPE, b"")

    def operator(
        self, token: str | None, action: str, ticket: int | None, name: str, client: str = ""
    ) -> GatewayReply:
        """The operator API: list held requests, release or delete one (JSON answers).

        ``token`` is the shared operator token, or ``NAME:TOKEN`` of an operator account; with
        an account the audit log records its name (``name``, the X-Operator header, may only
        repeat it), with the shared token the typed ``name`` marked as only claimed. Failed
        attempts are throttled per ``client`` (its address) and overall (429)."""
        import hmac

        if token is not None and not self.operator_throttle.allowed(client):
            return problem(
                429, "too-many-failures", "Operator API",
                "too many failed operator logins; wait a minute and try again",
            )
        shared = (
            self.operator_token is not None
            and token is not None
            and hmac.compare_digest(token.encode(), self.operator_token.encode())
        )
        account = None
        if not shared and token is not None and self.operators is not None:
            account_name, sep, secret = token.rpartition(":")
            if sep and account_name:
                account = self.operators.authenticate(account_name, secret)
        if not shared and account is None:
            if token is not None:
                self.operator_throttle.failed(client)
            return problem(401, "operator-only", "Operator API", "a valid operator token is needed")
        if account is not None and name and name != account.name:
            return problem(
                403, "operator-mismatch", "Operator API",
                "X-Operator names another operator than the account authenticated",
            )
        store = self.dcc.store
        if store is None:
            return problem(404, "no-quarantine", "Operator API", "no durable store")
        if action == "list":
            rows = [
                {
                    "ticket": row.ticket,
                    "request_id": row.request_id,
                    "user": row.user,
                    "srv": row.srv,
                    "held_at": row.held_at.isoformat(),
                    "reason": row.reason,
                }
                for row in store.quarantined()
            ]
            return GatewayReply(200, "application/json", json.dumps(rows).encode())
        if ticket is None or action not in ("release", "delete") or not (name or account):
            return problem(400, "bad-operator-request", "Operator API", "ticket, action and name")
        if account is not None:
            actor = account.name
        else:
            try:
                actor = claimed_name(name)
            except InvalidOperatorName as exc:
                return problem(400, "bad-operator-request", "Operator API", str(exc))
        try:
            with self.dcc.lock:
                if action == "release":
                    self.dcc.release_durable(ticket, actor)
                else:
                    self.dcc.delete_durable(ticket, actor)
        except StoreError as exc:
            return problem(409, "quarantine", "Operator API", str(exc))
        return GatewayReply(
            200, "application/json", json.dumps({"ticket": ticket, "done": action}).encode()
        )

    def work(self) -> int:
        """One round of the DCC's background work: dispatch, carry over the WAN, schedules."""
        if self.dcc.store is None:
            return 0
        with self.dcc.lock:
            done = NonDeviceServices(self.dcc).run_due_schedules()
        done += self.dcc.dispatch_accepted()  # takes what locks it needs
        with self.dcc.lock:
            done += self.dcc.carry_queued(self.wan_send)
        return done

    def _error(self, request: DuisRequest, code: ResponseCode, detail: str) -> Answer | GatewayReply:
        return self._answer(
            DuisResponse(request.request_id, code, self.now(), request.service_reference_variant),
            status=200,
            detail=detail,
        )

    def _answer(
        self,
        response: DuisResponse,
        *,
        status: int,
        detail: str,
        reason: RefusalReason | None = None,
    ) -> Answer | GatewayReply:
        """The DUIS response to send (signed later, with the rest of its batch)."""
        if response.service_reference_variant is None:
            # DUIS needs a variant in a ResponseMessage; an unreadable one is answered in
            # problem+json rather than with an invented variant.
            return problem(status, "unanswerable", "DUIS request refused", detail, reason=reason)
        return Answer(response, status, detail, reason)

    def sign_batch(
        self, answers: Sequence[Answer | GatewayReply | BaseException | None]
    ) -> list[GatewayReply | BaseException]:
        """Stage three: every DUIS answer drafted (in the front-door workers, all in one go, if there are
        any) and signed with the DCC's key in this process."""
        unsigned = [(i, a) for i, a in enumerate(answers) if isinstance(a, Answer)]
        wanted = [(a.response, a.reason) for _, a in unsigned]
        drafts: list[SignatureDraft] | None = None
        if self.front_door is not None and self.front_door.draft_responses and wanted:
            try:
                drafts = (
                    [self.front_door.draft(*wanted[0])]  # batched with other callers'
                    if len(wanted) == 1
                    else self.front_door.draft_many(wanted)
                )
            except FrontDoorError:  # the workers went away: draft here instead
                drafts = None
        if drafts is None:
            drafts = [
                response_draft(response, reason, self.signer.certificate)
                for response, reason in wanted
            ]
        replies: list[GatewayReply | BaseException] = []
        for answer in answers:
            if answer is None:
                replies.append(RuntimeError("a request in the batch was left unanswered"))
            elif not isinstance(answer, Answer):
                replies.append(answer)
            else:
                replies.append(GatewayReply(200, XML_CONTENT_TYPE, b""))  # filled in below
        for (index, answer), draft in zip(unsigned, drafts, strict=True):
            document = draft.finish(self.signer.keystore.sign(self.signer.label, draft.signed_info))
            replies[index] = GatewayReply(
                answer.status, XML_CONTENT_TYPE, document, answer.detail, answer.reason
            )
        return replies


@dataclass(frozen=True)
class Arrival:
    """A request as it reached the gateway."""

    endpoint: Endpoint
    body: bytes
    tls_client: Eui64 | None = None  # the mutual-TLS client's identity, when tied
    authenticated: Authenticated | Refused | GatewayReply | None = None  # if done already


@dataclass(frozen=True)
class Answer:
    """A DUIS response decided on, not yet signed."""

    response: DuisResponse
    status: int
    detail: str
    reason: RefusalReason | None




def _refused(exc: XmlSignatureError, request: DuisRequest) -> Refused:
    """A request that authenticated in the worker but is refused here."""
    return Refused(
        400,
        exception_kind(exc),
        "DUIS request refused",
        str(exc),
        exc.reason,
        request.request_id,
        exc.code,
        request.service_reference_variant,
    )


# --- FastAPI ---------------------------------------------------------------------------------


def create_app(gateway: DccGateway, *, insecure_identity_header: bool = False) -> DuisFront:
    """The HTTP face of ``gateway``: three POST endpoints, bodies read up to the size limit;
    polling and the operator API."""
    # pipeline.py builds on this module, so it is imported here, when an app is made.
    from smarthydra.dcc.pipeline import GatewayPipeline

    pipelines: list[GatewayPipeline] = []  # started with the app, closed when it stops

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pipelines.append(GatewayPipeline(gateway))
        try:
            yield
        finally:
            # the stage threads finish what they hold, off the event loop
            await run_in_threadpool(pipelines.pop().close)

    app = FastAPI(
        title="smarthydra DCC DUIS gateway",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )

    def to_response(reply: GatewayReply) -> Response:
        return Response(
            reply.body,
            status_code=reply.status,
            media_type=reply.content_type,
            headers=dict(_reply_headers(reply)),
        )

    def client_of(request: Request) -> Eui64 | None:
        client = request.client
        return _client_identity(
            None if client is None else (client.host, client.port),
            request.headers.get(USER_HEADER, ""),
            insecure_identity_header,
        )

    async def poll(request: Request) -> Response:
        user = client_of(request)
        if user is None:
            return to_response(
                problem(401, "unidentified", "Who is polling?", "no client identity")
            )
        return to_response(await run_in_threadpool(gateway.poll, user))

    app.add_api_route("/api/v1/responses", poll, methods=["GET"])

    def bearer(request: Request) -> str | None:
        value = request.headers.get("authorization", "")
        return value[7:] if value.startswith("Bearer ") else None

    def client_address(request: Request) -> str:
        return request.client.host if request.client is not None else ""

    async def quarantine_list(request: Request) -> Response:
        # In a worker thread: an account's token check is deliberately slow (scrypt).
        reply = await run_in_threadpool(
            gateway.operator, bearer(request), "list", None, "", client_address(request)
        )
        return to_response(reply)

    async def quarantine_action(request: Request) -> Response:
        ticket_text = str(request.path_params.get("ticket", ""))
        action = str(request.path_params.get("action", ""))
        name = request.headers.get("x-operator", "")
        ticket = int(ticket_text) if (ticket_text.isascii() and ticket_text.isdigit()) and len(ticket_text) < 12 else None
        reply = await run_in_threadpool(
            gateway.operator, bearer(request), action, ticket, name, client_address(request)
        )
        return to_response(reply)

    app.add_api_route("/api/v1/operator/quarantine", quarantine_list, methods=["GET"])
    app.add_api_route(
        "/api/v1/operator/quarantine/{ticket}/{action}", quarantine_action, methods=["POST"]
    )
    return DuisFront(app, gateway, pipelines, insecure_identity_header=insecure_identity_header)


_ENDPOINTS_BY_PATH = {endpoint.path: endpoint for endpoint in Endpoint}


class DuisFront:
    """The ASGI app: POSTs to the three DUIS endpoints are answered here, straight from ASGI;
    everything else (polling, the operator API, the app's lifespan) goes to the FastAPI app.

    The DUIS requests are the hot path, and FastAPI's middleware and routing took about a
    sixth of the server's interpreter time per request (py-spy, 32 users over mutual TLS)."""

    def __init__(
        self,
        api: FastAPI,
        gateway: DccGateway,
        pipelines: list[GatewayPipeline],
        *,
        insecure_identity_header: bool = False,
    ) -> None:
        self.api = api
        self.gateway = gateway
        self._pipelines = pipelines
        self._insecure_identity_header = insecure_identity_header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = _ENDPOINTS_BY_PATH.get(scope["path"]) if scope["type"] == "http" else None
        if endpoint is None:
            await self.api(scope, receive, send)
            return
        extra: list[tuple[bytes, bytes]] = []
        if scope["method"] != "POST":
            reply = problem(405, "method-not-allowed", "Method not allowed", "DUIS requests are POSTed")
            extra.append((b"allow", b"POST"))
        else:
            headers = {name.lower(): value for name, value in scope["headers"]}
            body = await self._body(headers.get(b"content-length"), receive)
            if body is None:  # the client went away
                return
            if isinstance(body, GatewayReply):
                reply = body
            else:
                reply = await self._handle(endpoint, body, scope, headers)
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [
                    (b"content-type", reply.content_type.encode()),
                    (b"content-length", str(len(reply.body)).encode()),
                    *((name.encode(), value.encode()) for name, value in _reply_headers(reply)),
                    *extra,
                ],
            }
        )
        await send({"type": "http.response.body", "body": reply.body})

    async def _body(
        self, declared: bytes | None, receive: Receive
    ) -> bytes | GatewayReply | None:
        """The request body, read up to the size limit (413 beyond it)."""
        limit = self.gateway.max_body_bytes
        too_large = problem(413, "too-large", "Request too large", f"the limit is {limit} bytes")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return too_large
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _handle(
        self, endpoint: Endpoint, body: bytes, scope: Scope, headers: dict[bytes, bytes]
    ) -> GatewayReply:
        from smarthydra.dcc.pipeline import PipelineClosed

        tls_client = None
        if self.gateway.tie_tls_identity:
            client = scope.get("client")
            tls_client = _client_identity(
                None if client is None else (str(client[0]), int(client[1])),
                headers.get(USER_HEADER.lower().encode(), b"").decode("latin-1"),
                self._insecure_identity_header,
            )
        try:
            if not self._pipelines:  # served without the app's lifespan (a bare test client)
                return await run_in_threadpool(self.gateway.handle, endpoint, body, tls_client)
            # Batched on the pipeline's threads with the requests arriving meanwhile; the
            # event loop keeps reading other requests while this one is decided.
            return await self._pipelines[0].handle(endpoint, body, tls_client)
        except PipelineClosed as exc:
            return problem(503, "unavailable", "DUIS gateway stopping", str(exc))
        except Exception as exc:  # a fault of ours: logged in full, answered as a problem
            _LOG.exception("DUIS request failed at %s", endpoint.path)
            return problem(
                500, "internal-error", "DUIS request failed", f"{type(exc).__name__}; see the DCC log"
            )


def _reply_headers(reply: GatewayReply) -> list[tuple[str, str]]:
    """The refusal reason and the detail, as headers (latin-1, one line: HTTP's rules)."""
    headers = []
    if reply.reason is not None:
        headers.append((REFUSAL_HEADER, reply.reason.value))
    if reply.detail:
        detail = reply.detail.encode("ascii", "replace").decode()[:500]
        headers.append((DETAIL_HEADER, detail.replace("\n", " ").replace("\r", " ")))
    return headers


def _client_identity(
    peer: tuple[str, int] | None, claimed: str, insecure_identity_header: bool
) -> Eui64 | None:
    """The user a connection belongs to: its TLS client certificate's EUI-64; over
    --insecure-http (local tests only) the X-DUIS-User header."""
    if peer is not None:
        known = TLS_PEERS.get(peer)
        if known is not None:
            return known
    if insecure_identity_header and claimed:
        try:
            return Eui64.parse(claimed)
        except InvalidEui64:
            return None
    return None


# --- the TLS client's identity ------------------------------------------------------------------

USER_HEADER = "X-DUIS-User"
EUI_ATTRIBUTE = "2.5.4.45"  # x500UniqueIdentifier, as in SMKI organisation certificates

# (client address, port) -> the EUI-64 its TLS client certificate names, while connected.
TLS_PEERS: dict[tuple[str, int], Eui64] = {}


def certificate_eui(der: bytes) -> Eui64 | None:
    """The EUI-64 a client certificate names: x500UniqueIdentifier (8 bytes), else a CN that
    is an EUI-64."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID, ObjectIdentifier

    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError:
        return None
    for attribute in certificate.subject.get_attributes_for_oid(ObjectIdentifier(EUI_ATTRIBUTE)):
        raw = attribute.value if isinstance(attribute.value, bytes) else b""
        if len(raw) == 9 and raw[0] == 0:  # a BIT STRING's unused-bits octet, then 8 bytes
            raw = raw[1:]
        if len(raw) == 8:
            return Eui64(raw)
    for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        try:
            return Eui64.parse(str(attribute.value))
        except InvalidEui64:
            continue
    return None


def _http_protocol() -> type:
    """uvicorn's httptools protocol (a C parser) when httptools is installed, else h11."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol
    return HttpToolsProtocol


def _event_loop() -> str:
    """uvloop when installed (a faster event loop), else asyncio's own."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def _tls_identity_protocol() -> type:
    """uvicorn's HTTP protocol, noting each TLS connection's client certificate identity."""
    base: Any = _http_protocol()

    class TlsIdentityProtocol(base):  # type: ignore[misc]
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            ssl_object = transport.get_extra_info("ssl_object")
            peer = transport.get_extra_info("peername")
            if ssl_object is None or not peer:
                return
            der = ssl_object.getpeercert(binary_form=True)
            eui = certificate_eui(der) if der else None
            if eui is not None:
                TLS_PEERS[(str(peer[0]), int(peer[1]))] = eui

        def connection_lost(self, exc: Exception | None) -> None:
            peer = self.transport.get_extra_info("peername") if self.transport else None
            if peer:
                TLS_PEERS.pop((str(peer[0]), int(peer[1])), None)
            super().connection_lost(exc)

    return TlsIdentityProtocol


# --- provisioning and serving ----------------------------------------------------------------


def default_schema_dir() -> Path:
    """``$SMARTHYDRA_CONFORMANCE/duis``, else ``../shared/conformance/duis`` beside the checkout."""
    base = os.environ.get("SMARTHYDRA_CONFORMANCE")
    root = (
        Path(base)
        if base
        else Path(__file__).resolve().parents[3].parent / "shared" / "conformance"
    )
    return root / "duis"


def server_config(
    gateway: DccGateway,
    host: str,
    port: int,
    certfile: str | Path | None,
    keyfile: str | Path | None,
    ca_file: str | Path | None,
    insecure_http: bool,
    extend: Callable[[DuisFront], None] | None = None,
) -> uvicorn.Config:
    """A uvicorn configuration: mutual TLS (client certificate required) unless ``insecure_http``.
    ``extend`` adds to the app before it is served (the operator console mounts itself)."""
    import uvicorn

    app = create_app(gateway, insecure_identity_header=insecure_http)
    if extend is not None:
        extend(app)
    if insecure_http:
        return uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            http=_http_protocol(),
            loop=_event_loop(),
            limit_concurrency=MAX_CONCURRENT_REQUESTS,
        )
    missing = [
        name
        for name, value in (("certfile", certfile), ("keyfile", keyfile), ("ca_file", ca_file))
        if not value
    ]
    if missing:
        raise GatewayConfigError(
            f"mutual TLS needs {', '.join(missing)}; pass them or use --insecure-http for local tests"
        )
    for value in (certfile, keyfile, ca_file):
        if not Path(str(value)).is_file():
            raise GatewayConfigError(f"TLS file not found: {value}")
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=str(certfile),
        ssl_keyfile=str(keyfile),
        ssl_ca_certs=str(ca_file),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
        http=_tls_identity_protocol(),
        loop=_event_loop(),
        log_level="warning",
        access_log=False,
        limit_concurrency=MAX_CONCURRENT_REQUESTS,
    )


def serve(
    gateway: DccGateway,
    host: str = "127.0.0.1",
    port: int = 8443,
    certfile: str | Path | None = None,
    keyfile: str | Path | None = None,
    ca_file: str | Path | None = None,
    insecure_http: bool = False,
    extend: Callable[[DuisFront], None] | None = None,
) -> None:
    """Run the DUIS gateway until interrupted (``smarthydra.sim.gateway`` builds one for a world)."""
    import uvicorn

    uvicorn.Server(
        server_config(gateway, host, port, certfile, keyfile, ca_file, insecure_http, extend)
    ).run()


__all__ = [
    "DEFAULT_MAX_BODY",
    "DccGateway",
    "Endpoint",
    "GatewayConfigError",
    "GatewayReply",
    "create_app",
    "serve",
    "server_config",
]
