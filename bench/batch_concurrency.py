"""Batch concurrency: wall time of a 10-job batch ÷ wall time of one job, with the emulator's latency fixed.

Beside it, the same 10-job batch processed one message at a time, as a plain Powertools
BatchProcessor loop would. A warm worker in a child process handles real SQS batches from moto
server; every model request waits ``--latency`` seconds in the emulator.

    python -m bench.batch_concurrency [--repeats 5] [--latency 1.0] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from bench.figures import Figure, Goal, ScriptReport, format_samples, median, print_figures, ratio
from bench.harness import (
    LocalServices,
    add_import_paths,
    job_body,
    run_child,
    worker_environment,
    write_child_output,
)

BATCH_SIZE = 10
GOAL = Goal(1.2)


def measure(repeats: int, latency_seconds: float) -> ScriptReport:
    with LocalServices() as services:
        services.start_emulator(latency_seconds=latency_seconds)
        resources = services.create_job_resources()
        environment = worker_environment(services, resources)
        measured = run_child("bench.batch_concurrency", ["--repeats", str(repeats)], environment)
        if services.queue_message_count(resources.dead_letter_queue_url):
            raise RuntimeError("a benchmark job reached the dead-letter queue; see the worker's log above")

    timings, cpu_times = measured["wall"], measured["cpu"]
    concurrent = [ratio(batch, single) for batch, single in zip(timings["batch"], timings["single"])]
    sequential = [ratio(batch, single) for batch, single in zip(timings["sequential"], timings["single"])]
    figure = Figure(
        key="batch_concurrency",
        label=f"Batch concurrency: {BATCH_SIZE}-job batch ÷ 1 job ({latency_seconds:g} s model latency)",
        value=median(concurrent),
        unit="×",
        goal=GOAL,
        beside=f"one message at a time (Powertools BatchProcessor loop): {median(sequential):.2f}×",
        samples=tuple(concurrent),
    )
    rows = [
        ("single", "1 job"),
        ("batch", f"{BATCH_SIZE} jobs, worker"),
        ("sequential", f"{BATCH_SIZE} jobs, one at a time"),
    ]
    details = "\n".join(
        [
            "Wall time and the worker process's CPU time (all threads) per invocation:",
            "",
            "| Invocation | Median wall time (s) | Median CPU time (s) | Wall time samples (s) |",
            "| --- | --- | --- | --- |",
            *[
                f"| {label} | {median(timings[name]):.3f} | {median(cpu_times[name]):.3f} | "
                f"{format_samples(timings[name], 3)} |"
                for name, label in rows
            ],
        ]
    )
    return ScriptReport(script="bench/batch_concurrency.py", figures=[figure], details=details)


def run_child_measurement(repeats: int) -> dict[str, Any]:
    """Time single-job, 10-job and one-at-a-time 10-job invocations of the real handler, warm."""
    add_import_paths()
    from gemma_batch.local.sqs_driver import SqsDeliveryDriver
    from worker.handler import lambda_handler

    from bench.harness import InvocationTimer, child_sqs_client, one_message_at_a_time, send_jobs

    sqs = child_sqs_client()
    queue_url = os.environ["JOB_QUEUE_URL"]
    concurrent = InvocationTimer(lambda_handler)
    sequential = InvocationTimer(one_message_at_a_time(lambda_handler))
    drivers = {
        "concurrent": SqsDeliveryDriver(sqs, queue_url, concurrent, batch_size=BATCH_SIZE, wait_time_seconds=1),
        "sequential": SqsDeliveryDriver(sqs, queue_url, sequential, batch_size=BATCH_SIZE, wait_time_seconds=1),
    }

    def deliver(driver_name: str, label: str, count: int) -> tuple[float, float]:
        send_jobs(sqs, queue_url, [job_body(f"{label}-{index}") for index in range(count)])
        timer = concurrent if driver_name == "concurrent" else sequential
        result = drivers[driver_name].deliver_once()
        if result is None or len(result.delivered) != count:
            delivered = 0 if result is None else len(result.delivered)
            raise RuntimeError(f"expected one SQS batch of {count} messages for {label}, received {delivered}")
        if result.reported_failures or result.handler_error:
            raise RuntimeError(f"{label}: the handler did not finish every job ({result})")
        return timer.durations[-1], timer.cpu_times[-1]

    # The first invocation builds the worker's clients and reads the key; Lambda would pay it once per instance.
    deliver("concurrent", "warm-up", 1)
    timings: dict[str, list[float]] = {name: [] for name in ("single", "batch", "sequential")}
    cpu_times: dict[str, list[float]] = {name: [] for name in ("single", "batch", "sequential")}
    for repeat in range(repeats):
        steps = [
            ("single", "concurrent", 1),
            ("batch", "concurrent", BATCH_SIZE),
            ("sequential", "sequential", BATCH_SIZE),
        ]
        # Alternate the order, so a slow phase of the machine does not always hit the same figure.
        if repeat % 2:
            steps.reverse()
        for name, driver_name, count in steps:
            wall_time, cpu_time = deliver(driver_name, f"r{repeat}-{name}", count)
            timings[name].append(wall_time)
            cpu_times[name].append(cpu_time)
    return {"wall": timings, "cpu": cpu_times}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="measurements per figure; the median is reported")
    parser.add_argument("--latency", type=float, default=1.0, help="emulator latency per model request, in seconds")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file (run_all uses it)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-output", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.repeats < 1:
        parser.error(f"--repeats is {arguments.repeats}; use at least 1")

    if arguments.child:
        write_child_output(arguments.child_output, run_child_measurement(arguments.repeats))
        return 0

    report = measure(arguments.repeats, arguments.latency)
    print_figures(report.figures)
    print(report.details)
    if arguments.json:
        report.write(arguments.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
