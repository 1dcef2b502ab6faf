"""The GBCS use-case catalogue: use cases, message codes, alert codes, and who may send what.

Loaded at run time from the conformance data folder (``use-cases.json`` and ``codes.json``,
plus ``../duis/service-request-matrix.json`` for the eligible roles when present); nothing
from those files is copied into this package. Each :class:`UseCase` carries:

- its message code(s) and category (critical / non-critical command, critical /
  non-critical alert, or ``other`` where GBCS describes it in prose);
- ``response_sensitive``: whether the device encrypts the data in its response (or alert)
  to the requester (GBCS sensitive use cases; checked against every RTDS response);
- the remote party roles allowed to send it: the DUIS user roles eligible for its service
  request(s) and the GBCS remote party roles they sign and are counted as;
- its :class:`ReplayRule`: which counters a receiver checks, against what.

A few facts the data files lack are kept here, each with its source: the message codes of
use cases newer than ``codes.json`` (as the RTDS 4.5.0 carries them), the category of
older use cases that ``use-cases.json`` no longer lists, and the sensitive-response list.
"""

from __future__ import annotations

import enum
import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from smarthydra.gbcs.errors import GbcsError


class CatalogueError(GbcsError):
    """The catalogue files are missing or malformed."""


class Category(enum.Enum):
    CRITICAL_COMMAND = "critical command"
    NON_CRITICAL_COMMAND = "non-critical command"
    CRITICAL_ALERT = "critical alert"
    NON_CRITICAL_ALERT = "non-critical alert"
    OTHER = "other"

    @classmethod
    def from_message_type(cls, message_type: str) -> Category:
        # "SME.C.C" critical command, "SME.C.NC" non-critical (possibly with a note after),
        # "SME.A.C" / "SME.A.NC" alerts; anything else is described in GBCS prose.
        head = message_type.split()[0] if message_type else ""
        return {
            "SME.C.C": cls.CRITICAL_COMMAND,
            "SME.C.NC": cls.NON_CRITICAL_COMMAND,
            "SME.A.C": cls.CRITICAL_ALERT,
            "SME.A.NC": cls.NON_CRITICAL_ALERT,
        }.get(head, cls.OTHER)

    @property
    def is_command(self) -> bool:
        return self in (Category.CRITICAL_COMMAND, Category.NON_CRITICAL_COMMAND)

    @property
    def is_alert(self) -> bool:
        return self in (Category.CRITICAL_ALERT, Category.NON_CRITICAL_ALERT)


class RemotePartyRole(enum.IntEnum):
    """GBCS remote party roles (as in trust-anchor cells and organisation certificates)."""

    ROOT = 0
    RECOVERY = 1
    SUPPLIER = 2
    NETWORK_OPERATOR = 3
    ACCESS_CONTROL_BROKER = 4
    TRANSITIONAL_COS = 5
    WAN_PROVIDER = 6
    ISSUING_AUTHORITY = 7
    OTHER = 127


# DUIS user role -> the GBCS remote party role whose key signs and whose counter is tracked.
# RSA (registered supplier agent) is left unmapped: it has no remote party role of its own.
DUIS_ROLE_TO_REMOTE_PARTY: dict[str, RemotePartyRole] = {
    "IS": RemotePartyRole.SUPPLIER,
    "GS": RemotePartyRole.SUPPLIER,
    "ES": RemotePartyRole.SUPPLIER,
    "ED": RemotePartyRole.NETWORK_OPERATOR,
    "GT": RemotePartyRole.NETWORK_OPERATOR,
    "OU": RemotePartyRole.OTHER,
}


class CounterRule(enum.Enum):
    """How a receiver judges a counter."""

    GREATER_THAN_LAST = "strictly greater than the last one accepted from that party"
    EQUALS_COMMAND = "equal to the originator counter of the command it answers"


@dataclass(frozen=True)
class CounterCheck:
    field: str  # "originator_counter" or "supplementary_remote_party_counter"
    tracked_per: str  # whose counter: "originator", "supplementary remote party", "device"
    rule: CounterRule
    when: str = "always"


