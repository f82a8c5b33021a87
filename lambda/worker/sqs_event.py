"""Check that a Lambda event is an SQS batch whose records the worker can process and store safely.

Lambda's SQS event source mapping always sends this shape. Any other event comes from a direct
invocation or a hand-built test event. The handler raises InvalidEventError for it before it
processes any record, so the invocation fails, nothing is stored and no message is deleted.
"""

from __future__ import annotations

import re
from typing import Any

# SQS message ids are UUIDs. A body without a valid job id is stored at failures/<message id>.json,
# and log lines name the message id, so a message id may only have the characters of a job id: no
# path separator and no control character.
MESSAGE_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
RECEIVE_COUNT_PATTERN = re.compile(r"[1-9][0-9]{0,9}")
_QUOTED_VALUE_LIMIT = 40
_MISSING = object()


class InvalidEventError(ValueError):
    """Raised for an event that is not an SQS batch. The message names the record and the field at fault."""


def sqs_records(event: Any) -> list[dict[str, Any]]:
    """Return the records of an SQS event, raising InvalidEventError when the event or a record is malformed."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        raise InvalidEventError(
            f"the event is {_describe(event)} without a 'Records' list, so it is not an SQS batch. "
            "The worker takes jobs from its SQS event source mapping: send jobs to the job queue "
            "instead of invoking the function directly."
        )
    for index, record in enumerate(records):
        _check_record(index, record)
    return records


def _check_record(index: int, record: Any) -> None:
    location = f"event record {index}"
    if not isinstance(record, dict):
        raise InvalidEventError(
            f"{location} is {_describe(record)}; an SQS record is an object with messageId, "
            "receiptHandle, body and attributes"
        )

    message_id = record.get("messageId")
    if not isinstance(message_id, str) or not MESSAGE_ID_PATTERN.fullmatch(message_id):
        raise InvalidEventError(
            f"{location} has messageId {_quote(message_id)}; an SQS message id is 1 to 128 characters "
            "from A-Z, a-z, 0-9 and . _ : -"
        )

    location = f"{location} (message {message_id})"
    for name in ("receiptHandle", "body"):
        if not isinstance(record.get(name), str):
            raise InvalidEventError(
                f"{location}: field {name!r} is {_describe(record.get(name, _MISSING))}; SQS sets it to a string"
            )

    attributes = record.get("attributes", {})
    if not isinstance(attributes, dict):
        raise InvalidEventError(
            f"{location}: field 'attributes' is {_describe(attributes)}; SQS sets it to an object"
        )
    receive_count = attributes.get("ApproximateReceiveCount", "1")
    if not isinstance(receive_count, str) or not RECEIVE_COUNT_PATTERN.fullmatch(receive_count):
        raise InvalidEventError(
            f"{location} has attributes.ApproximateReceiveCount {_quote(receive_count)}; SQS sets it to a "
            "whole number from 1, as a string"
        )


def _describe(value: Any) -> str:
    """Name the JSON type of ``value``, never its content, because a body may carry a prompt."""
    if value is _MISSING:
        return "missing"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a Python {type(value).__name__}"


def _quote(value: Any) -> str:
    # repr escapes control characters, so a quoted id cannot break a log line.
    text = repr(value)
    if len(text) > _QUOTED_VALUE_LIMIT:
        return text[: _QUOTED_VALUE_LIMIT - 3] + "..."
    return text
