"""Run every benchmark module under bench/ and write one JSON file.

Each ``bench/bench_*.py`` exposes ``run(quick: bool) -> dict``. Results report absolute rates
and, where it makes sense, a ratio against a baseline measured in the same run (for example
raw ECDSA verifies/s from the ``cryptography`` package), never a fixed threshold.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description="smarthydra benchmarks")
    parser.add_argument("--out", default="bench/results.json")
    parser.add_argument("--quick", action="store_true", help="short runs (for smoke tests)")
    parser.add_argument("--only", action="append", default=[], help="run only these modules")
    args = parser.parse_args()

    here = Path(__file__).resolve().parent
    names = sorted(p.stem for p in here.glob("bench_*.py"))
    if args.only:
        names = [n for n in names if n in args.only or n.removeprefix("bench_") in args.only]
    results: dict[str, object] = {
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "benchmarks": {},
    }
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"running {name} ...", flush=True)
        try:
            results["benchmarks"][name] = module.run(quick=args.quick)  # type: ignore[index]
        except Exception as exc:  # a broken benchmark is reported, the rest still run
            results["benchmarks"][name] = {"error": f"{type(exc).__name__}: {exc}"}  # type: ignore[index]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
