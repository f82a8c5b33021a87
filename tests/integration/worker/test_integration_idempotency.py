"""Idempotent jobs: redeliveries, concurrent deliveries and crashed deliveries give one model call and one result.

These tests deliver SQS messages to the real handler themselves instead of through the driver,
so they can deliver one message several times and make it visible again at once.

moto 5.2.5 does not serialize concurrent conditional writes to one DynamoDB item (two
simultaneous claims both succeeded in 1 of 30 direct trials, and in most trials of two messages
in one batch), while DynamoDB does. So the concurrent test starts the second delivery once the
first holds the lock, instead of racing the two claims.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from gemma_batch.local.sqs_driver import LambdaContext
from worker import handler as worker_handler
from worker.results import ResultStore


class SimulatedCrash(BaseException):
    """Ends a delivery the way a killed process does: nothing after it runs, and no handler catches it."""


class ShiftedClock:
    """The worker's clock: real time plus an offset that a test moves forward instead of waiting."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset


def receive(stack) -> dict[str, Any]:
    response = stack.clients["sqs"].receive_message(
        QueueUrl=stack.queue_url, MaxNumberOfMessages=1, AttributeNames=["All"], WaitTimeSeconds=1
    )
    (message,) = response["Messages"]
    return message


def lambda_record(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {"ApproximateReceiveCount": message["Attributes"]["ApproximateReceiveCount"]},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
    }


def deliver(message: dict[str, Any], timeout_seconds: float = 60) -> dict[str, Any]:
    """Invoke the handler with one message, as the event source mapping would."""
    context = LambdaContext(function_name="worker", timeout_seconds=timeout_seconds, region="us-east-1")
    return worker_handler.lambda_handler({"Records": [lambda_record(message)]}, context)


def result_versions(stack, job_id: str) -> list[dict[str, Any]]:
    response = stack.clients["s3"].list_object_versions(Bucket=stack.bucket, Prefix=f"results/{job_id}.json")
    return response.get("Versions", [])


def model_calls(emulator, job_id: str) -> int:
    return emulator.stats.snapshot()["jobs"].get(job_id, {}).get("requests", 0)


@pytest.fixture()
def versioned_stack(stack):
    """The test stack with bucket versioning on, as in the deployed results bucket, so every write is counted."""
    stack.clients["s3"].put_bucket_versioning(Bucket=stack.bucket, VersioningConfiguration={"Status": "Enabled"})
    return stack


@pytest.fixture()
def clock(worker_environment) -> ShiftedClock:
    shifted = ShiftedClock()
    worker_handler.reset_runtime(clock=shifted)
    return shifted


def test_three_deliveries_give_one_call_and_one_result(versioned_stack, emulator, clock):
    stack = versioned_stack
    # GIVEN one job whose model call takes 0.5 s
    emulator.faults.set_latency(0.5)
    stack.send({"job_id": "once-only", "prompt": "Answer me once."})
    message = receive(stack)

    # WHEN the message is delivered, and delivered again while the first delivery holds the job
    first_response: dict[str, Any] = {}
    first = threading.Thread(target=lambda: first_response.update(deliver(message)))
    first.start()
    deadline = time.monotonic() + 10
    while (stack.job_state("once-only") or {}).get("status") != "running" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stack.job_state("once-only")["status"] == "running"
    concurrent_response = deliver(message)
    first.join()

    # AND delivered a third time after the first one finished
    emulator.faults.set_latency(0)
    third_response = deliver(message)

    # THEN the model was called once and one result was written once
    assert model_calls(emulator, "once-only") == 1
    assert len(result_versions(stack, "once-only")) == 1
    assert list(stack.results()) == ["once-only"]

    # AND the concurrent delivery was returned to the queue, and the first and third were completed
    assert first_response == {"batchItemFailures": []}
    assert concurrent_response == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    assert third_response == {"batchItemFailures": []}

    # AND the status record says succeeded, points at the result and holds no lock
    state = stack.job_state("once-only")
    assert state["status"] == "succeeded"
    assert state["record_key"] == "results/once-only.json"
    assert "lock_owner" not in state
    assert "lock_expires_at" not in state


