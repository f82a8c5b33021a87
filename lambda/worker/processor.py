"""Process one SQS record: parse the job, call Mantle within the retry budget, store the outcome.

Each record ends in one of these outcomes:

- succeeded: the result is stored, and the message is deleted.
- invalid or failed: a failure record is stored, and the message is deleted because a retry cannot help.
- deferred: the job could not finish in this delivery. Its visibility timeout is set to the backoff
  for the next delivery and the message is reported in ``batchItemFailures``. After maxReceiveCount
  deliveries SQS moves it to the dead-letter queue.
- error: something unexpected failed, such as writing the result. The message is reported and
  returns after the queue's visibility timeout.
"""

from __future__ import annotations

import logging
import random as random_module
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError

from worker import metrics as metric_names
from worker.job import InvalidJobError, Job, parse_job
from worker.key_cache import ApiKeyCache, ApiKeyUnavailableError, utc_now
from worker.mantle_client import Completion, MantleClient, MantleRequestError
from worker.metrics import MetricsRecorder
from worker.results import Delivery, ResultStore, failed_record, invalid_record, success_record
from worker.retry_policy import Action, RandomSource, RetryPolicy
from worker.settings import Settings

logger = logging.getLogger(__name__)

OUTCOME_SUCCEEDED = "succeeded"
OUTCOME_INVALID = "invalid"
OUTCOME_FAILED = "failed"
OUTCOME_DEFERRED = "deferred"
OUTCOME_ERROR = "error"

AUTH_STATUSES = (401, 403)
_UNSUPPORTED_ROUTE = re.compile(r"is(?:n't|n’t| not) supported on this route", re.IGNORECASE)


@dataclass(frozen=True)
class RecordOutcome:
    """The outcome of one record. ``report_failure`` puts its message id into ``batchItemFailures``."""

    message_id: str
    job_id: str | None
    outcome: str
    report_failure: bool


