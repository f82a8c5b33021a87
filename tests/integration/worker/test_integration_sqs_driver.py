"""The SQS delivery driver against SQS on moto server, with small recording handlers in place of the worker."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from gemma_batch.local.sqs_driver import LambdaContext, SqsDeliveryDriver


class RecordingHandler:
    """A Lambda handler that records its events and reports the message ids whose body is in ``fail_bodies``."""

    def __init__(self, fail_bodies: tuple[str, ...] = (), response: Any = "default") -> None:
        self.fail_bodies = fail_bodies
        self.response = response
        self.events: list[dict[str, Any]] = []
        self.contexts: list[Any] = []

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        self.contexts.append(context)
        if self.response != "default":
            return self.response
        return {
            "batchItemFailures": [
                {"itemIdentifier": record["messageId"]} for record in event["Records"] if record["body"] in self.fail_bodies
            ]
        }


def make_driver(aws_clients, stack, handler, **options) -> SqsDeliveryDriver:
    return SqsDeliveryDriver(aws_clients["sqs"], stack.queue_url, handler, wait_time_seconds=0, **options)


def test_event_has_lambda_sqs_shape(aws_clients, stack):
    # GIVEN a message with string and binary message attributes
    queue_arn = aws_clients["sqs"].get_queue_attributes(QueueUrl=stack.queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    message_id = aws_clients["sqs"].send_message(
        QueueUrl=stack.queue_url,
        MessageBody="hello",
        MessageAttributes={
            "source": {"DataType": "String", "StringValue": "tests"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )["MessageId"]
    handler = RecordingHandler()

    # WHEN the driver delivers it
    make_driver(aws_clients, stack, handler).deliver_once()

    # THEN the handler gets the record fields Lambda's event source mapping sends
    (record,) = handler.events[0]["Records"]
    assert record["messageId"] == message_id
    assert record["receiptHandle"]
    assert record["body"] == "hello"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(record["attributes"])
    assert record["messageAttributes"]["source"] == {
        "stringValue": "tests",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert base64.b64decode(record["messageAttributes"]["blob"]["binaryValue"]) == b"\x00\x01"
    assert record["md5OfBody"] == "5d41402abc4b2a76b9719d911017c592"
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == queue_arn
    assert record["awsRegion"] == "us-east-1"


def test_context_counts_down_with_clock(aws_clients, stack):
    # GIVEN a driver on a test clock and a 30 s function timeout
    now = [1000.0]
    aws_clients["sqs"].send_message(QueueUrl=stack.queue_url, MessageBody="x")
    remaining = []

    def handler(event, context):
        remaining.append(context.get_remaining_time_in_millis())
        now[0] += 12.5
        remaining.append(context.get_remaining_time_in_millis())
        now[0] += 100
        remaining.append(context.get_remaining_time_in_millis())
        assert context.function_name == "worker-under-test"
        assert context.aws_request_id
        return None

    make_driver(aws_clients, stack, handler, timeout_seconds=30, function_name="worker-under-test", clock=lambda: now[0]).deliver_once()

    assert remaining == [30000, 17500, 0]


def test_reported_failures_stay_and_others_are_deleted(aws_clients, stack):
    # GIVEN three messages, one of which the handler reports as failed
    aws_clients["sqs"].send_message_batch(
        QueueUrl=stack.queue_url,
        Entries=[{"Id": str(index), "MessageBody": body} for index, body in enumerate(["ok-1", "fails", "ok-2"])],
    )
    handler = RecordingHandler(fail_bodies=("fails",))
    driver = make_driver(aws_clients, stack, handler)

    # WHEN one batch is delivered
    batch = driver.deliver_once()

    # THEN two are deleted and the failed one returns after the visibility timeout with a higher receive count
    assert len(batch.delivered) == 3
    assert len(batch.deleted) == 2
    assert len(batch.reported_failures) == 1
    assert stack.queue_counts() == {"ApproximateNumberOfMessages": 0, "ApproximateNumberOfMessagesNotVisible": 1}
    aws_clients["sqs"].change_message_visibility(
        QueueUrl=stack.queue_url, ReceiptHandle=handler.events[0]["Records"][1]["receiptHandle"], VisibilityTimeout=0
    )
    driver.deliver_once()
    (returned,) = handler.events[1]["Records"]
    assert returned["body"] == "fails"
    assert returned["attributes"]["ApproximateReceiveCount"] == "2"


def test_handler_exception_fails_whole_batch(aws_clients, stack):
    aws_clients["sqs"].send_message(QueueUrl=stack.queue_url, MessageBody="a")
    aws_clients["sqs"].send_message(QueueUrl=stack.queue_url, MessageBody="b")

    def handler(event, context):
        raise RuntimeError("boom")

    batch = make_driver(aws_clients, stack, handler).deliver_once()

    assert batch.deleted == ()
    assert len(batch.reported_failures) == 2
    assert batch.handler_error == "RuntimeError: boom"


@pytest.mark.parametrize(
    "response",
    [
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"itemIdentifier": "not-a-message-in-this-batch"}]},
        {"batchItemFailures": [{"id": "wrong-key"}]},
        "not a dict",
    ],
)
def test_invalid_batch_response_fails_whole_batch(aws_clients, stack, response):
    aws_clients["sqs"].send_message(QueueUrl=stack.queue_url, MessageBody="a")

    batch = make_driver(aws_clients, stack, RecordingHandler(response=response)).deliver_once()

    assert batch.deleted == ()
    assert batch.handler_error == "invalid batch response"


@pytest.mark.parametrize("response", [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}])
def test_empty_batch_response_deletes_all(aws_clients, stack, response):
    aws_clients["sqs"].send_message(QueueUrl=stack.queue_url, MessageBody="a")

    batch = make_driver(aws_clients, stack, RecordingHandler(response=response)).deliver_once()

    assert len(batch.deleted) == 1
    assert batch.reported_failures == ()


def test_drain_respects_batch_size_and_counts(aws_clients, stack):
    # GIVEN 25 messages and a batch size of 10
    for start in range(0, 25, 10):
        aws_clients["sqs"].send_message_batch(
            QueueUrl=stack.queue_url,
            Entries=[{"Id": str(index), "MessageBody": f"m{index}"} for index in range(start, min(start + 10, 25))],
        )
    handler = RecordingHandler()

    # WHEN the driver drains the queue
    result = make_driver(aws_clients, stack, handler, batch_size=10).drain(until_empty=True, max_rounds=20)

    # THEN no batch exceeds 10 records and every message is delivered and deleted once
    assert all(len(event["Records"]) <= 10 for event in handler.events)
    assert result.deliveries == 25
    assert result.deleted == 25
    assert result.reported_failures == 0
    assert result.batches == len(handler.events)
    assert stack.queue_counts() == {"ApproximateNumberOfMessages": 0, "ApproximateNumberOfMessagesNotVisible": 0}


def test_drain_stops_at_max_rounds(aws_clients, stack):
    # GIVEN a message the handler always reports, made visible again at once
    aws_clients["sqs"].send_message(QueueUrl=stack.queue_url, MessageBody="fails")

    def handler(event, context):
        for record in event["Records"]:
            aws_clients["sqs"].change_message_visibility(
                QueueUrl=stack.queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0
            )
        return {"batchItemFailures": [{"itemIdentifier": record["messageId"]} for record in event["Records"]]}

    # WHEN the driver drains with a limit of 3 rounds
    result = make_driver(aws_clients, stack, handler).drain(until_empty=True, max_rounds=3)

    # THEN it stops after 3 deliveries
    assert result.rounds == 3
    assert result.deliveries == 3
    assert result.reported_failures == 3


def test_batch_size_is_checked(aws_clients, stack):
    with pytest.raises(ValueError, match="batch_size must be between 1 and 10"):
        make_driver(aws_clients, stack, RecordingHandler(), batch_size=11)


def test_lambda_context_fields():
    context = LambdaContext(function_name="f", timeout_seconds=5, region="eu-west-1", clock=lambda: 0.0)

    assert context.invoked_function_arn == "arn:aws:lambda:eu-west-1:123456789012:function:f"
    assert context.get_remaining_time_in_millis() == 5000
    assert context.memory_limit_in_mb == 1024
