"""Bad input to the worker: malformed events, malformed key secrets and hostile job bodies.

The promise under test: bad input gets a clear error that names the value and the fix, and loses
nothing. Every job ends as a stored result, a recorded failure, or stays in the queue or its
dead-letter queue. The real handler runs against moto server and the Mantle emulator.
"""

from __future__ import annotations

import base64
import json
import re
import logging
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from gemma_batch.local.sqs_driver import LambdaContext
from worker import handler as worker_handler
from worker.sqs_event import InvalidEventError

REGION = "us-east-1"
PROMPT = "Confidential prompt: the merger with Northwind closes on Friday."


def key_fragments(api_key: str) -> list[str]:
    """Return the key, its base64 body and its SigV4 signature: no log line may contain any of them."""
    encoded = api_key.removeprefix("bedrock-api-key-")
    presigned_url = base64.b64decode(encoded).decode()
    signature = parse_qs(urlsplit("https://" + presigned_url).query)["X-Amz-Signature"][0]
    return [api_key, encoded, signature]


def context() -> LambdaContext:
    return LambdaContext(function_name="gemma-batch-worker", timeout_seconds=60, region=REGION)


def receive_record(stack, body: str) -> dict[str, Any]:
    """Send ``body`` to the test's queue, receive it and return the record Lambda would build from it."""
    stack.send(body)
    (message,) = stack.clients["sqs"].receive_message(
        QueueUrl=stack.queue_url, MaxNumberOfMessages=1, AttributeNames=["All"], WaitTimeSeconds=1
    )["Messages"]
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {"ApproximateReceiveCount": message["Attributes"]["ApproximateReceiveCount"]},
        "eventSource": "aws:sqs",
    }


def deferral_messages(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if "deferred to a later delivery" in record.getMessage()]


