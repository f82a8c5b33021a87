"""The submit command: send a JSONL file of jobs to a region's queue, wait for their results, write them to a file.

Each line of the jobs file is one job body. Lines that are not valid jobs, or that are larger
than the queue's MaximumMessageSize, are not sent and are reported as invalid. Jobs whose status
record is already ``succeeded`` are not sent again, so a rerun sends only what is missing. The
command then polls the job state table until every sent job has a final status or the timeout
passes, reads each job's result or failure record from the results bucket, and writes one output
line per input line.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, TextIO

from botocore.exceptions import ClientError
from tqdm import tqdm

from gemma_batch.local.function_code import add_function_code_to_path

logger = logging.getLogger(__name__)

# Outputs of the regional stack (stacks/regional_stack.py) that the command reads.
QUEUE_URL_OUTPUT = "JobQueueUrl"
RESULTS_BUCKET_OUTPUT = "ResultsBucketName"
STATUS_TABLE_OUTPUT = "JobStatusTableName"
INPUT_LOCATION_OUTPUT = "InputLocation"

FINAL_STATUSES = ("succeeded", "failed", "invalid")
# Output statuses besides the final ones: still queued or running at the timeout, or never accepted by SQS.
UNFINISHED = "unfinished"
NOT_SENT = "not_sent"
SEND_BATCH_LIMIT = 10
GET_BATCH_LIMIT = 100


class SubmitError(RuntimeError):
    """Raised when the command cannot start: stack or queue not found, or an unreadable jobs file."""


@dataclass(frozen=True)
class Targets:
    """The queue that jobs go to, and the bucket and table their outcomes are read from. ``input_location`` is None when unknown."""

    queue_url: str
    results_bucket: str
    status_table: str
    input_location: str | None = None


@dataclass
class JobLine:
    """One line of the jobs file and what became of it."""

    line_number: int
    body: str = field(repr=False)
    job_id: str | None = None
    status: str | None = None
    error: str | None = None
    skipped: bool = False
    message_id: str | None = None
    record: dict[str, Any] | None = field(default=None, repr=False)

    def output(self) -> dict[str, Any]:
        return {
            "line": self.line_number,
            "job_id": self.job_id,
            "status": self.status,
            "skipped": self.skipped,
            "error": self.error,
            "record": self.record,
        }


@dataclass(frozen=True)
class Summary:
    """Counts of one run. ``rejected`` jobs were never sent and are counted in ``invalid`` too."""

    total: int
    skipped: int
    sent: int
    succeeded: int
    failed: int
    invalid: int
    rejected: int
    unfinished: int
    not_sent: int

    @property
    def all_succeeded(self) -> bool:
        return self.failed + self.invalid + self.unfinished + self.not_sent == 0

    def lines(self) -> list[str]:
        return [
            f"jobs in file: {self.total}",
            f"succeeded: {self.succeeded} (already succeeded before this run, not sent again: {self.skipped})",
            f"failed: {self.failed}",
            f"invalid: {self.invalid} (rejected before sending: {self.rejected})",
            f"unfinished at the timeout: {self.unfinished}",
            f"not accepted by the queue: {self.not_sent}",
            f"sent in this run: {self.sent}",
        ]


def resolve_targets(
    cloudformation_client: Any,
    region: str,
    *,
    queue_url: str | None = None,
    results_bucket: str | None = None,
    status_table: str | None = None,
) -> Targets:
    """Use the three explicit names when all are given, else read them from the stack GemmaBatch-<region>."""
    explicit = (queue_url, results_bucket, status_table)
    if all(explicit):
        return Targets(queue_url, results_bucket, status_table)  # type: ignore[arg-type]
    if any(explicit):
        raise SubmitError(
            "give all three of --queue-url, --results-bucket and --status-table, or none of them to read the "
            f"stack GemmaBatch-{region}'s outputs"
        )
    stack_name = f"GemmaBatch-{region}"
    try:
        stacks = cloudformation_client.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        raise SubmitError(
            f"reading the outputs of stack {stack_name} failed: {error}. Deploy the region first, or pass "
            "--queue-url, --results-bucket and --status-table"
        ) from None
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}
    missing = [name for name in (QUEUE_URL_OUTPUT, RESULTS_BUCKET_OUTPUT, STATUS_TABLE_OUTPUT) if name not in outputs]
    if missing:
        raise SubmitError(
            f"stack {stack_name} has no output {', '.join(missing)}; deploy this version of the app to the region"
        )
    return Targets(
        outputs[QUEUE_URL_OUTPUT],
        outputs[RESULTS_BUCKET_OUTPUT],
        outputs[STATUS_TABLE_OUTPUT],
        outputs.get(INPUT_LOCATION_OUTPUT),
    )


def max_message_bytes(sqs_client: Any, queue_url: str) -> int:
    """Read the queue's MaximumMessageSize attribute, the largest body SQS accepts, in bytes."""
    try:
        attributes = sqs_client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["MaximumMessageSize"])
    except ClientError as error:
        raise SubmitError(f"reading the attributes of queue {queue_url} failed: {error}") from None
    return int(attributes["Attributes"]["MaximumMessageSize"])


