"""A local stand-in for Lambda's SQS event source mapping.

The driver receives messages from a real SQS endpoint (moto server in tests and local runs), calls
the handler with the event and context Lambda would pass, and deletes what the event source mapping
would delete. With ReportBatchItemFailures on, that is every message not listed in
``batchItemFailures``. Failed messages are left to the queue's visibility timeout and redrive policy.
"""

from __future__ import annotations

import base64
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]

# The message attributes that Lambda copies into a record's "attributes".
LAMBDA_RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "AWSTraceHeader",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "DeadLetterQueueSourceArn",
)
MAX_BATCH_SIZE = 10
DELETE_BATCH_LIMIT = 10


class LambdaContext:
    """The parts of Lambda's context object that handlers use, with a deadline from an injectable clock."""

    def __init__(
        self,
        *,
        function_name: str,
        timeout_seconds: float,
        region: str,
        clock: Callable[[], float] = time.monotonic,
        memory_limit_in_mb: int = 1024,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:123456789012:function:{function_name}"
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self._clock = clock
        self._deadline = clock() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - self._clock()) * 1000))


@dataclass(frozen=True)
class BatchResult:
    """One handler invocation: the message ids delivered, deleted and reported as failed."""

    delivered: tuple[str, ...]
    deleted: tuple[str, ...]
    reported_failures: tuple[str, ...]
    handler_error: str | None = None


@dataclass(frozen=True)
class DrainResult:
    """Totals of a ``drain`` call. ``deliveries`` counts messages, ``batches`` counts handler invocations."""

    rounds: int
    batches: int
    deliveries: int
    deleted: int
    reported_failures: int
    handler_errors: int


class SqsDeliveryDriver:
    """Delivers one queue's messages to a handler in batches, as Lambda's event source mapping does."""

    def __init__(
        self,
        sqs_client: Any,
        queue_url: str,
        handler: Handler,
        *,
        batch_size: int = MAX_BATCH_SIZE,
        function_name: str = "gemma-batch-worker",
        timeout_seconds: float = 60.0,
        wait_time_seconds: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_SIZE}, got {batch_size}")
        self._sqs = sqs_client
        self._queue_url = queue_url
        self._handler = handler
        self._batch_size = batch_size
        self._function_name = function_name
        self._timeout_seconds = timeout_seconds
        self._wait_time_seconds = wait_time_seconds
        self._clock = clock
        self._region = sqs_client.meta.region_name
        self._queue_arn = sqs_client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]

    def deliver_once(self) -> BatchResult | None:
        """Receive one batch and invoke the handler with it. Returns None when no message was received."""
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._batch_size,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=self._wait_time_seconds,
        )
        messages = response.get("Messages", [])
        if not messages:
            return None

        event = {"Records": [self._record(message) for message in messages]}
        context = LambdaContext(
            function_name=self._function_name,
            timeout_seconds=self._timeout_seconds,
            region=self._region,
            clock=self._clock,
        )
        delivered = tuple(message["MessageId"] for message in messages)
        try:
            handler_response = self._handler(event, context)
        except Exception as error:  # noqa: BLE001 - any handler error fails the whole batch, as in Lambda
            logger.exception("handler failed on a batch of %d messages; none are deleted", len(messages))
            return BatchResult(delivered, (), delivered, handler_error=f"{type(error).__name__}: {error}")

        failed = _reported_failures(handler_response, delivered)
        if failed is None:
            logger.error("handler returned an invalid batch response; the whole batch counts as failed")
            return BatchResult(delivered, (), delivered, handler_error="invalid batch response")

        to_delete = [message for message in messages if message["MessageId"] not in failed]
        self._delete(to_delete)
        return BatchResult(
            delivered,
            tuple(message["MessageId"] for message in to_delete),
            tuple(message_id for message_id in delivered if message_id in failed),
        )

    def drain(self, until_empty: bool = True, max_rounds: int = 100) -> DrainResult:
        """Deliver batches until the queue is empty or ``max_rounds`` receives have run.

        With ``until_empty`` the loop ends only when the queue has no visible, in-flight or delayed
        message, so it waits (by long polling) for failed messages to return. Without it the loop
        ends at the first empty receive.
        """
        rounds = batches = deliveries = deleted = reported = errors = 0
        while rounds < max_rounds:
            if until_empty and self.queue_is_empty():
                break
            rounds += 1
            batch = self.deliver_once()
            if batch is None:
                if not until_empty:
                    break
                continue
            batches += 1
            deliveries += len(batch.delivered)
            deleted += len(batch.deleted)
            reported += len(batch.reported_failures)
            errors += batch.handler_error is not None
        if rounds >= max_rounds and until_empty and not self.queue_is_empty():
            logger.warning("drain stopped after %d rounds with messages left in %s", max_rounds, self._queue_url)
        return DrainResult(rounds, batches, deliveries, deleted, reported, errors)

    def queue_is_empty(self) -> bool:
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self._queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return all(int(value) == 0 for value in attributes.values())

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        record: dict[str, Any] = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {
                name: value for name, value in message.get("Attributes", {}).items() if name in LAMBDA_RECORD_ATTRIBUTES
            },
            "messageAttributes": {
                name: _message_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": self._region,
        }
        if "MD5OfMessageAttributes" in message:
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        return record

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), DELETE_BATCH_LIMIT):
            chunk = messages[start : start + DELETE_BATCH_LIMIT]
            response = self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]} for index, message in enumerate(chunk)
                ],
            )
            for failure in response.get("Failed", []):
                message_id = chunk[int(failure["Id"])]["MessageId"]
                logger.error("deleting message %s failed: %s", message_id, failure.get("Message"))


def _reported_failures(handler_response: Any, delivered: tuple[str, ...]) -> set[str] | None:
    """Return the message ids the handler reported, or None when Lambda would fail the whole batch.

    Lambda treats a response with a missing, empty or unknown ``itemIdentifier`` as a failure of the
    whole batch. No response, or no or an empty ``batchItemFailures``, is a complete success.
    """
    if handler_response is None:
        return set()
    if not isinstance(handler_response, dict):
        return None
    failures = handler_response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    reported = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in delivered:
            return None
        reported.add(identifier)
    return reported


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {
        "stringListValues": value.get("StringListValues", []),
        "binaryListValues": [base64.b64encode(item).decode("ascii") for item in value.get("BinaryListValues", [])],
        "dataType": value.get("DataType"),
    }
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    return converted
