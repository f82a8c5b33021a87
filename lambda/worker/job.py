"""The job message format, schema version 1: parse and validate the JSON body of one SQS message.

pydantic checks the top-level fields and their types. Validators below check the nested parts
(messages, tools, images) and the rules that span fields. Every rejection becomes one
InvalidJobError whose reason names the field, the value and the fix. The README's "Job format"
section documents the same fields.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

SCHEMA_VERSION = 1
SUPPORTED_MODELS = ("google.gemma-4-31b", "google.gemma-4-26b-a4b", "google.gemma-4-e2b")
APIS = ("chat", "responses")
REASONING_EFFORTS = ("low", "medium", "high")
MAX_OUTPUT_TOKENS_LIMIT = 32768
JOB_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
CHAT_ROLES = ("system", "developer", "user", "assistant", "tool")
RESPONSES_ROLES = ("system", "developer", "user", "assistant")
RESPONSES_ITEM_TYPES = ("message", "function_call", "function_call_output", "reasoning")
IMAGE_MEDIA_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
TOOL_NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
TOOL_CHOICE_MODES = ("auto", "none", "required")
# Keys of an assistant chat message that carry the model's reasoning from an earlier turn.
CHAT_REASONING_KEYS = ("reasoning_content", "reasoning")
CHAT_MESSAGE_KEYS = ("role", "content", "name", "tool_calls", "tool_call_id", *CHAT_REASONING_KEYS)

_DATA_URL = re.compile(r"data:(?P<media_type>[a-z]+/[a-z0-9.+-]+);base64,(?P<data>.*)", re.DOTALL)
_S3_URI = re.compile(r"s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>.+)", re.DOTALL)

# Values quoted in error messages are cut to this many characters to keep the reasons short.
# The failure record stores the whole body anyway.
_QUOTED_VALUE_LIMIT = 40
_JOB_FIELD_ERROR = "job_field"


class InvalidJobError(ValueError):
    """Raised for a body that is not a valid job. The message names the field and the fix.

    ``field_name`` is the first field at fault (``body`` when the body is not a JSON object). Logs
    show only ``field_name`` because ``reason`` may quote the start of a value. ``job_id`` is the
    body's job id when that field itself was valid, else None.
    """

    def __init__(self, field_name: str, reason: str, job_id: str | None = None) -> None:
        super().__init__(reason)
        self.field_name = field_name
        self.reason = reason
        self.job_id = job_id


@dataclass(frozen=True)
class InputLocation:
    """The bucket and key prefix that ``s3://`` images must come from, because the worker may read only there."""

    bucket: str
    prefix: str = ""

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def contains(self, bucket: str, key: str) -> bool:
        return bucket == self.bucket and key.startswith(self.prefix)


@dataclass(frozen=True)
class JobDefaults:
    """Worker configuration that fills fields a job leaves out. ``input_location`` None skips the image location check."""

    model: str
    max_output_tokens: int
    reasoning_effort_by_model: Mapping[str, str] = field(default_factory=dict)
    input_location: InputLocation | None = None


@dataclass(frozen=True)
class ImageSource:
    """One image of a job: an ``s3://`` object to read, or inline base64 data with its media type."""

    s3_bucket: str | None = None
    s3_key: str | None = None
    media_type: str | None = None
    data: str | None = field(default=None, repr=False)

    @property
    def s3_uri(self) -> str | None:
        return f"s3://{self.s3_bucket}/{self.s3_key}" if self.s3_bucket else None


@dataclass(frozen=True)
class FunctionTool:
    """A function the model may call, in neutral form; the request builder writes it in each API's shape."""

    name: str
    description: str | None
    parameters: dict[str, Any]
    strict: bool | None = None


