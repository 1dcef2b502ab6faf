"""atheris harness: the DCC's file parsers (anomaly-detection threshold files, WAN coverage CSV).

The DCC's HTTP front door is fuzzed with hypothesis in ``tests/dcc/test_http_fuzz.py``.
Run: ``python -m tests.fuzz.fuzz_dcc -runs=100000`` (from the repository root).
"""

from __future__ import annotations

import sys

from tests.fuzz.harness import Target, main, splice, text_of

INSTRUMENT = ("smarthydra.dcc.thresholds", "smarthydra.wan.coverage")

THRESHOLDS = b"""# kind,srv,limit,window
threshold,4.1.1,2,3600
threshold,11.2,10,86400
value-limit,1.5,100,AdjustMeterBalance
"""

COVERAGE = b"""# match,region,available,technology,likelihood,anticipated,auxiliary,information
UPRN:100023336956,Central,yes,Cellular,High,,,
EH1,North,yes,Long Range Radio,Medium,,,
EH12 9,North,no,Long Range Radio,Low,2027-03-01,External aerial,Mast planned
"""


def targets() -> list[Target]:
    from smarthydra.dcc.thresholds import ThresholdFileError, parse_threshold_file
    from smarthydra.duis.matrix import builtin_matrix
    from smarthydra.wan.coverage import CoverageFileError, WanCoverage

    matrix = builtin_matrix()

    def thresholds(text: str) -> None:
        parse_threshold_file(text, dcc_wide=True)
        parse_threshold_file(text, matrix=matrix, dcc_wide=False)

    def coverage(text: str) -> None:
        loaded = WanCoverage.from_csv(text)
        for line in text.splitlines():
            loaded.for_postcode(line[:12])

    return [
        Target("parse_threshold_file", lambda b: thresholds(text_of(b)), (ThresholdFileError,)),
        Target("parse_threshold_file (spliced)",
               lambda b: thresholds(text_of(splice(THRESHOLDS, b))), (ThresholdFileError,)),
        Target("WanCoverage.from_csv", lambda b: coverage(text_of(b)), (CoverageFileError,)),
        Target("WanCoverage.from_csv (spliced)",
               lambda b: coverage(text_of(splice(COVERAGE, b))), (CoverageFileError,)),
    ]


if __name__ == "__main__":
    main(sys.modules[__name__])
