"""Ramp controller benchmark: the real worker against a token quota offered three times that load, controller on and off.

The Mantle emulator rejects requests beyond a tokens-per-minute quota with HTTP 429 (its capacity model). A pool of
``worker_pool_size`` pollers stands in for the event source mapping: each delivers SQS batches of
``batch_size`` jobs from moto server to the real worker handler, in a child process. With the
controller on, the ramp controller's decision logic runs once per minute on the worker's own EMF
counts and sets how many pollers may run, through the rate-to-concurrency mapping that the Lambda
function applies. With it off, all pollers run.

The quota is measured, not guessed: a calibration run without a quota measures the tokens per
minute that the full pool gets through on this machine, and the quota is that rate ÷ ``--load``.
So the full pool offers Mantle ``--load`` times the quota, whatever the machine. Before each
mode, the job queue is filled with the jobs that rate would finish in the run.

Time runs ``--time-scale`` times faster than in AWS. At the default of 30, two seconds of
wall-clock time stand for one minute: the quota applies per two seconds, the controller decides
every two seconds, the hold of ``ramp_hold_minutes`` from cdk.json lasts that many times two
seconds, and the emulator's latency and the worker's backoff are divided by 30.
Printed per mode: goodput (tokens of successful requests per minute) ÷ quota, the 429 share of
Mantle requests, and the jobs lost to the dead-letter queue.

    python -m bench.ramp_benchmark [--minutes 30] [--load 3] [--quota TOKENS] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench.harness import (
    LocalServices,
    add_import_paths,
    deployed_settings,
    job_body,
    run_child,
    worker_environment,
    write_child_output,
)

MODES = ("off", "on")
CALIBRATION = "calibration"
CALIBRATION_MINUTES = 5
PROMPT_WORDS = 50
MAX_OUTPUT_TOKENS = 64
# The worker's backoff defaults in AWS (its settings), before scaling.
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 20.0
# Jobs sent at once while the queue is filled; more senders do not make moto server faster.
FILL_THREADS = 8


@dataclass(frozen=True)
class Setup:
    """One run's parameters. Minutes and the latency are in AWS time; ``time_scale`` maps them to wall time.

    ``quota`` is in tokens per minute, or 0 for no quota (the calibration run).
    """

    time_scale: float
    minutes: int
    load: float
    latency_seconds: float
    pool_size: int
    batch_size: int
    quota: int = 0

    @property
    def minute_seconds(self) -> float:
        """Wall-clock seconds of one minute."""
        return 60.0 / self.time_scale

    def wall_seconds(self, aws_seconds: float) -> float:
        return aws_seconds / self.time_scale


@dataclass(frozen=True)
class RunResult:
    mode: str
    jobs_offered: int
    jobs_succeeded: int
    jobs_lost: int
    jobs_left: int
    requests: int
    throttled_429: int
    succeeded_tokens: int
    minutes: int
    quota: int
    concurrency_per_minute: list[int]
    sqs_errors: int

    @property
    def throttled_share(self) -> float:
        return self.throttled_429 / self.requests if self.requests else 0.0

    @property
    def tokens_per_minute(self) -> float:
        return self.succeeded_tokens / self.minutes

    @property
    def goodput_ratio(self) -> float:
        return self.tokens_per_minute / self.quota if self.quota else math.nan


def tokens_per_job() -> int:
    """Return the tokens one benchmark job uses: its input words plus the words of the emulator's response."""
    add_import_paths()
    from gemma_batch.emulator import count_tokens, expected_answer

    prompt = job_body("sizing", PROMPT_WORDS)["prompt"]
    return count_tokens(prompt) + count_tokens(expected_answer(prompt, MAX_OUTPUT_TOKENS)[0])