@dataclass(frozen=True)
class Job:
    """A validated job with every default applied. Content fields stay out of ``repr`` so logs never show them.

    ``messages`` is the message list of ``api`` (Chat Completions messages or Responses input
    items) with reasoning items removed, and ``removed_reasoning_items`` counts what was removed.
    ``tool_choice`` is ``auto``, ``none``, ``required`` or a tool name.
    """

    job_id: str
    api: str
    model: str
    max_output_tokens: int
    reasoning_effort: str | None = None
    instructions: str | None = field(default=None, repr=False)
    prompt: str | None = field(default=None, repr=False)
    messages: tuple[dict[str, Any], ...] = field(default=(), repr=False)
    images: tuple[ImageSource, ...] = field(default=(), repr=False)
    tools: tuple[FunctionTool, ...] = ()
    tool_choice: str | None = None
    metadata: dict[str, Any] | None = field(default=None, repr=False)
    deadline: datetime | None = None
    allow_standard_tier_escalation: bool = False
    removed_reasoning_items: int = 0
    schema_version: int = SCHEMA_VERSION


# The hint that follows a type error on each field: what to send instead.
FIELD_HINTS = {
    "schema_version": f"send {SCHEMA_VERSION} or leave it out",
    "job_id": "use 1 to 128 characters from A-Z, a-z, 0-9 and . _ : -",
    "api": f"use one of {', '.join(APIS)} or leave it out for chat",
    "model": f"use one of {', '.join(SUPPORTED_MODELS)} or leave it out for the configured default",
    "prompt": "send the prompt as a string",
    "messages": "send a list of message objects",
    "instructions": "send the system prompt as a string",
    "max_output_tokens": f"use a whole number from 1 to {MAX_OUTPUT_TOKENS_LIMIT} or leave it out for the default",
    "reasoning_effort": f"use one of {', '.join(REASONING_EFFORTS)} or leave it out",
    "tools": "send a list of function tools",
    "tool_choice": f"use one of {', '.join(TOOL_CHOICE_MODES)} or {{\"type\": \"function\", \"name\": <tool name>}}",
    "images": "send a list of s3:// URIs or data URLs (data:image/png;base64,...)",
    "metadata": "send an object; it is copied into the result",
    "deadline": "send an ISO 8601 time with a time zone, such as 2026-01-01T12:00:00Z",
    "allow_standard_tier_escalation": "send true or false",
}
JOB_FIELDS = tuple(FIELD_HINTS)


def _field_error(location: str, reason: str) -> PydanticCustomError:
    """Return a validation error that carries the exact location (such as ``messages[1].role``) and the reason."""
    return PydanticCustomError(_JOB_FIELD_ERROR, "{reason}", {"reason": reason, "field": location})


