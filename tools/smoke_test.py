"""Submit one job to a region's job queue and wait for its result: the post-deploy smoke test.

The job asks for a short answer with a small output budget. The worker stores a finished job at
``results/<job_id>.json`` and a failed or invalid one at ``failures/<job_id>.json``; the test
passes only on a result record with status ``succeeded``. It finds the record with ListObjectsV2
on the exact key, because its role may list only smoke-job keys and a GetObject on a missing key
would answer 403 instead of 404.

Usage (the rollout pipeline passes the stack outputs):
    python tools/smoke_test.py --region us-east-1 --queue-url URL --bucket NAME

Exit status: 0 on success, 1 when the job failed or timed out, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import boto3

logger = logging.getLogger("smoke_test")

DEFAULT_JOB_ID_PREFIX = "rollout-smoke-"
DEFAULT_TIMEOUT_SECONDS = 900
DEFAULT_POLL_SECONDS = 10
# A fixed prompt, so the smoke job never carries user data into logs or results.
SMOKE_PROMPT = "Reply with the single word: ready"
SMOKE_MAX_OUTPUT_TOKENS = 16
# NOTE: these follow the worker's record layout (results/ and failures/ keyed by job id, a "status"
# field); a change to that layout must change them too, and the smoke test's tests use the real worker.
RESULT_KEY = "results/{job_id}.json"
FAILURE_KEY = "failures/{job_id}.json"
SUCCEEDED = "succeeded"


class SmokeTestFailed(RuntimeError):
    """Raised when the smoke job failed, was rejected or did not finish in time."""


@dataclass(frozen=True)
class SmokeResult:
    """The finished smoke job: its id, how long it took and the record the worker stored."""

    job_id: str
    elapsed_seconds: float
    record: dict[str, Any]


def smoke_job(job_id: str) -> dict[str, Any]:
    return {"job_id": job_id, "prompt": SMOKE_PROMPT, "max_output_tokens": SMOKE_MAX_OUTPUT_TOKENS}


def run_smoke_test(
    sqs: Any,
    s3: Any,
    *,
    queue_url: str,
    bucket: str,
    job_id: str,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> SmokeResult:
    """Send the smoke job and poll the bucket until its record appears; raises SmokeTestFailed otherwise."""
    started = clock()
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(smoke_job(job_id)))
    logger.info("sent smoke job %s to %s", job_id, queue_url)

    result_key = RESULT_KEY.format(job_id=job_id)
    failure_key = FAILURE_KEY.format(job_id=job_id)
    while True:
        for key in (result_key, failure_key):
            if _exists(s3, bucket, key):
                record = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                elapsed = clock() - started
                if key == result_key and record.get("status") == SUCCEEDED:
                    return SmokeResult(job_id, elapsed, record)
                raise SmokeTestFailed(
                    f"smoke job {job_id} ended with status {record.get('status')!r} after {elapsed:.0f} s: "
                    f"{_failure_reason(record)}; read s3://{bucket}/{key} and the worker's logs"
                )
        if clock() - started >= timeout_seconds:
            raise SmokeTestFailed(
                f"smoke job {job_id} has no result after {timeout_seconds:.0f} s; check the job queue's backlog, "
                "the worker's logs and the dead-letter queue"
            )
        sleep(poll_seconds)


def _exists(s3: Any, bucket: str, key: str) -> bool:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
    return any(item["Key"] == key for item in listing.get("Contents", []))


def _failure_reason(record: dict[str, Any]) -> str:
    # Failure records name the cause in "error" (failed) or "reason" (invalid). Neither contains prompt text.
    return str(record.get("error") or record.get("reason") or "no reason recorded")


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Submit one job to a region's job queue and wait for its result.")
    parser.add_argument("--region", required=True, help="AWS region of the stack, such as us-east-1")
    parser.add_argument("--queue-url", required=True, help="the stack's JobQueueUrl output")
    parser.add_argument("--bucket", required=True, help="the stack's ResultsBucketName output")
    parser.add_argument("--job-id-prefix", default=DEFAULT_JOB_ID_PREFIX,
                        help=f"prefix of the smoke job id (default {DEFAULT_JOB_ID_PREFIX})")
    parser.add_argument("--timeout-seconds", type=float, default=DEFAULT_TIMEOUT_SECONDS,
                        help=f"how long to wait for the result, in seconds (default {DEFAULT_TIMEOUT_SECONDS})")
    parser.add_argument("--poll-seconds", type=float, default=DEFAULT_POLL_SECONDS,
                        help=f"seconds between looks at the results bucket (default {DEFAULT_POLL_SECONDS})")
    parser.add_argument("--endpoint-url", help="send every AWS request here instead (tests and local runs)")
    arguments = parser.parse_args(argv)
    if not arguments.queue_url or not arguments.bucket:
        parser.error("--queue-url and --bucket must not be empty; pass the stack's JobQueueUrl and ResultsBucketName")
    return arguments


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    arguments = parse_arguments(argv)
    session = boto3.session.Session(region_name=arguments.region)
    sqs = session.client("sqs", endpoint_url=arguments.endpoint_url)
    s3 = session.client("s3", endpoint_url=arguments.endpoint_url)
    job_id = f"{arguments.job_id_prefix}{uuid.uuid4().hex}"
    try:
        result = run_smoke_test(
            sqs, s3, queue_url=arguments.queue_url, bucket=arguments.bucket, job_id=job_id,
            timeout_seconds=arguments.timeout_seconds, poll_seconds=arguments.poll_seconds,
        )
    except SmokeTestFailed as error:
        logger.error("smoke test failed in %s: %s", arguments.region, error)
        return 1
    logger.info(
        "smoke test passed in %s: job %s succeeded in %.0f s (model %s, %s output tokens)",
        arguments.region, result.job_id, result.elapsed_seconds, result.record.get("model"),
        result.record.get("usage", {}).get("output_tokens"),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
