"""Process one SQS record: parse the job, claim it, call Mantle within the retry budget, store the outcome.

Each record ends in one of these outcomes:

- succeeded: the result is stored, and the message is deleted.
- duplicate: the job's result was stored by an earlier delivery, so the message is deleted
  without a model call.
- invalid or failed: a failure record is stored, and the message is deleted because a retry cannot help.
- deferred: the job could not finish in this delivery, or another delivery holds its lock. Its
  visibility timeout is set to the delay before the next delivery and the message is reported in
  ``batchItemFailures``. After maxReceiveCount deliveries SQS moves it to the dead-letter queue.
- error: something unexpected failed, such as writing the result. The message is reported and
  returns after the queue's visibility timeout.

Before it calls the model, a delivery claims the job in the job state table (see
``worker.job_state``), so a job never has two model calls running at once and a stored result
always wins over a redelivery.
"""

from __future__ import annotations

import logging
import math
import random as random_module
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError

from worker import metrics as metric_names
from worker.images import ImageLoader, InvalidImageError
from worker.job import InvalidJobError, Job, JobDefaults, parse_job
from worker.job_state import STATUS_FAILED, STATUS_INVALID, STATUS_SUCCEEDED, ClaimResult, JobStateStore, Outcome
from worker.key_cache import ApiKeyCache, ApiKeyUnavailableError, utc_now
from worker.mantle_client import Completion, MantleClient, MantleRequestError
from worker.metrics import MetricsRecorder
from worker.request_builder import MantleRequest, build_request
from worker.results import (
    Delivery,
    ResultAlreadyStoredError,
    ResultStore,
    TierUse,
    failed_record,
    invalid_record,
    result_key,
    success_record,
)
from worker.retry_policy import SQS_MAX_VISIBILITY_SECONDS, Action, RandomSource, RetryPolicy
from worker.settings import Settings
from worker.tier_escalation import FLEX_TIER, STANDARD_TIER, EscalationInput, escalation_due

logger = logging.getLogger(__name__)

OUTCOME_SUCCEEDED = "succeeded"
OUTCOME_DUPLICATE = "duplicate"
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


class _DeadlinePassed(Exception):
    def __init__(self, attempts: int) -> None:
        super().__init__("deadline passed")
        self.attempts = attempts


class _TierState:
    """The service tier of one job's requests in this delivery, and the 503 streak that may escalate it."""

    def __init__(self, requested: str) -> None:
        self.requested = requested
        self.current = requested
        self.escalated = False
        self.consecutive_unavailable = 0

    def use(self) -> TierUse:
        return TierUse(requested=self.requested, sent=self.current, escalated=self.escalated)


