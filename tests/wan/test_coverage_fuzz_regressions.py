"""Coverage files the fuzzers in tests/fuzz found escaping with a csv.Error or ValueError."""

from __future__ import annotations

import pytest

from smarthydra.wan.coverage import CoverageFileError, WanCoverage

ROW = "EH1,North,yes,Long Range Radio,Medium,,,"


def test_a_stray_carriage_return_inside_a_line_is_read_as_a_line_end() -> None:
    coverage = WanCoverage.from_csv(f"# header\r{ROW}\r\n")
    assert coverage.for_postcode("EH1") is not None


def test_a_field_over_the_csv_limit_is_a_coverage_file_error() -> None:
    with pytest.raises(CoverageFileError, match="not CSV"):
        WanCoverage.from_csv('"' + "x" * 200_000 + '"\n')


@pytest.mark.parametrize("uprn", ["UPRN:\u00b2", "UPRN:1\u00b3"])
def test_a_uprn_of_non_ascii_digits_is_refused(uprn: str) -> None:
    with pytest.raises(CoverageFileError, match="not a UPRN"):
        WanCoverage.from_csv(f"{uprn},Central,yes,Cellular,High,,,\n")
