"""Result and failure records in the results bucket.

A succeeded job is stored at ``results/{job_id}.json``. A job that is invalid or failed for good is
stored at ``failures/{job_id}.json``, or at ``failures/{message_id}.json`` when the body has no valid
job id. Failure records keep the original body so the job can be sent again after a fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from worker.job import Job
from worker.mantle_client import Completion

STATUS_SUCCEEDED = "succeeded"
STATUS_INVALID = "invalid"
STATUS_FAILED = "failed"


@dataclass(frozen=True)
class Delivery:
    """The SQS delivery a job came in."""

    message_id: str
    receive_count: int
    body: str


def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def success_record(
    job: Job,
    completion: Completion,
    *,
    delivery: Delivery,
    requested_service_tier: str,
    attempts: int,
    latency_ms: int,
    finished_at: datetime,
) -> dict[str, Any]:
    """Build a success record. ``latency_ms`` is the duration of the successful request alone.

    ``service_tier.served`` is the tier the response names, or None when the response names none.
    """
    return {
        "job_id": job.job_id,
        "status": STATUS_SUCCEEDED,
        "model": completion.model,
        "service_tier": {"requested": requested_service_tier, "served": completion.served_service_tier},
        "answer": completion.answer,
        "finish_reason": completion.finish_reason,
        "usage": {
            "input_tokens": completion.input_tokens,
            "output_tokens": completion.output_tokens,
            "total_tokens": completion.total_tokens,
        },
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
    requested_service_tier: str,
    attempts: int,
    finished_at: datetime,
) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "status": STATUS_FAILED,
        "model": job.model,
        "service_tier": {"requested": requested_service_tier, "served": None},
        "error": error,
        "http_status": http_status,
        "attempts": attempts,
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
        """Store a success record and return its object key."""
        return self._put(f"results/{job_id}.json", record)

    def put_failure(self, name: str, record: dict[str, Any]) -> str:
        """Store a failure record under ``failures/{name}.json`` and return its object key."""
        return self._put(f"failures/{name}.json", record)

    def _put(self, key: str, record: dict[str, Any]) -> str:
        self._s3_client.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=json.dumps(record, ensure_ascii=False).encode("utf-8"),
            ContentType="application/json",
        )
        return key
