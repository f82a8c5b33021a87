"""Run every benchmark script, print its figures and rewrite the results section of BENCHMARKS.md.

    python bench/run_all.py [--skip-make-test] [--no-write]

`make bench` runs this. Each script runs in its own process and writes its figures as JSON into
build/bench. A script that fails is listed on the page in place of its figures. The ramp
controller's benchmark, bench/ramp_benchmark.py, runs last when it exists.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
if str(REPOSITORY_ROOT) not in sys.path:
    sys.path.insert(0, str(REPOSITORY_ROOT))

from bench.figures import (  # noqa: E402 - needs the path above when run as a script
    ScriptReport,
    describe_machine,
    render_results_section,
    render_results_table,
    replace_results_section,
)
from bench.harness import BUILD_DIR  # noqa: E402

BENCHMARKS_PAGE = REPOSITORY_ROOT / "BENCHMARKS.md"
# synth_time comes first: it stages the assembly whose worker asset cold_start measures.
SCRIPTS = (
    "bench.synth_time",
    "bench.cold_start",
    "bench.batch_concurrency",
    "bench.retry_efficiency",
    "bench.cost_per_job",
)
RAMP_BENCHMARK = "bench.ramp_benchmark"
# A safeguard far above a script's run time on an idle 2-core machine (synth_time, the longest, takes minutes).
SCRIPT_TIMEOUT_SECONDS = 1200


def run_script(module: str, extra_arguments: Sequence[str]) -> ScriptReport:
    """Run one benchmark script with its output shown, and return the figures it wrote.

    The script runs in its own process group, so a timeout or Ctrl-C also stops the processes
    it started (servers' children, `make test`).
    """
    output = BUILD_DIR / f"{module.removeprefix('bench.')}.json"
    output.unlink(missing_ok=True)
    command = [sys.executable, "-m", module, "--json", str(output), *extra_arguments]
    print(f"\n=== {module} ===", flush=True)
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPOSITORY_ROOT, start_new_session=True)
    try:
        returncode = process.wait(timeout=SCRIPT_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        _stop_process_group(process)
        raise RuntimeError(f"{module} timed out after {SCRIPT_TIMEOUT_SECONDS} s and was stopped") from None
    except KeyboardInterrupt:
        _stop_process_group(process)
        raise
    print(f"=== {module}: {time.perf_counter() - started:.0f} s ===", flush=True)
    if returncode != 0 or not output.exists():
        raise RuntimeError(f"{module} failed with exit code {returncode}; its output is above")
    return ScriptReport.from_json(output.read_text(encoding="utf-8"))


def _stop_process_group(process: subprocess.Popen) -> None:
    """Send SIGTERM to the script's process group and wait for the script to exit."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    process.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-make-test", action="store_true", help="do not run and time `make test`")
    parser.add_argument("--no-write", action="store_true", help="print the results without rewriting BENCHMARKS.md")
    arguments = parser.parse_args(argv)

    machine = describe_machine()
    started = time.perf_counter()
    reports: list[ScriptReport] = []
    failures: list[str] = []
    modules = list(SCRIPTS)
    if (REPOSITORY_ROOT / "bench" / "ramp_benchmark.py").exists():
        modules.append(RAMP_BENCHMARK)
    for module in modules:
        extra = ["--skip-make-test"] if module == "bench.synth_time" and arguments.skip_make_test else []
        try:
            reports.append(run_script(module, extra))
        except RuntimeError as error:
            failures.append(str(error))

    machine["wall time of this run"] = f"{time.perf_counter() - started:.0f} s"
    section = render_results_section(reports, machine, datetime.now(timezone.utc), failures)
    print("\n" + render_results_table([figure for report in reports for figure in report.figures]))
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    if not arguments.no_write:
        page = BENCHMARKS_PAGE.read_text(encoding="utf-8")
        BENCHMARKS_PAGE.write_text(replace_results_section(page, section), encoding="utf-8")
        print(f"\nWrote the results to {BENCHMARKS_PAGE.relative_to(REPOSITORY_ROOT)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