class JobProcessor:
    """Runs the jobs of one worker process. It is shared by all threads and warm invocations."""

    def __init__(
        self,
        settings: Settings,
        *,
        key_cache: ApiKeyCache,
        mantle: MantleClient,
        store: ResultStore,
        job_state: JobStateStore,
        images: ImageLoader,
        sqs_client: Any,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = utc_now,
        random: RandomSource = random_module.random,
    ) -> None:
        self._settings = settings
        self._key_cache = key_cache
        self._mantle = mantle
        self._store = store
        self._job_state = job_state
        self._images = images
        self._sqs_client = sqs_client
        self._sleep = sleep
        self._clock = clock
        self._random = random
        self._policy = RetryPolicy(
            max_attempts=settings.max_attempts_per_delivery,
            backoff_base_seconds=settings.backoff_base_seconds,
            backoff_max_seconds=settings.backoff_max_seconds,
        )
        self._defaults = JobDefaults(
            model=settings.model_id,
            max_output_tokens=settings.default_max_output_tokens,
            reasoning_effort_by_model=settings.reasoning_effort_by_model,
            input_location=settings.input_location,
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
                job = parse_job(delivery.body, self._defaults)
            except InvalidJobError as error:
                job_id = error.job_id
                return self._store_invalid(error.job_id, error.field_name, error.reason, delivery, metrics, owner=None)
            job_id = job.job_id
            return self._process_claimed(job, delivery, record, remaining_ms, metrics)
        except Exception:
            logger.exception(
                "job %s (message %s): unexpected error; the message returns after its visibility timeout",
                job_id,
                message_id,
            )
            return RecordOutcome(message_id, job_id, OUTCOME_ERROR, report_failure=True)

    def _process_claimed(
        self,
        job: Job,
        delivery: Delivery,
        record: dict[str, Any],
        remaining_ms: Callable[[], int],
        metrics: MetricsRecorder,
    ) -> RecordOutcome:
        """Claim the job, run it while holding the lock, and release the lock on every path but a crash."""
        owner = f"{delivery.message_id}/{delivery.receive_count}/{uuid.uuid4().hex[:12]}"
        now = self._clock()
        claim = self._job_state.claim(
            job.job_id,
            owner=owner,
            now=now,
            # The lock lasts the invocation's remaining time: if this process dies, the job is free again then.
            lock_expires_at=now + timedelta(milliseconds=remaining_ms()),
            message_id=delivery.message_id,
            receive_count=delivery.receive_count,
        )
        if claim.result is ClaimResult.ALREADY_SUCCEEDED:
            logger.info(
                "job %s (message %s, receive %d): already succeeded, stored at %s; message deleted without a model call",
                job.job_id,
                delivery.message_id,
                delivery.receive_count,
                claim.record_key,
            )
            return RecordOutcome(delivery.message_id, job.job_id, OUTCOME_DUPLICATE, report_failure=False)
        if claim.result is ClaimResult.IN_PROGRESS:
            wait = (claim.lock_expires_at - now).total_seconds() if claim.lock_expires_at else 0.0
            return self._defer_duplicate(job.job_id, delivery, record, wait)

        logger.info(
            "job %s (message %s, receive %d): started with model %s on api %s",
            job.job_id,
            delivery.message_id,
            delivery.receive_count,
            job.model,
            job.api,
        )
        try:
            return self._run(job, delivery, owner, remaining_ms, metrics)
        except _Deferred as deferred:
            self._release_deferred(job, delivery, owner, deferred)
            return self._defer(job.job_id, delivery, record, deferred)
        except Exception:
            self._release_after_error(job.job_id, owner)
            raise

    def _run(
        self, job: Job, delivery: Delivery, owner: str, remaining_ms: Callable[[], int], metrics: MetricsRecorder
    ) -> RecordOutcome:
        tier = _TierState(self._settings.service_tier)
        if job.deadline is not None and self._clock() >= job.deadline:
            return self._store_deadline_passed(job, delivery, owner, tier, 0, metrics)
        try:
            image_urls = self._images.data_urls(job.images)
        except InvalidImageError as error:
            return self._store_invalid(job.job_id, error.location, error.reason, delivery, metrics, owner=owner)
        request = build_request(job, image_urls)

        try:
            completion, attempts, latency_ms = self._complete_with_retries(
                job, request, delivery, remaining_ms, metrics, tier
            )
        except _Rejected as rejected:
            return self._store_failed(job, rejected.error, delivery, owner, tier, rejected.attempts, metrics)
        except _DeadlinePassed as passed:
            return self._store_deadline_passed(job, delivery, owner, tier, passed.attempts, metrics)
        metrics.observe_latency(latency_ms)

        finished_at = self._clock()
        record = success_record(
            job,
            completion,
            delivery=delivery,
            tier=tier.use(),
            attempts=attempts,
            latency_ms=latency_ms,
            finished_at=finished_at,
        )
        try:
            key = self._store.put_result(job.job_id, record)
        except ResultAlreadyStoredError:
            # An earlier delivery stored a result and died before it recorded the status. Its result wins.
            key = result_key(job.job_id)
            logger.warning(
                "job %s (message %s): a result was already stored at %s; kept it and discarded this delivery's response",
                job.job_id,
                delivery.message_id,
                key,
            )
        self._job_state.finish(
            job.job_id,
            owner=owner,
            status=STATUS_SUCCEEDED,
            now=finished_at,
            outcome=Outcome(
                record_key=key,
                model=completion.model,
                service_tier_served=completion.served_service_tier,
                escalated=tier.escalated,
            ),
        )
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
        self,
        job: Job,
        request: MantleRequest,
        delivery: Delivery,
        remaining_ms: Callable[[], int],
        metrics: MetricsRecorder,
        tier: _TierState,
    ) -> tuple[Completion, int, int]:
        """Return the completion, the number of requests sent and the last request's latency in ms.

        Raises _Deferred when the job must wait for its next delivery, _Rejected when Mantle
        rejected it for good and _DeadlinePassed when the job's deadline passed before Mantle returned a response.
        """
        attempt = 0
        key_refreshed = False
        while True:
            if job.deadline is not None and self._clock() >= job.deadline:
                raise _DeadlinePassed(attempt)
            api_key = self._current_key()
            timeout = self._policy.request_timeout_seconds(self._settings.request_timeout_seconds, remaining_ms())
            if timeout is None:
                raise _Deferred("too little invocation time is left to send a request")

            attempt += 1
            metrics.add(metric_names.REQUESTS)
            started = time.monotonic()
            try:
                completion = self._mantle.complete(
                    request,
                    job_id=job.job_id,
                    api_key=api_key,
                    timeout_seconds=timeout,
                    receive_count=delivery.receive_count,
                    service_tier=tier.current,
                )
            except MantleRequestError as error:
                _count_failed_request(error.status, metrics)
                tier.consecutive_unavailable = tier.consecutive_unavailable + 1 if error.status == 503 else 0
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
                if self._escalate_now(job, delivery, tier, error.status, decision, timeout):
                    metrics.add(metric_names.TIER_ESCALATIONS)
                    continue
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
            metrics.add(metric_names.CACHED_INPUT_TOKENS, completion.cached_input_tokens or 0)
            metrics.add(metric_names.OUTPUT_TOKENS, completion.output_tokens or 0)
            return completion, attempt, int((time.monotonic() - started) * 1000)

    def _escalate_now(
        self, job: Job, delivery: Delivery, tier: _TierState, status: int | None, decision: Any, timeout: float
    ) -> bool:
        """Move the job to the standard tier when Flex keeps returning 503 and the next Flex try would miss the deadline."""
        if decision.action is Action.RETRY:
            next_try = decision.delay_seconds
        else:
            next_try = self._policy.earliest_redelivery_seconds(delivery.receive_count, decision.retry_after_seconds)
        due = escalation_due(
            EscalationInput(
                config_allows=self._settings.allow_standard_tier_escalation,
                job_allows=job.allow_standard_tier_escalation,
                current_tier=tier.current,
                status=status,
                consecutive_unavailable=tier.consecutive_unavailable,
                max_attempts=self._settings.max_attempts_per_delivery,
                deadline=job.deadline,
                now=self._clock(),
                next_flex_try_in_seconds=next_try,
                request_timeout_seconds=timeout,
            )
        )
        if due:
            tier.current = STANDARD_TIER
            tier.escalated = True
            logger.warning(
                "job %s (message %s): %s returned 503 %d times in a row and the next try would miss the deadline "
                "%s; escalating to the %s tier",
                job.job_id,
                delivery.message_id,
                FLEX_TIER,
                tier.consecutive_unavailable,
                job.deadline.isoformat() if job.deadline else None,
                STANDARD_TIER,
            )
        return due

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

    def _store_invalid(
        self,
        job_id: str | None,
        field_name: str,
        reason: str,
        delivery: Delivery,
        metrics: MetricsRecorder,
        *,
        owner: str | None,
    ) -> RecordOutcome:
        name = job_id or delivery.message_id
        finished_at = self._clock()
        record = invalid_record(job_id, reason, delivery=delivery, finished_at=finished_at)
        key = self._store.put_failure(name, record)
        if job_id is not None:
            recorded = self._job_state.finish(
                job_id,
                owner=owner,
                status=STATUS_INVALID,
                now=finished_at,
                outcome=Outcome(record_key=key, error=reason, message_id=delivery.message_id),
            )
            if not recorded:
                logger.warning(
                    "job %s (message %s): status not set to invalid, because the job succeeded or another delivery "
                    "runs it",
                    job_id,
                    delivery.message_id,
                )
        metrics.add(metric_names.JOBS_FAILED)
        # The reason may quote the start of a field's value, which could be prompt text, so only
        # the field name is logged. The failure record contains the whole reason.
        logger.warning(
            "job %s (message %s): invalid field %r, not retried, failure record stored at %s",
            job_id,
            delivery.message_id,
            field_name,
            key,
        )
        return RecordOutcome(delivery.message_id, job_id, OUTCOME_INVALID, report_failure=False)

    def _store_failed(
        self,
        job: Job,
        error: MantleRequestError,
        delivery: Delivery,
        owner: str,
        tier: _TierState,
        attempts: int,
        metrics: MetricsRecorder,
    ) -> RecordOutcome:
        description = describe_rejection(error, self._settings, job.model)
        return self._store_failure(job, description, error.status, delivery, owner, tier, attempts, metrics)

    def _store_deadline_passed(
        self, job: Job, delivery: Delivery, owner: str, tier: _TierState, attempts: int, metrics: MetricsRecorder
    ) -> RecordOutcome:
        assert job.deadline is not None
        description = (
            f"the job's deadline {job.deadline.isoformat()} passed before Mantle answered ({attempts} requests sent); "
            "send it again with a later deadline"
        )
        return self._store_failure(job, description, None, delivery, owner, tier, attempts, metrics)

    def _store_failure(
        self,
        job: Job,
        description: str,
        http_status: int | None,
        delivery: Delivery,
        owner: str,
        tier: _TierState,
        attempts: int,
        metrics: MetricsRecorder,
    ) -> RecordOutcome:
        finished_at = self._clock()
        record = failed_record(
            job,
            description,
            http_status=http_status,
            delivery=delivery,
            tier=tier.use(),
            attempts=attempts,
            finished_at=finished_at,
        )
        key = self._store.put_failure(job.job_id, record)
        self._job_state.finish(
            job.job_id,
            owner=owner,
            status=STATUS_FAILED,
            now=finished_at,
            outcome=Outcome(record_key=key, error=description, model=job.model, escalated=tier.escalated),
        )
        metrics.add(metric_names.JOBS_FAILED)
        logger.error(
            "job %s (message %s): failed and not retried, stored at %s: %s",
            job.job_id,
            delivery.message_id,
            key,
            description,
        )
        return RecordOutcome(delivery.message_id, job.job_id, OUTCOME_FAILED, report_failure=False)

    def _release_deferred(self, job: Job, delivery: Delivery, owner: str, deferred: _Deferred) -> None:
        """Give the lock back before the message returns to the queue.

        On the last delivery before the dead-letter queue, the status becomes ``failed`` with
        ``dead_lettered`` set, so status readers stop waiting. A redriven job may run again.
        """
        now = self._clock()
        last_delivery = (
            self._settings.max_receive_count is not None and delivery.receive_count >= self._settings.max_receive_count
        )
        if not last_delivery:
            self._job_state.release(job.job_id, owner=owner, now=now)
            return
        reason = (
            f"deferred on delivery {delivery.receive_count} of max_receive_count {self._settings.max_receive_count} "
            f"({deferred.reason}), so SQS moves the message to the dead-letter queue; fix the cause and redrive it"
        )
        self._job_state.finish(
            job.job_id,
            owner=owner,
            status=STATUS_FAILED,
            now=now,
            outcome=Outcome(error=reason, model=job.model, dead_lettered=True),
        )

    def _release_after_error(self, job_id: str, owner: str) -> None:
        try:
            self._job_state.release(job_id, owner=owner, now=self._clock())
        except (ClientError, BotoCoreError) as error:
            # The lock then expires at the end of this invocation, before the message returns.
            logger.error("job %s: releasing its lock after an error failed: %s", job_id, error)

    def _defer_duplicate(self, job_id: str, delivery: Delivery, record: dict[str, Any], wait_seconds: float) -> RecordOutcome:
        """Return a message whose job another delivery is running, to be delivered again after that lock expires."""
        delay = min(SQS_MAX_VISIBILITY_SECONDS, max(1, math.ceil(wait_seconds) + 1))
        self._change_visibility(job_id, delivery, record, delay)
        logger.info(
            "job %s (message %s, receive %d): another delivery has the job's lock, so the message returns in %d s",
            job_id,
            delivery.message_id,
            delivery.receive_count,
            delay,
        )
        return RecordOutcome(delivery.message_id, job_id, OUTCOME_DEFERRED, report_failure=True)

    def _defer(self, job_id: str, delivery: Delivery, record: dict[str, Any], deferred: _Deferred) -> RecordOutcome:
        delay = self._policy.redelivery_delay_seconds(
            delivery.receive_count, deferred.retry_after_seconds, self._random
        )
        self._change_visibility(job_id, delivery, record, delay)
        logger.warning(
            "job %s (message %s, receive %d): deferred to a later delivery in %d s: %s",
            job_id,
            delivery.message_id,
            delivery.receive_count,
            delay,
            deferred.reason,
        )
        return RecordOutcome(delivery.message_id, job_id, OUTCOME_DEFERRED, report_failure=True)


    def _change_visibility(self, job_id: str, delivery: Delivery, record: dict[str, Any], delay: int) -> None:
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
