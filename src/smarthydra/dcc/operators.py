"""Named DCC operator accounts: the audit log names the operator who proved who they are.

Each operator has a random token (``secrets.token_urlsafe(32)``), shown once when the account
is made; the DCC keeps only a scrypt hash of it (per-operator random salt, the cost stored
beside it so it can be raised later) in the ``operators`` table. :meth:`OperatorRegistry.
authenticate` compares in constant time and does the same scrypt work for an unknown or
revoked name as for a real one, so neither answers faster than a wrong token.

Adding and revoking an operator are themselves audited, in the same transaction as the change
and through the DCC's own hash-chained :class:`~smarthydra.dcc.audit.AuditLog` (the running
DCC's when one is given), so the chain stays whole whichever process writes.

A revoked name is never reused: the audit log's past mentions of it keep meaning one person.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from smarthydra.clock import Clock, SystemClock
from smarthydra.dcc.audit import AuditConflict, AuditLog
from smarthydra.dcc.store import SqlDccStore, operators

MAX_NAME = 64  # the audit log's actor column
SHARED_TOKEN_SUFFIX = " (shared token)"  # how a name only claimed beside the shared token is recorded
CLI_CLAIM_SUFFIX = " (cli, unverified)"  # a name given at the CLI while no such account exists
CLAIM_SUFFIXES = (SHARED_TOKEN_SUFFIX, CLI_CLAIM_SUFFIX)
MAX_CLAIMED_NAME = MAX_NAME - max(len(suffix) for suffix in CLAIM_SUFFIXES)
HASH_BYTES = 32
SALT_BYTES = 16
MAX_TOKEN_CHARS = 256  # a real token is 43; longer ones are wrong, but cost the same to refuse
REGISTRY_ACTOR = "operator registry"


class OperatorError(Exception):
    """An operator account cannot be made, found or changed as asked."""


class InvalidOperatorName(OperatorError, ValueError):
    """A name that cannot name an operator (empty, too long, control characters, a claim suffix)."""


class OperatorExists(OperatorError):
    """An account by that name exists, or existed: names are never reused."""


class UnknownOperator(OperatorError):
    """No account has that name."""


class OperatorRevoked(OperatorError):
    """The account was revoked."""


@dataclass(frozen=True)
class ScryptCost:
    """scrypt's parameters. The default needs 32 MiB and tens of milliseconds per check."""

    n: int = 2**15
    r: int = 8
    p: int = 1

    def text(self) -> str:
        return f"scrypt n={self.n} r={self.r} p={self.p}"

    @classmethod
    def parse(cls, text: str) -> ScryptCost | None:
        """The cost a stored ``kdf`` column names; None for anything else."""
        words = text.split()
        if len(words) != 4 or words[0] != "scrypt":
            return None
        values: dict[str, int] = {}
        for word in words[1:]:
            key, sep, number = word.partition("=")
            if not sep or not number.isdigit() or key not in ("n", "r", "p"):
                return None
            values[key] = int(number)
        if len(values) != 3:
            return None
        n = values["n"]
        if n < 2 or n & (n - 1) or n > 2**20 or not 1 <= values["r"] <= 32:
            return None
        if not 1 <= values["p"] <= 16:
            return None
        return cls(n, values["r"], values["p"])


@dataclass(frozen=True)
class Operator:
    name: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def check_operator_name(name: str) -> str:
    """``name`` if it can name an operator; :class:`InvalidOperatorName` saying why not."""
    if not name:
        raise InvalidOperatorName("an operator name is needed")
    if len(name) > MAX_NAME:
        raise InvalidOperatorName(f"an operator name is at most {MAX_NAME} characters")
    if any(not ch.isprintable() for ch in name):
        raise InvalidOperatorName("an operator name may not contain control characters")
    if name != name.strip():
        raise InvalidOperatorName("an operator name may not start or end with a space")
    for suffix in CLAIM_SUFFIXES:
        if name.endswith(suffix):
            # That spelling in the audit log means "claimed, not proven".
            raise InvalidOperatorName(f"an operator name may not end with {suffix!r}")
    return name