def read_jobs(path: Path, max_bytes: int, input_location: str | None) -> list[JobLine]:
    """Read and check every non-blank line; a line that fails a check gets status ``invalid`` and its error.

    The checks are the worker's own job schema, so a line passes here exactly when the worker accepts it.
    """
    add_function_code_to_path()
    from worker import job as job_module
    defaults = job_module.JobDefaults(
        model=job_module.SUPPORTED_MODELS[0],
        max_output_tokens=1024,
        input_location=_parse_location(job_module, input_location),
    )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SubmitError(f"reading the jobs file {path} failed: {error}") from None

    jobs: list[JobLine] = []
    first_line_of: dict[str, int] = {}
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        job = JobLine(line_number=line_number, body=line)
        jobs.append(job)
        try:
            job.job_id = job_module.parse_job(line, defaults).job_id
        except job_module.InvalidJobError as error:
            job.job_id = error.job_id
            job.status, job.error = "invalid", error.reason
            continue
        size = len(line.encode("utf-8"))
        if size > max_bytes:
            job.status = "invalid"
            job.error = (
                f"the job is {size} bytes, more than the queue's maximum message size of {max_bytes} bytes "
                "(MaximumMessageSize); upload its images to the input location and list their s3:// URIs instead"
            )
        elif job.job_id in first_line_of:
            job.status = "invalid"
            job.error = f"job_id {job.job_id!r} is also on line {first_line_of[job.job_id]}; give each job its own id"
        else:
            first_line_of[job.job_id] = line_number
    return jobs