class _Deferred(Exception):
    def __init__(self, reason: str, retry_after_seconds: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_seconds = retry_after_seconds


class _Rejected(Exception):
    def __init__(self, error: MantleRequestError, attempts: int) -> None:
        super().__init__(error.message)
        self.error = error
        self.attempts = attempts


class JobProcessor:
    """Runs the jobs of one worker process. It is shared by all threads and warm invocations."""

    def __init__(
        self,
        settings: Settings,
        *,
        key_cache: ApiKeyCache,
        mantle: MantleClient,
        store: ResultStore,
        sqs_client: Any,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = utc_now,
        random: RandomSource = random_module.random,
    ) -> None:
        self._settings = settings
        self._key_cache = key_cache
        self._mantle = mantle
        self._store = store
        self._sqs_client = sqs_client
        self._sleep = sleep
        self._clock = clock
        self._random = random
        self._policy = RetryPolicy(
            max_attempts=settings.max_attempts_per_delivery,
            backoff_base_seconds=settings.backoff_base_seconds,
            backoff_max_seconds=settings.backoff_max_seconds,
        )

    def process(
        self, record: dict[str, Any], remaining_ms: Callable[[], int], metrics: MetricsRecorder
    ) -> RecordOutcome:
        """Process one record and return its outcome.

        Every Exception is caught and logged here, so one job cannot fail the others.
        """
        message_id = str(record.get("messageId", "unknown"))
        job_id: str | None = None
        try:
            delivery = Delivery(
                message_id=message_id,
                receive_count=_receive_count(record),
                body=str(record.get("body", "")),
            )
            try:
                job = parse_job(delivery.body, self._settings.model_id, self._settings.default_max_output_tokens)
            except InvalidJobError as error:
                job_id = error.job_id
                return self._store_invalid(error, delivery, metrics)
            job_id = job.job_id
            logger.info(
                "job %s (message %s, receive %d): started with model %s",
                job.job_id,
                message_id,
                delivery.receive_count,
                job.model,
            )
            try:
                return self._run(job, delivery, remaining_ms, metrics)
            except _Deferred as deferred:
                return self._defer(job.job_id, delivery, record, deferred)
        except Exception:
            logger.exception(
                "job %s (message %s): unexpected error; the message returns after its visibility timeout",
                job_id,
                message_id,
            )
            return RecordOutcome(message_id, job_id, OUTCOME_ERROR, report_failure=True)

    def _run(
        self, job: Job, delivery: Delivery, remaining_ms: Callable[[], int], metrics: MetricsRecorder
    ) -> RecordOutcome:
        try:
            completion, attempts, latency_ms = self._complete_with_retries(job, delivery, remaining_ms, metrics)
        except _Rejected as rejected:
            return self._store_failed(job, rejected.error, delivery, rejected.attempts, metrics)

        record = success_record(
            job,
            completion,
            delivery=delivery,
            requested_service_tier=self._settings.service_tier,
            attempts=attempts,
            latency_ms=latency_ms,
            finished_at=self._clock(),
        )
        key = self._store.put_result(job.job_id, record)
        metrics.add(metric_names.JOBS_SUCCEEDED)
        logger.info(
            "job %s (message %s): succeeded after %d attempts, last one %d ms, stored at %s",
            job.job_id,
            delivery.message_id,
            attempts,
            latency_ms,
            key,
        )
        return RecordOutcome(delivery.message_id, job.job_id, OUTCOME_SUCCEEDED, report_failure=False)

    def _complete_with_retries(
        self, job: Job, delivery: Delivery, remaining_ms: Callable[[], int], metrics: MetricsRecorder
    ) -> tuple[Completion, int, int]:
        """Return the completion, the number of requests sent and the last request's latency in ms.

        Raises _Deferred when the job must wait for its next delivery and _Rejected when Mantle
        rejected it for good.
        """
        attempt = 0
        key_refreshed = False
        while True:
            api_key = self._current_key()
            timeout = self._policy.request_timeout_seconds(self._settings.request_timeout_seconds, remaining_ms())
            if timeout is None:
                raise _Deferred("too little invocation time is left to send a request")

            attempt += 1
            metrics.add(metric_names.REQUESTS)
            started = time.monotonic()
            try:
                completion = self._mantle.complete(job, api_key, timeout, delivery.receive_count)
            except MantleRequestError as error:
                _count_failed_request(error.status, metrics)
                logger.warning(
                    "job %s (message %s): attempt %d failed with status %s: %s",
                    job.job_id,
                    delivery.message_id,
                    attempt,
                    error.status if error.status is not None else "none (connection error)",
                    error.message,
                )
                if error.status in AUTH_STATUSES:
                    if key_refreshed:
                        raise _Deferred(f"Mantle rejected the API key again after a re-read (HTTP {error.status})")
                    if attempt >= self._settings.max_attempts_per_delivery:
                        raise _Deferred(f"Mantle rejected the API key (HTTP {error.status}) on the last attempt")
                    key_refreshed = True
                    self._refresh_key(api_key)
                    continue

                decision = self._policy.decide(
                    status=error.status,
                    headers=error.headers,
                    attempt=attempt,
                    remaining_ms=remaining_ms(),
                    now=self._clock(),
                    random=self._random,
                )
                if decision.action is Action.FAIL:
                    raise _Rejected(error, attempt) from None
                if decision.action is Action.DEFER:
                    raise _Deferred(decision.reason, decision.retry_after_seconds) from None
                logger.info(
                    "job %s (message %s): retrying after attempt %d in %.3f s (%s)",
                    job.job_id,
                    delivery.message_id,
                    attempt,
                    decision.delay_seconds,
                    "Retry-After" if decision.retry_after_seconds is not None else "backoff",
                )
                self._sleep(decision.delay_seconds)
                continue

            # Tokens are counted when Mantle returns them, even if storing the result fails later.
            metrics.add(metric_names.INPUT_TOKENS, completion.input_tokens or 0)
            metrics.add(metric_names.OUTPUT_TOKENS, completion.output_tokens or 0)
            return completion, attempt, int((time.monotonic() - started) * 1000)

    def _current_key(self) -> str:
        try:
            return self._key_cache.get().api_key
        except ApiKeyUnavailableError as error:
            raise _Deferred(str(error)) from None

    def _refresh_key(self, rejected_api_key: str) -> None:
        try:
            self._key_cache.refresh_after_rejection(rejected_api_key)
        except ApiKeyUnavailableError as error:
            raise _Deferred(str(error)) from None

    def _store_invalid(self, error: InvalidJobError, delivery: Delivery, metrics: MetricsRecorder) -> RecordOutcome:
        name = error.job_id or delivery.message_id
        record = invalid_record(error.job_id, error.reason, delivery=delivery, finished_at=self._clock())
        key = self._store.put_failure(name, record)
        metrics.add(metric_names.JOBS_FAILED)
        # The reason may quote the start of a field's value, which could be prompt text, so only
        # the field name is logged. The failure record contains the whole reason.
        logger.warning(
            "job %s (message %s): invalid field %r, not retried, failure record stored at %s",
            error.job_id,
            delivery.message_id,
            error.field_name,
            key,
        )
        return RecordOutcome(delivery.message_id, error.job_id, OUTCOME_INVALID, report_failure=False)

    def _store_failed(
        self, job: Job, error: MantleRequestError, delivery: Delivery, attempts: int, metrics: MetricsRecorder
    ) -> RecordOutcome:
        description = describe_rejection(error, self._settings, job.model)
        record = failed_record(
            job,
            description,
            http_status=error.status,
            delivery=delivery,
            requested_service_tier=self._settings.service_tier,
            attempts=attempts,
            finished_at=self._clock(),
        )
        key = self._store.put_failure(job.job_id, record)
        metrics.add(metric_names.JOBS_FAILED)
        logger.error(
            "job %s (message %s): failed and not retried, stored at %s: %s",
            job.job_id,
            delivery.message_id,
            key,
            description,
        )
        return RecordOutcome(delivery.message_id, job.job_id, OUTCOME_FAILED, report_failure=False)

    def _defer(self, job_id: str, delivery: Delivery, record: dict[str, Any], deferred: _Deferred) -> RecordOutcome:
        delay = self._policy.redelivery_delay_seconds(
            delivery.receive_count, deferred.retry_after_seconds, self._random
        )
        try:
            self._sqs_client.change_message_visibility(
                QueueUrl=self._settings.job_queue_url,
                ReceiptHandle=record["receiptHandle"],
                VisibilityTimeout=delay,
            )
        except (ClientError, BotoCoreError, KeyError) as error:
            # The message still returns, only after the queue's own visibility timeout.
            logger.error(
                "job %s (message %s): changing the visibility timeout to %d s failed: %s",
                job_id,
                delivery.message_id,
                delay,
                error,
            )
        logger.warning(
            "job %s (message %s, receive %d): deferred to a later delivery in %d s: %s",
            job_id,
            delivery.message_id,
            delivery.receive_count,
            delay,
            deferred.reason,
        )
        return RecordOutcome(delivery.message_id, job_id, OUTCOME_DEFERRED, report_failure=True)


def describe_rejection(error: MantleRequestError, settings: Settings, model: str) -> str:
    """Return the error text of a failed job, naming the configuration key to fix where one is known."""
    if error.status == 400 and _UNSUPPORTED_ROUTE.search(error.message):
        return (
            f"Mantle does not serve model {model} at {settings.mantle_base_url} (HTTP 400: {error.message}). "
            "Gemma 4 models are served under the /openai/v1 base path; set the config key mantle_base_path to "
            "/openai/v1 and deploy again."
        )
    message = error.message.lower()
    if error.status == 400 and (
        error.param == "service_tier" or "service_tier" in message or "service tier" in message
    ):
        return (
            f"Mantle rejected service tier {settings.service_tier!r} for model {model} (HTTP 400: {error.message}). "
            "Set the config key service_tier to a tier that Mantle supports for this model and deploy again."
        )
    return f"Mantle rejected the request with HTTP {error.status}: {error.message}"


def _receive_count(record: dict[str, Any]) -> int:
    raw = record.get("attributes", {}).get("ApproximateReceiveCount", "1")
    try:
        return max(1, int(raw))
    except (TypeError, ValueError):
        return 1


def _count_failed_request(status: int | None, metrics: MetricsRecorder) -> None:
    if status == 429:
        metrics.add(metric_names.THROTTLED_429)
    elif status == 503:
        metrics.add(metric_names.UNAVAILABLE_503)
    else:
        metrics.add(metric_names.OTHER_ERRORS)
