"""The DUIS service request matrix: every service request variant, whether it is critical,
and which user roles may send it.

The authoritative copy is ``conformance/duis/service-request-matrix.json`` (129 variants), read
at run time when present. The DCC also carries its own table for the variants this system
implements end to end, written from the DUIS specification; the tests check that the two agree,
so a mistake in either shows up.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path


class UserRole(enum.Enum):
    """DUIS user role codes."""

    IMPORT_SUPPLIER = "IS"
    GAS_SUPPLIER = "GS"
    EXPORT_SUPPLIER = "ES"
    ELECTRICITY_DISTRIBUTOR = "ED"
    GAS_TRANSPORTER = "GT"
    OTHER_USER = "OU"
    REGISTERED_SUPPLIER_AGENT = "RSA"


class MatrixError(Exception):
    """The matrix file is missing or malformed."""


@dataclass(frozen=True)
class ServiceRequestVariant:
    name: str
    reference: str  # e.g. "7.2"
    variant: str  # e.g. "7.2" or "4.1.1"
    critical: bool
    on_demand: bool
    future_dated_pattern: str
    dcc_scheduled: bool
    non_device: bool
    eligible_roles: frozenset[str]

    def allows(self, role: str) -> bool:
        return role in self.eligible_roles


class ServiceRequestMatrix:
    """Lookup by service reference variant."""

    def __init__(self, variants: Iterable[ServiceRequestVariant]) -> None:
        self._by_variant: dict[str, ServiceRequestVariant] = {}
        for v in variants:
            if v.variant in self._by_variant:
                raise MatrixError(f"duplicate service reference variant {v.variant}")
            self._by_variant[v.variant] = v

    def __len__(self) -> int:
        return len(self._by_variant)

    def __contains__(self, variant: object) -> bool:
        return variant in self._by_variant

    def get(self, variant: str) -> ServiceRequestVariant | None:
        return self._by_variant.get(variant)

    def variants(self) -> list[ServiceRequestVariant]:
        return list(self._by_variant.values())

    @classmethod
    def from_json(cls, path: Path) -> ServiceRequestMatrix:
        try:
            rows = json.loads(path.read_text())
        except FileNotFoundError:
            raise MatrixError(f"service request matrix not found: {path}") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise MatrixError(f"cannot read service request matrix {path}: {exc}") from None
        if not isinstance(rows, list):
            raise MatrixError(f"{path}: expected a JSON list of service request variants")
        return cls(_variant_from_row(row, path) for row in rows)


def _yes(value: object) -> bool:
    return str(value).strip().lower() == "yes"


def _variant_from_row(row: Mapping[str, object], path: Path) -> ServiceRequestVariant:
    try:
        roles = row["Eligible User Roles"]
        if not isinstance(roles, list):
            raise TypeError("Eligible User Roles is not a list")
        return ServiceRequestVariant(
            name=str(row["Service Request Name"]),
            reference=str(row["Service Reference"]),
            variant=str(row["Service Reference Variant"]),
            critical=_yes(row["Critical"]),
            on_demand=_yes(row["On Demand"]),
            future_dated_pattern=str(row.get("Future Dated Response Pattern", "")),
            dcc_scheduled=_yes(row.get("DCC Scheduled", "No")),
            non_device=_yes(row.get("Non-Device Request", "No")),
            eligible_roles=frozenset(str(r) for r in roles),
        )
    except (KeyError, TypeError) as exc:
        raise MatrixError(f"{path}: malformed row {row!r}: {exc}") from None


# The variants this system carries end to end, from the DUIS specification.
BUILTIN_VARIANTS: tuple[ServiceRequestVariant, ...] = (
    ServiceRequestVariant(
        name="Read Instantaneous Import Registers",
        reference="4.1",
        variant="4.1.1",
        critical=False,
        on_demand=True,
        future_dated_pattern="DSP",
        dcc_scheduled=False,
        non_device=False,
        eligible_roles=frozenset({"IS", "GS", "ED", "GT"}),
    ),
    ServiceRequestVariant(
        name="Disable Supply",
        reference="7.2",
        variant="7.2",
        critical=True,
        on_demand=True,
        future_dated_pattern="No",
        dcc_scheduled=False,
        non_device=False,
        eligible_roles=frozenset({"IS", "GS"}),
    ),
)


def builtin_matrix() -> ServiceRequestMatrix:
    return ServiceRequestMatrix(BUILTIN_VARIANTS)


def load_matrix(conformance_dir: Path | None) -> ServiceRequestMatrix:
    """The full matrix from the conformance data when available, else the built-in subset."""
    if conformance_dir is not None:
        path = conformance_dir / "duis" / "service-request-matrix.json"
        if path.exists():
            return ServiceRequestMatrix.from_json(path)
    return builtin_matrix()
