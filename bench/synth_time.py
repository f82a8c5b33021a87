"""Synth and tests: full four-region synth with the cdk-nag packs ÷ a bare four-stack app, and `make test`'s wall time.

Both synths run through the real CDK CLI into build/bench. The full app is synthesized once
before timing, so its bundled assets are already staged and the timed runs reuse them (CDK skips
bundling when the asset folder exists). The bare app (bench/bare_app.py) has four empty stacks
and no cdk-nag. Each repeat times one synth of each, in alternating order.

    python -m bench.synth_time [--repeats 3] [--skip-make-test] [--json FILE]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from bench.figures import Figure, Goal, ScriptReport, format_samples, median, print_figures, ratio
from bench.harness import BUILD_DIR, REPOSITORY_ROOT, BenchmarkError, clean_environment, run_cdk_synth

GOAL = Goal(3)
FULL_ASSEMBLY = BUILD_DIR / "cdk.out"
BARE_ASSEMBLY = BUILD_DIR / "bare.out"
MAKE_TEST_LOG = BUILD_DIR / "make-test.log"
BARE_APP = Path(__file__).resolve().parent / "bare_app.py"
_PYTEST_SUMMARY = re.compile(r"=*\s*(\d+ (?:passed|failed).*?) in [\d.]+s")


def measure(repeats: int, run_make_test: bool) -> ScriptReport:
    bare_app_command = f"{sys.executable} {BARE_APP}"
    # A fresh assembly, so it contains only the current worker asset for bench/cold_start.py to measure.
    shutil.rmtree(FULL_ASSEMBLY, ignore_errors=True)
    staging_seconds = run_cdk_synth(FULL_ASSEMBLY)
    full, bare, ratios = [], [], []
    for repeat in range(repeats):
        if repeat % 2 == 0:
            full.append(run_cdk_synth(FULL_ASSEMBLY))
            bare.append(run_cdk_synth(BARE_ASSEMBLY, bare_app_command))
        else:
            bare.append(run_cdk_synth(BARE_ASSEMBLY, bare_app_command))
            full.append(run_cdk_synth(FULL_ASSEMBLY))
        ratios.append(ratio(full[-1], bare[-1]))

    figures = [
        Figure(
            key="synth_time",
            label="Synth: four regions with cdk-nag, assets staged ÷ bare four-stack app",
            value=median(ratios),
            unit="×",
            goal=GOAL,
            beside=f"full {median(full):.1f} s, bare {median(bare):.1f} s",
            samples=tuple(ratios),
        )
    ]
    if run_make_test:
        figures.append(_make_test_figure())
    details = "\n".join(
        [
            "| Synth | Median (s) | Samples (s) |",
            "| --- | --- | --- |",
            f"| full app, first run (bundles the assets; not in the ratio) | {staging_seconds:.1f} | - |",
            f"| full app, assets staged | {median(full):.1f} | {format_samples(full, 1)} |",
            f"| bare four-stack app | {median(bare):.1f} | {format_samples(bare, 1)} |",
        ]
    )
    return ScriptReport(script="bench/synth_time.py", figures=figures, details=details)


def _make_test_figure() -> Figure:
    """Run `make test` once, with its output in build/bench/make-test.log, and return its wall time."""
    environment = clean_environment()
    MAKE_TEST_LOG.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with MAKE_TEST_LOG.open("w", encoding="utf-8") as log:
        completed = subprocess.run(
            ["make", "test"], cwd=REPOSITORY_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    elapsed = time.perf_counter() - started
    summaries = _PYTEST_SUMMARY.findall(MAKE_TEST_LOG.read_text(encoding="utf-8", errors="replace"))
    summary = summaries[-1] if summaries else "no pytest summary line"
    note = ""
    if completed.returncode != 0:
        note = f"make test failed with exit code {completed.returncode}; see {MAKE_TEST_LOG}"
    return Figure(
        key="make_test_time",
        label="`make test` wall time (one run)",
        value=elapsed,
        unit="s",
        decimals=0,
        beside=summary,
        samples=(elapsed,),
        note=note,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="timed synths of each app; the median is reported")
    parser.add_argument("--skip-make-test", action="store_true", help="do not run and time `make test`")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file (run_all uses it)")
    arguments = parser.parse_args(argv)
    if arguments.repeats < 1:
        parser.error(f"--repeats is {arguments.repeats}; use at least 1")

    try:
        report = measure(arguments.repeats, not arguments.skip_make_test)
    except BenchmarkError as error:
        print(error, file=sys.stderr)
        return 1
    print_figures(report.figures)
    print(report.details)
    if arguments.json:
        report.write(arguments.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
