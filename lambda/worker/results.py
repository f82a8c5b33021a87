"""Result and failure records in the results bucket.

A succeeded job is stored at ``results/{job_id}.json``, written once: the write is conditional
(``If-None-Match: *``), so a second delivery of the same job can never replace a stored result. A
job that is invalid or failed for good is stored at ``failures/{job_id}.json``, or at
``failures/{message_id}.json`` when the body has no valid job id. Failure records keep the
original body so the job can be sent again after a fix, and a later run of the same job id
overwrites them. The job's status record names the record that is current.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import ClientError

from worker.job import Job
from worker.mantle_client import Completion

STATUS_SUCCEEDED = "succeeded"
STATUS_INVALID = "invalid"
STATUS_FAILED = "failed"
RESULTS_PREFIX = "results/"
FAILURES_PREFIX = "failures/"
# S3 returns 412 when If-None-Match finds the object, and 409 when a concurrent conditional write won.
_ALREADY_STORED_CODES = ("PreconditionFailed", "ConditionalRequestConflict")


class ResultAlreadyStoredError(Exception):
    """Raised when a result for the job exists already; the stored one stays and wins."""


@dataclass(frozen=True)
class Delivery:
    """The SQS delivery a job came in."""

    message_id: str
    receive_count: int
    body: str


@dataclass(frozen=True)
class TierUse:
    """The service tier configured, the tier of the last request sent, and whether escalation moved the job."""

    requested: str
    sent: str
    escalated: bool = False


def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def result_key(job_id: str) -> str:
    return f"{RESULTS_PREFIX}{job_id}.json"


def failure_key(name: str) -> str:
    return f"{FAILURES_PREFIX}{name}.json"


def success_record(
    job: Job,
    completion: Completion,
    *,
    delivery: Delivery,
    tier: TierUse,
    attempts: int,
    latency_ms: int,
    finished_at: datetime,
) -> dict[str, Any]:
    """Build a success record. ``latency_ms`` is the duration of the successful request alone.

    ``service_tier.served`` is the tier the response names, or None when the response names none.
    ``usage.cached_input_tokens`` and ``usage.reasoning_tokens`` are None when Mantle returns no details.
    """
    return {
        "job_id": job.job_id,
        "status": STATUS_SUCCEEDED,
        "schema_version": job.schema_version,
        "api": job.api,
        "model": completion.model,
        "service_tier": {
            "requested": tier.requested,
            "sent": tier.sent,
            "served": completion.served_service_tier,
            "escalated": tier.escalated,
        },
        "answer": completion.answer,
        "reasoning": completion.reasoning,
        "tool_calls": [
            {"call_id": call.call_id, "name": call.name, "arguments": call.arguments} for call in completion.tool_calls
        ],
        "finish_reason": completion.finish_reason,
        "usage": {
            "input_tokens": completion.input_tokens,
            "cached_input_tokens": completion.cached_input_tokens,
            "output_tokens": completion.output_tokens,
            "reasoning_tokens": completion.reasoning_tokens,
            "total_tokens": completion.total_tokens,
        },
        "reasoning_effort": job.reasoning_effort,
        "removed_reasoning_items": job.removed_reasoning_items,
        "metadata": job.metadata,
        "deadline": format_timestamp(job.deadline) if job.deadline else None,
        "error": None,
        "latency_ms": latency_ms,
        "attempts": attempts,
        "receive_count": delivery.receive_count,
        "message_id": delivery.message_id,
        "finished_at": format_timestamp(finished_at),
    }


def invalid_record(
    job_id: str | None, reason: str, *, delivery: Delivery, finished_at: datetime
) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "status": STATUS_INVALID,
        "reason": reason,
        "error": reason,
        "body": delivery.body,
        "receive_count": delivery.receive_count,
        "message_id": delivery.message_id,
        "finished_at": format_timestamp(finished_at),
    }


def failed_record(
    job: Job,
    error: str,
    *,
    http_status: int | None,
    delivery: Delivery,
    tier: TierUse,
    attempts: int,
    finished_at: datetime,
) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "status": STATUS_FAILED,
        "schema_version": job.schema_version,
        "api": job.api,
        "model": job.model,
        "service_tier": {"requested": tier.requested, "sent": tier.sent, "served": None, "escalated": tier.escalated},
        "error": error,
        "http_status": http_status,
        "attempts": attempts,
        "metadata": job.metadata,
        "deadline": format_timestamp(job.deadline) if job.deadline else None,
        "body": delivery.body,
        "receive_count": delivery.receive_count,
        "message_id": delivery.message_id,
        "finished_at": format_timestamp(finished_at),
    }


class ResultStore:
    """Writes result and failure records as JSON objects to the results bucket."""

    def __init__(self, s3_client: Any, bucket: str) -> None:
        self._s3_client = s3_client
        self._bucket = bucket

    def put_result(self, job_id: str, record: dict[str, Any]) -> str:
        """Store a success record once and return its key, raising ResultAlreadyStoredError if one exists."""
        key = result_key(job_id)
        try:
            self._put(key, record, IfNoneMatch="*")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _ALREADY_STORED_CODES:
                raise ResultAlreadyStoredError(key) from None
            raise
        return key

    def put_failure(self, name: str, record: dict[str, Any]) -> str:
        """Store a failure record under ``failures/{name}.json`` and return its object key."""
        key = failure_key(name)
        self._put(key, record)
        return key

    def _put(self, key: str, record: dict[str, Any], **conditions: str) -> None:
        self._s3_client.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=json.dumps(record, ensure_ascii=False).encode("utf-8"),
            ContentType="application/json",
            **conditions,
        )