@dataclass(frozen=True)
class ReplayRule:
    """The anti-replay checks a receiver makes for one use case's messages."""

    checked_by: str
    checks: tuple[CounterCheck, ...]

    def describe(self) -> str:
        parts = [
            f"{c.field} {c.rule.value} (per {c.tracked_per}{'' if c.when == 'always' else ', ' + c.when})"
            for c in self.checks
        ]
        return f"{self.checked_by}: " + "; ".join(parts)


_COMMAND_REPLAY = ReplayRule(
    "device",
    (
        # GBCS: a device keeps, per remote party (and role), the highest originator counter
        # accepted and rejects a command whose counter is not greater (before acting on it;
        # a future-dated command is checked on receipt, not at execution).
        CounterCheck("originator_counter", "originator", CounterRule.GREATER_THAN_LAST),
        CounterCheck(
            "supplementary_remote_party_counter",
            "supplementary remote party",
            CounterRule.GREATER_THAN_LAST,
            when="when other-information carries one",
        ),
    ),
)
_RESPONSE_REPLAY = CounterCheck("originator_counter", "command", CounterRule.EQUALS_COMMAND)
_ALERT_REPLAY = ReplayRule(
    "recipient",
    (CounterCheck("originator_counter", "device", CounterRule.GREATER_THAN_LAST),),
)


# Use cases whose response (or alert) carries the requested data encrypted to the requester:
# GBCS sensitive use cases. Every one with RTDS data is confirmed by a test that decrypts it.
SENSITIVE_RESPONSE_USE_CASES = frozenset(
    {
        "ECS17b", "ECS17d", "ECS17e", "ECS19", "ECS20b", "ECS20c", "ECS21a", "ECS21b",
        "ECS22b", "ECS66", "ECS68",
        "GCS13a", "GCS13b", "GCS13c", "GCS14", "GCS15b", "GCS15c", "GCS15d", "GCS16a",
        "GCS16b", "GCS17", "GCS18", "GCS53", "GCS61",
    }
)  # fmt: skip

# Message codes newer than codes.json, as the RTDS 4.5.0 folders name them.
SUPPLEMENTARY_MESSAGE_CODES: dict[int, str] = {
    0x011A: "ECS46d",
    0x011B: "CS02f",
    0x011C: "ECS61d",
    0x011D: "ECS61e",
    0x011E: "ECS47a",
    0x011F: "ECS47e",
    0x0120: "ECS100",
    0x0121: "ECS101",
    0x0122: "ECS102",
    0x0123: "ECS200",
    0x0124: "CS02g",
    0x0125: "CS02g",
    0x0126: "CS02g",
    0x012A: "GCS60a",
    0x012B: "CS09",
}

# Use cases in codes.json (and the RTDS) that use-cases.json no longer lists (superseded by
# an "a" variant): their GBCS category. Critical ones change tariffs, prepayment, supply or
# load control; reads are non-critical.
LEGACY_CATEGORIES: dict[str, Category] = {
    "ECS08": Category.CRITICAL_COMMAND,
    "ECS26d": Category.NON_CRITICAL_COMMAND,
    "ECS26e": Category.NON_CRITICAL_COMMAND,
    "ECS26i": Category.NON_CRITICAL_COMMAND,
    "ECS30": Category.CRITICAL_COMMAND,
    "ECS35f": Category.NON_CRITICAL_COMMAND,
    "ECS46c": Category.CRITICAL_COMMAND,
    "ECS47": Category.CRITICAL_COMMAND,
    "ECS61a": Category.NON_CRITICAL_COMMAND,
    "GCS21d": Category.NON_CRITICAL_COMMAND,
    "GCS21e": Category.NON_CRITICAL_COMMAND,
    "GCS24": Category.CRITICAL_COMMAND,
}


