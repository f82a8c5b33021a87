"""Retry efficiency: HTTP requests per finished job while 30 % of model requests fail with HTTP 503.

Each repeat starts a fresh emulator, seeded with the repeat number, that returns 503 to each
request with probability 0.3. A child process drains a queue of jobs through the real worker
with SQS's delivery rules (visibility timeout, receive count, redrive to a dead-letter queue
after cdk.json's max_receive_count receives). With independent failures every request succeeds
with probability 0.7, so the ideal is 1 / 0.7 = 1.43 requests per finished job.

Beside it, the same jobs sent the way bench/naive_handler.py sends them: the OpenAI SDK's
default retries (2) stacked under one application retry, and a failed job delivered again up to
max_receive_count times. Both are also measured during an outage (503 for every request) as
requests per job in one delivery, which is the load that each approach adds to an endpoint that
is already failing.

    python -m bench.retry_efficiency [--repeats 5] [--jobs 100] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

from bench.figures import Figure, Goal, ScriptReport, format_samples, median, print_figures, ratio
from bench.harness import (
    LocalServices,
    add_import_paths,
    deployed_settings,
    job_body,
    run_child,
    worker_environment,
    write_child_output,
)

FAILURE_FRACTION = 0.3
GOAL = Goal(1.6)
OUTAGE_JOBS = 10
BASELINE_THREADS = 10
MODULE = "bench.retry_efficiency"


def measure(repeats: int, jobs: int) -> ScriptReport:
    samples: dict[str, list[float]] = {"worker": [], "baseline": [], "worker_outage": [], "baseline_outage": []}
    dead_lettered = 0
    with LocalServices() as services:
        for repeat in range(repeats):
            for mode in ("worker", "baseline"):
                requests, finished, dead = _run_mode(services, mode, seed=repeat, jobs=jobs, fraction=FAILURE_FRACTION)
                samples[mode].append(ratio(requests, finished))
                dead_lettered += dead
                requests, _, _ = _run_mode(services, f"{mode}_outage", seed=repeat, jobs=OUTAGE_JOBS, fraction=1.0)
                samples[f"{mode}_outage"].append(requests / OUTAGE_JOBS)

    attempts = deployed_settings().max_attempts_per_delivery
    figure = Figure(
        key="retry_efficiency",
        label=f"Retry efficiency: HTTP requests per finished job, {FAILURE_FRACTION:.0%} of requests fail with 503",
        value=median(samples["worker"]),
        decimals=2,
        goal=GOAL,
        beside=(
            f"SDK default retries under one application retry: {median(samples['baseline']):.2f}; "
            f"ideal {1 / (1 - FAILURE_FRACTION):.2f}"
        ),
        samples=tuple(samples["worker"]),
        note=f"{dead_lettered} jobs reached the dead-letter queue" if dead_lettered else "",
    )
    outage = Figure(
        key="retry_outage_requests",
        label="Requests per job in one delivery while every request fails with 503",
        value=median(samples["worker_outage"]),
        decimals=1,
        beside=f"SDK default retries under one application retry: {median(samples['baseline_outage']):.1f}",
        samples=tuple(samples["worker_outage"]),
    )
    details = "\n".join(
        [
            f"{jobs} jobs per repeat. The worker's retry budget is max_attempts_per_delivery = {attempts} "
            "(cdk.json). Samples by repeat:",
            "",
            "| Measurement | Worker | SDK retries under an application retry |",
            "| --- | --- | --- |",
            f"| requests per finished job, {FAILURE_FRACTION:.0%} 503 | {format_samples(samples['worker'])} | "
            f"{format_samples(samples['baseline'])} |",
            f"| requests per job in one delivery, outage | {format_samples(samples['worker_outage'], 1)} | "
            f"{format_samples(samples['baseline_outage'], 1)} |",
        ]
    )
    return ScriptReport(script="bench/retry_efficiency.py", figures=[figure, outage], details=details)


def _run_mode(services: LocalServices, mode: str, *, seed: int, jobs: int, fraction: float) -> tuple[int, int, int]:
    """Run one child with a fresh emulator and queue, and return (model requests, HTTP 200 responses, dead letters)."""
    emulator = services.start_emulator(seed=seed)
    emulator.faults.fail_fraction(fraction, "unavailable")
    resources = services.create_job_resources()
    environment = worker_environment(services, resources)
    run_child(MODULE, ["--mode", mode, "--jobs", str(jobs), "--seed", str(seed)], environment)
    statistics = emulator.stats.snapshot()
    successful = statistics["by_status"].get("200", 0)
    dead_letters = services.queue_message_count(resources.dead_letter_queue_url)
    return statistics["requests_total"], successful, dead_letters


def run_child_mode(mode: str, jobs: int, seed: int) -> dict[str, Any]:
    """Send ``jobs`` jobs through the worker or the naive way, as ``mode`` selects.

    The outage modes deliver each job once.
    """
    add_import_paths()
    bodies = [job_body(f"retry-{seed}-{mode}-{index}") for index in range(jobs)]
    if mode.startswith("worker"):
        return _run_worker(bodies, drain=mode == "worker")
    return _run_baseline(bodies, deliveries=deployed_settings().max_receive_count if mode == "baseline" else 1)


def _run_worker(bodies: list[dict[str, Any]], drain: bool) -> dict[str, Any]:
    from gemma_batch.local.sqs_driver import SqsDeliveryDriver
    from worker.handler import lambda_handler

    from bench.harness import child_sqs_client, send_jobs

    sqs = child_sqs_client()
    queue_url = os.environ["JOB_QUEUE_URL"]
    send_jobs(sqs, queue_url, bodies)
    driver = SqsDeliveryDriver(sqs, queue_url, lambda_handler, batch_size=10, wait_time_seconds=1)
    if not drain:
        delivered = 0
        while delivered < len(bodies):
            batch = driver.deliver_once()
            if batch is None:
                raise RuntimeError(f"only {delivered} of {len(bodies)} jobs were delivered once")
            delivered += len(batch.delivered)
        return {"delivered": delivered}
    result = driver.drain(until_empty=True, max_rounds=50 * deployed_settings().max_receive_count + len(bodies))
    return {"deliveries": result.deliveries, "batches": result.batches}


def _run_baseline(bodies: list[dict[str, Any]], deliveries: int) -> dict[str, Any]:
    import boto3
    import openai

    from bench.naive_handler import complete_with_application_retry, read_api_key

    api_key = read_api_key(boto3.client("secretsmanager"))

    def run_job(body: dict[str, Any]) -> bool:
        # A new client per delivery, as the naive handler builds its clients on every call.
        for _ in range(deliveries):
            client = openai.OpenAI(base_url=os.environ["MANTLE_BASE_URL"], api_key=api_key)
            try:
                complete_with_application_retry(client, body)
                return True
            except openai.APIStatusError:
                continue
        return False

    with ThreadPoolExecutor(max_workers=BASELINE_THREADS) as pool:
        finished = sum(pool.map(run_job, bodies))
    return {"finished": finished}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--repeats", type=int, default=5, help="runs, each with its own fault seed; the median is reported"
    )
    parser.add_argument("--jobs", type=int, default=100, help="jobs per run")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file (run_all uses it)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-output", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.repeats < 1 or arguments.jobs < 1:
        parser.error("--repeats and --jobs must be at least 1")

    if arguments.child:
        write_child_output(arguments.child_output, run_child_mode(arguments.mode, arguments.jobs, arguments.seed))
        return 0

    report = measure(arguments.repeats, arguments.jobs)
    print_figures(report.figures)
    print(report.details)
    if arguments.json:
        report.write(arguments.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
