"""Operator sessions for the console: a signed cookie naming a session this process opened.

The cookie carries only a random session id, signed with itsdangerous (HMAC, timestamped) so
that a forged or expired cookie is refused before any lookup. The sessions themselves (their
CSRF token, their expiry) live in this process: logging out ends a session for good, and a
restart (with the default per-process key) ends every session.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

DEFAULT_LIFETIME = 8 * 3600.0  # one working shift
MAX_SESSIONS = 256  # beyond it the oldest session is closed: a flood of logins cannot grow memory
_SALT = "smarthydra.console.session"


@dataclass(frozen=True)
class Session:
    sid: str
    csrf: str  # the per-session token every state-changing form carries
    expires: float  # seconds since the epoch
    operator: str = ""  # the name last used to release or delete, offered again in the forms
    # The operator account that logged in (its name is what the audit log records); "" for a
    # shared-token session, whose operators type a name that is recorded as only claimed.
    account: str = ""


@dataclass
class SessionBook:
    """The open sessions, and the key their cookies are signed with."""

    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    lifetime: float = DEFAULT_LIFETIME
    now: Callable[[], float] = time.time
    max_sessions: int = MAX_SESSIONS
    _sessions: dict[str, Session] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def _serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.secret, salt=_SALT)

    def open(self, account: str = "", operator: str = "") -> tuple[Session, str]:
        """A new session (an operator account's when ``account`` names it) and the cookie value
        naming it."""
        session = Session(
            secrets.token_urlsafe(24),
            secrets.token_urlsafe(32),
            self.now() + self.lifetime,
            operator,
            account,
        )
        with self._lock:
            self._prune()
            while len(self._sessions) >= self.max_sessions:
                oldest = min(self._sessions.values(), key=lambda s: s.expires)
                del self._sessions[oldest.sid]
            self._sessions[session.sid] = session
        return session, self._serializer().dumps(session.sid)

    def find(self, cookie: str | None) -> Session | None:
        """The live session a cookie names; None for a missing, forged, expired or closed one."""
        if not cookie:
            return None
        try:
            sid = self._serializer().loads(cookie, max_age=int(self.lifetime))
        except (BadSignature, SignatureExpired):
            return None
        if not isinstance(sid, str):
            return None
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                return None
            if session.expires <= self.now():
                del self._sessions[sid]
                return None
            return session

    def remember_operator(self, session: Session, operator: str) -> None:
        with self._lock:
            if session.sid in self._sessions:
                self._sessions[session.sid] = Session(
                    session.sid, session.csrf, session.expires, operator, session.account
                )

    def close(self, session: Session) -> None:
        with self._lock:
            self._sessions.pop(session.sid, None)

    def _prune(self) -> None:
        now = self.now()
        for sid in [sid for sid, s in self._sessions.items() if s.expires <= now]:
            del self._sessions[sid]

    @staticmethod
    def csrf_matches(session: Session, supplied: str | None) -> bool:
        return supplied is not None and hmac.compare_digest(
            session.csrf.encode(), supplied.encode("utf-8", "replace")
        )


def token_matches(configured: str | None, supplied: str | None) -> bool:
    """The operator token, compared in constant time; never true while none is configured."""
    if not configured or supplied is None:
        return False
    return hmac.compare_digest(configured.encode(), supplied.encode("utf-8", "replace"))
