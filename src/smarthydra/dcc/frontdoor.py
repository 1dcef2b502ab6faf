"""The DUIS gateway's front door: request bytes to an authenticated request, and a response
to signed bytes; in the gateway's own process, or batched out to worker processes.

:func:`authenticate` is the path every request takes before the DCC looks at it: size limit,
well-formed XML without a DTD, the DUIS 5.4 schema, the XMLDSig signature (certificate by
X509IssuerSerial, an XML-signing role, ECDSA-SHA256), the body read, and the signer being
the RequestID originator. It answers :class:`Authenticated` or :class:`Refused` (with the DUIS
code and the machine-readable :class:`~smarthydra.duis.codes.RefusalReason`).

That work (and building and canonicalising each signed response) is mostly CPU in Python,
so one process cannot use more than one core for it. :class:`FrontDoorPool` runs it in worker
processes, in batches (one round trip carries many requests: sending them one by one would
cost the gateway's process as much as doing the work itself). Responses are drafted there
too, but the DCC's private key never leaves its keystore: a worker returns a :class:`~smarthydra.duis.xmldsig.SignatureDraft` and the
gateway's process signs it. A worker verifies signatures against a fixed list of trusted
certificates; revocation and validity dates are checked again in the gateway's process, with
its live certificate lookup, before a request is accepted.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.process
import pickle
import queue
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from lxml import etree

from smarthydra.dcc.batching import Batcher
from smarthydra.duis.codes import RefusalReason, ResponseCode
from smarthydra.duis.request import RequestId
from smarthydra.duis.xml import (
    DEFAULT_MAX_BYTES,
    DuisRequest,
    DuisResponse,
    DuisSchema,
    DuisXmlError,
    MalformedXml,
    build_response,
    canonical_response,
    parse_xml,
    peek_request_id,
    peek_service_reference_variant,
    read_request,
)
from smarthydra.duis.xmldsig import (
    CertificateLookup,
    IssuerSerial,
    SignatureDraft,
    XmlSignatureError,
    check_signer,
    draft_canonical,
    draft_signature,
    find_signature,
    signature_issuer_serial,
    static_lookup,
    verify_enveloped,
)
from smarthydra.eui import Eui64
from smarthydra.pki.certificates import OrganisationCertificate, parse_certificate

REFUSAL_COMMENT = "smarthydra:refusal="
DEFAULT_BATCH = 32


@dataclass(frozen=True)
class Authenticated:
    """A schema-valid request whose signature verified, signed by its originator."""

    request: DuisRequest
    signer: Eui64
    issuer_serial: IssuerSerial  # of the certificate the signature verified with
    certificate_der: bytes


@dataclass(frozen=True)
class Refused:
    """A request refused before the DCC looked at it. With a readable RequestID (and
    variant) it is answered in signed DUIS (``code``), else as an RFC 7807 problem."""

    status: int
    kind: str
    title: str
    detail: str
    reason: RefusalReason
    request_id: RequestId | None = None
    code: ResponseCode | None = None
    variant: str | None = None


def exception_kind(exc: Exception) -> str:
    """``DigestMismatch`` -> ``digest-mismatch``: the problem type of an exception."""
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in type(exc).__name__).lstrip("-")


def authenticate(
    body: bytes,
    schema: DuisSchema,
    lookup: CertificateLookup,
    *,
    max_body_bytes: int = DEFAULT_MAX_BYTES,
) -> Authenticated | Refused:
    """Everything the gateway checks before the DCC decides; never raises for bad input."""
    try:
        root = parse_xml(body, max_bytes=max_body_bytes)
    except MalformedXml as exc:
        return Refused(
            400, "malformed-xml", "Not a well-formed DUIS message", str(exc), exc.reason
        )
    request: DuisRequest | None = None
    try:
        schema.validate(root)
        verified = verify_enveloped(root, lookup)
        request = read_request(root)
        check_signer(verified, request.request_id.originator)
    except (DuisXmlError, XmlSignatureError) as exc:
        request_id = exc.request_id if isinstance(exc, DuisXmlError) else None
        if request is not None:
            request_id = request.request_id
        if request_id is None:
            request_id = peek_request_id(root)
        variant = (
            request.service_reference_variant
            if request is not None
            else peek_service_reference_variant(root)
        )
        return Refused(
            400,
            exception_kind(exc),
            "DUIS request refused",
            str(exc),
            exc.reason,
            request_id,
            exc.code,
            variant,
        )
    return Authenticated(
        request,
        verified.signer,
        verified.issuer_serial or signature_issuer_serial(find_signature(root)),
        verified.certificate.der,
    )


def response_root(response: DuisResponse, reason: RefusalReason | None) -> etree._Element:
    """The unsigned response document, stating a refusal's reason in a comment (outside
    what the schema checks and what the signature covers)."""
    root = build_response(response)
    if reason is not None:
        root.append(etree.Comment(f"{REFUSAL_COMMENT}{reason.value}"))
    return root


def response_draft(
    response: DuisResponse, reason: RefusalReason | None, certificate: OrganisationCertificate
) -> SignatureDraft:
    """The response document ready for the DCC's signature: written straight as canonical
    octets when it can be (no refusal comment, a plain ResponseMessage), else via the tree."""
    canonical = canonical_response(response) if reason is None else None
    if canonical is not None:
        return draft_canonical(canonical, certificate)
    return draft_signature(response_root(response, reason), certificate)


def refusal_in(document: bytes) -> RefusalReason | None:
    """The refusal reason a signed response states, if any (for clients and tests)."""
    marker = f"<!--{REFUSAL_COMMENT}".encode("ascii")
    start = document.find(marker)
    if start < 0:
        return None
    end = document.find(b"-->", start)
    try:
        return RefusalReason(document[start + len(marker) : end].decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None


# --- worker processes ---------------------------------------------------------------------------


@dataclass
class _WorkerState:
    schema: DuisSchema
    lookup: CertificateLookup
    signer_certificate: OrganisationCertificate
    max_body_bytes: int


_worker: _WorkerState | None = None


def _organisation(der: bytes) -> OrganisationCertificate:
    certificate = parse_certificate(der)
    if not isinstance(certificate, OrganisationCertificate):
        raise TypeError("a trusted XML-signing certificate must be an organisation certificate")
    return certificate


def _start_worker(
    schema_dir: str, trusted: tuple[bytes, ...], signer_der: bytes, max_body_bytes: int
) -> None:
    global _worker
    _worker = _WorkerState(
        DuisSchema.load(Path(schema_dir)),
        static_lookup([_organisation(der) for der in trusted]),
        _organisation(signer_der),
        max_body_bytes,
    )


def _state() -> _WorkerState:
    if _worker is None:
        raise RuntimeError("the front-door worker was not started")
    return _worker


def _authenticate_batch(bodies: list[bytes]) -> list[Authenticated | Refused]:
    state = _state()
    return [
        authenticate(body, state.schema, state.lookup, max_body_bytes=state.max_body_bytes)
        for body in bodies
    ]


def _draft_batch(
    responses: list[tuple[DuisResponse, RefusalReason | None]],
) -> list[SignatureDraft]:
    state = _state()
    return [
        response_draft(response, reason, state.signer_certificate)
        for response, reason in responses
    ]


_AUTHENTICATE = "authenticate"
_DRAFT = "draft"
_STOP = "stop"


def _serve(
    connection: Connection,
    schema_dir: str,
    trusted: tuple[bytes, ...],
    signer_der: bytes,
    max_body_bytes: int,
) -> None:
    """A worker process: batches in, results out, over one pipe, until told to stop."""
    _start_worker(schema_dir, trusted, signer_der, max_body_bytes)
    connection.send_bytes(pickle.dumps("ready"))
    while True:
        try:
            kind, batch = pickle.loads(connection.recv_bytes())
        except EOFError:
            return
        if kind == _STOP:
            return
        try:
            result: object = (
                _authenticate_batch(batch) if kind == _AUTHENTICATE else _draft_batch(batch)
            )
        except Exception as exc:  # reported to the waiting requests, the worker carries on
            result = FrontDoorError(f"front-door worker: {type(exc).__name__}: {exc}")
        connection.send_bytes(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))


class FrontDoorError(Exception):
    """A front-door worker failed or went away."""


class FrontDoorPool:
    """:func:`authenticate` (and, if asked, response drafting) in ``processes`` worker
    processes, fed in batches of up to ``batch`` by one thread per process over a pipe of
    its own. (:class:`concurrent.futures.ProcessPoolExecutor` was measured first: its
    management thread alone took half of the gateway process's GIL time.)

    Drafting responses in the workers too took the gateway's process from about 1.3 to
    1.0 ms of CPU per request in the bench (16 users, 2 workers)."""

    def __init__(
        self,
        schema_dir: Path,
        trusted: Iterable[OrganisationCertificate],
        signer_certificate: OrganisationCertificate,
        *,
        processes: int = 2,
        batch: int = DEFAULT_BATCH,
        max_body_bytes: int = DEFAULT_MAX_BYTES,
        draft_responses: bool = True,
    ) -> None:
        if processes < 1:
            raise ValueError("a front-door pool needs at least one process")
        self.draft_responses = draft_responses
        self.processes = processes
        self.trusted: dict[int, bytes] = {c.serial: c.der for c in trusted}
        # spawn, not fork: the gateway's process runs threads (server, committer, batchers).
        context = multiprocessing.get_context("spawn")
        self._processes: list[multiprocessing.process.BaseProcess] = []
        self._idle: queue.SimpleQueue[Connection] = queue.SimpleQueue()
        self._connections: list[Connection] = []
        for _ in range(processes):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=_serve,
                args=(
                    theirs,
                    str(schema_dir),
                    tuple(self.trusted.values()),
                    signer_certificate.der,
                    max_body_bytes,
                ),
                daemon=True,
                name="dcc-front-door",
            )
            process.start()
            theirs.close()
            self._processes.append(process)
            self._connections.append(ours)
        for connection in self._connections:  # started (spawning takes a while) and ready
            if pickle.loads(connection.recv_bytes()) != "ready":
                raise FrontDoorError("a front-door worker did not start")
            self._idle.put(connection)
        self._authenticator: Batcher[bytes, Authenticated | Refused] = Batcher(
            self._authenticate_remote, max_batch=batch, workers=processes
        )
        self._drafter: Batcher[tuple[DuisResponse, RefusalReason | None], SignatureDraft] = (
            Batcher(self._draft_remote, max_batch=batch, workers=processes)
        )

    def _authenticate_remote(self, bodies: Sequence[bytes]) -> list[Authenticated | Refused]:
        results = self._spread(_AUTHENTICATE, list(bodies))
        return [r for r in results if isinstance(r, Authenticated | Refused)]

    def _draft_remote(
        self, responses: Sequence[tuple[DuisResponse, RefusalReason | None]]
    ) -> list[SignatureDraft]:
        results = self._spread(_DRAFT, list(responses))
        return [r for r in results if isinstance(r, SignatureDraft)]

    def authenticate(self, body: bytes) -> Authenticated | Refused:
        return self._authenticator.run(body)

    def authenticate_many(self, bodies: Sequence[bytes]) -> list[Authenticated | Refused]:
        """A whole batch at once, shared out between the workers that are free."""
        results = self._spread(_AUTHENTICATE, list(bodies))
        return [r for r in results if isinstance(r, Authenticated | Refused)]

    def draft_many(
        self, responses: Sequence[tuple[DuisResponse, RefusalReason | None]]
    ) -> list[SignatureDraft]:
        results = self._spread(_DRAFT, list(responses))
        return [r for r in results if isinstance(r, SignatureDraft)]

    def _spread(self, kind: str, items: list[object]) -> list[object]:
        """``items`` in equal shares to as many free workers as there are (at least one,
        waited for), all working at once; the results in order."""
        if not items:
            return []
        connections = [self._idle.get()]
        while len(connections) < min(len(items), len(self._connections)):
            try:
                connections.append(self._idle.get_nowait())
            except queue.Empty:
                break
        share = -(-len(items) // len(connections))
        chunks = [items[i : i + share] for i in range(0, len(items), share)]
        results: list[object] = []
        failure: FrontDoorError | None = None
        sent: list[tuple[Connection, list[object]]] = []
        try:
            for connection, chunk in zip(connections, chunks, strict=False):
                connection.send_bytes(
                    pickle.dumps((kind, chunk), protocol=pickle.HIGHEST_PROTOCOL)
                )
                sent.append((connection, chunk))
            for connection, chunk in sent:
                result = pickle.loads(connection.recv_bytes())
                if isinstance(result, FrontDoorError):
                    failure = result
                elif not isinstance(result, list) or len(result) != len(chunk):
                    failure = FrontDoorError("a front-door worker answered out of turn")
                else:
                    results.extend(result)
        except (EOFError, OSError) as exc:
            raise FrontDoorError(f"a front-door worker went away: {exc}") from None
        finally:
            for connection in connections:
                self._idle.put(connection)
        if failure is not None:
            raise failure
        return results

    def draft(self, response: DuisResponse, reason: RefusalReason | None) -> SignatureDraft:
        return self._drafter.run((response, reason))

    def worker_pids(self) -> list[int]:
        """The worker processes' ids (for measuring them)."""
        return [p.pid for p in self._processes if p.pid is not None]

    def close(self) -> None:
        self._authenticator.close()
        self._drafter.close()
        for connection in self._connections:
            with contextlib.suppress(OSError):  # a worker already gone needs no stopping
                connection.send_bytes(pickle.dumps((_STOP, [])))
        for process in self._processes:
            process.join(5)
            if process.is_alive():
                process.terminate()
        for connection in self._connections:
            connection.close()


__all__ = [
    "Authenticated",
    "FrontDoorError",
    "FrontDoorPool",
    "Refused",
    "authenticate",
    "exception_kind",
    "refusal_in",
    "response_root",
]
