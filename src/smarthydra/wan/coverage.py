"""SM WAN coverage, as the communications service providers publish it to the DCC.

The DCC answers DUIS 12.1 Request WAN Matrix from this table: for a property (by UPRN, or by
postcode and address identifier), which CSP region serves it, whether SM WAN coverage is
there (or from when), with which technology, how likely a connection is, and whether the
installer needs auxiliary equipment.

The table is data the CSPs supply, read from a CSV file::

    # match,region,available,technology,likelihood,anticipated,auxiliary,information
    UPRN:100023336956,Central,yes,Cellular,High,,,
    EH1,North,yes,Long Range Radio,Medium,,,
    EH12 9,North,no,Long Range Radio,Low,2027-03-01,External aerial,

``match`` is ``UPRN:<digits>`` or a postcode prefix (area, district or sector; compared
without spaces, case-insensitively; the longest matching prefix wins). The region is one of
DUIS CSPRegion's values. A property nothing matches is in region ``Unknown``: this DCC does
not invent coverage it was not given.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path

CSP_REGIONS = ("North", "Central", "South", "4G North", "4G Central", "4G South")
LIKELIHOODS = ("High", "Medium", "Low")


class CoverageFileError(ValueError):
    """A coverage file line the DCC cannot use."""


@dataclass(frozen=True)
class Coverage:
    """What the CSPs say about one area or property."""

    region: str
    available: bool
    technology: str
    likelihood: str
    anticipated: dt.date | None = None
    auxiliary: str | None = None
    information: str | None = None


def normalise_postcode(text: str) -> str:
    return "".join(text.split()).upper()


@dataclass
class WanCoverage:
    by_uprn: dict[int, Coverage] = field(default_factory=dict)
    by_postcode: dict[str, Coverage] = field(default_factory=dict)

    def for_uprn(self, uprn: int) -> Coverage | None:
        return self.by_uprn.get(uprn)

    def for_postcode(self, postcode: str) -> Coverage | None:
        """The entry of the longest postcode prefix that matches."""
        wanted = normalise_postcode(postcode)
        for length in range(len(wanted), 0, -1):
            found = self.by_postcode.get(wanted[:length])
            if found is not None:
                return found
        return None

    @classmethod
    def from_csv(cls, text: str) -> WanCoverage:
        coverage = cls()
        # newline="": the csv module's own line splitting, so a stray CR is not a csv.Error
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            rows = list(reader)
        except csv.Error as exc:
            raise CoverageFileError(f"line {reader.line_num}: not CSV: {exc}") from None
        for number, row in enumerate(rows, start=1):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            cells = [cell.strip() for cell in row] + [""] * (8 - len(row))
            match, region, available, technology, likelihood = cells[:5]
            anticipated, auxiliary, information = cells[5:8]
            where = f"line {number}"
            if region not in CSP_REGIONS:
                raise CoverageFileError(f"{where}: region {region!r} is not a CSP region")
            if available.lower() not in ("yes", "no"):
                raise CoverageFileError(f"{where}: available must be yes or no")
            if likelihood not in LIKELIHOODS:
                raise CoverageFileError(f"{where}: likelihood must be High, Medium or Low")
            if not 1 <= len(technology) <= 30:
                raise CoverageFileError(f"{where}: the technology needs 1 to 30 characters")
            if len(auxiliary) > 50 or len(information) > 250:
                raise CoverageFileError(f"{where}: auxiliary or information text too long")
            try:
                date = dt.date.fromisoformat(anticipated) if anticipated else None
            except ValueError:
                raise CoverageFileError(f"{where}: {anticipated!r} is not a date") from None
            entry = Coverage(
                region,
                available.lower() == "yes",
                technology,
                likelihood,
                date,
                auxiliary or None,
                information or None,
            )
            if match.upper().startswith("UPRN:"):
                digits = match[5:]
                if not (digits.isascii() and digits.isdigit()) or not 1 <= len(digits) <= 12 or int(digits) == 0:
                    raise CoverageFileError(f"{where}: {match!r} is not a UPRN")
                coverage.by_uprn[int(digits)] = entry
            elif match and normalise_postcode(match).isalnum():
                coverage.by_postcode[normalise_postcode(match)] = entry
            else:
                raise CoverageFileError(f"{where}: {match!r} is neither UPRN:<n> nor a postcode")
        return coverage

    @classmethod
    def load(cls, path: Path) -> WanCoverage:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CoverageFileError(f"cannot read {path}: {exc}") from None
        return cls.from_csv(text)
