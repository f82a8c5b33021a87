"""Cold start: time from a fresh Python process to the first model request, worker ÷ naive handler.

Each repeat starts ``bench/cold_start_probe.py`` once for the worker (``worker.handler``) and
once for the naive handler (``bench/naive_handler.py``), in alternating order, with one job and
the Lambda environment variables that turn Powertools' Tracer on. The cold start ends when the
first model request reaches the emulator, before the emulator's latency, which is 0 here. It is
split into interpreter start, imports, AWS client set-up, job parsing (with the worker's claim in
its job state table), and the secret read with the model client set-up. ``python -X importtime``
runs split the imports by package.

The second figure is the size of the worker's bundled asset, unzipped, from the synthesized
assembly in build/bench/cdk.out (synthesized first when missing).

    python -m bench.cold_start [--repeats 7] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from bench.cold_start_probe import IMPORT_END_LINE, IMPORT_START_LINE
from bench.figures import Figure, Goal, ScriptReport, median, print_figures, ratio
from bench.harness import (
    BUILD_DIR,
    REPOSITORY_ROOT,
    BenchmarkError,
    LocalServices,
    directory_size_bytes,
    find_worker_asset,
    job_body,
    run_cdk_synth,
    worker_environment,
)

PROBE = Path(__file__).resolve().parent / "cold_start_probe.py"
HANDLERS = ("worker", "naive")
RATIO_GOAL = Goal(0.95)
ASSET_GOAL = Goal(40, "MB")
BYTES_PER_MEGABYTE = 1024 * 1024
PROBE_TIMEOUT_SECONDS = 120
PHASES = (
    "interpreter start",
    "imports",
    "AWS client set-up",
    "job parsing and job state claim",
    "secret read, model client, request sent",
)
UNSPLIT_PHASE = "set-up, parsing and claim (not split)"
# The Lambda environment of the probes. LAMBDA_TASK_ROOT turns Powertools' Tracer on, as in
# Lambda; the X-Ray SDK then sends its segments by UDP to this loopback address.
LAMBDA_ENVIRONMENT = {
    "AWS_LAMBDA_FUNCTION_NAME": "gemma-batch-cold-start-probe",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "LAMBDA_TASK_ROOT": str(REPOSITORY_ROOT / "lambda"),
    "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
    "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
}
_IMPORT_TIME_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)$")


class ArrivalRecorder:
    """Records when each chat completions request reaches the emulator, before its latency and faults apply."""

    def __init__(self, emulator: Any) -> None:
        self._lock = threading.Lock()
        self._arrivals: list[float] = []
        service = emulator.service
        handle_api = service.handle_api

        def record_then_handle(method: str, path: str, headers: Mapping[str, str], raw_body: bytes) -> Any:
            if path.endswith("/chat/completions"):
                with self._lock:
                    self._arrivals.append(time.monotonic())
            return handle_api(method, path, headers, raw_body)

        service.handle_api = record_then_handle

    def first_after(self, moment: float) -> float | None:
        with self._lock:
            return next((arrival for arrival in self._arrivals if arrival >= moment), None)


def split_phases(probe: Mapping[str, Any], spawned: float, first_request: float, handler: str) -> dict[str, float]:
    """Split one cold start into phases, in seconds, from the probe's timestamps.

    The worker's phase ends are its own log records: its first record comes after the runtime
    (settings and boto3 clients) is built, and the first record of ``worker.processor`` after the
    job is parsed and claimed in the job state table. The naive handler, which claims nothing,
    stores its phase ends in PHASE_MARKERS. When a marker is missing or out of order, everything
    between the imports and the request is reported as one phase.
    """
    phases = {
        "interpreter start": probe["import_started"] - spawned,
        "imports": probe["import_ended"] - probe["import_started"],
    }
    clients_ready, job_parsed = _phase_markers(probe, handler)
    start = probe["import_ended"]
    if clients_ready is not None and job_parsed is not None and start <= clients_ready <= job_parsed <= first_request:
        phases["AWS client set-up"] = clients_ready - start
        phases["job parsing and job state claim"] = job_parsed - clients_ready
        phases["secret read, model client, request sent"] = first_request - job_parsed
    else:
        phases[UNSPLIT_PHASE] = first_request - start
    phases["total"] = first_request - spawned
    return phases


def _phase_markers(probe: Mapping[str, Any], handler: str) -> tuple[float | None, float | None]:
    called = probe["handler_called"]
    if handler == "naive":
        markers = {label: moment for label, moment in probe.get("phase_markers", [])}
        return markers.get("clients"), markers.get("job parsed")
    # NOTE: these markers follow the worker's current log lines; if they move, the split falls back to one phase.
    entries = [(moment, name) for moment, name, _ in probe.get("log_timeline", []) if moment >= called]
    clients_ready = next((moment for moment, name in entries if name.split(".")[0] == "worker"), None)
    job_parsed = next((moment for moment, name in entries if name == "worker.processor"), None)
    return clients_ready, job_parsed


def import_time_by_package(stderr_text: str, start_line: str, end_line: str) -> dict[str, float]:
    """Sum ``python -X importtime`` self times, in ms, by top-level package, between two marker lines.

    Self times exclude nested imports, so each package's sum is the time spent in its own modules.
    Standard library modules are summed under ``standard library``.
    """
    totals: dict[str, float] = {}
    inside = False
    for line in stderr_text.splitlines():
        if line == start_line:
            inside = True
            continue
        if line == end_line:
            break
        match = _IMPORT_TIME_LINE.match(line)
        if not inside or match is None:
            continue
        root = match.group(4).split(".")[0]
        package = "standard library" if root in sys.stdlib_module_names else root
        totals[package] = totals.get(package, 0.0) + int(match.group(1)) / 1000
    return totals


def measure(repeats: int, synthesize_when_missing: bool = True) -> ScriptReport:
    with LocalServices() as services:
        emulator = services.start_emulator()
        arrivals = ArrivalRecorder(emulator)
        resources = services.create_job_resources()
        environment = worker_environment(services, resources, **LAMBDA_ENVIRONMENT)

        phase_samples: dict[str, dict[str, list[float]]] = {handler: {} for handler in HANDLERS}
        ratios = []
        for repeat in range(repeats):
            order = HANDLERS if repeat % 2 == 0 else tuple(reversed(HANDLERS))
            totals = {}
            for handler in order:
                phases = _run_probe(handler, f"cold-{repeat}-{handler}", environment, arrivals)
                for phase, seconds in phases.items():
                    phase_samples[handler].setdefault(phase, []).append(seconds)
                totals[handler] = phases["total"]
            ratios.append(ratio(totals["worker"], totals["naive"]))
        imports = {handler: _import_breakdown(handler, environment) for handler in HANDLERS}

    worker_total = median(phase_samples["worker"]["total"])
    naive_total = median(phase_samples["naive"]["total"])
    figures = [
        Figure(
            key="cold_start",
            label="Cold start to first model request: worker ÷ naive handler",
            value=median(ratios),
            unit="×",
            goal=RATIO_GOAL,
            beside=f"worker {worker_total:.3f} s, naive handler {naive_total:.3f} s",
            samples=tuple(ratios),
        ),
        _asset_figure(synthesize_when_missing),
    ]
    details = "\n\n".join([_phase_table(phase_samples), _import_table(imports)])
    return ScriptReport(script="bench/cold_start.py", figures=figures, details=details)


def _run_probe(handler: str, job_id: str, environment: dict[str, str], arrivals: ArrivalRecorder) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as folder:
        record_path = Path(folder) / "record.json"
        output_path = Path(folder) / "probe.json"
        record_path.write_text(json.dumps(_sqs_record(job_id)), encoding="utf-8")
        command = [sys.executable, str(PROBE), handler, str(record_path), str(output_path)]
        spawned = time.monotonic()
        completed = subprocess.run(
            command,
            cwd=REPOSITORY_ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=PROBE_TIMEOUT_SECONDS,
            check=False,
        )
        if completed.returncode != 0 or not output_path.exists():
            raise BenchmarkError(f"the {handler} cold-start probe failed:\n{completed.stderr.strip()[-3000:]}")
        probe = json.loads(output_path.read_text(encoding="utf-8"))
    if probe["response"].get("batchItemFailures"):
        raise BenchmarkError(f"the {handler} handler did not finish job {job_id}: {probe['response']}")
    first_request = arrivals.first_after(spawned)
    if first_request is None:
        raise BenchmarkError(f"the {handler} handler finished job {job_id} without a request reaching the emulator")
    return split_phases(probe, spawned, first_request, handler)


def _import_breakdown(handler: str, environment: dict[str, str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-importtime-") as folder:
        record_path = Path(folder) / "record.json"
        record_path.write_text(json.dumps(_sqs_record(f"importtime-{handler}")), encoding="utf-8")
        command = [
            sys.executable, "-X", "importtime", str(PROBE), handler, str(record_path), str(Path(folder) / "out.json")
        ]
        completed = subprocess.run(
            command,
            cwd=REPOSITORY_ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=PROBE_TIMEOUT_SECONDS,
            check=False,
        )
    if completed.returncode != 0:
        raise BenchmarkError(f"the {handler} import-time probe failed:\n{completed.stderr.strip()[-3000:]}")
    return import_time_by_package(completed.stderr, IMPORT_START_LINE, IMPORT_END_LINE)


def _sqs_record(job_id: str) -> dict[str, Any]:
    """Build an SQS record as Lambda passes it, for a job that never went through a queue."""
    return {
        "messageId": f"message-{job_id}",
        "receiptHandle": f"receipt-{job_id}",
        "body": json.dumps(job_body(job_id)),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench-jobs",
        "awsRegion": "us-east-1",
    }


def _asset_figure(synthesize_when_missing: bool) -> Figure:
    assembly = BUILD_DIR / "cdk.out"
    label = "Worker asset size, unzipped"
    try:
        if not any(assembly.glob("asset.*/worker/handler.py")):
            if not synthesize_when_missing:
                raise BenchmarkError(f"no synthesized assembly in {assembly}; run bench/synth_time.py first")
            run_cdk_synth(assembly)
        size = directory_size_bytes(find_worker_asset(assembly)) / BYTES_PER_MEGABYTE
    except BenchmarkError as error:
        return Figure(key="worker_asset_size", label=label, value=None, unit="MB", goal=ASSET_GOAL, note=str(error))
    return Figure(
        key="worker_asset_size",
        label=label,
        value=size,
        unit="MB",
        decimals=1,
        goal=ASSET_GOAL,
        beside="MB = 2^20 bytes, as Lambda counts its 250 MB limit",
        samples=(size,),
    )


def _phase_table(phase_samples: dict[str, dict[str, list[float]]]) -> str:
    lines = [
        "Cold start by phase, median in milliseconds (medians of phases need not add up to the median total):",
        "",
        "| Phase | Worker | Naive handler |",
        "| --- | --- | --- |",
    ]
    for phase in (*PHASES, UNSPLIT_PHASE, "total"):
        cells = []
        for handler in HANDLERS:
            samples = phase_samples[handler].get(phase)
            cells.append(f"{median(samples) * 1000:.0f}" if samples else "-")
        if any(cell != "-" for cell in cells):
            lines.append(f"| {phase} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def _import_table(imports: dict[str, dict[str, float]], rows: int = 8) -> str:
    packages = sorted(
        {package for totals in imports.values() for package in totals},
        key=lambda package: -max(totals.get(package, 0.0) for totals in imports.values()),
    )
    lines = [
        "Imports by package, from one `python -X importtime` run each (self time in ms; the tool adds overhead):",
        "",
        "| Package | Worker | Naive handler |",
        "| --- | --- | --- |",
    ]
    for package in packages[:rows]:
        lines.append(
            f"| {package} | {imports['worker'].get(package, 0.0):.0f} | {imports['naive'].get(package, 0.0):.0f} |"
        )
    rest = packages[rows:]
    lines.append(
        f"| other ({len(rest)} packages) | {sum(imports['worker'].get(p, 0.0) for p in rest):.0f} | "
        f"{sum(imports['naive'].get(p, 0.0) for p in rest):.0f} |"
    )
    lines.append(
        f"| all | {sum(imports['worker'].values()):.0f} | {sum(imports['naive'].values()):.0f} |"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7, help="cold starts per handler; the median is reported")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file (run_all uses it)")
    arguments = parser.parse_args(argv)
    if arguments.repeats < 1:
        parser.error(f"--repeats is {arguments.repeats}; use at least 1")

    report = measure(arguments.repeats)
    print_figures(report.figures)
    print(report.details)
    if arguments.json:
        report.write(arguments.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
