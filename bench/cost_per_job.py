"""Cost per job: billed Lambda duration × memory at the arm64 price, plus tokens at the Flex price.

A child process drains the same jobs twice per repeat through SQS on moto server, in batches of
cdk.json's ``batch_size``: once through the worker, which runs a batch's jobs concurrently, and
once one message at a time (Powertools BatchProcessor loop). Every model request waits
``--latency`` seconds in the emulator. Each invocation's wall time, rounded up to a millisecond,
is its billed duration at cdk.json's ``function_memory_mb``; each invocation is also one Lambda
request. Tokens are the emulator's counts for the jobs (one token per word). Prices come from
bench/prices.toml, which names the source and date of each.

    python -m bench.cost_per_job [--repeats 3] [--jobs 10] [--latency 1.0] [--prompt-words 300]
                                 [--prices FILE] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from bench.cost_model import (
    DEFAULT_PRICES_PATH,
    JobCost,
    PriceBook,
    PriceFileError,
    cost_per_job,
    load_price_book,
)
from bench.figures import Figure, ScriptReport, format_samples, median, print_figures, ratio
from bench.harness import (
    LocalServices,
    add_import_paths,
    deployed_settings,
    job_body,
    run_child,
    worker_environment,
    write_child_output,
)

MODULE = "bench.cost_per_job"
JOBS_PER_FIGURE = 1000
MODES = ("concurrent", "sequential")


def measure(repeats: int, jobs: int, latency_seconds: float, prompt_words: int, book: PriceBook) -> ScriptReport:
    settings = deployed_settings()
    batch_size = settings.batch_size
    memory_mb = settings.function_memory_mb
    model_id = settings.model_id
    with LocalServices() as services:
        services.start_emulator(latency_seconds=latency_seconds)
        resources = services.create_job_resources()
        environment = worker_environment(services, resources)
        arguments = ["--repeats", str(repeats), "--jobs", str(jobs), "--prompt-words", str(prompt_words)]
        durations = run_child(MODULE, [*arguments, "--batch-size", str(batch_size)], environment)

    input_tokens, output_tokens = _emulator_token_counts(jobs, prompt_words, settings.default_max_output_tokens)
    costs: dict[str, list[JobCost]] = {mode: [] for mode in MODES}
    for mode in MODES:
        for invocations in durations[mode]:
            costs[mode].append(
                cost_per_job(
                    invocations,
                    jobs=jobs,
                    memory_mb=memory_mb,
                    model_id=model_id,
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    book=book,
                )
            )
    totals = {mode: [cost.total_usd * JOBS_PER_FIGURE for cost in costs[mode]] for mode in MODES}
    lambda_ratios = [
        ratio(sequential.lambda_usd, concurrent.lambda_usd)
        for concurrent, sequential in zip(costs["concurrent"], costs["sequential"])
    ]
    figure = Figure(
        key="cost_per_job",
        label=(
            f"Cost per {JOBS_PER_FIGURE:,} jobs, worker ({batch_size}-job batches, {memory_mb} MB, "
            f"{latency_seconds:g} s model latency)"
        ),
        value=median(totals["concurrent"]),
        unit="USD",
        decimals=4,
        beside=(
            f"one message at a time: {median(totals['sequential']):.4f} USD; "
            f"its Lambda part is {median(lambda_ratios):.1f}× the worker's"
        ),
        samples=tuple(totals["concurrent"]),
    )
    details = _details(costs, durations, jobs, input_tokens, output_tokens, model_id, prompt_words, book)
    return ScriptReport(script="bench/cost_per_job.py", figures=[figure], details=details)


def _emulator_token_counts(jobs: int, prompt_words: int, max_output_tokens: int) -> tuple[int, int]:
    """Return the run's input and output tokens as the emulator counts them for these jobs."""
    add_import_paths()
    from gemma_batch.emulator import count_tokens, expected_answer

    input_tokens = output_tokens = 0
    for index in range(jobs):
        prompt = job_body(f"job-{index}", prompt_words)["prompt"]
        answer, _ = expected_answer(prompt, max_output_tokens)
        input_tokens += count_tokens(prompt)
        output_tokens += count_tokens(answer)
    return input_tokens, output_tokens