def claimed_name(name: str, suffix: str = SHARED_TOKEN_SUFFIX) -> str:
    """How the audit log records a name that was typed, not proven (beside the shared token,
    or at the CLI for a name with no account); :class:`InvalidOperatorName` if it is unfit or
    too long to be recorded so."""
    check_operator_name(name)
    if len(name) > MAX_CLAIMED_NAME:
        raise InvalidOperatorName(
            f"a name given without an account's token is at most {MAX_CLAIMED_NAME} characters"
        )
    return name + suffix


def _utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes (what was stored was UTC).
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _operator(row: Any) -> Operator:
    revoked = None if row.revoked_at is None else _utc(row.revoked_at)
    return Operator(row.name, _utc(row.created_at), revoked)


def _derive(token: str, salt: bytes, cost: ScryptCost) -> bytes:
    kdf = Scrypt(salt=salt, length=HASH_BYTES, n=cost.n, r=cost.r, p=cost.p)
    return kdf.derive(token.encode("utf-8", "replace"))


@dataclass
class OperatorRegistry:
    """The operator accounts in a DCC's database."""

    store: SqlDccStore
    # The running DCC's audit log (DataCommsCompany.audit); None: the store's chain, reloaded.
    audit: AuditLog | None = None
    clock: Clock = field(default_factory=SystemClock)
    cost: ScryptCost = field(default_factory=ScryptCost)
    new_token: Callable[[], str] = field(default=lambda: secrets.token_urlsafe(32))
    random_bytes: Callable[[int], bytes] = field(default=secrets.token_bytes)

    def __post_init__(self) -> None:
        if self.audit is None:
            store = self.store
            self.audit = AuditLog(
                store.load_audit(), sink=store.append_audit, resync=store.load_audit
            )

    # --- accounts ---------------------------------------------------------------------------

    def add(self, name: str, *, by: str = REGISTRY_ACTOR) -> str:
        """Make an account; its token, which is not kept anywhere (show it once)."""
        check_operator_name(name)
        token = self.new_token()
        salt = self.random_bytes(SALT_BYTES)
        digest = _derive(token, salt, self.cost)
        now = self.clock.now()

        def change(connection: Connection) -> None:
            found = connection.execute(
                select(operators.c.revoked_at).where(operators.c.name == name)
            ).first()
            if found is not None:
                raise OperatorExists(
                    f"operator {name!r} exists already"
                    + (" (revoked: a revoked name is not reused)" if found.revoked_at else "")
                )
            connection.execute(
                insert(operators).values(
                    name=name, token_hash=digest, salt=salt, kdf=self.cost.text(),
                    created_at=now, revoked_at=None,
                )
            )

        self._audited(change, by, "operator added", operator=name)
        return token

    def revoke(self, name: str, *, by: str = REGISTRY_ACTOR) -> None:
        """Close an account for good: its token authenticates no more."""
        now = self.clock.now()

        def change(connection: Connection) -> None:
            found = connection.execute(
                select(operators.c.revoked_at).where(operators.c.name == name)
            ).first()
            if found is None:
                raise UnknownOperator(f"no operator named {name!r}")
            if found.revoked_at is not None:
                raise OperatorRevoked(f"operator {name!r} was revoked already")
            connection.execute(
                update(operators).where(operators.c.name == name).values(revoked_at=now)
            )

        self._audited(change, by, "operator revoked", operator=name)

    def list(self) -> list[Operator]:
        with self.store.engine.connect() as connection:
            rows = connection.execute(
                select(operators.c.name, operators.c.created_at, operators.c.revoked_at)
                .order_by(operators.c.name)
            ).all()
        return [_operator(row) for row in rows]

    def get(self, name: str) -> Operator | None:
        with self.store.engine.connect() as connection:
            row = connection.execute(
                select(operators.c.name, operators.c.created_at, operators.c.revoked_at)
                .where(operators.c.name == name)
            ).first()
        if row is None:
            return None
        return _operator(row)

    def is_active(self, name: str) -> bool:
        found = self.get(name)
        return found is not None and found.active

    def any_active(self) -> bool:
        """True while some account can log in (the web console opens for it)."""
        with self.store.engine.connect() as connection:
            row = connection.execute(
                select(operators.c.name).where(operators.c.revoked_at.is_(None)).limit(1)
            ).first()
        return row is not None

    # --- proof ------------------------------------------------------------------------------

    def authenticate(self, name: str, token: str) -> Operator | None:
        """The account, if ``token`` is its token and it is not revoked; otherwise None, after
        the same scrypt work (an unknown name is not told apart by time)."""
        row = None
        if 0 < len(name) <= MAX_NAME:
            with self.store.engine.connect() as connection:
                row = connection.execute(select(operators).where(operators.c.name == name)).first()
        cost = None if row is None else ScryptCost.parse(row.kdf)
        if row is None or cost is None:
            salt, expected, cost = self.random_bytes(SALT_BYTES), b"", self.cost
        else:
            salt, expected = bytes(row.salt), bytes(row.token_hash)
        fits = len(token) <= MAX_TOKEN_CHARS
        derived = _derive(token if fits else token[:MAX_TOKEN_CHARS], salt, cost)
        # Compared even when doomed, so every refusal costs the same.
        matches = hmac.compare_digest(derived, expected or self.random_bytes(len(derived)))
        if row is None or not expected or not fits or not matches or row.revoked_at is not None:
            return None
        return _operator(row)

    # --- the audit trail --------------------------------------------------------------------

    def _audited(
        self, change: Callable[[Connection], None], actor: str, action: str, **detail: object
    ) -> None:
        """Make ``change`` and append its audit entry in one transaction, on the DCC's chain
        (reloaded and tried again if another writer extended it first)."""
        audit = self.audit
        assert audit is not None  # __post_init__
        actor = actor[:MAX_NAME]
        with audit.lock:
            for _ in range(100):
                entry = audit.next_entry(self.clock.now(), actor, action, **detail)
                try:
                    with self.store.engine.begin() as connection:
                        change(connection)
                        SqlDccStore.append_audit_checked(connection, entry)
                except (AuditConflict, IntegrityError):
                    audit.entries = self.store.load_audit()
                    continue
                audit.record(entry)
                return
        raise OperatorError("the audit log kept moving on; try again")