def run_once(mode: str, setup: Setup, jobs: int) -> RunResult:
    """Run one mode against a fresh emulator and fresh queues holding ``jobs`` jobs, and read the outcome."""
    with LocalServices() as services:
        emulator = services.start_emulator(latency_seconds=setup.wall_seconds(setup.latency_seconds))
        if setup.quota:
            emulator.set_token_quota(setup.quota, window_seconds=setup.minute_seconds)
        resources = services.create_job_resources()
        environment = worker_environment(
            services,
            resources,
            BACKOFF_BASE_SECONDS=repr(setup.wall_seconds(BACKOFF_BASE_SECONDS)),
            BACKOFF_MAX_SECONDS=repr(setup.wall_seconds(BACKOFF_MAX_SECONDS)),
        )
        child = run_child(
            "bench.ramp_benchmark",
            ["--mode", mode, "--setup", json.dumps(asdict(setup)), "--fill", str(jobs)],
            environment,
        )
        jobs_lost = services.queue_message_count(resources.dead_letter_queue_url)
        jobs_left = services.queue_message_count(resources.queue_url)
        by_status = emulator.stats.snapshot()["by_status"]

    totals = child["totals"]
    return RunResult(
        mode=mode,
        jobs_offered=jobs,
        jobs_succeeded=int(totals.get("JobsSucceeded", 0)),
        jobs_lost=jobs_lost,
        jobs_left=jobs_left,
        requests=sum(by_status.values()),
        throttled_429=by_status.get("429", 0),
        succeeded_tokens=int(totals.get("InputTokens", 0) + totals.get("OutputTokens", 0)),
        minutes=setup.minutes,
        quota=setup.quota,
        concurrency_per_minute=child["concurrency_per_minute"],
        sqs_errors=child["sqs_errors"],
    )


def calibrate(setup: Setup) -> RunResult:
    """Measure the full pool's tokens per minute without a quota, on a queue that cannot run dry."""
    calibration = replace(setup, minutes=CALIBRATION_MINUTES, quota=0)
    # Ten jobs per poller and minute is more than this machine's moto server delivers.
    jobs = 10 * setup.pool_size * CALIBRATION_MINUTES
    result = run_once(CALIBRATION, calibration, jobs)
    if result.jobs_left == 0:
        raise RuntimeError(f"the calibration queue of {jobs} jobs ran dry; the measured rate is too low")
    return result


def format_report(calibration: RunResult, results: list[RunResult], setup: Setup) -> str:
    settings = deployed_settings()
    by_mode = {result.mode: result for result in results}
    rows = [
        ("goodput ÷ quota", lambda result: f"{result.goodput_ratio:.2f}"),
        ("429 share of requests", lambda result: f"{result.throttled_share:.1%}"),
        ("jobs lost (dead-letter queue)", lambda result: str(result.jobs_lost)),
        ("jobs succeeded", lambda result: str(result.jobs_succeeded)),
        ("jobs offered (queued at the start)", lambda result: str(result.jobs_offered)),
        ("jobs left in the queue", lambda result: str(result.jobs_left)),
        ("Mantle requests", lambda result: str(result.requests)),
        ("SQS calls that moto server failed", lambda result: str(result.sqs_errors)),
    ]
    lines = [
        f"Ramp benchmark: quota {setup.quota} tokens per minute, offered {setup.load:g}× that load, "
        f"{setup.minutes} minutes per mode",
        f"Calibration: the full pool got through {calibration.tokens_per_minute:.0f} tokens per minute without a "
        f"quota ({calibration.jobs_succeeded} jobs in {calibration.minutes} minutes); quota = that ÷ {setup.load:g}",
        f"Time scale: {setup.time_scale:g}× faster than AWS, one minute is {setup.minute_seconds:g} s of wall-clock "
        f"time; ramp_hold_minutes={settings.ramp_hold_minutes} from cdk.json holds "
        f"{settings.ramp_hold_minutes * setup.minute_seconds:g} s; the emulator's latency of "
        f"{setup.latency_seconds:g} s is {setup.wall_seconds(setup.latency_seconds):.3g} s",
        f"Pool: {setup.pool_size} pollers (worker_pool_size {settings.worker_pool_size} in cdk.json), batches of "
        f"{setup.batch_size} (batch_size {settings.batch_size}), "
        f"max_receive_count={settings.max_receive_count}, ramp_target_requests_per_minute="
        f"{settings.ramp_target_requests_per_minute}; {tokens_per_job()} tokens per job, {MAX_OUTPUT_TOKENS} max_tokens",
        "",
        "| Figure | Controller off | Controller on |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {label} | {value(by_mode['off'])} | {value(by_mode['on'])} |" for label, value in rows]
    lines += [
        "",
        "Maximum concurrency per minute with the controller on:",
        " ".join(str(value) for value in by_mode["on"].concurrency_per_minute),
    ]
    return "\n".join(lines)