@dataclass(frozen=True)
class UseCase:
    code: str
    name: str
    title: str
    message_type: str
    category: Category
    service_reference: str | None
    han_only: bool
    description: str = field(repr=False, default="")
    message_codes: tuple[int, ...] = ()
    response_sensitive: bool = False
    duis_roles: tuple[str, ...] = ()
    service_request_variants: tuple[str, ...] = ()
    replay: ReplayRule = _COMMAND_REPLAY

    @property
    def is_critical(self) -> bool:
        return self.category in (Category.CRITICAL_COMMAND, Category.CRITICAL_ALERT)

    @property
    def remote_party_roles(self) -> tuple[RemotePartyRole, ...]:
        """The GBCS remote party roles that may send this use case's command."""
        roles = {
            DUIS_ROLE_TO_REMOTE_PARTY[r] for r in self.duis_roles if r in DUIS_ROLE_TO_REMOTE_PARTY
        }
        return tuple(sorted(roles))

    @property
    def response_replay(self) -> CounterCheck:
        """A response carries the command's counter; the recipient matches the two."""
        return _RESPONSE_REPLAY

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "title": self.title,
            "name": self.name,
            "category": self.category.value,
            "message_type": self.message_type,
            "message_codes": [f"{c:04X}" for c in self.message_codes],
            "service_reference": self.service_reference,
            "service_request_variants": list(self.service_request_variants),
            "han_only": self.han_only,
            "critical": self.is_critical,
            "response_sensitive": self.response_sensitive,
            "duis_roles": list(self.duis_roles),
            "remote_party_roles": [r.name.lower() for r in self.remote_party_roles],
            "replay": self.replay.describe(),
        }


@dataclass(frozen=True)
class MessageCode:
    code: int
    title: str
    use_case: str | None  # the use-case code, when the title names a catalogued use case

    @property
    def is_alert_only(self) -> bool:
        """Codes such as 00CC (future-dated execution alert) that name no command."""
        return self.use_case is None and "alert" in self.title.lower()