def test_crash_between_call_and_result(versioned_stack, emulator, clock, monkeypatch):
    stack = versioned_stack
    # GIVEN a delivery that dies after the model answered and before the result is stored
    stack.send({"job_id": "crashed", "prompt": "Survive a crash."})
    message = receive(stack)
    original_put = ResultStore.put_result

    def crash(self, job_id, record):
        raise SimulatedCrash()

    monkeypatch.setattr(ResultStore, "put_result", crash)
    with pytest.raises(SimulatedCrash):
        deliver(message, timeout_seconds=60)
    monkeypatch.setattr(ResultStore, "put_result", original_put)
    assert model_calls(emulator, "crashed") == 1
    assert stack.job_state("crashed")["status"] == "running"
    assert stack.results() == {}

    # WHEN the message returns while the dead delivery's lock is still valid
    stack.clients["sqs"].change_message_visibility(
        QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    early = receive(stack)
    early_response = deliver(early)

    # THEN the job is not called again yet, and the message goes back to wait for the lock
    assert early_response == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    assert model_calls(emulator, "crashed") == 1

    # WHEN the lock has expired (the crashed invocation's remaining time is over) and the message returns
    clock.offset = timedelta(seconds=120)
    stack.clients["sqs"].change_message_visibility(
        QueueUrl=stack.queue_url, ReceiptHandle=early["ReceiptHandle"], VisibilityTimeout=0
    )
    late = receive(stack)
    late_response = deliver(late)

    # THEN the redelivery calls the model once more and stores exactly one result
    assert late_response == {"batchItemFailures": []}
    assert model_calls(emulator, "crashed") == 2
    assert len(result_versions(stack, "crashed")) == 1
    assert stack.results()["crashed"]["receive_count"] == 3

    # AND no job is left in progress
    state = stack.job_state("crashed")
    assert state["status"] == "succeeded"
    assert "lock_owner" not in state
    assert state["deliveries"] == "2"


def test_crash_after_result_keeps_stored_result(versioned_stack, emulator, clock, monkeypatch):
    stack = versioned_stack
    # GIVEN a delivery that stored the result and died before it recorded the status
    stack.send({"job_id": "half-done", "prompt": "Store me once."})
    message = receive(stack)
    original_put = ResultStore.put_result

    def store_then_crash(self, job_id, record):
        original_put(self, job_id, record)
        raise SimulatedCrash()

    monkeypatch.setattr(ResultStore, "put_result", store_then_crash)
    with pytest.raises(SimulatedCrash):
        deliver(message)
    monkeypatch.setattr(ResultStore, "put_result", original_put)
    first_result = stack.results()["half-done"]

    # WHEN the message returns after the lock expired
    clock.offset = timedelta(seconds=120)
    stack.clients["sqs"].change_message_visibility(
        QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    response = deliver(receive(stack))

    # THEN the stored result wins: it is the only version, unchanged, and the status says succeeded
    assert response == {"batchItemFailures": []}
    assert len(result_versions(stack, "half-done")) == 1
    assert stack.results()["half-done"] == first_result
    assert stack.job_state("half-done")["status"] == "succeeded"


def test_failed_job_runs_again_when_resent(stack, driver, emulator, clock):
    # GIVEN a job that failed for good
    emulator.faults.fail_next(1, "route", job_id="second-chance")
    stack.send({"job_id": "second-chance", "prompt": "Hello."})
    driver.drain()
    assert stack.job_state("second-chance")["status"] == "failed"

    # WHEN it is sent again after the cause is gone
    stack.send({"job_id": "second-chance", "prompt": "Hello."})
    driver.drain()

    # THEN it runs and succeeds
    assert stack.job_state("second-chance")["status"] == "succeeded"
    assert stack.job_state("second-chance")["record_key"] == "results/second-chance.json"
    assert model_calls(emulator, "second-chance") == 2