class JobDocument(BaseModel):
    """The JSON job body, schema version 1. Field order matters: validators read the fields validated before them."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    schema_version: int = SCHEMA_VERSION
    job_id: str
    api: str = "chat"
    model: str | None = None
    prompt: str | None = None
    messages: list[Any] | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    reasoning_effort: str | None = None
    tools: list[Any] | None = None
    tool_choice: str | dict[str, Any] | None = None
    images: list[Any] | None = None
    metadata: dict[str, Any] | None = None
    deadline: str | None = None
    allow_standard_tier_escalation: bool = False

    @field_validator("schema_version")
    @classmethod
    def _check_schema_version(cls, value: int) -> int:
        if value != SCHEMA_VERSION:
            raise _field_error(
                "schema_version",
                f"field 'schema_version' is {value}; this worker reads schema version {SCHEMA_VERSION} only, "
                f"so send {SCHEMA_VERSION} or leave it out",
            )
        return value

    @field_validator("job_id")
    @classmethod
    def _check_job_id(cls, value: str) -> str:
        if not JOB_ID_PATTERN.fullmatch(value):
            raise _field_error("job_id", f"field 'job_id' is {_quote(value)}; {FIELD_HINTS['job_id']}")
        return value

    @field_validator("api")
    @classmethod
    def _check_api(cls, value: str) -> str:
        if value not in APIS:
            raise _field_error("api", f"field 'api' is {_quote(value)}; {FIELD_HINTS['api']}")
        return value

    @field_validator("model")
    @classmethod
    def _check_model(cls, value: str | None) -> str | None:
        if value is not None and value not in SUPPORTED_MODELS:
            raise _field_error("model", f"field 'model' is {_quote(value)}; {FIELD_HINTS['model']}")
        return value

    @field_validator("prompt")
    @classmethod
    def _check_prompt(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise _field_error("prompt", "field 'prompt' is empty; send the prompt text")
        return value

    @field_validator("messages")
    @classmethod
    def _check_messages(cls, value: list[Any] | None, info: ValidationInfo) -> list[Any] | None:
        if value is None:
            return None
        if not value:
            raise _field_error("messages", "field 'messages' is an empty list; send at least one message")
        api = info.data.get("api")
        for index, message in enumerate(value):
            if api == "responses":
                _check_responses_item(f"messages[{index}]", message)
            elif api == "chat":
                _check_chat_message(f"messages[{index}]", message)
        return value

    @field_validator("max_output_tokens")
    @classmethod
    def _check_max_output_tokens(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= MAX_OUTPUT_TOKENS_LIMIT:
            raise _field_error(
                "max_output_tokens", f"field 'max_output_tokens' is {value}; {FIELD_HINTS['max_output_tokens']}"
            )
        return value

    @field_validator("reasoning_effort")
    @classmethod
    def _check_reasoning_effort(cls, value: str | None) -> str | None:
        if value is not None and value not in REASONING_EFFORTS:
            raise _field_error(
                "reasoning_effort", f"field 'reasoning_effort' is {_quote(value)}; {FIELD_HINTS['reasoning_effort']}"
            )
        return value

    @field_validator("tools")
    @classmethod
    def _check_tools(cls, value: list[Any] | None) -> list[Any] | None:
        if value is None:
            return None
        names: set[str] = set()
        for index, tool in enumerate(value):
            name = _parse_tool(f"tools[{index}]", tool).name
            if name in names:
                raise _field_error(
                    f"tools[{index}].name",
                    f"field 'tools[{index}].name' repeats the tool name {_quote(name)}; give each tool its own name",
                )
            names.add(name)
        return value

    @field_validator("images")
    @classmethod
    def _check_images(cls, value: list[Any] | None, info: ValidationInfo) -> list[Any] | None:
        if value is None:
            return None
        input_location = (info.context or {}).get("input_location")
        for index, image in enumerate(value):
            _parse_image(f"images[{index}]", image, input_location)
        return value

    @field_validator("deadline")
    @classmethod
    def _check_deadline(cls, value: str | None) -> str | None:
        if value is not None:
            _parse_deadline(value)
        return value

    @model_validator(mode="after")
    def _check_combinations(self) -> "JobDocument":
        if "max_output_tokens" in self.model_fields_set and self.max_output_tokens is None:
            raise _field_error(
                "max_output_tokens",
                "field 'max_output_tokens' is null, which would leave the output unbounded; bedrock-mantle counts "
                f"input + max tokens against the quota before it admits a request, so {FIELD_HINTS['max_output_tokens']}",
            )
        if self.prompt is not None and self.messages is not None:
            raise _field_error("prompt", "fields 'prompt' and 'messages' are both set; send only one of them")
        if self.prompt is None and self.messages is None:
            raise _field_error(
                "prompt",
                "fields 'prompt' and 'messages' are both missing; send the prompt as a string in 'prompt' "
                "or a message list in 'messages'",
            )
        if self.tool_choice is not None:
            _parse_tool_choice(self.tool_choice, [_parse_tool("tools", tool).name for tool in self.tools or []])
        if self.images and self.messages is not None and _last_user_index(self.messages) is None:
            raise _field_error(
                "images",
                "field 'images' is set, but 'messages' has no user message to attach the images to; "
                "add a user message or send the images inside a message's content",
            )
        return self


def parse_job(body: str, defaults: JobDefaults) -> Job:
    """Parse one message body, raising InvalidJobError that lists every problem found."""
    try:
        document = json.loads(body)
    except json.JSONDecodeError as error:
        # JSONDecodeError's message gives only the position, never the text around it.
        raise InvalidJobError(
            "body",
            f"body is not valid JSON ({error}); send a JSON object with 'job_id' and 'prompt' or 'messages'",
        ) from None
    except ValueError:
        # Python refuses integers of more than 4300 digits (sys.get_int_max_str_digits) with a plain ValueError.
        raise InvalidJobError(
            "body",
            "body contains a number with more than 4300 digits; no job field takes such a number, "
            "so send the value as a normal integer or leave the field out",
        ) from None
    except RecursionError:
        raise InvalidJobError(
            "body",
            "body nests JSON arrays or objects too deeply to parse; flatten the message content "
            "to the documented job format",
        ) from None
    if not isinstance(document, dict):
        raise InvalidJobError(
            "body",
            f"body is a JSON {_json_type(document)}; send a JSON object with 'job_id' and 'prompt' or 'messages'",
        )

    _check_encodable(document)
    try:
        parsed = JobDocument.model_validate(document, context={"input_location": defaults.input_location})
    except ValidationError as error:
        raise _invalid_job_error(error, document) from None
    return _build_job(parsed, defaults)


def _check_encodable(document: dict[str, Any]) -> None:
    """Reject text that JSON allows but UTF-8 cannot encode (a lone surrogate escape such as \\ud800).

    The request to Mantle is sent as UTF-8, so such a job would fail on every delivery.
    """
    for field_name, value in document.items():
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidJobError(
                str(field_name) if field_name in JobDocument.model_fields else "body",
                f"field '{field_name}' contains a lone UTF-16 surrogate escape (such as \\ud800), which is not valid "
                "Unicode text; encode the text as UTF-8 before building the JSON",
                job_id=document.get("job_id") if isinstance(document.get("job_id"), str) else None,
            ) from None
        except RecursionError:
            raise InvalidJobError(
                "body",
                f"field '{field_name}' nests JSON too deeply; flatten it to the documented job format",
            ) from None


def _build_job(document: JobDocument, defaults: JobDefaults) -> Job:
    model = document.model or defaults.model
    messages, removed = _remove_reasoning_items(document.api, document.messages or [])
    tools = tuple(_parse_tool("tools", tool) for tool in document.tools or [])
    tool_choice = (
        _parse_tool_choice(document.tool_choice, [tool.name for tool in tools])
        if document.tool_choice is not None
        else None
    )
    return Job(
        job_id=document.job_id,
        api=document.api,
        model=model,
        max_output_tokens=document.max_output_tokens or defaults.max_output_tokens,
        reasoning_effort=document.reasoning_effort or defaults.reasoning_effort_by_model.get(model),
        instructions=document.instructions if document.instructions and document.instructions.strip() else None,
        prompt=document.prompt,
        messages=tuple(messages),
        images=tuple(_parse_image("images", image, None) for image in document.images or []),
        tools=tools,
        tool_choice=tool_choice,
        metadata=document.metadata,
        deadline=_parse_deadline(document.deadline) if document.deadline is not None else None,
        allow_standard_tier_escalation=document.allow_standard_tier_escalation,
        removed_reasoning_items=removed,
        schema_version=document.schema_version,
    )


# Nested parts ---------------------------------------------------------------------------------


def _check_chat_message(location: str, message: Any) -> None:
    if not isinstance(message, dict):
        raise _field_error(
            location,
            f"field '{location}' is a JSON {_json_type(message)}; each message is an object with 'role' and 'content'",
        )
    unknown = sorted(key for key in message if key not in CHAT_MESSAGE_KEYS)
    if unknown:
        raise _field_error(
            f"{location}.{unknown[0]}"[:_QUOTED_VALUE_LIMIT * 2],
            f"field '{location}' has the unknown key {_quote(unknown[0])}; a chat message may have "
            f"{', '.join(CHAT_MESSAGE_KEYS)}",
        )
    role = message.get("role")
    if role is None:
        raise _field_error(f"{location}.role", f"field '{location}.role' is missing; use one of {', '.join(CHAT_ROLES)}")
    if role not in CHAT_ROLES:
        raise _field_error(
            f"{location}.role", f"field '{location}.role' is {_quote(role)}; use one of {', '.join(CHAT_ROLES)}"
        )

    content = message.get("content")
    has_tool_calls = role == "assistant" and message.get("tool_calls") is not None
    if content is None and not has_tool_calls:
        raise _field_error(
            f"{location}.content",
            f"field '{location}.content' is a JSON null; send the text as a string or a list of content parts",
        )
    if content is not None:
        _check_content(f"{location}.content", content, "chat")

    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise _field_error(
            f"{location}.tool_call_id",
            f"field '{location}.tool_call_id' is missing; a tool message answers the assistant's tool call "
            "with that call's id",
        )
    if message.get("tool_calls") is not None:
        _check_chat_tool_calls(f"{location}.tool_calls", message["tool_calls"], role)


def _check_chat_tool_calls(location: str, tool_calls: Any, role: str) -> None:
    if role != "assistant":
        raise _field_error(location, f"field '{location}' is set on a {role} message; only assistant messages carry tool calls")
    if not isinstance(tool_calls, list) or not tool_calls:
        raise _field_error(location, f"field '{location}' is not a non-empty list; send the assistant's tool calls")
    for index, call in enumerate(tool_calls):
        where = f"{location}[{index}]"
        function = call.get("function") if isinstance(call, dict) else None
        if (
            not isinstance(call, dict)
            or not isinstance(call.get("id"), str)
            or not isinstance(function, dict)
            or not isinstance(function.get("name"), str)
            or not isinstance(function.get("arguments"), str)
        ):
            raise _field_error(
                where,
                f"field '{where}' is malformed; send {{\"id\": ..., \"type\": \"function\", "
                "\"function\": {\"name\": ..., \"arguments\": <JSON string>}} as the model returned it",
            )


def _check_responses_item(location: str, item: Any) -> None:
    if not isinstance(item, dict):
        raise _field_error(
            location, f"field '{location}' is a JSON {_json_type(item)}; each input item is an object"
        )
    item_type = item.get("type", "message")
    if item_type not in RESPONSES_ITEM_TYPES:
        raise _field_error(
            f"{location}.type",
            f"field '{location}.type' is {_quote(item_type)}; use one of {', '.join(RESPONSES_ITEM_TYPES)}",
        )
    if item_type == "message":
        role = item.get("role")
        if role not in RESPONSES_ROLES:
            raise _field_error(
                f"{location}.role",
                f"field '{location}.role' is {_quote(role)}; use one of {', '.join(RESPONSES_ROLES)}",
            )
        if item.get("content") is None:
            raise _field_error(
                f"{location}.content",
                f"field '{location}.content' is missing; send the text as a string or a list of content parts",
            )
        _check_content(f"{location}.content", item["content"], "responses")
    elif item_type == "function_call":
        if not all(isinstance(item.get(key), str) for key in ("call_id", "name", "arguments")):
            raise _field_error(
                location,
                f"field '{location}' is a function_call without string 'call_id', 'name' and 'arguments'; "
                "send the item as the model returned it",
            )
    elif item_type == "function_call_output":
        if not isinstance(item.get("call_id"), str) or not isinstance(item.get("output"), str):
            raise _field_error(
                location,
                f"field '{location}' is a function_call_output without string 'call_id' and 'output'; send the "
                "call's id and the function's output as a string",
            )


def _check_content(location: str, content: Any, api: str) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _field_error(
            location,
            f"field '{location}' is a JSON {_json_type(content)}; send the text as a string or a list of content parts",
        )
    for index, part in enumerate(content):
        where = f"{location}[{index}]"
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise _field_error(where, f"field '{where}' is not a content part object with a 'type'")
        url = None
        if part["type"] == "image_url":
            image_url = part.get("image_url")
            url = image_url.get("url") if isinstance(image_url, dict) else image_url
        elif part["type"] == "input_image":
            url = part.get("image_url")
        if url is not None or part["type"] in ("image_url", "input_image"):
            _check_inline_image_url(where, url)


def _check_inline_image_url(location: str, url: Any) -> None:
    if isinstance(url, str) and url.startswith("data:"):
        _parse_data_url(location, url)
        return
    if isinstance(url, str) and url.lower().startswith(("https://", "http://")):
        raise _public_url_error(location)
    raise _field_error(
        location,
        f"field '{location}' has no data URL; put the image inline as data:image/png;base64,..., or list its "
        "s3:// URI in 'images'",
    )


def _parse_tool(location: str, tool: Any) -> FunctionTool:
    """Read a function tool in the Chat Completions form or the flat Responses form."""
    if not isinstance(tool, dict):
        raise _field_error(location, f"field '{location}' is a JSON {_json_type(tool)}; send a function tool object")
    if tool.get("type") != "function":
        raise _field_error(
            f"{location}.type",
            f"field '{location}.type' is {_quote(tool.get('type'))}; only function tools are supported, "
            "so use \"function\"",
        )

    definition = tool.get("function", tool)
    if not isinstance(definition, dict):
        raise _field_error(f"{location}.function", f"field '{location}.function' is not an object")
    name = definition.get("name")
    if not isinstance(name, str) or not TOOL_NAME_PATTERN.fullmatch(name):
        raise _field_error(
            f"{location}.name",
            f"field '{location}.name' is {_quote(name)}; use 1 to 64 characters from A-Z, a-z, 0-9, _ and -",
        )

    description = definition.get("description")
    if description is not None and not isinstance(description, str):
        raise _field_error(f"{location}.description", f"field '{location}.description' is not a string")
    parameters = definition.get("parameters", {"type": "object", "properties": {}})
    if not isinstance(parameters, dict) or parameters.get("type", "object") != "object":
        raise _field_error(
            f"{location}.parameters",
            f"field '{location}.parameters' is not a JSON Schema object; send "
            "{\"type\": \"object\", \"properties\": {...}}",
        )
    if "properties" in parameters and not isinstance(parameters["properties"], dict):
        raise _field_error(
            f"{location}.parameters",
            f"field '{location}.parameters.properties' is not an object; map each argument name to its schema",
        )
    strict = definition.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise _field_error(f"{location}.strict", f"field '{location}.strict' is not true or false")
    return FunctionTool(name=name, description=description, parameters=parameters, strict=strict)


def _parse_tool_choice(choice: str | dict[str, Any], tool_names: list[str]) -> str:
    if not tool_names:
        raise _field_error("tool_choice", "field 'tool_choice' is set, but 'tools' is empty; add the tools or leave tool_choice out")
    if isinstance(choice, str):
        if choice not in TOOL_CHOICE_MODES:
            raise _field_error("tool_choice", f"field 'tool_choice' is {_quote(choice)}; {FIELD_HINTS['tool_choice']}")
        return choice
    function = choice.get("function")
    name = function.get("name") if isinstance(function, dict) else choice.get("name")
    if choice.get("type") != "function" or not isinstance(name, str):
        raise _field_error("tool_choice", f"field 'tool_choice' is malformed; {FIELD_HINTS['tool_choice']}")
    if name not in tool_names:
        raise _field_error(
            "tool_choice",
            f"field 'tool_choice' names the tool {_quote(name)}, which is not in 'tools'; use one of {', '.join(tool_names)}",
        )
    return name


def _parse_image(location: str, image: Any, input_location: InputLocation | None) -> ImageSource:
    if not isinstance(image, str):
        raise _field_error(location, f"field '{location}' is a JSON {_json_type(image)}; {FIELD_HINTS['images']}")
    if image.lower().startswith(("https://", "http://")):
        raise _public_url_error(location)
    if image.startswith("data:"):
        media_type, data = _parse_data_url(location, image)
        return ImageSource(media_type=media_type, data=data)
    match = _S3_URI.fullmatch(image)
    if match is None:
        raise _field_error(location, f"field '{location}' is {_quote(image)}; {FIELD_HINTS['images']}")
    bucket, key = match["bucket"], match["key"]
    if input_location is not None and not input_location.contains(bucket, key):
        raise _field_error(
            location,
            f"field '{location}' is outside the input location {input_location.uri}; the worker may read images "
            "only there, so upload the image under that prefix",
        )
    return ImageSource(s3_bucket=bucket, s3_key=key)


def _parse_data_url(location: str, url: str) -> tuple[str, str]:
    match = _DATA_URL.fullmatch(url)
    if match is None:
        raise _field_error(location, f"field '{location}' is not a base64 data URL; send data:image/png;base64,<data>")
    media_type = match["media_type"]
    if media_type not in IMAGE_MEDIA_TYPES:
        raise _field_error(
            location, f"field '{location}' has media type {_quote(media_type)}; use one of {', '.join(IMAGE_MEDIA_TYPES)}"
        )
    try:
        base64.b64decode(match["data"], validate=True)
    except binascii.Error:
        raise _field_error(location, f"field '{location}' has data that is not valid base64; encode the image with base64") from None
    return media_type, match["data"]


def _public_url_error(location: str) -> PydanticCustomError:
    return _field_error(
        location,
        f"field '{location}' is a public https image URL, which Bedrock does not accept; upload the image to the "
        "input location and send its s3:// URI, or send it inline as a data URL (data:image/png;base64,...)",
    )


def _parse_deadline(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _field_error("deadline", f"field 'deadline' is {_quote(value)}; {FIELD_HINTS['deadline']}") from None
    if moment.tzinfo is None:
        raise _field_error("deadline", f"field 'deadline' is {_quote(value)} without a time zone; {FIELD_HINTS['deadline']}")
    return moment


def _last_user_index(messages: list[Any]) -> int | None:
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, dict) and message.get("role") == "user" and message.get("type", "message") == "message":
            return index
    return None


def _remove_reasoning_items(api: str, messages: list[Any]) -> tuple[list[dict[str, Any]], int]:
    """Drop the reasoning of earlier turns, because sending it back to the model degrades its output.

    Responses input loses its ``reasoning`` items. A chat message loses its reasoning keys, and
    each message that had any counts as one removed item.
    """
    kept: list[dict[str, Any]] = []
    removed = 0
    for message in messages:
        if api == "responses" and message.get("type") == "reasoning":
            removed += 1
            continue
        if api == "chat" and any(key in message for key in CHAT_REASONING_KEYS):
            removed += 1
            message = {key: value for key, value in message.items() if key not in CHAT_REASONING_KEYS}
        kept.append(message)
    return kept, removed


# Error text -----------------------------------------------------------------------------------


def _invalid_job_error(error: ValidationError, document: dict[str, Any]) -> InvalidJobError:
    problems = [_describe(item) for item in error.errors()]
    order = {name: index for index, name in enumerate(JOB_FIELDS)}
    problems.sort(key=lambda problem: order.get(problem[0].split(".")[0].split("[")[0], len(order)))
    job_id = document.get("job_id")
    job_id_valid = isinstance(job_id, str) and JOB_ID_PATTERN.fullmatch(job_id) is not None
    reason = problems[0][1]
    if len(problems) > 1:
        reason += "".join(f"\nalso: {text}" for _, text in problems[1:])
    return InvalidJobError(problems[0][0], reason, job_id=job_id if job_id_valid else None)


def _describe(error: Any) -> tuple[str, str]:
    """Return the field and the reason of one pydantic error, in the project's wording."""
    location = ".".join(str(part) for part in error["loc"]) or "body"
    if error["type"] == _JOB_FIELD_ERROR:
        return error["ctx"]["field"], error["ctx"]["reason"]
    if error["type"] == "missing":
        if location == "job_id":
            return location, "field 'job_id' is missing; add a job id of 1 to 128 characters from A-Z, a-z, 0-9 and . _ : -"
        return location, f"field '{location}' is missing; {FIELD_HINTS.get(location, 'add it')}"
    if error["type"] == "extra_forbidden":
        name = location[:_QUOTED_VALUE_LIMIT]
        return name, f"unknown field {_quote(location)}; the supported fields are {', '.join(JOB_FIELDS)}"
    top = location.split(".")[0]
    return location, f"field '{location}' is {_describe_value(error.get('input'))}; {FIELD_HINTS.get(top, 'check its type')}"


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


def _describe_value(value: Any) -> str:
    """Describe a value of the wrong type: strings quoted, anything else by its JSON type and value."""
    if isinstance(value, str) or value is None:
        return _quote(value)
    if isinstance(value, bool):
        return f"a JSON boolean ({json.dumps(value)})"
    if isinstance(value, (int, float)):
        return f"a JSON number ({value})"
    return _quote(value)


def _quote(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return f"a JSON {_json_type(value)}"
    if value is None:
        return "null"
    text = repr(value)
    if len(text) > _QUOTED_VALUE_LIMIT:
        return text[: _QUOTED_VALUE_LIMIT - 3] + "...'"
    return text