@dataclass
class Catalogue:
    use_cases: dict[str, UseCase]
    message_codes: dict[int, MessageCode]
    alert_codes: dict[int, str]
    # DUIS service request variant -> the use cases the RTDS exercises for it ("4.1.1" ->
    # ECS17b, GCS13a), read from the RTDS folder names when they are beside the catalogue.
    service_requests: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def for_service_request(self, variant: str) -> list[UseCase]:
        """The use cases that carry out a DUIS service request variant (e.g. ``"7.2"``).

        Exact where the RTDS names the pair; otherwise every use case whose service
        reference covers the variant (narrowed to the fuel of ESME / GSME use cases).
        """
        codes = self.service_requests.get(variant)
        if codes:
            return [self.use_cases[c] for c in codes if c in self.use_cases]
        return sorted(
            (uc for uc in self.use_cases.values() if variant in uc.service_request_variants),
            key=lambda uc: uc.code,
        )

    def use_case(self, code: str) -> UseCase | None:
        """The use case with this code (``"ECS17b"``); case-sensitive as GBCS writes them."""
        return self.use_cases.get(code)

    def for_message_code(self, code: int) -> UseCase | None:
        info = self.message_codes.get(code)
        if info is None or info.use_case is None:
            return None
        return self.use_cases.get(info.use_case)

    def describe_message_code(self, code: int) -> str:
        info = self.message_codes.get(code)
        return info.title if info is not None else f"unknown message code 0x{code:04X}"

    def describe_alert_code(self, code: int) -> str:
        return self.alert_codes.get(code, f"unknown alert code 0x{code:04X}")

    def query(
        self,
        *,
        category: Category | None = None,
        role: RemotePartyRole | str | None = None,
        response_sensitive: bool | None = None,
    ) -> list[UseCase]:
        """Use cases matching every filter given (role: GBCS role or DUIS role code)."""
        out = []
        for uc in self.use_cases.values():
            if category is not None and uc.category is not category:
                continue
            if response_sensitive is not None and uc.response_sensitive != response_sensitive:
                continue
            if isinstance(role, RemotePartyRole) and role not in uc.remote_party_roles:
                continue
            if isinstance(role, str) and role not in uc.duis_roles:
                continue
            out.append(uc)
        return sorted(out, key=lambda u: u.code)

    @classmethod
    def load(cls, directory: Path, matrix: Path | None = None) -> Catalogue:
        """Load ``use-cases.json`` and ``codes.json`` from ``directory``.

        ``matrix`` is the DUIS service-request matrix; by default
        ``directory/../duis/service-request-matrix.json`` when it exists.
        """
        try:
            raw_use_cases = json.loads((directory / "use-cases.json").read_text())
            raw_codes = json.loads((directory / "codes.json").read_text())
            matrix_path = matrix or directory.parent / "duis" / "service-request-matrix.json"
            raw_matrix = json.loads(matrix_path.read_text()) if matrix_path.is_file() else []
        except FileNotFoundError as exc:
            raise CatalogueError(f"catalogue file not found: {exc.filename}") from None
        except json.JSONDecodeError as exc:
            raise CatalogueError(f"catalogue file is not JSON: {exc}") from None
        try:
            catalogue = cls._build(raw_use_cases, raw_codes, raw_matrix)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CatalogueError(f"catalogue files have an unexpected shape: {exc!r}") from None
        rtds = directory / "rtds-4.5.0"
        if rtds.is_dir():
            catalogue.service_requests = _service_requests_from_rtds(
                [p.name for p in rtds.iterdir() if p.is_dir()], set(catalogue.use_cases)
            )
        return catalogue

    @staticmethod
    def default() -> Catalogue:
        """The catalogue from the conformance folder: ``$SMARTHYDRA_CONFORMANCE/gbcs``, else
        ``shared/conformance/gbcs`` beside the working directory or the checkout."""
        return _default_catalogue(os.environ.get("SMARTHYDRA_CONFORMANCE"), str(Path.cwd()))

    @classmethod
    def _build(
        cls,
        raw_use_cases: list[dict[str, str]],
        raw_codes: dict[str, dict[str, str]],
        raw_matrix: list[dict[str, object]],
    ) -> Catalogue:
        names = {_use_case_code(entry) for entry in raw_use_cases}
        names |= set(LEGACY_CATEGORIES)
        message_codes: dict[int, MessageCode] = {}
        codes_by_use_case: dict[str, list[int]] = {}
        titles = dict(raw_codes["message_codes"])
        for number, named in SUPPLEMENTARY_MESSAGE_CODES.items():
            titles.setdefault(f"{number:04X}", f"{named} (message code as in the RTDS 4.5.0)")
        for hex_code, title in titles.items():
            number = int(hex_code, 16)
            first = title.split()[0] if title else ""
            owner = first if first in names else None
            message_codes[number] = MessageCode(number, title, owner)
            if owner is not None:
                codes_by_use_case.setdefault(owner, []).append(number)
        alert_codes = {int(k, 16): v for k, v in raw_codes["alert_codes"].items()}
        roles_by_ref: dict[str, list[tuple[str, list[str]]]] = {}
        for row in raw_matrix:
            variant = str(row["Service Reference Variant"])
            reference = str(row["Service Reference"])
            roles = [str(r) for r in row["Eligible User Roles"]]  # type: ignore[attr-defined]
            roles_by_ref.setdefault(reference, []).append((variant, roles))
            if variant != reference:
                roles_by_ref.setdefault(variant, []).append((variant, roles))
        use_cases: dict[str, UseCase] = {}
        for entry in raw_use_cases:
            code = _use_case_code(entry)
            message_type = entry.get("Message Type") or ""
            category = Category.from_message_type(message_type)
            service_ref = entry.get("Service Reference")
            variants, duis_roles = _roles_for(service_ref, roles_by_ref)
            duis_roles = _for_fuel(code, duis_roles)
            use_cases[code] = UseCase(
                code=code,
                name=entry.get("Use Case Name") or "",
                title=entry.get("Use Case Title") or code,
                message_type=message_type,
                category=category,
                service_reference=service_ref,
                han_only=entry.get("Remote Party or HAN Message") == "HAN Only Message",
                description=entry.get("Use Case Description") or "",
                message_codes=tuple(sorted(codes_by_use_case.get(code, []))),
                response_sensitive=code in SENSITIVE_RESPONSE_USE_CASES,
                duis_roles=duis_roles,
                service_request_variants=variants,
                replay=_replay_for(category, entry.get("Use Case Title") or ""),
            )
        for code, category in LEGACY_CATEGORIES.items():
            if code in use_cases:
                continue
            numbers = tuple(sorted(codes_by_use_case.get(code, [])))
            title = message_codes[numbers[0]].title if numbers else code
            use_cases[code] = UseCase(
                code=code,
                name=title.partition(" ")[2],
                title=title,
                message_type="",
                category=category,
                service_reference=None,
                han_only=False,
                message_codes=numbers,
                response_sensitive=code in SENSITIVE_RESPONSE_USE_CASES,
                replay=_replay_for(category),
            )
        return cls(use_cases, message_codes, alert_codes)


