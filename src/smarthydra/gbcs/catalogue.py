"""The GBCS use-case catalogue: use cases, their message codes and the alert codes.

Loaded at run time from ``use-cases.json`` and ``codes.json`` (the conformance data folder);
nothing from those files is copied into this package.
"""

from __future__ import annotations

import enum
import json
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

    @property
    def is_critical(self) -> bool:
        return self.category in (Category.CRITICAL_COMMAND, Category.CRITICAL_ALERT)


@dataclass(frozen=True)
class MessageCode:
    code: int
    title: str
    use_case: str | None  # the use-case code, when the title names a catalogued use case


@dataclass
class Catalogue:
    use_cases: dict[str, UseCase]
    message_codes: dict[int, MessageCode]
    alert_codes: dict[int, str]

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

    @classmethod
    def load(cls, directory: Path) -> Catalogue:
        """Load ``use-cases.json`` and ``codes.json`` from ``directory``."""
        try:
            raw_use_cases = json.loads((directory / "use-cases.json").read_text())
            raw_codes = json.loads((directory / "codes.json").read_text())
        except FileNotFoundError as exc:
            raise CatalogueError(f"catalogue file not found: {exc.filename}") from None
        except json.JSONDecodeError as exc:
            raise CatalogueError(f"catalogue file is not JSON: {exc}") from None
        try:
            return cls._build(raw_use_cases, raw_codes)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CatalogueError(f"catalogue files have an unexpected shape: {exc!r}") from None

    @classmethod
    def _build(
        cls, raw_use_cases: list[dict[str, str]], raw_codes: dict[str, dict[str, str]]
    ) -> Catalogue:
        names = {_use_case_code(entry) for entry in raw_use_cases}
        message_codes: dict[int, MessageCode] = {}
        codes_by_use_case: dict[str, list[int]] = {}
        for hex_code, title in raw_codes["message_codes"].items():
            number = int(hex_code, 16)
            first = title.split()[0] if title else ""
            use_case = first if first in names else None
            message_codes[number] = MessageCode(number, title, use_case)
            if use_case is not None:
                codes_by_use_case.setdefault(use_case, []).append(number)
        alert_codes = {int(k, 16): v for k, v in raw_codes["alert_codes"].items()}
        use_cases: dict[str, UseCase] = {}
        for entry in raw_use_cases:
            code = _use_case_code(entry)
            message_type = entry.get("Message Type") or ""
            use_cases[code] = UseCase(
                code=code,
                name=entry.get("Use Case Name") or "",
                title=entry.get("Use Case Title") or code,
                message_type=message_type,
                category=Category.from_message_type(message_type),
                service_reference=entry.get("Service Reference"),
                han_only=entry.get("Remote Party or HAN Message") == "HAN Only Message",
                description=entry.get("Use Case Description") or "",
                message_codes=tuple(sorted(codes_by_use_case.get(code, []))),
            )
        return cls(use_cases, message_codes, alert_codes)


def _use_case_code(entry: dict[str, str]) -> str:
    """The variant code: "ECS25a1" from its title where "Code" says only "ECS25a"."""
    code = entry["Code"]
    title = entry.get("Use Case Title") or ""
    first = title.split()[0] if title.strip() else ""
    return first if first.startswith(code) else code
