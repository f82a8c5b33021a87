"""Lambda entry point: a batch of SQS records in, concurrent jobs, a partial batch response out.

The event source mapping must enable ReportBatchItemFailures, so that only the message ids in
``batchItemFailures`` return to the queue and the others are deleted.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3

from worker.key_cache import ApiKeyCache
from worker.log_redaction import install_body_redaction
from worker.mantle_client import MantleClient
from worker.metrics import MetricsRecorder
from worker.processor import JobProcessor
from worker.results import ResultStore
from worker.settings import Settings

install_body_redaction()

logger = logging.getLogger(__name__)

_runtime_lock = threading.Lock()
_runtime: tuple[Settings, JobProcessor] | None = None


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    settings, processor = _get_runtime()
    records = event.get("Records") or []
    request_id = getattr(context, "aws_request_id", "unknown")
    logger.info("invocation %s: batch of %d records started", request_id, len(records))

    metrics = MetricsRecorder()
    outcomes = []
    try:
        if records:
            # One thread per record: the jobs wait on Mantle, so they overlap their waits.
            with ThreadPoolExecutor(max_workers=len(records), thread_name_prefix="job") as pool:
                futures = [
                    pool.submit(processor.process, record, context.get_remaining_time_in_millis, metrics)
                    for record in records
                ]
                outcomes = [future.result() for future in futures]
    finally:
        metrics.flush(settings.metrics_namespace, settings.metrics_service)

    failures = [{"itemIdentifier": outcome.message_id} for outcome in outcomes if outcome.report_failure]
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.outcome] = counts.get(outcome.outcome, 0) + 1
    logger.info(
        "invocation %s: batch finished with outcomes %s, %d messages returned to the queue",
        request_id,
        counts,
        len(failures),
    )
    return {"batchItemFailures": failures}


def reset_runtime() -> None:
    """Drop the cached settings and clients, so the next invocation reads the environment again.

    Lambda never calls this. Tests use it to start a fresh "cold" process state.
    """
    global _runtime
    with _runtime_lock:
        _runtime = None


def _get_runtime() -> tuple[Settings, JobProcessor]:
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = _build_runtime(Settings.from_environ())
            logger.info("worker started: model %s, service tier %s", _runtime[0].model_id, _runtime[0].service_tier)
        return _runtime


def _build_runtime(settings: Settings) -> tuple[Settings, JobProcessor]:
    # boto3 clients are thread-safe and resolve their endpoint from the environment (AWS_ENDPOINT_URL in tests).
    session = boto3.session.Session()
    processor = JobProcessor(
        settings,
        key_cache=ApiKeyCache(
            session.client("secretsmanager"),
            settings.api_key_secret_arn,
            settings.key_refresh_margin_seconds,
        ),
        mantle=MantleClient(settings.mantle_base_url, settings.service_tier, settings.request_timeout_seconds),
        store=ResultStore(session.client("s3"), settings.results_bucket),
        sqs_client=session.client("sqs"),
    )
    return settings, processor