def _service_requests_from_rtds(folders: list[str], codes: set[str]) -> dict[str, tuple[str, ...]]:
    """``<SRV variant>_<label>`` folder names -> use cases; the label starts with the use-case
    code (``CS02bSupplierBySupplier`` is CS02b); ``NA`` folders name no service request."""
    by_length = sorted(codes, key=len, reverse=True)
    found: dict[str, set[str]] = {}
    for folder in folders:
        variant, _, label = folder.partition("_")
        if variant == "NA" or not label:
            continue
        code = next((c for c in by_length if label.startswith(c)), None)
        if code is not None:
            found.setdefault(variant, set()).add(code)
    return {variant: tuple(sorted(found[variant])) for variant in sorted(found)}


def _replay_for(category: Category, title: str = "") -> ReplayRule:
    if category.is_alert:
        return _ALERT_REPLAY
    if category.is_command:
        return _COMMAND_REPLAY
    # Described in GBCS prose: an alert by its title, otherwise a command (CS02b, CS08, ...).
    return _ALERT_REPLAY if "alert" in title.lower() else _COMMAND_REPLAY


# A service request serves both fuels; an ESME use case is for the electricity parties and a
# GSME one for the gas parties only.
_GAS_ROLES = frozenset({"GS", "GT"})
_ELECTRICITY_ROLES = frozenset({"IS", "ES", "ED"})


def _for_fuel(code: str, roles: tuple[str, ...]) -> tuple[str, ...]:
    if code.startswith("ECS"):
        return tuple(r for r in roles if r not in _GAS_ROLES)
    if code.startswith("GCS"):
        return tuple(r for r in roles if r not in _ELECTRICITY_ROLES)
    return roles


def _roles_for(
    reference: str | None, roles_by_ref: dict[str, list[tuple[str, list[str]]]]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if not reference:
        return (), ()
    rows = roles_by_ref.get(reference.strip(), [])
    variants = tuple(sorted({v for v, _ in rows}))
    roles = tuple(sorted({r for _, rs in rows for r in rs}))
    return variants, roles


@functools.lru_cache(maxsize=4)
def _default_catalogue(env: str | None, cwd: str) -> Catalogue:
    candidates: list[Path] = []
    if env:
        candidates.append(Path(env) / "gbcs")
    for base in (Path(cwd), Path(__file__).resolve()):
        for folder in [base, *base.parents]:
            candidates.append(folder / "shared" / "conformance" / "gbcs")
            candidates.append(folder.parent / "shared" / "conformance" / "gbcs")
    for candidate in candidates:
        if (candidate / "use-cases.json").is_file():
            return Catalogue.load(candidate)
    raise CatalogueError(
        "GBCS catalogue not found: set SMARTHYDRA_CONFORMANCE to the conformance folder "
        "(holding gbcs/use-cases.json and gbcs/codes.json)"
    )


def _use_case_code(entry: dict[str, str]) -> str:
    """The variant code: "ECS25a1" from its title where "Code" says only "ECS25a"."""
    code = entry["Code"]
    title = entry.get("Use Case Title") or ""
    first = title.split()[0] if title.strip() else ""
    return first if first.startswith(code) else code
