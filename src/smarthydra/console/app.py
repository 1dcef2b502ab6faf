"""The DCC operator web console: server-rendered pages under ``/console`` of the DUIS gateway.

Operators see the DCC at a glance (requests by state, quarantine, outbox, WAN queue, the audit
chain), release or delete quarantined requests, and read recent requests and audit entries.
Releasing and deleting go through the same DCC methods, under the same lock, as the operator
API and the CLI, so the audit log records them the same way, naming the operator.

Security: the console exists only while the gateway has an operator token or an operator
account that can log in (404 otherwise). An operator logs in with an account's name and token
(the audit log then records the account's name: proven, not typed) or with the shared token
(the name typed at each release or delete is recorded as "NAME (shared token)": only claimed);
tokens are compared in constant time, failed attempts throttled. A session gets a signed, HttpOnly, SameSite=Strict session cookie (Secure over TLS) that expires. Every
POST refuses a foreign Origin and needs the session's CSRF token. Templates are autoescaped;
pages are sent with a Content-Security-Policy that allows no script at all.
"""

from __future__ import annotations

import datetime as dt
import threading
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from smarthydra.console.queries import (
    REQUEST_STATES,
    FilterError,
    audit_page,
    overview,
    parse_state,
    parse_user,
    requests_page,
)
from smarthydra.console.session import (
    DEFAULT_LIFETIME,
    Session,
    SessionBook,
    token_matches,
)
from smarthydra.dcc.gateway import DccGateway, DuisFront
from smarthydra.dcc.operators import (
    MAX_CLAIMED_NAME,
    InvalidOperatorName,
    Operator,
    check_operator_name,
    claimed_name,
)
from smarthydra.dcc.store import SqlDccStore, StoreError

PREFIX = "/console"
COOKIE = "smarthydra_console"
MAX_FORM_BYTES = 8 * 1024  # a console form is a few short fields
MAX_FORM_FIELDS = 16
MAX_OPERATOR_NAME = MAX_CLAIMED_NAME  # the audit log's actor column, less " (shared token)"
ACTIONS = ("release", "delete")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class FormRefused(Exception):
    """A POST the console will not act on: why, and the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("smarthydra.console", "templates"),
        autoescape=True,  # every page is HTML: everything rendered is escaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["when"] = _when
    return environment


def _when(value: dt.datetime | None) -> str:
    return "" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass
class Console:
    """The console's state in this process: the gateway it looks at, the open sessions."""

    gateway: DccGateway
    sessions: SessionBook
    templates: jinja2.Environment = field(default_factory=_templates)
    verifying: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def open(self) -> bool:
        if self.gateway.operator_token:
            return True
        registry = self.gateway.operators
        return registry is not None and registry.any_active()

    def account_revoked(self, session: Session) -> bool:
        """True for an account's session whose account has been revoked since it logged in."""
        registry = self.gateway.operators
        return bool(session.account) and (
            registry is None or not registry.is_active(session.account)
        )

    @property
    def store(self) -> SqlDccStore | None:
        return self.gateway.dcc.store

    # --- rendering ----------------------------------------------------------------------------

    def page(
        self, template: str, status: int = 200, session: Session | None = None, **context: Any
    ) -> HTMLResponse:
        body = self.templates.get_template(template).render(
            prefix=PREFIX, session=session, **context
        )
        return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)

    def message(
        self, status: int, text: str, session: Session | None = None, title: str = "Refused"
    ) -> HTMLResponse:
        return self.page("message.html", status, session, title=title, text=text)

    def not_found(self) -> HTMLResponse:
        return HTMLResponse("Not Found", status_code=404, headers=SECURITY_HEADERS)

    def redirect(self, path: str) -> RedirectResponse:
        return RedirectResponse(path, status_code=303, headers=SECURITY_HEADERS)

    # --- who is asking --------------------------------------------------------------------------

    def session_of(self, request: Request) -> Session | None:
        return self.sessions.find(request.cookies.get(COOKIE))

    async def form_of(self, request: Request, *, session: Session | None) -> dict[str, str]:
        """A POST's form, once its origin (and, with a session, its CSRF token) is checked."""
        if _foreign_origin(request):
            raise FormRefused(403, "This form was sent from another site; it was refused.")
        form = await _read_form(request)
        if session is not None and not self.sessions.csrf_matches(session, form.get("csrf")):
            raise FormRefused(403, "The form's CSRF token is missing or wrong; reload the page.")
        return form


def _foreign_origin(request: Request) -> bool:
    """True when the browser says the request came from a page of another origin."""
    own = f"{request.url.scheme}://{request.url.netloc}".lower()
    origin = request.headers.get("origin")
    if origin is not None:
        return origin.lower() != own
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return True
    referer = request.headers.get("referer")
    return referer is not None and not referer.lower().startswith(own + "/")


