"""The job message format: parse and validate the JSON body of one SQS message."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

SUPPORTED_MODELS = ("google.gemma-4-31b", "google.gemma-4-26b-a4b", "google.gemma-4-e2b")
MAX_OUTPUT_TOKENS_LIMIT = 32768
JOB_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
CHAT_ROLES = ("system", "developer", "user", "assistant", "tool")
JOB_FIELDS = ("job_id", "prompt", "messages", "instructions", "model", "max_output_tokens")

# Values quoted in error messages are cut to this many characters to keep the reasons short.
# The failure record stores the whole body anyway.
_QUOTED_VALUE_LIMIT = 40


class InvalidJobError(ValueError):
    """Raised for a body that is not a valid job. The message names the field and the fix.

    ``field_name`` is the field at fault (``body`` when the body is not a JSON object). Logs show only
    ``field_name`` because ``reason`` may quote the start of a value. ``job_id`` is the body's job
    id when that field itself was valid, else None.
    """

    def __init__(self, field_name: str, reason: str, job_id: str | None = None) -> None:
        super().__init__(reason)
        self.field_name = field_name
        self.reason = reason
        self.job_id = job_id


@dataclass(frozen=True)
class Job:
    """A validated job. ``chat_messages`` is the Chat Completions message list, system message first."""

    job_id: str
    model: str
    max_output_tokens: int
    chat_messages: list[dict[str, Any]] = field(repr=False)


def parse_job(body: str, default_model: str, default_max_output_tokens: int) -> Job:
    """Parse one message body, raising InvalidJobError for the first problem found."""
    try:
        document = json.loads(body)
    except ValueError as error:
        # JSONDecodeError's message gives only the position, never the text around it.
        raise InvalidJobError(
            "body",
            f"body is not valid JSON ({error}); send a JSON object with 'job_id' and 'prompt' or 'messages'"
        ) from None
    if not isinstance(document, dict):
        raise InvalidJobError(
            "body",
            f"body is a JSON {_json_type(document)}; send a JSON object with 'job_id' and 'prompt' or 'messages'"
        )

    job_id = _parse_job_id(document)
    try:
        _reject_unknown_fields(document)
        return Job(
            job_id=job_id,
            model=_parse_model(document, default_model),
            max_output_tokens=_parse_max_output_tokens(document, default_max_output_tokens),
            chat_messages=_parse_chat_messages(document),
        )
    except InvalidJobError as error:
        raise InvalidJobError(error.field_name, error.reason, job_id=job_id) from None


def _parse_job_id(document: dict[str, Any]) -> str:
    if "job_id" not in document:
        raise InvalidJobError(
            "job_id",
            "field 'job_id' is missing; add a job id of 1 to 128 characters from A-Z, a-z, 0-9 and . _ : -"
        )
    job_id = document["job_id"]
    if not isinstance(job_id, str):
        raise InvalidJobError("job_id", f"field 'job_id' is a JSON {_json_type(job_id)}; send the job id as a string")
    if not JOB_ID_PATTERN.fullmatch(job_id):
        raise InvalidJobError(
            "job_id",
            f"field 'job_id' is {_quote(job_id)}; use 1 to 128 characters from A-Z, a-z, 0-9 and . _ : -"
        )
    return job_id


def _reject_unknown_fields(document: dict[str, Any]) -> None:
    unknown = sorted(name for name in document if name not in JOB_FIELDS)
    if unknown:
        raise InvalidJobError(
            unknown[0][:_QUOTED_VALUE_LIMIT],
            f"unknown field {_quote(unknown[0])}; the supported fields are {', '.join(JOB_FIELDS)}"
        )


def _parse_model(document: dict[str, Any], default_model: str) -> str:
    model = document.get("model")
    if model is None:
        return default_model
    if model not in SUPPORTED_MODELS:
        raise InvalidJobError(
            "model",
            f"field 'model' is {_quote(model)}; use one of {', '.join(SUPPORTED_MODELS)} or leave it out "
            f"for the default {default_model}"
        )
    return model


def _parse_max_output_tokens(document: dict[str, Any], default: int) -> int:
    value = document.get("max_output_tokens")
    if value is None:
        return default
    # bool is a subclass of int in Python, but JSON true is not a token count.
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_OUTPUT_TOKENS_LIMIT:
        raise InvalidJobError(
            "max_output_tokens",
            f"field 'max_output_tokens' is {_quote(value)}; use a whole number from 1 to {MAX_OUTPUT_TOKENS_LIMIT} "
            f"or leave it out for the default {default}"
        )
    return value


def _parse_chat_messages(document: dict[str, Any]) -> list[dict[str, Any]]:
    has_prompt = document.get("prompt") is not None
    has_messages = document.get("messages") is not None
    if has_prompt and has_messages:
        raise InvalidJobError("prompt", "fields 'prompt' and 'messages' are both set; send only one of them")
    if not has_prompt and not has_messages:
        raise InvalidJobError(
            "prompt",
            "fields 'prompt' and 'messages' are both missing; send the prompt as a string in 'prompt' "
            "or an OpenAI chat message list in 'messages'"
        )

    system_messages = _parse_instructions(document.get("instructions"))
    if has_prompt:
        prompt = document["prompt"]
        if not isinstance(prompt, str):
            raise InvalidJobError(
                "prompt", f"field 'prompt' is a JSON {_json_type(prompt)}; send the prompt as a string"
            )
        if not prompt.strip():
            raise InvalidJobError("prompt", "field 'prompt' is empty; send the prompt text")
        return [*system_messages, {"role": "user", "content": prompt}]

    return [*system_messages, *_validate_messages(document["messages"])]


def _parse_instructions(instructions: Any) -> list[dict[str, Any]]:
    if instructions is None:
        return []
    if not isinstance(instructions, str):
        raise InvalidJobError(
            "instructions",
            f"field 'instructions' is a JSON {_json_type(instructions)}; send the system prompt as a string"
        )
    if not instructions.strip():
        return []
    return [{"role": "system", "content": instructions}]


def _validate_messages(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list):
        raise InvalidJobError(
            "messages",
            f"field 'messages' is a JSON {_json_type(messages)}; send a list of objects with 'role' and 'content'"
        )
    if not messages:
        raise InvalidJobError("messages", "field 'messages' is an empty list; send at least one message")
    for index, message in enumerate(messages):
        location = f"messages[{index}]"
        if not isinstance(message, dict):
            raise InvalidJobError(
                location,
                f"field '{location}' is a JSON {_json_type(message)}; "
                "each message is an object with 'role' and 'content'"
            )
        if "role" not in message:
            raise InvalidJobError(
                f"{location}.role", f"field '{location}.role' is missing; use one of {', '.join(CHAT_ROLES)}"
            )
        if message["role"] not in CHAT_ROLES:
            raise InvalidJobError(
                f"{location}.role",
                f"field '{location}.role' is {_quote(message['role'])}; use one of {', '.join(CHAT_ROLES)}"
            )
        content = message.get("content")
        if not isinstance(content, (str, list)):
            raise InvalidJobError(
                f"{location}.content",
                f"field '{location}.content' is a JSON {_json_type(content)}; "
                "send the text as a string or a list of content parts"
            )
    return messages


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _quote(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return f"a JSON {_json_type(value)}"
    text = repr(value)
    if len(text) > _QUOTED_VALUE_LIMIT:
        return text[: _QUOTED_VALUE_LIMIT - 3] + "...'"
    return text
