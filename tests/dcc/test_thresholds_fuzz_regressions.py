"""Threshold files the fuzzers in tests/fuzz found escaping with a csv.Error or ValueError."""

from __future__ import annotations

import pytest

from smarthydra.dcc.thresholds import ThresholdFileError, parse_threshold_file


def test_a_stray_carriage_return_is_a_line_end() -> None:
    parsed = parse_threshold_file("# kind,srv,limit,window\rthreshold,4.1.1,2,3600\r\n")
    assert [srv for srv, _, _ in parsed.rows()] == ["4.1.1"]


def test_a_field_over_the_csv_limit_is_a_threshold_file_error() -> None:
    with pytest.raises(ThresholdFileError, match="not CSV"):
        parse_threshold_file('"' + "x" * 200_000 + '"\n')


@pytest.mark.parametrize("limit", ["\u00b2", "1\u00b3"])
def test_a_limit_of_non_ascii_digits_is_refused(limit: str) -> None:
    with pytest.raises(ThresholdFileError, match="not a count"):
        parse_threshold_file(f"threshold,4.1.1,{limit},3600\n")
