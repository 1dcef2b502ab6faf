"""Run the atheris harnesses of this package: ``python -m tests.fuzz.run --seconds 60``.

Each harness runs in its own process (libFuzzer owns the process), from the repository root, with
crash artifacts written to a temporary directory (printed when something is found) and, for long
campaigns, a corpus kept per harness under ``--corpus`` so later runs start where earlier ones
stopped. Prints one line per harness: runs, seconds, execs/s, coverage, and the finding if any.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
HARNESSES = ("card", "duis", "pki", "prepay", "dcc", "premises", "applets")


@dataclass(frozen=True)
class Campaign:
    harness: str
    returncode: int
    runs: int
    seconds: int
    execs_per_second: int
    coverage: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def summary(self) -> str:
        line = (f"{self.harness:9} runs={self.runs:>8} time={self.seconds:>4}s "
                f"exec/s={self.execs_per_second:>6} cov={self.coverage}")
        if not self.ok:
            found = [x for x in self.output.splitlines() if "Finding" in x or "Error" in x]
            line += "  FINDING: " + (found[-1] if found else f"exit {self.returncode}")
        return line


def _last_int(pattern: str, text: str) -> int:
    found = re.findall(pattern, text)
    return int(found[-1]) if found else 0


def run_harness(harness: str, *, runs: int | None = None, seconds: int | None = None,
                seed: int = 1, timeout: int = 10, corpus: Path | None = None,
                artifacts: Path | None = None) -> Campaign:
    """One libFuzzer campaign: ``runs`` inputs or ``seconds`` of fuzzing (or both bounds)."""
    if harness not in HARNESSES:
        raise ValueError(f"unknown harness {harness!r}; one of {', '.join(HARNESSES)}")
    artifacts = artifacts or Path(tempfile.mkdtemp(prefix=f"fuzz-{harness}-"))
    args = [sys.executable, "-m", f"tests.fuzz.fuzz_{harness}", f"-seed={seed}",
            f"-timeout={timeout}", f"-artifact_prefix={artifacts}{os.sep}", "-print_final_stats=1"]
    if runs is not None:
        args.append(f"-runs={runs}")
    if seconds is not None:
        args.append(f"-max_total_time={seconds}")
    if corpus is not None:
        corpus.mkdir(parents=True, exist_ok=True)
        args.append(str(corpus))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(REPO), str(REPO / "src")))}
    limit = (seconds or 0) + 600
    result = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=limit, check=False)
    output = result.stdout + result.stderr
    return Campaign(
        harness=harness,
        returncode=result.returncode,
        runs=_last_int(r"stat::number_of_executed_units:\s+(\d+)", output),
        seconds=_last_int(r"Done \d+ runs in (\d+) second", output),
        execs_per_second=_last_int(r"stat::average_exec_per_sec:\s+(\d+)", output),
        coverage=_last_int(r"cov: (\d+)", output),
        output=output,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="fuzzing time per harness")
    parser.add_argument("--runs", type=int, default=None, help="stop each harness after N inputs")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--corpus", type=Path, default=None,
                        help="directory of per-harness corpora to keep (default: none kept)")
    parser.add_argument("harnesses", nargs="*", help=f"some of {', '.join(HARNESSES)} (default all)")
    options = parser.parse_args(argv)
    unknown = sorted(set(options.harnesses) - set(HARNESSES))
    if unknown:
        parser.error(f"unknown harness {', '.join(unknown)}; choose from {', '.join(HARNESSES)}")
    failed = 0
    for harness in options.harnesses or HARNESSES:
        campaign = run_harness(
            harness, runs=options.runs, seconds=options.seconds, seed=options.seed,
            corpus=options.corpus / harness if options.corpus else None)
        print(campaign.summary(), flush=True)
        if not campaign.ok:
            failed += 1
            print(campaign.output[-3000:], file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