class StatusReader:
    """Reads status records from the job state table with strongly consistent BatchGetItem calls."""

    def __init__(self, dynamodb_client: Any, table: str) -> None:
        self._client = dynamodb_client
        self._table = table

    def read(self, job_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Return the records that exist, by job id, as plain values."""
        ids = list(job_ids)
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), GET_BATCH_LIMIT):
            request = {
                self._table: {"Keys": [{"job_id": {"S": job_id}} for job_id in ids[start : start + GET_BATCH_LIMIT]],
                              "ConsistentRead": True}
            }
            while request:
                response = self._client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self._table, []):
                    record = {name: next(iter(value.values())) for name, value in item.items()}
                    found[record["job_id"]] = record
                request = response.get("UnprocessedKeys") or {}
        return found


def send_jobs(sqs_client: Any, queue_url: str, jobs: list[JobLine], max_bytes: int) -> None:
    """Send the jobs with SendMessageBatch, at most 10 and at most ``max_bytes`` per call; record message ids or errors."""
    batch: list[JobLine] = []
    batch_bytes = 0
    for job in jobs:
        size = len(job.body.encode("utf-8"))
        if batch and (len(batch) == SEND_BATCH_LIMIT or batch_bytes + size > max_bytes):
            _send_batch(sqs_client, queue_url, batch)
            batch, batch_bytes = [], 0
        batch.append(job)
        batch_bytes += size
    if batch:
        _send_batch(sqs_client, queue_url, batch)


def _send_batch(sqs_client: Any, queue_url: str, batch: list[JobLine]) -> None:
    response = sqs_client.send_message_batch(
        QueueUrl=queue_url,
        Entries=[{"Id": str(index), "MessageBody": job.body} for index, job in enumerate(batch)],
    )
    for entry in response.get("Successful", []):
        batch[int(entry["Id"])].message_id = entry["MessageId"]
    for entry in response.get("Failed", []):
        job = batch[int(entry["Id"])]
        job.status = NOT_SENT
        job.error = f"SQS did not accept the message: {entry.get('Code')}: {entry.get('Message')}"
        logger.error("job %s (line %d): %s", job.job_id, job.line_number, job.error)


def is_final_for(job: JobLine, record: dict[str, Any] | None) -> bool:
    """Return whether a status record is this run's outcome of the job.

    A success counts whichever delivery wrote it. A failure counts only when it names the message
    sent in this run, because an earlier run's failure of the same job id stays until the job runs again.
    """
    if record is None or record.get("status") not in FINAL_STATUSES:
        return False
    return record["status"] == "succeeded" or record.get("message_id") == job.message_id


def wait_for_outcomes(
    reader: StatusReader,
    jobs: list[JobLine],
    *,
    timeout_seconds: float,
    poll_interval_seconds: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    progress: bool,
) -> dict[str, dict[str, Any]]:
    """Poll until every job has its final status or the timeout passes; return the last records read."""
    pending = {job.job_id: job for job in jobs if job.job_id is not None}
    records: dict[str, dict[str, Any]] = {}
    deadline = clock() + timeout_seconds
    with tqdm(total=len(pending), unit="job", desc="jobs finished", file=sys.stderr, disable=not progress) as bar:
        while pending:
            latest = reader.read(pending)
            records.update(latest)
            finished = [job_id for job_id, job in pending.items() if is_final_for(job, latest.get(job_id))]
            for job_id in finished:
                del pending[job_id]
            bar.update(len(finished))
            if not pending or clock() >= deadline:
                break
            sleep(poll_interval_seconds)
    return records


def read_record(s3_client: Any, bucket: str, key: str | None) -> dict[str, Any] | None:
    """Return a result or failure record from the results bucket, or None when there is none to read."""
    if not key:
        return None
    try:
        body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        logger.warning("reading s3://%s/%s failed: %s", bucket, key, error)
        return None
    return json.loads(body)


def submit_jobs(
    *,
    sqs_client: Any,
    dynamodb_client: Any,
    s3_client: Any,
    targets: Targets,
    jobs_path: Path,
    out_path: Path,
    timeout_seconds: float,
    poll_interval_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    progress: bool = True,
) -> Summary:
    """Run the whole command and write ``out_path``; the caller prints the summary."""
    max_bytes = max_message_bytes(sqs_client, targets.queue_url)
    jobs = read_jobs(jobs_path, max_bytes, targets.input_location)
    rejected = sum(job.status == "invalid" for job in jobs)
    candidates = [job for job in jobs if job.status is None]

    reader = StatusReader(dynamodb_client, targets.status_table)
    earlier = reader.read(job.job_id for job in candidates if job.job_id)
    for job in candidates:
        record = earlier.get(job.job_id or "")
        if record is not None and record.get("status") == "succeeded":
            job.skipped = True
            job.status = "succeeded"
            job.record = read_record(s3_client, targets.results_bucket, record.get("record_key"))
    to_send = [job for job in candidates if not job.skipped]
    logger.info("sending %d jobs to %s; %d already succeeded, %d rejected", len(to_send), targets.queue_url,
                len(candidates) - len(to_send), rejected)
    send_jobs(sqs_client, targets.queue_url, to_send, max_bytes)

    sent = [job for job in to_send if job.message_id is not None]
    records = wait_for_outcomes(
        reader,
        sent,
        timeout_seconds=timeout_seconds,
        poll_interval_seconds=poll_interval_seconds,
        sleep=sleep,
        clock=clock,
        progress=progress,
    )
    for job in sent:
        record = records.get(job.job_id or "")
        if is_final_for(job, record):
            assert record is not None
            job.status = record["status"]
            job.error = record.get("error")
            job.record = read_record(s3_client, targets.results_bucket, record.get("record_key"))
        else:
            job.status = UNFINISHED
            state = record.get("status") if record else "queued"
            job.error = f"still {state} when the timeout of {timeout_seconds:g} s passed; run the command again later"

    _write_output(out_path, jobs)
    return Summary(
        total=len(jobs),
        skipped=sum(job.skipped for job in jobs),
        sent=len(sent),
        succeeded=sum(job.status == "succeeded" for job in jobs),
        failed=sum(job.status == "failed" for job in jobs),
        invalid=sum(job.status == "invalid" for job in jobs),
        rejected=rejected,
        unfinished=sum(job.status == UNFINISHED for job in jobs),
        not_sent=sum(job.status == NOT_SENT for job in jobs),
    )


def print_summary(summary: Summary, out_path: Path, stream: TextIO) -> None:
    for line in summary.lines():
        print(line, file=stream)
    print(f"results written to {out_path}", file=stream)


def _write_output(path: Path, jobs: list[JobLine]) -> None:
    try:
        with path.open("w", encoding="utf-8") as output:
            for job in jobs:
                output.write(json.dumps(job.output(), ensure_ascii=False) + "\n")
    except OSError as error:
        raise SubmitError(f"writing the output file {path} failed: {error}") from None


def _parse_location(job_module: Any, location: str | None) -> Any:
    if not location or not location.startswith("s3://"):
        return None
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    return job_module.InputLocation(bucket, prefix)
