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

from worker.images import ImageLoader
from worker.job_state import JobStateStore
from worker.key_cache import ApiKeyCache, Clock, utc_now
from worker.log_redaction import install_body_redaction
from worker.mantle_client import MantleClient
from worker.metrics import MetricsRecorder
from worker.processor import JobProcessor
from worker.results import ResultStore
from worker.settings import Settings
from worker.sqs_event import sqs_records

install_body_redaction()

logger = logging.getLogger(__name__)

_runtime_lock = threading.Lock()
_runtime: tuple[Settings, JobProcessor] | None = None
_clock: Clock = utc_now


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    # A malformed event raises here, before any job runs, so the invocation fails and loses nothing.
    records = sqs_records(event)
    settings, processor = _get_runtime()
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


def reset_runtime(clock: Clock = utc_now) -> None:
    """Drop the cached settings and clients, so the next invocation reads the environment again.

    Lambda never calls this. Tests use it to start a fresh "cold" process state, and pass
    ``clock`` to move the worker's time (job locks, deadlines) without waiting.
    """
    global _runtime, _clock
    with _runtime_lock:
        _runtime = None
        _clock = clock


def _get_runtime() -> tuple[Settings, JobProcessor]:
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = _build_runtime(Settings.from_environ(), _clock)
            logger.info("worker started: model %s, service tier %s", _runtime[0].model_id, _runtime[0].service_tier)
        return _runtime


class LazyClient:
    """A boto3 client built on the first attribute access, once, even when threads race for it."""

    def __init__(self, session: boto3.session.Session, service_name: str) -> None:
        self._session = session
        self._service_name = service_name
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._session.client(self._service_name)
        return getattr(self._client, name)


def _build_runtime(settings: Settings, clock: Clock) -> tuple[Settings, JobProcessor]:
    # boto3 clients are thread-safe and resolve their endpoint from the environment (AWS_ENDPOINT_URL in tests).
    session = boto3.session.Session()
    # S3 is needed only after the first model request and SQS only to defer a job, so their
    # clients are built on first use and stay out of the cold start's path to the first request.
    s3_client = LazyClient(session, "s3")
    processor = JobProcessor(
        settings,
        key_cache=ApiKeyCache(
            session.client("secretsmanager"),
            settings.api_key_secret_arn,
            settings.key_refresh_margin_seconds,
        ),
        mantle=MantleClient(settings.mantle_base_url, settings.service_tier, settings.request_timeout_seconds),
        store=ResultStore(s3_client, settings.results_bucket),
        job_state=JobStateStore(session.client("dynamodb"), settings.job_state_table, settings.job_state_ttl_seconds),
        images=ImageLoader(s3_client),
        sqs_client=LazyClient(session, "sqs"),
        clock=clock,
    )
    return settings, processor