__all__ = [
    "CLI_CLAIM_SUFFIX",
    "SHARED_TOKEN_SUFFIX",
    "FailureThrottle",
    "InvalidOperatorName",
    "Operator",
    "OperatorError",
    "OperatorExists",
    "OperatorRegistry",
    "OperatorRevoked",
    "ScryptCost",
    "UnknownOperator",
    "check_operator_name",
    "claimed_name",
]


@dataclass
class FailureThrottle:
    """Failed operator logins, counted per client and overall over the last ``window`` seconds.

    A client with ``per_client`` failures is refused until they age out, so tokens cannot be
    guessed at network speed and one guesser does not lock the other operators out; the
    ``overall`` ceiling bounds the scrypt work that guessers from many addresses can cause."""

    per_client: int = 10
    overall: int = 100
    window: float = 60.0
    now: Callable[[], float] = time.monotonic
    _failures: dict[str, list[float]] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def allowed(self, client: str) -> bool:
        with self._lock:
            self._forget_old()
            mine = self._failures.get(client, [])
            total = sum(len(times) for times in self._failures.values())
            return len(mine) < self.per_client and total < self.overall

    def failed(self, client: str) -> None:
        with self._lock:
            self._failures.setdefault(client, []).append(self.now())

    def _forget_old(self) -> None:
        cutoff = self.now() - self.window
        for client in list(self._failures):
            recent = [t for t in self._failures[client] if t > cutoff]
            if recent:
                self._failures[client] = recent
            else:
                del self._failures[client]