async def _read_form(request: Request) -> dict[str, str]:
    """A urlencoded form, read up to :data:`MAX_FORM_BYTES` (the login form is open to anyone
    who can reach the port, so its body must not be read without bound)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    declared = request.headers.get("content-length", "")
    if not content_type and declared in ("", "0"):
        return {}  # an empty form: nothing filled in (refused below for what it lacks)
    if content_type != "application/x-www-form-urlencoded":
        raise FormRefused(415, "Forms are sent as application/x-www-form-urlencoded.")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise FormRefused(413, "The form is too large.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise FormRefused(413, "The form is too large.")
        chunks.append(chunk)
    try:
        pairs = urllib.parse.parse_qsl(
            b"".join(chunks).decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=MAX_FORM_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormRefused(400, "The form cannot be read.") from exc
    return dict(pairs)


def operator_name(text: str | None) -> str:
    """The name recorded in the audit log; :class:`FormRefused` if there is none or it is unfit."""
    name = (text or "").strip()
    if not name:
        raise FormRefused(400, "Give your name: it is recorded in the audit log.")
    if len(name) > MAX_OPERATOR_NAME:
        raise FormRefused(400, f"The operator name is longer than {MAX_OPERATOR_NAME} characters.")
    if any(not ch.isprintable() for ch in name):
        raise FormRefused(400, "The operator name contains control characters.")
    try:
        check_operator_name(name)
    except InvalidOperatorName as exc:
        raise FormRefused(400, f"The operator name is unfit: {exc}.") from exc
    return name


def parse_ticket(text: str) -> int:
    if not (text.isascii() and text.isdigit() and 0 < len(text) < 12):
        raise FormRefused(400, f"{text[:20]!r} is not a quarantine ticket number.")
    return int(text)


def _int_param(request: Request, name: str, default: int | None) -> int | None:
    text = request.query_params.get(name, "")
    if not text:
        return default
    if not (text.isascii() and text.isdigit() and len(text) < 12):
        raise FilterError(f"{name} {text[:20]!r} is not a number")
    return int(text)


# --- the routes -----------------------------------------------------------------------------------

Handler = Callable[[Request], Awaitable[Response]]


def mount_console(
    front: DuisFront,
    gateway: DccGateway,
    *,
    secret: bytes | None = None,
    lifetime: float = DEFAULT_LIFETIME,
) -> Console:
    """Add the console's pages under ``/console`` to ``front.api``. ``secret`` signs session
    cookies (random per process when None: a restart logs everyone out)."""
    sessions = SessionBook(lifetime=lifetime) if secret is None else SessionBook(secret, lifetime)
    console = Console(gateway, sessions)
    stylesheet = (
        resources.files("smarthydra.console").joinpath("static/console.css").read_text("utf-8")
    )

    def closed_unless_open(handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            if not console.open:
                return console.not_found()
            try:
                return await handler(request)
            except FormRefused as exc:
                return console.message(exc.status, exc.message, console.session_of(request))

        return guarded

    def signed_in(handler: Callable[[Request, Session], Awaitable[Response]]) -> Handler:
        async def checked(request: Request) -> Response:
            session = console.session_of(request)
            if session is not None and await run_in_threadpool(console.account_revoked, session):
                console.sessions.close(session)  # a revoked account's sessions end with it
                session = None
            if session is None:
                if request.method == "GET":
                    return console.redirect(f"{PREFIX}/login")
                raise FormRefused(403, "You are not logged in (or your session ended).")
            if console.store is None:
                return console.message(
                    404, "This DCC keeps no durable store: there is nothing to operate here.",
                    session,
                )
            return await handler(request, session)

        return closed_unless_open(checked)

    async def css(_: Request) -> Response:
        return Response(stylesheet, media_type="text/css", headers=SECURITY_HEADERS)

    async def login_form(request: Request) -> Response:
        return console.page("login.html", error="")

    async def login(request: Request) -> Response:
        form = await console.form_of(request, session=None)
        client = request.client.host if request.client is not None else ""
        if not gateway.operator_throttle.allowed(client):
            return console.page(
                "login.html", 429, error="Too many failed logins; wait a minute and try again."
            )
        typed = (form.get("name") or "").strip()
        token = form.get("token")
        account: Operator | None = None
        if not token_matches(gateway.operator_token, token):
            registry = gateway.operators
            if registry is not None and typed and token is not None:
                account = await run_in_threadpool(registry.authenticate, typed, token)
            if account is None:
                gateway.operator_throttle.failed(client)
                return console.page(
                    "login.html", 401,
                    error="That is not the operator token, nor an operator account's name and "
                    "token.",
                )
        if account is not None:
            _, cookie = console.sessions.open(account=account.name)
        else:
            # The shared token: a name typed here is only offered again in the forms.
            try:
                offered = operator_name(typed) if typed else ""
            except FormRefused:
                offered = ""
            _, cookie = console.sessions.open(operator=offered)
        response = console.redirect(PREFIX)
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=int(lifetime),
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(request: Request, session: Session) -> Response:
        await console.form_of(request, session=session)
        console.sessions.close(session)
        response = console.redirect(f"{PREFIX}/login")
        response.delete_cookie(
            COOKIE, path=PREFIX, httponly=True, samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    def store() -> SqlDccStore:
        found = console.store
        assert found is not None  # signed_in answered 404 otherwise
        return found

    async def overview_page(request: Request, session: Session) -> Response:
        data = await run_in_threadpool(overview, store())
        return console.page("overview.html", session=session, data=data, verified=None)

    async def verify_audit(request: Request, session: Session) -> Response:
        await console.form_of(request, session=session)
        if not console.verifying.acquire(blocking=False):
            return console.message(429, "The audit chain is being verified already.", session)
        try:
            count, problem = await run_in_threadpool(store().verify_audit)
        finally:
            console.verifying.release()
        data = await run_in_threadpool(overview, store())
        return console.page(
            "overview.html", session=session, data=data, verified=(count, problem)
        )

    async def quarantine_page(request: Request, session: Session) -> Response:
        held = await run_in_threadpool(store().quarantined, "held")
        closed = await run_in_threadpool(store().quarantined, None)
        done = request.query_params.get("done", "")
        ticket_text = request.query_params.get("ticket", "")
        notice = (
            f"Ticket {int(ticket_text)} {'released' if done == 'release' else 'deleted'}."
            if done in ACTIONS and ticket_text.isdigit() and len(ticket_text) < 12
            else ""
        )
        return console.page(
            "quarantine.html",
            session=session,
            held=held,
            closed=[row for row in reversed(closed) if row.state != "held"][:50],
            notice=notice,
            error="",
        )

    async def quarantine_action(request: Request, session: Session) -> Response:
        action = str(request.path_params.get("action", ""))
        if action not in ACTIONS:
            return console.not_found()
        form = await console.form_of(request, session=session)
        ticket = parse_ticket(str(request.path_params.get("ticket", "")))
        if session.account:
            name = actor = session.account  # proven at login: nothing to type
        else:
            name = operator_name(form.get("operator"))
            actor = claimed_name(name)  # only claimed beside the shared token

        def act() -> None:
            # The operator API's path exactly: the DCC records who did it in its audit log.
            with gateway.dcc.lock:
                if action == "release":
                    gateway.dcc.release_durable(ticket, actor)
                else:
                    gateway.dcc.delete_durable(ticket, actor)

        try:
            await run_in_threadpool(act)
        except StoreError as exc:
            raise FormRefused(409, f"Ticket {ticket}: {exc}.") from exc
        if not session.account:
            console.sessions.remember_operator(session, name)
        return console.redirect(f"{PREFIX}/quarantine?done={action}&ticket={ticket}")

    async def requests_list(request: Request, session: Session) -> Response:
        user_text = request.query_params.get("user", "")
        state_text = request.query_params.get("state", "")
        try:
            asked = _int_param(request, "page", None)
            page = 1 if asked is None else asked
            user, state = parse_user(user_text), parse_state(state_text)
            data = await run_in_threadpool(
                lambda: requests_page(store(), page=page, user=user, state=state)
            )
        except FilterError as exc:
            return console.page(
                "requests.html", 400, session=session, data=None, error=str(exc),
                user=user_text, state=state_text, states=REQUEST_STATES,
            )
        return console.page(
            "requests.html", session=session, data=data, error="",
            user=user_text, state=state_text, states=REQUEST_STATES,
        )

    async def audit_list(request: Request, session: Session) -> Response:
        try:
            before = _int_param(request, "before", None)
        except FilterError as exc:
            return console.message(400, str(exc), session)
        data = await run_in_threadpool(lambda: audit_page(store(), before=before))
        return console.page("audit.html", session=session, data=data)

    api = front.api
    routes: list[tuple[str, Handler, str]] = [
        (f"{PREFIX}/static/console.css", closed_unless_open(css), "GET"),
        (f"{PREFIX}/login", closed_unless_open(login_form), "GET"),
        (f"{PREFIX}/login", closed_unless_open(login), "POST"),
        (f"{PREFIX}/logout", signed_in(logout), "POST"),
        (PREFIX, signed_in(overview_page), "GET"),
        (f"{PREFIX}/", signed_in(overview_page), "GET"),
        (f"{PREFIX}/audit/verify", signed_in(verify_audit), "POST"),
        (f"{PREFIX}/quarantine", signed_in(quarantine_page), "GET"),
        (f"{PREFIX}/quarantine/{{ticket}}/{{action}}", signed_in(quarantine_action), "POST"),
        (f"{PREFIX}/requests", signed_in(requests_list), "GET"),
        (f"{PREFIX}/audit", signed_in(audit_list), "GET"),
    ]
    for path, handler, method in routes:
        api.add_api_route(path, handler, methods=[method], include_in_schema=False)
    return console


__all__ = ["COOKIE", "PREFIX", "Console", "FormRefused", "mount_console"]