def write_json(path: Path, calibration: RunResult, results: list[RunResult], setup: Setup) -> None:
    """Write the figures in the format of the other benchmark scripts (bench/figures.py), for bench/run_all.py."""
    from bench.figures import Figure, ScriptReport

    by_mode = {result.mode: result for result in results}
    off, on = by_mode["off"], by_mode["on"]
    load = f"{setup.load:g}× load"
    figures = [
        Figure(key="ramp_goodput", label=f"Ramp controller on: goodput ÷ token quota at {load}",
               value=on.goodput_ratio, beside=f"controller off: {off.goodput_ratio:.2f}"),
        Figure(key="ramp_throttled_share", label=f"Ramp controller on: 429 share of requests at {load}",
               value=on.throttled_share * 100, unit="%", decimals=1,
               beside=f"controller off: {off.throttled_share:.1%}"),
        Figure(key="ramp_jobs_lost", label=f"Ramp controller on: jobs lost to the dead-letter queue at {load}",
               value=float(on.jobs_lost), decimals=0, beside=f"controller off: {off.jobs_lost}"),
    ]
    report = ScriptReport(script="bench/ramp_benchmark.py", figures=figures,
                          details=format_report(calibration, results, setup))
    report.write(path)


# Child side: fills the queue, then runs the worker pool and the controller in one process. -----------------------


class EmfCollector:
    """A replacement for stdout that adds up the EMF documents' metric values and drops every other line."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = ""
        self._totals: Counter[str] = Counter()

    def write(self, text: str) -> int:
        with self._lock:
            self._buffer += text
            *lines, self._buffer = self._buffer.split("\n")
            for line in lines:
                if line.startswith("{") and '"_aws"' in line:
                    self._add(json.loads(line))
        return len(text)

    def flush(self) -> None:
        return None

    def totals(self) -> Counter[str]:
        with self._lock:
            return Counter(self._totals)

    def _add(self, document: dict[str, Any]) -> None:
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = document.get(metric["Name"], 0)
                self._totals[metric["Name"]] += sum(value) if isinstance(value, list) else value


class SerializedReceives:
    """An SQS client whose ReceiveMessage calls run one at a time; every other call passes straight through.

    moto 5.2.5's SQS backend is not safe for concurrent receives: two threads that move the same
    message to the dead-letter queue fail with "list.remove(x): x not in list".
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def receive_message(self, **arguments: Any) -> Any:
        with self._lock:
            return self._client.receive_message(**arguments)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def fill_queue(sqs: Any, queue_url: str, jobs: int) -> None:
    """Send ``jobs`` benchmark jobs, from FILL_THREADS threads at once because each moto SQS call is slow."""
    from bench.harness import send_jobs

    def send(start: int) -> None:
        count = min(50, jobs - start)
        send_jobs(sqs, queue_url, [
            job_body(f"job-{start + index}", PROMPT_WORDS) | {"max_output_tokens": MAX_OUTPUT_TOKENS}
            for index in range(count)
        ])

    with ThreadPoolExecutor(max_workers=FILL_THREADS) as pool:
        list(pool.map(send, range(0, jobs, 50)))


