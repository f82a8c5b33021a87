"""Find where each sent job ended (result, failure record or dead-letter queue), download it and build the summary.

A job is lost when its message has no result, no failure record and is not in the dead-letter queue.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gemma_batch.local.job_files import JobLine

logger = logging.getLogger(__name__)

RESULTS_FOLDER = "results"
FAILURES_FOLDER = "failures"
DEAD_LETTERS_FOLDER = "dead-letters"
SUMMARY_FILE = "summary.json"
METRICS_FILE = "metrics.jsonl"
# Long enough to read the whole dead-letter queue before the first message becomes visible again.
DEAD_LETTER_READ_VISIBILITY_SECONDS = 60

ENDED_SUCCEEDED = "succeeded"
ENDED_FAILED = "failed"
ENDED_INVALID = "invalid"
ENDED_DEAD_LETTERED = "dead-lettered"
ENDED_LOST = "lost"
ENDED_NOT_SENT = "not sent"


@dataclass(frozen=True)
class SentJob:
    """A line of the jobs file and the SQS message id it was sent with, or the error when SQS rejected it."""

    line: JobLine
    message_id: str | None
    send_error: str | None = None


@dataclass(frozen=True)
class JobEnd:
    """The end of one job of the jobs file. ``path`` is the downloaded file, or None for a lost or unsent job."""

    line_number: int
    job_id: str | None
    message_id: str | None
    ended: str
    path: str | None
    send_error: str | None = None


@dataclass(frozen=True)
class StoredOutcomes:
    """The records the worker stored and the dead-letter messages, downloaded, by message id."""

    results: dict[str, tuple[dict[str, Any], Path]]
    failures: dict[str, tuple[dict[str, Any], Path]]
    dead_letters: dict[str, Path]


@dataclass
class RunSummary:
    """The numbers a local run prints and writes to summary.json."""

    jobs_file: str
    jobs: int
    done: int
    failed: int
    invalid: int
    dead_lettered: int
    lost: int
    not_sent: int
    retried_deliveries: int
    http_requests: int
    http_requests_by_status: dict[str, int]
    input_tokens: int
    output_tokens: int
    elapsed_seconds: float
    output_dir: str
    jobs_left_in_queue: bool
    ends: list[JobEnd] = field(default_factory=list)

    @property
    def lost_jobs(self) -> list[JobEnd]:
        return [end for end in self.ends if end.ended == ENDED_LOST]

    @property
    def unsent_jobs(self) -> list[JobEnd]:
        return [end for end in self.ends if end.ended == ENDED_NOT_SENT]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def prepare_output_dir(output_dir: Path) -> None:
    """Create the output folder and empty the folders and files that a previous run wrote there."""
    output_dir.mkdir(parents=True, exist_ok=True)
    for folder in (RESULTS_FOLDER, FAILURES_FOLDER, DEAD_LETTERS_FOLDER):
        shutil.rmtree(output_dir / folder, ignore_errors=True)
        (output_dir / folder).mkdir()
    for name in (SUMMARY_FILE, METRICS_FILE):
        (output_dir / name).unlink(missing_ok=True)


def download_outcomes(
    clients: dict[str, Any], bucket: str, dead_letter_queue_url: str, output_dir: Path
) -> StoredOutcomes:
    """Download every result and failure record and every dead-letter message into ``output_dir``."""
    return StoredOutcomes(
        results=_download_records(clients["s3"], bucket, RESULTS_FOLDER, output_dir),
        failures=_download_records(clients["s3"], bucket, FAILURES_FOLDER, output_dir),
        dead_letters=_download_dead_letters(clients["sqs"], dead_letter_queue_url, output_dir / DEAD_LETTERS_FOLDER),
    )


def match_sent_jobs(sent: list[SentJob], stored: StoredOutcomes) -> list[JobEnd]:
    """Return where each sent job ended, by its message id, in the order of the jobs file."""
    ends = []
    for job in sent:
        if job.message_id is None:
            ends.append(JobEnd(job.line.line_number, job.line.job_id, None, ENDED_NOT_SENT, None, job.send_error))
            continue
        ended, path = _find_end(job.message_id, stored)
        ends.append(JobEnd(job.line.line_number, job.line.job_id, job.message_id, ended, path))
    return ends


def _find_end(message_id: str, stored: StoredOutcomes) -> tuple[str, str | None]:
    places = []
    if message_id in stored.results:
        record, path = stored.results[message_id]
        places.append((str(record.get("status", ENDED_SUCCEEDED)), str(path)))
    if message_id in stored.failures:
        record, path = stored.failures[message_id]
        places.append((ENDED_INVALID if record.get("status") == ENDED_INVALID else ENDED_FAILED, str(path)))
    if message_id in stored.dead_letters:
        places.append((ENDED_DEAD_LETTERED, str(stored.dead_letters[message_id])))
    if not places:
        return ENDED_LOST, None
    if len(places) > 1:
        logger.warning(
            "message %s ended in more than one place (%s), and it counts as %s",
            message_id,
            ", ".join(place for place, _ in places),
            places[0][0],
        )
    return places[0]


def _download_records(s3: Any, bucket: str, folder: str, output_dir: Path) -> dict[str, tuple[dict[str, Any], Path]]:
    """Download the objects under ``{folder}/`` into ``output_dir/{folder}/`` and return them by message id."""
    records: dict[str, tuple[dict[str, Any], Path]] = {}
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=f"{folder}/"):
        for item in page.get("Contents", []):
            content = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            # Object keys are results/{name}.json, and names contain no "/", so the key maps to one file.
            path = output_dir / item["Key"]
            path.write_bytes(content)
            try:
                record = json.loads(content)
            except ValueError:
                logger.error("object %s in bucket %s is not valid JSON, so it matches no job", item["Key"], bucket)
                continue
            message_id = record.get("message_id") if isinstance(record, dict) else None
            if not isinstance(message_id, str):
                logger.error("object %s in bucket %s has no message_id, so it matches no job", item["Key"], bucket)
                continue
            records[message_id] = (record, path)
    return records


def _download_dead_letters(sqs: Any, queue_url: str, folder: Path) -> dict[str, Path]:
    """Write each dead-letter message to ``folder/{message id}.json`` and leave the messages in the queue.

    Each message is received with a visibility timeout, so it is read once. Afterwards all of them
    are made visible again, so they stay available for a redrive.
    """
    paths: dict[str, Path] = {}
    receipt_handles = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            VisibilityTimeout=DEAD_LETTER_READ_VISIBILITY_SECONDS,
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            path = folder / f"{message['MessageId']}.json"
            document = {
                "message_id": message["MessageId"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
            }
            path.write_text(json.dumps(document, indent=2, ensure_ascii=False), encoding="utf-8")
            paths[message["MessageId"]] = path
            receipt_handles.append(message["ReceiptHandle"])
    for receipt_handle in receipt_handles:
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=0)
    return paths
