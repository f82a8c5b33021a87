"""The local run (``make local``): jobs end to end on this machine, against moto server and the Mantle emulator.

The run starts moto server and the emulator on 127.0.0.1 and creates one region's job queue (with a
redrive policy to its dead-letter queue), results bucket and API key secret on moto. The real rotation
function fills the secret. Then each line of the jobs file goes into the queue as one message, and the
SQS delivery driver hands the messages to the real worker handler under SQS's delivery rules. At the end
the run downloads every result, failure record and dead-letter message and prints a summary.

The worker's settings come from cdk.json (first configured region), except for the timings below,
which are shortened so a local run takes seconds.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TextIO

from botocore.exceptions import ClientError

from gemma_batch.emulator import FaultRule
from gemma_batch.local.api_key import ROTATION_INTERVAL_SECONDS, LocalKeyRotation
from gemma_batch.local.delivery import DeliveryTally, capture_emf, deliver_until_empty
from gemma_batch.local.function_code import add_function_code_to_path
from gemma_batch.local.job_files import (
    SAMPLE_FAULTS_FILE,
    SAMPLE_JOBS_FILE,
    JobLine,
    duplicate_job_ids,
    read_fault_file,
    read_job_lines,
)
from gemma_batch.local.outcomes import (
    ENDED_DEAD_LETTERED,
    ENDED_FAILED,
    ENDED_INVALID,
    ENDED_LOST,
    ENDED_NOT_SENT,
    ENDED_SUCCEEDED,
    METRICS_FILE,
    SUMMARY_FILE,
    JobEnd,
    RunSummary,
    SentJob,
    download_outcomes,
    match_sent_jobs,
    prepare_output_dir,
)
from gemma_batch.local.report import format_servers, format_summary
from gemma_batch.local.resources import (
    FUNCTION_TIMEOUT_SECONDS,
    LocalResources,
    LocalServers,
    PortInUseError,
    aws_clients,
    aws_environment,
    create_resources,
    isolated_aws_environment,
    start_servers,
)
from gemma_batch.local.rotation_harness import RotationStepError
from gemma_batch.local.sqs_driver import SqsDeliveryDriver
from stacks.config import RegionSettings, load_settings

add_function_code_to_path()

from worker import handler as worker_handler  # noqa: E402 - needs the function code on the path
from worker import metrics as worker_metrics  # noqa: E402

logger = logging.getLogger(__name__)

CDK_JSON = Path(__file__).resolve().parents[2] / "cdk.json"
DEFAULT_MOTO_PORT = 5000
DEFAULT_EMULATOR_PORT = 8765
DEFAULT_OUTPUT_DIR = Path("local-run")
DEFAULT_TIMEOUT_SECONDS = 600.0
# The worker's defaults are 1 s and 20 s. Shorter backoff keeps a local run with faults fast, while
# the retry budget, the Retry-After handling and the delays' growth per delivery stay the same.
LOCAL_BACKOFF_BASE_SECONDS = 0.05
LOCAL_BACKOFF_MAX_SECONDS = 2.0
# Fits into the local function timeout with the retry policy's 5 s safety margin.
REQUEST_TIMEOUT_SECONDS = 5.0
WORKER_FUNCTION_NAME = "gemma-batch-worker-local"


class LocalRunError(RuntimeError):
    """Raised when an input, a port or the first key rotation fails, before any job is sent.

    The message names the input at fault and the fix.
    """


@dataclass(frozen=True)
class LocalRunOptions:
    """Inputs, ports, timings and output folder of one local run. Ports of 0 pick free ports."""

    jobs_file: Path = SAMPLE_JOBS_FILE
    faults_file: Path | None = SAMPLE_FAULTS_FILE
    fault_rate: float = 0.0
    keep_running: bool = False
    moto_port: int = DEFAULT_MOTO_PORT
    emulator_port: int = DEFAULT_EMULATOR_PORT
    output_dir: Path = DEFAULT_OUTPUT_DIR
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    seed: int = 0
    backoff_base_seconds: float = LOCAL_BACKOFF_BASE_SECONDS
    backoff_max_seconds: float = LOCAL_BACKOFF_MAX_SECONDS
    cdk_json: Path = CDK_JSON


def run_local(
    options: LocalRunOptions,
    *,
    out: TextIO | None = None,
    wait_while_running: Callable[[], None] | None = None,
) -> RunSummary:
    """Run the jobs file end to end, print the summary to ``out`` and return it.

    With ``keep_running``, the servers stay up after the summary until ``wait_while_running``
    returns (by default, until Ctrl-C). Raises LocalRunError for an unusable input or port, or
    when the rotation function cannot fill the API key secret.
    """
    out = out or sys.stdout
    started = time.monotonic()
    settings = load_region_settings(options.cdk_json)
    lines, fault_rules, latency = _read_inputs(options)
    prepare_output_dir(options.output_dir)

    servers = _start(settings, options)
    try:
        clients = aws_clients(servers.moto_endpoint, settings.region)
        resources = create_resources(clients, settings.max_receive_count)
        mantle_base_url = servers.emulator.root_url + settings.mantle_base_path
        rotation = _fill_api_key_secret(clients, resources, servers, mantle_base_url)
        for rule in fault_rules:
            servers.emulator.faults.add(rule)
        if latency is not None:
            servers.emulator.faults.set_latency(latency)

        sent = send_jobs(clients["sqs"], resources.queue_url, lines)
        worker_environment = build_worker_environment(settings, resources, mantle_base_url, options)
        tally = _deliver(clients["sqs"], servers, resources, settings, worker_environment, options)

        stored = download_outcomes(
            clients, resources.results_bucket, resources.dead_letter_queue_url, options.output_dir
        )
        summary = build_summary(
            options, sent, match_sent_jobs(sent, stored), tally, servers.emulator.stats.snapshot(), started
        )
        _write_summary_files(options.output_dir, summary, tally)
        print(format_summary(summary), file=out, flush=True)

        if options.keep_running:
            try:
                _keep_running(
                    servers,
                    resources,
                    rotation,
                    worker_environment,
                    mantle_base_url,
                    settings,
                    out,
                    wait_while_running or wait_for_interrupt,
                )
            except KeyboardInterrupt:
                # Ctrl-C ends --keep-running, also when it comes before the wait has started.
                logger.info("interrupted; stopping the servers")
        return summary
    finally:
        servers.stop()


def exit_code(summary: RunSummary) -> int:
    """Return 0 when every job ended as a result, a failure record or a dead-letter message, else 1."""
    return 0 if summary.lost == 0 and summary.not_sent == 0 else 1


def load_region_settings(cdk_json: Path) -> RegionSettings:
    """Return the settings of the first region in cdk.json's context, raising LocalRunError when they are invalid."""
    try:
        document = json.loads(cdk_json.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise LocalRunError(f"reading {cdk_json} failed: {error}") from None
    context = document.get("context", {}) if isinstance(document, dict) else None
    if not isinstance(context, dict):
        raise LocalRunError(f"{cdk_json} has no 'context' object with the app's settings")
    try:
        settings = load_settings(context)
    except ValueError as error:
        # ConfigError is a ValueError, and its message lists every invalid key.
        raise LocalRunError(str(error)) from None
    if not settings.regions:
        raise LocalRunError(f"{cdk_json} configures no region; add one to 'regions'")
    return settings.for_region(settings.regions[0])


def fault_rate_rules(fault_rate: float) -> list[FaultRule]:
    """Return rules that fail ``fault_rate`` of all requests with 429 or 503, half each, without Retry-After.

    The emulator tries rules in order, so the second rule's fraction applies to the requests that the first let through.
    """
    if fault_rate <= 0:
        return []
    half = fault_rate / 2
    return [FaultRule("throttle", fraction=half), FaultRule("unavailable", fraction=min(1.0, half / (1 - half)))]


def send_jobs(sqs: Any, queue_url: str, lines: list[JobLine]) -> list[SentJob]:
    """Send each line as one message body, as it is. A line that SQS rejects is returned with the error."""
    sent = []
    for line in lines:
        try:
            message_id = sqs.send_message(QueueUrl=queue_url, MessageBody=line.body)["MessageId"]
        except ClientError as error:
            # The error names the problem (size, characters) but never quotes the body.
            reason = error.response.get("Error", {}).get("Message", str(error))
            logger.error("SQS rejected line %d of the jobs file: %s", line.line_number, reason)
            sent.append(SentJob(line, None, reason))
            continue
        sent.append(SentJob(line, message_id))
    logger.info("sent %d of %d jobs to %s", sum(job.message_id is not None for job in sent), len(lines), queue_url)
    return sent


def build_worker_environment(
    settings: RegionSettings, resources: LocalResources, mantle_base_url: str, options: LocalRunOptions
) -> dict[str, str]:
    """Return the environment variables the stack sets on the worker, pointed at the local resources."""
    return {
        "MANTLE_BASE_URL": mantle_base_url,
        "MODEL_ID": settings.model_id,
        "SERVICE_TIER": settings.service_tier,
        "API_KEY_SECRET_ARN": resources.secret_arn,
        "RESULTS_BUCKET": resources.results_bucket,
        "JOB_QUEUE_URL": resources.queue_url,
        "MAX_ATTEMPTS_PER_DELIVERY": str(settings.max_attempts_per_delivery),
        "BACKOFF_BASE_SECONDS": str(options.backoff_base_seconds),
        "BACKOFF_MAX_SECONDS": str(options.backoff_max_seconds),
        "REQUEST_TIMEOUT_SECONDS": str(REQUEST_TIMEOUT_SECONDS),
        "DEFAULT_MAX_OUTPUT_TOKENS": str(settings.default_max_output_tokens),
        "KEY_REFRESH_MARGIN_SECONDS": str(settings.key_refresh_margin_seconds),
        "METRICS_NAMESPACE": "GemmaBatch",
        "METRICS_SERVICE": "gemma-batch-worker",
        "JOB_STATE_TABLE": resources.job_state_table,
        "MAX_RECEIVE_COUNT": str(settings.max_receive_count),
    }


def build_summary(
    options: LocalRunOptions,
    sent: list[SentJob],
    ends: list[JobEnd],
    tally: DeliveryTally,
    emulator_stats: dict[str, Any],
    started: float,
) -> RunSummary:
    """Count the jobs by where they ended, and the requests and tokens by the worker's EMF metrics.

    The requests by status come from the emulator, counted over requests that carry a job id, so
    the rotation's key check is left out.
    """
    by_status: dict[str, int] = {}
    for job in emulator_stats["jobs"].values():
        for status, count in job["by_status"].items():
            by_status[status] = by_status.get(status, 0) + count
    ended = [end.ended for end in ends]
    return RunSummary(
        jobs_file=str(options.jobs_file),
        jobs=len(sent),
        done=ended.count(ENDED_SUCCEEDED),
        failed=ended.count(ENDED_FAILED),
        invalid=ended.count(ENDED_INVALID),
        dead_lettered=ended.count(ENDED_DEAD_LETTERED),
        lost=ended.count(ENDED_LOST),
        not_sent=ended.count(ENDED_NOT_SENT),
        retried_deliveries=tally.retried_deliveries,
        http_requests=tally.metric_total(worker_metrics.REQUESTS),
        http_requests_by_status=by_status,
        input_tokens=tally.metric_total(worker_metrics.INPUT_TOKENS),
        output_tokens=tally.metric_total(worker_metrics.OUTPUT_TOKENS),
        elapsed_seconds=round(time.monotonic() - started, 3),
        output_dir=str(options.output_dir),
        jobs_left_in_queue=not tally.queue_emptied,
        ends=ends,
    )


def wait_for_interrupt() -> None:
    """Block until Ctrl-C raises KeyboardInterrupt."""
    while True:
        time.sleep(3600)


def _read_inputs(options: LocalRunOptions) -> tuple[list[JobLine], list[FaultRule], float | None]:
    if not 0.0 <= options.fault_rate <= 1.0:
        raise LocalRunError(f"fault rate {options.fault_rate} is out of range; pass a fraction from 0 to 1")
    try:
        lines = read_job_lines(options.jobs_file)
        faults = read_fault_file(options.faults_file) if options.faults_file is not None else None
    except ValueError as error:
        raise LocalRunError(str(error)) from None
    for job_id, line_numbers in duplicate_job_ids(lines).items():
        logger.warning(
            "lines %s of %s have the same job id %s. The bucket keeps one record per job id, so only one of these "
            "lines can be matched to it and the others count as lost. Give each job its own id.",
            ", ".join(map(str, line_numbers)),
            options.jobs_file,
            job_id,
        )
    rules = [*(faults.rules if faults else ()), *fault_rate_rules(options.fault_rate)]
    return lines, rules, faults.latency_seconds if faults else None


def _start(settings: RegionSettings, options: LocalRunOptions) -> LocalServers:
    try:
        return start_servers(settings.region, options.moto_port, options.emulator_port, options.seed)
    except PortInUseError as error:
        raise LocalRunError(str(error)) from None


def _fill_api_key_secret(
    clients: dict[str, Any], resources: LocalResources, servers: LocalServers, mantle_base_url: str
) -> LocalKeyRotation:
    """Run the first rotation, as Secrets Manager does when the stack enables rotation, and return the rotator."""
    rotation = LocalKeyRotation(clients, resources, servers.emulator, mantle_base_url)
    try:
        rotated = rotation.rotate()
    except RotationStepError as error:
        raise LocalRunError(f"filling the API key secret with the rotation function failed: {error}") from error
    logger.info(
        "the rotation function stored version %s of the API key secret, valid until %s",
        rotated.version_id,
        rotated.expires_at.isoformat(),
    )
    return rotation


def _deliver(
    sqs: Any,
    servers: LocalServers,
    resources: LocalResources,
    settings: RegionSettings,
    worker_environment: dict[str, str],
    options: LocalRunOptions,
) -> DeliveryTally:
    """Deliver the queue to the real worker handler, in this process, with the worker's environment set.

    NOTE: one invocation runs at a time, so worker_pool_size and the batching window play no part,
    and jobs of different batches never overlap as they do on Lambda.
    """
    tally = DeliveryTally()
    environment = {**aws_environment(servers.moto_endpoint, settings.region), **worker_environment}
    with isolated_aws_environment(environment):
        # The handler keeps its settings and clients between invocations, so start from a cold state.
        worker_handler.reset_runtime()
        try:
            driver = SqsDeliveryDriver(
                sqs,
                resources.queue_url,
                capture_emf(worker_handler.lambda_handler, tally),
                batch_size=settings.batch_size,
                function_name=WORKER_FUNCTION_NAME,
                timeout_seconds=FUNCTION_TIMEOUT_SECONDS,
                wait_time_seconds=1,
            )
            deliver_until_empty(driver, tally, options.timeout_seconds)
        finally:
            worker_handler.reset_runtime()
    logger.info(
        "delivered %d messages in %d batches, %d deliveries in all",
        len(tally.deliveries),
        tally.batches,
        sum(tally.deliveries.values()),
    )
    return tally


def _write_summary_files(output_dir: Path, summary: RunSummary, tally: DeliveryTally) -> None:
    (output_dir / SUMMARY_FILE).write_text(summary.to_json() + "\n", encoding="utf-8")
    with (output_dir / METRICS_FILE).open("w", encoding="utf-8") as metrics_file:
        for document in tally.emf_documents:
            metrics_file.write(json.dumps(document) + "\n")


def _keep_running(
    servers: LocalServers,
    resources: LocalResources,
    rotation: LocalKeyRotation,
    worker_environment: dict[str, str],
    mantle_base_url: str,
    settings: RegionSettings,
    out: TextIO,
    wait_while_running: Callable[[], None],
) -> None:
    """Print the servers and the environment, then rotate the key on schedule until ``wait_while_running`` returns."""
    root_url = servers.emulator.root_url
    server_urls = {
        "moto server (SQS, S3, DynamoDB, Secrets Manager, STS, IAM)": servers.moto_endpoint,
        "Mantle emulator (OpenAI base URL)": mantle_base_url,
        "Mantle emulator control": (
            f"{root_url}/_emulator/stats, /_emulator/faults, /_emulator/reset, /_emulator/config"
        ),
    }
    environment = {
        **aws_environment(servers.moto_endpoint, settings.region),
        **worker_environment,
        "DEAD_LETTER_QUEUE_URL": resources.dead_letter_queue_url,
        "KEY_ISSUER_ROLE_ARN": resources.key_issuer_role_arn,
    }
    print(format_servers(server_urls, environment, ROTATION_INTERVAL_SECONDS // 60), file=out, flush=True)

    stop = threading.Event()
    schedule = rotation.rotate_periodically(stop)
    try:
        wait_while_running()
    finally:
        stop.set()
        schedule.join()