def _details(
    costs: dict[str, list[JobCost]],
    durations: dict[str, list[list[float]]],
    jobs: int,
    input_tokens: int,
    output_tokens: int,
    model_id: str,
    prompt_words: int,
    book: PriceBook,
) -> str:
    per_thousand = JOBS_PER_FIGURE
    lines = [
        f"{jobs} jobs per repeat with {prompt_words}-word prompts: {input_tokens / jobs:.0f} input and "
        f"{output_tokens / jobs:.0f} output tokens per job (the emulator's answers are short), model {model_id}.",
        "",
        f"| Processing | Lambda USD per {per_thousand:,} jobs | Tokens USD per {per_thousand:,} jobs | "
        "Total | Billed seconds per repeat |",
        "| --- | --- | --- | --- | --- |",
    ]
    for mode, label in (("concurrent", "worker"), ("sequential", "one message at a time")):
        billed = [sum(invocations) for invocations in durations[mode]]
        lines.append(
            f"| {label} | {median([c.lambda_usd * per_thousand for c in costs[mode]]):.5f} | "
            f"{median([c.tokens_usd * per_thousand for c in costs[mode]]):.5f} | "
            f"{median([c.total_usd * per_thousand for c in costs[mode]]):.5f} | {format_samples(billed)} |"
        )
    model = book.model(model_id)
    lines += [
        "",
        "Price inputs (bench/prices.toml):",
        "",
        "| Price | Value | Source | Read |",
        "| --- | --- | --- | --- |",
        _price_row("Lambda arm64 duration", f"{book.lambda_arm64_duration.value} {book.lambda_arm64_duration.unit}",
                   book.lambda_arm64_duration.source, book.lambda_arm64_duration.read,
                   book.lambda_arm64_duration.assumption),
        _price_row("Lambda requests", f"{book.lambda_requests.value} {book.lambda_requests.unit}",
                   book.lambda_requests.source, book.lambda_requests.read, book.lambda_requests.assumption),
        _price_row(f"{model_id} tokens", f"{model.input_per_million} in, {model.output_per_million} out, {model.unit}",
                   model.source, model.read, model.assumption),
        _price_row("Flex discount", f"{book.flex_discount.value} {book.flex_discount.unit}",
                   book.flex_discount.source, book.flex_discount.read, book.flex_discount.assumption),
    ]
    return "\n".join(lines)


def _price_row(name: str, value: str, source: str, read: str, assumption: bool) -> str:
    marker = " **(assumption)**" if assumption else ""
    return f"| {name}{marker} | {value} | {source} | {read} |"


def run_child_measurement(repeats: int, jobs: int, prompt_words: int, batch_size: int) -> dict[str, Any]:
    """Drain ``jobs`` jobs per repeat with each processing mode; return each invocation's wall time."""
    add_import_paths()
    from gemma_batch.local.sqs_driver import SqsDeliveryDriver
    from worker.handler import lambda_handler

    from bench.harness import InvocationTimer, child_sqs_client, one_message_at_a_time, send_jobs

    sqs = child_sqs_client()
    queue_url = os.environ["JOB_QUEUE_URL"]
    timers = {
        "concurrent": InvocationTimer(lambda_handler),
        "sequential": InvocationTimer(one_message_at_a_time(lambda_handler)),
    }
    drivers = {
        mode: SqsDeliveryDriver(sqs, queue_url, timer, batch_size=batch_size, wait_time_seconds=1)
        for mode, timer in timers.items()
    }
    # A warm-up job: the cost figure is about warm instances, since cold starts are rare at volume.
    send_jobs(sqs, queue_url, [job_body("warm-up", prompt_words)])
    drivers["concurrent"].drain(until_empty=True)

    durations: dict[str, list[list[float]]] = {mode: [] for mode in MODES}
    for repeat in range(repeats):
        modes = MODES if repeat % 2 == 0 else tuple(reversed(MODES))
        for mode in modes:
            timers[mode].durations.clear()
            bodies = [job_body(f"cost-{repeat}-{mode}-{index}", prompt_words) for index in range(jobs)]
            send_jobs(sqs, queue_url, bodies)
            result = drivers[mode].drain(until_empty=True)
            if result.reported_failures or result.handler_errors or result.deleted != jobs:
                raise RuntimeError(f"repeat {repeat}, {mode}: not every job finished in one delivery ({result})")
            durations[mode].append(list(timers[mode].durations))
    return durations


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="runs per processing mode; the median is reported")
    parser.add_argument("--jobs", type=int, default=10, help="jobs per run")
    parser.add_argument("--latency", type=float, default=1.0, help="emulator latency per model request, in seconds")
    parser.add_argument("--prompt-words", type=int, default=300, help="words (emulator tokens) per prompt")
    parser.add_argument(
        "--prices", type=Path, default=DEFAULT_PRICES_PATH, help="price file (default: bench/prices.toml)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file (run_all uses it)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-output", help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=5, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if min(arguments.repeats, arguments.jobs, arguments.prompt_words) < 1:
        parser.error("--repeats, --jobs and --prompt-words must be at least 1")

    if arguments.child:
        write_child_output(
            arguments.child_output,
            run_child_measurement(arguments.repeats, arguments.jobs, arguments.prompt_words, arguments.batch_size),
        )
        return 0

    try:
        book = load_price_book(arguments.prices)
    except PriceFileError as error:
        parser.error(str(error))
    report = measure(arguments.repeats, arguments.jobs, arguments.latency, arguments.prompt_words, book)
    print_figures(report.figures)
    print(report.details)
    if arguments.json:
        report.write(arguments.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
