"""The DCC's DUIS gateway: signed XML over HTTPS with mutual TLS, as DCC Boxed serves it.

Three endpoints, one per kind of command variant:

- ``POST /api/v1/serviceS``: send a command (CV 1-3, and 5-7 with a signed pre-command);
- ``POST /api/v1/serviceT``: transform (CV 4), answered with the pre-command to sign;
- ``POST /api/v1/serviceN``: non-device services (CV 8).

A request travels: size limit -> well-formed XML without DTD -> DUIS 5.4 schema -> XMLDSig
(certificate by X509IssuerSerial from the SMKI repository, an XML-signing role, signer ==
RequestID originator) -> body matches the service reference variant -> command variant suits
the URL (E13) -> :class:`~smarthydra.dcc.service.DataCommsCompany`. Every answer the DCC makes
is a DUIS ``Response`` signed with the DCC's XML-signing key. Input that cannot be answered in
DUIS (not XML, oversize, no readable RequestID) gets an RFC 7807 ``problem+json``; a request
refused before the DCC looks at it (schema, signature) gets its signed DUIS error with HTTP 400;
decisions of the DCC itself (I0, I99, E1-E21) come with HTTP 200.

:class:`DccGateway` is the sans-I/O core (bytes in, reply out); :func:`create_app` wraps it in
FastAPI and :func:`serve` runs it under uvicorn.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import os
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request, Response

from smarthydra.clock import Clock
from smarthydra.dcc.service import DataCommsCompany, DccResponse
from smarthydra.duis.codes import ResponseCode
from smarthydra.duis.request import CommandVariant
from smarthydra.duis.xml import (
    DuisRequest,
    DuisResponse,
    DuisSchema,
    DuisXmlError,
    MalformedXml,
    build_response,
    parse_xml,
    peek_request_id,
    peek_service_reference_variant,
    read_request,
    response_id,
)
from smarthydra.duis.xmldsig import (
    CertificateLookup,
    XmlSignatureError,
    XmlSigner,
    check_signer,
    verify_enveloped,
)
from smarthydra.eui import Eui64

if TYPE_CHECKING:
    import uvicorn

XML_CONTENT_TYPE = "application/xml"
PROBLEM_CONTENT_TYPE = "application/problem+json"
XML_SIGNING_LABEL = "xml-sign"
DEFAULT_MAX_BODY = 256 * 1024  # a large DUIS request (a tariff) is a few kB
DETAIL_HEADER = "X-DUIS-Detail"


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

    @property
    def is_problem(self) -> bool:
        return self.content_type == PROBLEM_CONTENT_TYPE


def problem(status: int, kind: str, title: str, detail: str) -> GatewayReply:
    """An RFC 7807 problem document."""
    document = {
        "type": f"urn:smarthydra:duis:problem:{kind}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    return GatewayReply(status, PROBLEM_CONTENT_TYPE, json.dumps(document).encode(), detail)


@dataclass
class DccGateway:
    """The sans-I/O gateway: signed DUIS bytes in, a :class:`GatewayReply` out."""

    dcc: DataCommsCompany
    schema: DuisSchema
    signer: XmlSigner  # the DCC's XML-signing key and certificate (SMKI role 0x89)
    certificates: CertificateLookup
    clock: Clock | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY
    alerts: list[bytes] = field(default_factory=list)  # signed DCC alerts awaiting delivery
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def now(self) -> dt.datetime:
        return (self.clock or self.dcc.clock).now()

    # --- the one entry point --------------------------------------------------------------

    def handle(self, endpoint: Endpoint, body: bytes) -> GatewayReply:
        if len(body) > self.max_body_bytes:
            return problem(
                413,
                "too-large",
                "Request too large",
                f"{len(body)} bytes; the limit is {self.max_body_bytes}",
            )
        try:
            root = parse_xml(body, max_bytes=self.max_body_bytes)
        except MalformedXml as exc:
            return problem(400, "malformed-xml", "Not a well-formed DUIS message", str(exc))
        request: DuisRequest | None = None
        try:
            self.schema.validate(root)
            verified = verify_enveloped(root, self.certificates)
            request = read_request(root)
            check_signer(verified, request.request_id.originator)
        except (DuisXmlError, XmlSignatureError) as exc:
            request_id = exc.request_id if isinstance(exc, DuisXmlError) else None
            if request is not None:
                request_id = request.request_id
            if request_id is None:
                request_id = peek_request_id(root)
            if request_id is None:
                return problem(400, _kind(exc), "DUIS request refused", str(exc))
            variant = (
                request.service_reference_variant
                if request
                else peek_service_reference_variant(root)
            )
            return self._answer(
                DuisResponse(request_id, exc.code, self.now(), variant), status=400, detail=str(exc)
            )
        return self._decide(endpoint, request, verified.signer)

    # --- after authentication -------------------------------------------------------------

    def _decide(self, endpoint: Endpoint, request: DuisRequest, sender: Eui64) -> GatewayReply:
        variant = request.service_reference_variant
        if not endpoint.accepts(request.command_variant):
            return self._error(
                request,
                ResponseCode.WRONG_URL_FOR_COMMAND_VARIANT,
                f"command variant {int(request.command_variant)} is not accepted at {endpoint.path}",
            )
        if endpoint is Endpoint.NON_DEVICE:
            return self._error(
                request,
                ResponseCode.INVALID_REQUEST,
                f"non-device service {variant} is not provided by this DCC yet",
            )
        role = self._role(sender, variant)
        with self._lock:  # the DCC's state (counters, pending pre-commands) is not thread-safe
            if request.is_signed_precommand:
                response = self.dcc.submit_signed(request.to_signed_precommand(sender, role))
            else:
                response = self.dcc.submit(request.to_service_request(sender, role))
        return self._from_dcc(request, response)

    def _role(self, sender: Eui64, variant: str) -> str:
        """The user role a request is made in: DUIS carries none, so the DCC takes the sender's
        active role that is eligible for the service (else any, which the DCC then refuses)."""
        user = self.dcc.users.get(sender)
        if user is None or not user.roles:
            return ""
        srv = self.dcc.matrix.get(variant)
        roles = list(user.roles)
        if srv is not None:
            eligible = [r for r in roles if srv.allows(r)]
            if eligible:
                return eligible[0]
        return roles[0]

    def _from_dcc(self, request: DuisRequest, response: DccResponse) -> GatewayReply:
        variant = request.service_reference_variant
        at = self.now()
        if response.dcc_alert is not None and response.quarantine_ticket is not None:
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

    def _error(self, request: DuisRequest, code: ResponseCode, detail: str) -> GatewayReply:
        return self._answer(
            DuisResponse(request.request_id, code, self.now(), request.service_reference_variant),
            status=200,
            detail=detail,
        )

    def _answer(self, response: DuisResponse, *, status: int, detail: str) -> GatewayReply:
        if response.service_reference_variant is None:
            # DUIS needs a variant in a ResponseMessage; an unreadable one is answered in
            # problem+json rather than with an invented variant.
            return problem(status, "unanswerable", "DUIS request refused", detail)
        document = self.signer.sign_bytes(build_response(response))
        return GatewayReply(status, XML_CONTENT_TYPE, document, detail)


def _kind(exc: Exception) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in type(exc).__name__).lstrip("-")


# --- FastAPI ---------------------------------------------------------------------------------


def create_app(gateway: DccGateway) -> FastAPI:
    """The HTTP face of ``gateway``: three POST endpoints, bodies read up to the size limit."""
    app = FastAPI(
        title="smarthydra DCC DUIS gateway", docs_url=None, redoc_url=None, openapi_url=None
    )

    async def read_limited(request: Request) -> bytes | GatewayReply:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > gateway.max_body_bytes:
            return problem(
                413,
                "too-large",
                "Request too large",
                f"the limit is {gateway.max_body_bytes} bytes",
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > gateway.max_body_bytes:
                return problem(
                    413,
                    "too-large",
                    "Request too large",
                    f"the limit is {gateway.max_body_bytes} bytes",
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def to_response(reply: GatewayReply) -> Response:
        headers = {}
        if reply.detail:
            # latin-1, one line: HTTP header rules
            headers[DETAIL_HEADER] = (
                reply.detail.encode("ascii", "replace").decode()[:500].replace("\n", " ")
            )
        return Response(
            reply.body, status_code=reply.status, media_type=reply.content_type, headers=headers
        )

    def route(endpoint: Endpoint) -> Callable[[Request], object]:
        async def handler(request: Request) -> Response:
            body = await read_limited(request)
            if isinstance(body, GatewayReply):
                return to_response(body)
            return to_response(gateway.handle(endpoint, body))

        handler.__name__ = f"duis_{endpoint.value}"
        return handler

    for endpoint in Endpoint:
        app.add_api_route(endpoint.path, route(endpoint), methods=["POST"])
    return app


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
) -> uvicorn.Config:
    """A uvicorn configuration: mutual TLS (client certificate required) unless ``insecure_http``."""
    import uvicorn

    app = create_app(gateway)
    if insecure_http:
        return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
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
        log_level="warning",
        access_log=False,
    )


def serve(
    gateway: DccGateway,
    host: str = "127.0.0.1",
    port: int = 8443,
    certfile: str | Path | None = None,
    keyfile: str | Path | None = None,
    ca_file: str | Path | None = None,
    insecure_http: bool = False,
) -> None:
    """Run the DUIS gateway until interrupted (``smarthydra.sim.gateway`` builds one for a world)."""
    import uvicorn

    uvicorn.Server(
        server_config(gateway, host, port, certfile, keyfile, ca_file, insecure_http)
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