def store_secret(stack, raw: str | None = None, **fields: Any) -> None:
    """Store a key document with ``fields`` replacing the valid document's fields, or the text ``raw``."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    document = {
        "format_version": 1,
        "api_key": stack.api_key,
        "expires_at": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "issued_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "issued_by": "arn:aws:sts::123456789012:assumed-role/gemma-batch-key-issuer/rotation",
        **fields,
    }
    text = raw if raw is not None else json.dumps(document)
    stack.clients["secretsmanager"].put_secret_value(SecretId=stack.secret_arn, SecretString=text)


# Malformed events -------------------------------------------------------------------------------


SEND_TO_QUEUE = "send jobs to the job queue instead of invoking the function directly"


@pytest.mark.parametrize(
    ("event", "expected_problem", "expected_fix"),
    [
        ({"job_id": "direct-invoke", "prompt": "hi"}, "the event is an object without a 'Records' list", SEND_TO_QUEUE),
        (None, "the event is null without a 'Records' list", SEND_TO_QUEUE),
        ({"Records": {"0": {}}}, "the event is an object without a 'Records' list", SEND_TO_QUEUE),
        ({"Records": ["not a record"]}, "event record 0 is a string", "an SQS record is an object with messageId"),
    ],
)
def test_non_sqs_event_is_rejected(stack, worker_environment, emulator, event, expected_problem, expected_fix):
    # WHEN the handler is invoked directly with something that is not an SQS batch
    with pytest.raises(InvalidEventError) as raised:
        worker_handler.lambda_handler(event, context())

    # THEN it fails with an error that names the problem and the fix, and runs nothing
    assert expected_problem in str(raised.value)
    assert expected_fix in str(raised.value)
    assert emulator.stats.snapshot()["requests_total"] == 0
    assert stack.results() == {}
    assert stack.failures() == {}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"messageId": "../../results/victim"}, "has messageId '../../results/victim'; an SQS message id is"),
        ({"messageId": "m1\nERROR forged log line"}, "has messageId 'm1\\nERROR forged log line'"),
        ({"messageId": 42}, "has messageId 42"),
        ({"body": None}, "field 'body' is null; SQS sets it to a string"),
        ({"body": {"job_id": "j", "prompt": PROMPT}}, "field 'body' is an object; SQS sets it to a string"),
        ({"receiptHandle": None}, "field 'receiptHandle' is null"),
        ({"attributes": None}, "field 'attributes' is null; SQS sets it to an object"),
        ({"attributes": {"ApproximateReceiveCount": "abc"}}, "attributes.ApproximateReceiveCount 'abc'"),
        ({"attributes": {"ApproximateReceiveCount": "0"}}, "attributes.ApproximateReceiveCount '0'"),
        ({"attributes": {"ApproximateReceiveCount": 2}}, "attributes.ApproximateReceiveCount 2"),
    ],
)
def test_malformed_record_keeps_message(stack, worker_environment, emulator, change, expected):
    # GIVEN a real message whose record was changed into something SQS never sends
    record = receive_record(stack, json.dumps({"job_id": "malformed-record", "prompt": PROMPT}))
    record.update(change)

    # WHEN the handler gets it
    with pytest.raises(InvalidEventError) as raised:
        worker_handler.lambda_handler({"Records": [record]}, context())

    # THEN the error names the record and the field, and quotes no body
    message = str(raised.value)
    assert message.startswith("event record 0")
    assert expected in message
    assert PROMPT not in message

    # AND no job ran, nothing was stored, and the message is still in the queue
    assert emulator.stats.snapshot()["requests_total"] == 0
    assert stack.results() == {}
    assert stack.failures() == {}
    assert stack.queue_counts()["ApproximateNumberOfMessagesNotVisible"] == 1


def test_empty_batch_is_accepted(worker_environment):
    # GIVEN an SQS event with no records WHEN the handler gets it THEN it reports no failures
    assert worker_handler.lambda_handler({"Records": []}, context()) == {"batchItemFailures": []}


# Malformed key secrets ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"api_key": "KEY\r\nX-Injected: 1"}, "secret field 'api_key' is missing or is not a Bedrock API key"),
        ({"api_key": "KEY "}, "secret field 'api_key' is missing or is not a Bedrock API key"),
        ({"api_key": "KEYé"}, "secret field 'api_key' is missing or is not a Bedrock API key"),
        ({"expires_at": "0001-01-01T00:00:00Z"}, "secret field 'expires_at' is outside the years 2000 to 9998"),
        ({"expires_at": "9999-12-31T23:59:59-01:00"}, "secret field 'expires_at' is outside the years"),
        ({"issued_by": "arn\nERROR forged log line"}, "secret field 'issued_by' contains control characters"),
        ({"format_version": True}, "secret field 'format_version' is True, expected 1"),
        ({"raw": "[" * 5000 + "]" * 5000}, "secret value nests JSON too deeply to parse"),
    ],
)
def test_malformed_secret_returns_job_to_queue(stack, driver, worker_environment, emulator, caplog, fields, expected):
    # GIVEN a secret whose key document is malformed, where KEY in a value stands for the valid key
    stored_fields = {}
    for name, value in fields.items():
        stored_fields[name] = value.replace("KEY", stack.api_key) if isinstance(value, str) else value
    store_secret(stack, **stored_fields)
    stack.send({"job_id": "bad-secret", "prompt": PROMPT})

    # WHEN the worker gets the job, with every logger at DEBUG
    caplog.set_level(logging.DEBUG)
    batch = driver.deliver_once()

    # THEN the job is deferred to the queue with a reason that names the field and the fix
    assert batch is not None
    assert batch.handler_error is None
    assert batch.reported_failures == batch.delivered
    deferrals = deferral_messages(caplog)
    assert len(deferrals) == 1
    assert expected in deferrals[0]
    assert "run a rotation" in deferrals[0].lower()

    # AND no request reached Mantle, nothing was stored, the message is still queued, and no log line
    # carries the key or the prompt
    assert emulator.stats.snapshot()["requests_total"] == 0
    assert stack.results() == {}
    assert stack.failures() == {}
    assert sum(stack.queue_counts().values()) == 1
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for fragment in key_fragments(stack.api_key):
        assert fragment not in logged
    assert PROMPT not in logged


def test_just_expired_key_not_sent(stack, driver, worker_environment, emulator, caplog):
    # GIVEN a secret whose key expired one second ago
    expired_at = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=1)
    store_secret(stack, expires_at=expired_at.strftime("%Y-%m-%dT%H:%M:%SZ"))
    stack.send({"job_id": "expired-key", "prompt": PROMPT})

    # WHEN the worker gets the job
    caplog.set_level(logging.INFO, logger="worker")
    batch = driver.deliver_once()

    # THEN the key is never sent, and the job returns to the queue with a reason that names the fix
    assert batch is not None
    assert batch.reported_failures == batch.delivered
    assert emulator.stats.snapshot()["requests_total"] == 0
    deferrals = deferral_messages(caplog)
    assert len(deferrals) == 1
    assert re.search(r"expired \d+ s ago", deferrals[0])
    assert "rotate-secret" in deferrals[0]
    assert sum(stack.queue_counts().values()) == 1


# Hostile job bodies ---------------------------------------------------------------------------------


@pytest.mark.parametrize("job_id", [".", "..", "...", "a..b"])
def test_dot_job_ids_stay_in_prefix(stack, driver, worker_environment, job_id):
    # GIVEN jobs whose ids are dots, which a file system would read as relative path parts
    stack.send({"job_id": job_id, "prompt": "Say hello."})

    # WHEN the worker runs them
    driver.drain()

    # THEN each result is stored directly under results/, with the id as the whole file name
    keys = [item["Key"] for item in stack.clients["s3"].list_objects_v2(Bucket=stack.bucket).get("Contents", [])]
    assert keys == [f"results/{job_id}.json"]


@pytest.mark.parametrize("job_id", ["a/../b", "../results/x", "a\\b", "a\nb"])
def test_path_job_ids_recorded_invalid(stack, driver, worker_environment, job_id):
    # GIVEN jobs whose ids carry path separators or a line break
    (message_id,) = stack.send({"job_id": job_id, "prompt": "Say hello."})

    # WHEN the worker runs them
    driver.drain()

    # THEN the failure record is stored under the message id, with a reason naming job_id
    failures = stack.failures()
    assert list(failures) == [message_id]
    assert "field 'job_id'" in failures[message_id]["reason"]
    assert stack.results() == {}


def test_bad_field_values_recorded_invalid(stack, driver, worker_environment, emulator):
    # GIVEN one batch of jobs whose max_output_tokens or model is out of range, of the wrong type or unknown
    bad_jobs = {
        "tokens-negative": {"max_output_tokens": -1},
        "tokens-zero": {"max_output_tokens": 0},
        "tokens-huge": {"max_output_tokens": 10**12},
        "tokens-string": {"max_output_tokens": "5"},
        "tokens-float": {"max_output_tokens": 5.5},
        "model-unknown": {"model": "gpt-4o"},
        "model-list": {"model": ["google.gemma-4-31b"]},
    }
    for job_id, fields in bad_jobs.items():
        stack.send({"job_id": job_id, "prompt": PROMPT, **fields})

    # WHEN the worker gets the batch once
    batch = driver.deliver_once()

    # THEN no request reaches Mantle and each job has an invalid record naming its field, in one delivery
    assert batch is not None
    assert batch.reported_failures == ()
    assert emulator.stats.snapshot()["requests_total"] == 0
    failures = stack.failures()
    assert sorted(failures) == sorted(bad_jobs)
    for job_id, fields in bad_jobs.items():
        (field_name,) = fields
        assert failures[job_id]["status"] == "invalid"
        assert field_name in failures[job_id]["reason"]


# Bodies that json.loads rejects with something other than JSONDecodeError, or that parse but
# cannot be sent as UTF-8, are recorded as invalid at once instead of retried into the DLQ.
def test_deep_body_recorded_invalid(stack, driver, worker_environment, emulator):
    # GIVEN a job whose messages nest arrays 5000 deep
    body = '{"job_id": "deep", "messages": [{"role": "user", "content": ' + "[" * 5000 + "]" * 5000 + "}]}"
    stack.send(body)

    # WHEN the worker gets it once
    batch = driver.deliver_once()

    # THEN it is recorded as invalid at once instead of being retried
    assert batch is not None
    assert batch.reported_failures == ()
    # The body cannot be parsed, so its job id is unknown and the record is keyed by the message id.
    (record,) = stack.failures().values()
    assert record["status"] == "invalid"
    assert "nests JSON arrays or objects too deeply" in record["reason"]
    assert emulator.stats.snapshot()["requests_total"] == 0


def test_lone_surrogate_recorded_invalid(stack, driver, worker_environment, emulator):
    # GIVEN a job whose prompt contains a lone surrogate, which JSON allows as an escape but UTF-8 cannot encode
    stack.send('{"job_id": "surrogate", "prompt": "hello \\ud800 world"}')

    # WHEN the worker gets it once
    batch = driver.deliver_once()

    # THEN it is recorded as invalid, naming the prompt
    assert batch is not None
    assert batch.reported_failures == ()
    failures = stack.failures()
    assert "surrogate" in failures
    assert "prompt" in failures["surrogate"]["reason"]


def test_huge_integer_reason_is_actionable(stack, driver, worker_environment):
    # GIVEN a job whose max_output_tokens has 5000 digits
    stack.send('{"job_id": "huge-tokens", "prompt": "x", "max_output_tokens": ' + "9" * 5000 + "}")

    # WHEN the worker runs it
    driver.drain()

    # THEN it is recorded as invalid with a reason a sender can act on
    (record,) = stack.failures().values()
    assert record["status"] == "invalid"
    assert "set_int_max_str_digits" not in record["reason"]