def run_child_measurement(mode: str, setup: Setup, jobs: int) -> dict[str, Any]:
    add_import_paths()
    import logging

    from botocore.exceptions import ClientError

    from gemma_batch.local.sqs_driver import SqsDeliveryDriver
    from ramp_controller.policy import RampPolicy, WindowCounts, concurrency_for_rate, decide, initial_state
    from worker.handler import lambda_handler

    from bench.harness import child_sqs_client

    logging.basicConfig(level=logging.ERROR)
    settings = deployed_settings()
    sqs = SerializedReceives(child_sqs_client())
    queue_url = os.environ["JOB_QUEUE_URL"]
    fill_queue(sqs, queue_url, jobs)

    collector = EmfCollector()
    sys.stdout = collector  # the worker writes its EMF documents to stdout
    policy = RampPolicy(
        target_rate=settings.ramp_target_requests_per_minute,
        pool_size=setup.pool_size,
        hold_seconds=settings.ramp_hold_minutes * 60.0,
    )
    allowed = [setup.pool_size]  # the event source mapping's maximum concurrency
    stop = threading.Event()
    sqs_errors: Counter[str] = Counter()

    def poll(index: int) -> None:
        # The invocation timeout stays unscaled: the worker keeps a fixed 5 s margin before it.
        driver = SqsDeliveryDriver(sqs, queue_url, lambda_handler, batch_size=setup.batch_size,
                                   timeout_seconds=settings.function_timeout_seconds, wait_time_seconds=0)
        while not stop.is_set():
            if index >= allowed[0]:
                time.sleep(0.01)
                continue
            try:
                delivered = driver.deliver_once()
            except ClientError as error:
                # moto server sometimes returns 500 under concurrent SQS calls, so the poller counts it and goes on.
                sqs_errors[error.response.get("Error", {}).get("Code", "unknown")] += 1
                delivered = None
            if delivered is None:
                time.sleep(0.01)

    pollers = [threading.Thread(target=poll, args=(index,), daemon=True) for index in range(setup.pool_size)]
    for poller in pollers:
        poller.start()

    state = initial_state(policy)
    concurrency_per_minute = []
    previous = collector.totals()
    started = time.monotonic()
    for minute in range(1, setup.minutes + 1):
        time.sleep(max(0.0, started + minute * setup.minute_seconds - time.monotonic()))
        current = collector.totals()
        window = WindowCounts(
            seconds=60.0,
            requests=int(current["Requests"] - previous["Requests"]),
            throttled_429=int(current["Throttled429"] - previous["Throttled429"]),
            unavailable_503=int(current["Unavailable503"] - previous["Unavailable503"]),
        )
        previous = current
        concurrency_per_minute.append(allowed[0])
        if mode == "on":
            state = decide(policy, state, window).state
            allowed[0] = concurrency_for_rate(policy, state.rate)

    # Invocations still running finish and count; none starts after the last minute.
    stop.set()
    for poller in pollers:
        poller.join(timeout=60)
    sys.stdout = sys.__stdout__
    return {
        "totals": dict(collector.totals()),
        "concurrency_per_minute": concurrency_per_minute,
        "sqs_errors": sum(sqs_errors.values()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=30, help="minutes per mode, in AWS time (default: 30)")
    parser.add_argument("--load", type=float, default=3.0, help="offered load as a multiple of the quota (default: 3)")
    parser.add_argument("--quota", type=int, default=0,
                        help="the emulator's tokens-per-minute quota; 0 measures the full pool and divides by --load "
                        "(default: 0)")
    parser.add_argument("--latency", type=float, default=20.0,
                        help="emulator latency per request in AWS seconds, before scaling (default: 20)")
    parser.add_argument("--time-scale", type=float, default=30.0,
                        help="how many times faster than AWS time runs (default: 30, so a minute takes 2 s)")
    parser.add_argument("--pool-size", type=int, default=0,
                        help="pollers, the maximum concurrency (default: worker_pool_size from cdk.json)")
    parser.add_argument("--batch-size", type=int, default=0,
                        help="jobs per invocation, from 1 to 10 (default: batch_size from cdk.json)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file (run_all uses it)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-output", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=(*MODES, CALIBRATION), help=argparse.SUPPRESS)
    parser.add_argument("--setup", help=argparse.SUPPRESS)
    parser.add_argument("--fill", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)

    if arguments.child:
        setup = Setup(**json.loads(arguments.setup))
        write_child_output(arguments.child_output, run_child_measurement(arguments.mode, setup, arguments.fill))
        return 0

    for option, value, minimum in (
        ("--minutes", arguments.minutes, 1),
        ("--load", arguments.load, 1),
        ("--quota", arguments.quota, 0),
        ("--latency", arguments.latency, 0),
        ("--time-scale", arguments.time_scale, 1),
    ):
        if value < minimum:
            parser.error(f"{option} is {value:g}; use {minimum} or more")

    settings = deployed_settings()
    pool_size = arguments.pool_size or settings.worker_pool_size
    batch_size = arguments.batch_size or settings.batch_size
    if not 2 <= pool_size <= 1000 or not 1 <= batch_size <= 10:
        parser.error(f"--pool-size {pool_size} must be from 2 to 1000 and --batch-size {batch_size} from 1 to 10")
    setup = Setup(arguments.time_scale, arguments.minutes, arguments.load, arguments.latency, pool_size, batch_size)
    calibration = calibrate(setup)
    quota = arguments.quota or max(1, int(calibration.tokens_per_minute / setup.load))
    setup = replace(setup, quota=quota)
    # The jobs that the full pool would finish in the run: load × quota tokens per minute.
    jobs = math.ceil(setup.load * quota * setup.minutes / tokens_per_job())
    results = [run_once(mode, setup, jobs) for mode in MODES]
    print(format_report(calibration, results, setup))
    if arguments.json:
        write_json(arguments.json, calibration, results, setup)
    return 0


if __name__ == "__main__":
    sys.exit(main())
