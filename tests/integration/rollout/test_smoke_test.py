"""The post-deploy smoke test against the real worker, moto server and the Mantle emulator on 127.0.0.1."""

from __future__ import annotations

import json
from typing import Any

import pytest

import smoke_test
from tests.integration.rollout.conftest import FakeClock
from tests.integration.worker.conftest import WorkerStack


def test_smoke_job_succeeds_through_real_worker(aws_clients: dict[str, Any], stack: WorkerStack, driver: Any,
                                                 emulator: Any, clock: FakeClock) -> None:
    # GIVEN the real worker behind the job queue, run by the SQS driver whenever the smoke test waits
    def deliver_while_waiting(seconds: float) -> None:
        clock.sleep(seconds)
        driver.drain(until_empty=False, max_rounds=3)

    # WHEN the smoke test submits its job and waits
    result = smoke_test.run_smoke_test(
        aws_clients["sqs"], aws_clients["s3"], queue_url=stack.queue_url, bucket=stack.bucket,
        job_id="rollout-smoke-test1", poll_seconds=5, clock=clock, sleep=deliver_while_waiting,
    )

    # THEN the worker stored a succeeded result for exactly that job, after one model request
    assert result.job_id == "rollout-smoke-test1"
    assert result.record["status"] == "succeeded"
    assert result.record["usage"]["output_tokens"] <= smoke_test.SMOKE_MAX_OUTPUT_TOKENS
    assert list(stack.results()) == ["rollout-smoke-test1"]
    assert emulator.stats.snapshot()["jobs"]["rollout-smoke-test1"]["by_receive_count"] == {"1": 1}


def test_failure_record_fails_smoke_test(aws_clients: dict[str, Any], stack: WorkerStack, clock: FakeClock) -> None:
    # GIVEN a worker that records the smoke job as failed while the test waits
    def fail_job(seconds: float) -> None:
        clock.sleep(seconds)
        aws_clients["s3"].put_object(
            Bucket=stack.bucket, Key="failures/rollout-smoke-test2.json",
            Body=json.dumps({"job_id": "rollout-smoke-test2", "status": "failed", "error": "Mantle answered 503"}),
        )

    # WHEN the smoke test waits for its result
    with pytest.raises(smoke_test.SmokeTestFailed) as raised:
        smoke_test.run_smoke_test(aws_clients["sqs"], aws_clients["s3"], queue_url=stack.queue_url,
                                  bucket=stack.bucket, job_id="rollout-smoke-test2", clock=clock, sleep=fail_job)

    # THEN it fails with the status, the cause and where to look
    message = str(raised.value)
    assert "smoke job rollout-smoke-test2 ended with status 'failed'" in message
    assert "Mantle answered 503" in message
    assert f"s3://{stack.bucket}/failures/rollout-smoke-test2.json" in message


def test_smoke_test_times_out_without_worker(aws_clients: dict[str, Any], stack: WorkerStack, clock: FakeClock) -> None:
    # WHEN nothing processes the job queue
    with pytest.raises(smoke_test.SmokeTestFailed) as raised:
        smoke_test.run_smoke_test(aws_clients["sqs"], aws_clients["s3"], queue_url=stack.queue_url,
                                  bucket=stack.bucket, job_id="rollout-smoke-test3", timeout_seconds=60,
                                  poll_seconds=10, clock=clock, sleep=clock.sleep)
    # THEN it gives up after the timeout, having polled every 10 s, and the job waits in the queue
    assert "has no result after 60 s" in str(raised.value)
    assert clock.sleeps == [10] * 6
    assert stack.queue_counts()["ApproximateNumberOfMessages"] == 1


def test_smoke_job_carries_fixed_prompt_and_budget(aws_clients: dict[str, Any], stack: WorkerStack,
                                                   clock: FakeClock) -> None:
    with pytest.raises(smoke_test.SmokeTestFailed):
        smoke_test.run_smoke_test(aws_clients["sqs"], aws_clients["s3"], queue_url=stack.queue_url,
                                  bucket=stack.bucket, job_id="rollout-smoke-test4", timeout_seconds=0,
                                  clock=clock, sleep=clock.sleep)
    (message,) = aws_clients["sqs"].receive_message(QueueUrl=stack.queue_url)["Messages"]
    assert json.loads(message["Body"]) == {
        "job_id": "rollout-smoke-test4", "prompt": smoke_test.SMOKE_PROMPT, "max_output_tokens": 16,
    }


def test_cli_rejects_empty_queue_url() -> None:
    with pytest.raises(SystemExit) as raised:
        smoke_test.parse_arguments(["--region", "us-east-1", "--queue-url", "", "--bucket", "results"])
    assert raised.value.code == 2
