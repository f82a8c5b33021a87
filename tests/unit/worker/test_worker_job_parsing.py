"""Job message parsing: every field of schema version 1, and every rejection naming the field and the fix."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import pytest

from worker.job import (
    MAX_OUTPUT_TOKENS_LIMIT,
    SUPPORTED_MODELS,
    FunctionTool,
    InputLocation,
    InvalidJobError,
    JobDefaults,
    parse_job,
)
from worker.request_builder import build_request

DEFAULT_MODEL = "google.gemma-4-31b"
DEFAULT_MAX_TOKENS = 1024
INPUT_LOCATION = InputLocation("input-bucket", "inputs/")
DEFAULTS = JobDefaults(
    model=DEFAULT_MODEL,
    max_output_tokens=DEFAULT_MAX_TOKENS,
    reasoning_effort_by_model={"google.gemma-4-e2b": "high"},
    input_location=INPUT_LOCATION,
)
PNG_DATA = base64.b64encode(b"\x89PNG\r\n\x1a\nimage").decode("ascii")
PNG_URL = f"data:image/png;base64,{PNG_DATA}"
CHAT_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
FLAT_TOOL = {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}, "strict": True}


def parse(document: object) -> object:
    return parse_job(json.dumps(document), DEFAULTS)


def rejection(document: object) -> InvalidJobError:
    with pytest.raises(InvalidJobError) as raised:
        parse_job(document if isinstance(document, str) else json.dumps(document), DEFAULTS)
    return raised.value


# Fields -----------------------------------------------------------------------------------------


def test_prompt_job_gets_defaults():
    job = parse({"job_id": "job-1", "prompt": "Summarize the report."})

    assert job.job_id == "job-1"
    assert job.schema_version == 1
    assert job.api == "chat"
    assert job.model == DEFAULT_MODEL
    assert job.max_output_tokens == DEFAULT_MAX_TOKENS
    assert job.reasoning_effort is None
    assert job.prompt == "Summarize the report."
    assert job.messages == ()
    assert job.images == ()
    assert job.tools == ()
    assert job.tool_choice is None
    assert job.metadata is None
    assert job.deadline is None
    assert job.allow_standard_tier_escalation is False
    assert job.removed_reasoning_items == 0


def test_schema_version_one_is_accepted():
    assert parse({"schema_version": 1, "job_id": "j", "prompt": "p"}).schema_version == 1


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_api_is_read(api):
    assert parse({"job_id": "j", "prompt": "p", "api": api}).api == api


@pytest.mark.parametrize("model", SUPPORTED_MODELS)
def test_each_supported_model_is_accepted(model):
    assert parse({"job_id": "j", "prompt": "p", "model": model}).model == model


@pytest.mark.parametrize("tokens", [1, 512, MAX_OUTPUT_TOKENS_LIMIT])
def test_max_output_tokens_in_range(tokens):
    assert parse({"job_id": "j", "prompt": "p", "max_output_tokens": tokens}).max_output_tokens == tokens


@pytest.mark.parametrize("job_id", ["a", "A.b_c:d-9", "x" * 128, "2026-01-01T00:00:00.000"])
def test_valid_job_ids(job_id):
    assert parse({"job_id": job_id, "prompt": "p"}).job_id == job_id


def test_instructions_are_kept_apart():
    job = parse({"job_id": "j", "prompt": "Hi", "instructions": "Answer in French."})

    assert job.instructions == "Answer in French."


def test_blank_instructions_are_dropped():
    assert parse({"job_id": "j", "prompt": "Hi", "instructions": "  "}).instructions is None


def test_chat_messages_are_kept():
    messages = [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi, how can I help?"},
        {"role": "user", "content": [{"type": "text", "text": "Count to 3."}]},
    ]

    job = parse({"job_id": "j", "messages": messages})

    assert list(job.messages) == messages


def test_chat_tool_turn_is_accepted():
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
    ]

    job = parse({"job_id": "j", "messages": messages, "tools": [CHAT_TOOL]})

    assert len(job.messages) == 3


def test_responses_items_are_kept():
    items = [
        {"role": "user", "content": "Weather?"},
        {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "Sunny"},
    ]

    job = parse({"job_id": "j", "api": "responses", "messages": items})

    assert list(job.messages) == items


def test_reasoning_effort_from_job_wins():
    job = parse({"job_id": "j", "prompt": "p", "model": "google.gemma-4-e2b", "reasoning_effort": "low"})

    assert job.reasoning_effort == "low"


def test_reasoning_effort_defaults_per_model():
    assert parse({"job_id": "j", "prompt": "p", "model": "google.gemma-4-e2b"}).reasoning_effort == "high"
    assert parse({"job_id": "j", "prompt": "p", "model": "google.gemma-4-31b"}).reasoning_effort is None


def test_tools_in_both_forms_are_normalized():
    job = parse({"job_id": "j", "prompt": "p", "tools": [CHAT_TOOL, FLAT_TOOL], "tool_choice": "required"})

    assert job.tools == (
        FunctionTool("get_weather", "Weather of a city", CHAT_TOOL["function"]["parameters"], None),
        FunctionTool("lookup", None, FLAT_TOOL["parameters"], True),
    )
    assert job.tool_choice == "required"


@pytest.mark.parametrize(
    "choice", [{"type": "function", "name": "lookup"}, {"type": "function", "function": {"name": "lookup"}}]
)
def test_named_tool_choice_in_both_forms(choice):
    assert parse({"job_id": "j", "prompt": "p", "tools": [FLAT_TOOL], "tool_choice": choice}).tool_choice == "lookup"


def test_images_of_both_kinds():
    job = parse({"job_id": "j", "prompt": "Compare.", "images": ["s3://input-bucket/inputs/a.png", PNG_URL]})

    first, second = job.images
    assert (first.s3_bucket, first.s3_key) == ("input-bucket", "inputs/a.png")
    assert (second.media_type, second.data) == ("image/png", PNG_DATA)
    assert PNG_DATA not in repr(job)


def test_metadata_is_kept():
    assert parse({"job_id": "j", "prompt": "p", "metadata": {"team": "search", "n": 3}}).metadata == {
        "team": "search",
        "n": 3,
    }


def test_deadline_is_parsed_with_time_zone():
    job = parse({"job_id": "j", "prompt": "p", "deadline": "2026-03-01T12:30:00Z"})

    assert job.deadline == datetime(2026, 3, 1, 12, 30, tzinfo=timezone.utc)


def test_escalation_flag_is_read():
    assert parse({"job_id": "j", "prompt": "p", "allow_standard_tier_escalation": True}).allow_standard_tier_escalation


def test_job_repr_hides_content():
    job = parse({"job_id": "j", "prompt": "confidential prompt text", "instructions": "secret rules", "metadata": {"k": "v"}})

    assert "confidential" not in repr(job)
    assert "secret rules" not in repr(job)


# Reasoning items --------------------------------------------------------------------------------


def test_responses_reasoning_items_are_removed():
    items = [
        {"role": "user", "content": "First question."},
        {"type": "reasoning", "id": "rs_1", "summary": [], "content": [{"type": "reasoning_text", "text": "..."}]},
        {"role": "assistant", "content": "First answer."},
        {"type": "reasoning", "id": "rs_2", "summary": []},
        {"role": "user", "content": "Second question."},
    ]

    job = parse({"job_id": "j", "api": "responses", "messages": items})

    assert job.removed_reasoning_items == 2
    assert [item.get("type", "message") for item in job.messages] == ["message", "message", "message"]


def test_chat_reasoning_fields_are_removed():
    messages = [
        {"role": "user", "content": "First question."},
        {"role": "assistant", "content": "First answer.", "reasoning_content": "thinking..."},
        {"role": "assistant", "content": "More.", "reasoning": "more thinking"},
        {"role": "user", "content": "Second question."},
    ]

    job = parse({"job_id": "j", "messages": messages})

    assert job.removed_reasoning_items == 2
    assert all("reasoning_content" not in message and "reasoning" not in message for message in job.messages)


# Request building -------------------------------------------------------------------------------


def test_chat_request_puts_static_content_first_and_images_before_text():
    job = parse({"job_id": "j", "prompt": "Describe.", "instructions": "Shared rules.", "images": [PNG_URL]})

    request = build_request(job, [PNG_URL])

    assert request.api == "chat"
    system, user = request.arguments["messages"]
    assert system == {"role": "system", "content": "Shared rules."}
    assert user["content"] == [{"type": "image_url", "image_url": {"url": PNG_URL}}, {"type": "text", "text": "Describe."}]
    assert request.arguments["max_tokens"] == DEFAULT_MAX_TOKENS
    assert "reasoning_effort" not in request.arguments


def test_responses_request_fields():
    job = parse(
        {
            "job_id": "j",
            "api": "responses",
            "model": "google.gemma-4-e2b",
            "instructions": "Rules.",
            "messages": [{"role": "user", "content": "Look."}],
            "images": [PNG_URL],
            "tools": [CHAT_TOOL],
            "tool_choice": {"type": "function", "name": "get_weather"},
        }
    )

    arguments = build_request(job, [PNG_URL]).arguments

    assert arguments["instructions"] == "Rules."
    assert arguments["reasoning"] == {"effort": "high"}
    assert arguments["max_output_tokens"] == DEFAULT_MAX_TOKENS
    assert arguments["input"] == [
        {
            "role": "user",
            "content": [
                {"type": "input_image", "image_url": PNG_URL, "detail": "auto"},
                {"type": "input_text", "text": "Look."},
            ],
        }
    ]
    assert arguments["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "parameters": CHAT_TOOL["function"]["parameters"],
            "description": "Weather of a city",
        }
    ]
    assert arguments["tool_choice"] == {"type": "function", "name": "get_weather"}


def test_chat_request_tools_and_effort():
    job = parse({"job_id": "j", "prompt": "p", "reasoning_effort": "medium", "tools": [FLAT_TOOL], "tool_choice": {"type": "function", "name": "lookup"}})

    arguments = build_request(job, []).arguments

    assert arguments["reasoning_effort"] == "medium"
    assert arguments["tools"] == [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}, "strict": True}}]
    assert arguments["tool_choice"] == {"type": "function", "function": {"name": "lookup"}}


# Rejections -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected_reason", "expected_job_id"),
    [
        ("not json at all", "body is not valid JSON", None),
        ("", "body is not valid JSON", None),
        ('["job_id", "prompt"]', "body is a JSON array; send a JSON object", None),
        ('"a string"', "body is a JSON string", None),
        ('{"prompt": "p"}', "field 'job_id' is missing; add a job id of 1 to 128 characters", None),
        ('{"job_id": 42, "prompt": "p"}', "field 'job_id' is a JSON number (42); use 1 to 128 characters", None),
        ('{"job_id": "", "prompt": "p"}', "field 'job_id' is ''; use 1 to 128 characters", None),
        ('{"job_id": "a/b", "prompt": "p"}', "field 'job_id' is 'a/b'; use 1 to 128 characters", None),
        (json.dumps({"job_id": "x" * 129, "prompt": "p"}), "field 'job_id' is 'xxx", None),
        ('{"schema_version": 2, "job_id": "j", "prompt": "p"}', "field 'schema_version' is 2; this worker reads schema version 1 only", "j"),
        ('{"job_id": "j", "prompt": "p", "api": "completions"}', "field 'api' is 'completions'; use one of chat, responses", "j"),
        ('{"job_id": "j"}', "fields 'prompt' and 'messages' are both missing", "j"),
        ('{"job_id": "j", "prompt": null}', "fields 'prompt' and 'messages' are both missing", "j"),
        (
            '{"job_id": "j", "prompt": "p", "messages": [{"role": "user", "content": "c"}]}',
            "fields 'prompt' and 'messages' are both set; send only one of them",
            "j",
        ),
        ('{"job_id": "j", "prompt": 7}', "field 'prompt' is a JSON number (7); send the prompt as a string", "j"),
        ('{"job_id": "j", "prompt": "   "}', "field 'prompt' is empty", "j"),
        ('{"job_id": "j", "messages": "hi"}', "field 'messages' is 'hi'; send a list of message objects", "j"),
        ('{"job_id": "j", "messages": []}', "field 'messages' is an empty list", "j"),
        ('{"job_id": "j", "messages": ["hi"]}', "field 'messages[0]' is a JSON string", "j"),
        ('{"job_id": "j", "messages": [{"content": "c"}]}', "field 'messages[0].role' is missing", "j"),
        (
            '{"job_id": "j", "messages": [{"role": "user", "content": "c"}, {"role": "robot", "content": "c"}]}',
            "field 'messages[1].role' is 'robot'; use one of system, developer, user, assistant, tool",
            "j",
        ),
        ('{"job_id": "j", "messages": [{"role": "user"}]}', "field 'messages[0].content' is a JSON null", "j"),
        ('{"job_id": "j", "messages": [{"role": "user", "content": "c", "seed": 1}]}', "field 'messages[0]' has the unknown key 'seed'", "j"),
        ('{"job_id": "j", "messages": [{"role": "tool", "content": "c"}]}', "field 'messages[0].tool_call_id' is missing", "j"),
        (
            '{"job_id": "j", "messages": [{"role": "assistant", "content": null, "tool_calls": [{"id": "c"}]}]}',
            "field 'messages[0].tool_calls[0]' is malformed",
            "j",
        ),
        (
            '{"job_id": "j", "api": "responses", "messages": [{"type": "web_search_call"}]}',
            "field 'messages[0].type' is 'web_search_call'; use one of message, function_call, function_call_output, reasoning",
            "j",
        ),
        (
            '{"job_id": "j", "api": "responses", "messages": [{"type": "function_call", "name": "f"}]}',
            "field 'messages[0]' is a function_call without string 'call_id', 'name' and 'arguments'",
            "j",
        ),
        (
            '{"job_id": "j", "api": "responses", "messages": [{"type": "function_call_output", "call_id": "c"}]}',
            "field 'messages[0]' is a function_call_output without string 'call_id' and 'output'",
            "j",
        ),
        ('{"job_id": "j", "prompt": "p", "instructions": ["x"]}', "field 'instructions' is a JSON array", "j"),
        ('{"job_id": "j", "prompt": "p", "model": "gpt-4o"}', "field 'model' is 'gpt-4o'; use one of google.gemma-4-31b", "j"),
        ('{"job_id": "j", "prompt": "p", "max_output_tokens": 0}', "field 'max_output_tokens' is 0; use a whole number from 1 to 32768", "j"),
        ('{"job_id": "j", "prompt": "p", "max_output_tokens": -1}', "field 'max_output_tokens' is -1", "j"),
        ('{"job_id": "j", "prompt": "p", "max_output_tokens": 32769}', "field 'max_output_tokens' is 32769", "j"),
        ('{"job_id": "j", "prompt": "p", "max_output_tokens": "100"}', "field 'max_output_tokens' is '100'", "j"),
        ('{"job_id": "j", "prompt": "p", "max_output_tokens": 1.5}', "field 'max_output_tokens' is a JSON number (1.5)", "j"),
        ('{"job_id": "j", "prompt": "p", "max_output_tokens": true}', "field 'max_output_tokens' is a JSON boolean (true)", "j"),
        ('{"job_id": "j", "prompt": "p", "max_tokens": 5}', "unknown field 'max_tokens'; the supported fields are", "j"),
        ('{"job_id": "j", "prompt": "p", "metadata": [1]}', "field 'metadata' is a JSON array; send an object", "j"),
        ('{"job_id": "j", "prompt": "p", "deadline": "tomorrow"}', "field 'deadline' is 'tomorrow'; send an ISO 8601 time", "j"),
        ('{"job_id": "j", "prompt": "p", "deadline": "2026-01-01T12:00:00"}', "without a time zone", "j"),
        ('{"job_id": "j", "prompt": "p", "allow_standard_tier_escalation": "yes"}', "field 'allow_standard_tier_escalation' is 'yes'; send true or false", "j"),
    ],
)
def test_invalid_body_is_rejected(body, expected_reason, expected_job_id):
    # WHEN an invalid body is parsed
    error = rejection(body)

    # THEN the reason names the field and the fix, and the job id is kept when it was valid
    assert expected_reason in error.reason
    assert error.job_id == expected_job_id


def test_unbounded_max_tokens_is_rejected():
    error = rejection({"job_id": "j", "prompt": "p", "max_output_tokens": None})

    assert error.field_name == "max_output_tokens"
    assert "field 'max_output_tokens' is null, which would leave the output unbounded" in error.reason
    assert "use a whole number from 1 to 32768" in error.reason


@pytest.mark.parametrize("effort", ["extreme", "minimal", "none", "HIGH"])
def test_reasoning_effort_out_of_range_is_rejected(effort):
    error = rejection({"job_id": "j", "prompt": "p", "reasoning_effort": effort})

    assert error.field_name == "reasoning_effort"
    assert f"field 'reasoning_effort' is '{effort}'; use one of low, medium, high or leave it out" in error.reason


def test_unknown_model_is_rejected():
    error = rejection({"job_id": "j", "prompt": "p", "model": "google.gemma-3-27b"})

    assert error.field_name == "model"
    assert (
        "field 'model' is 'google.gemma-3-27b'; use one of google.gemma-4-31b, google.gemma-4-26b-a4b, "
        "google.gemma-4-e2b or leave it out for the configured default"
    ) in error.reason


@pytest.mark.parametrize("url", ["https://example.com/cat.png", "HTTPS://example.com/cat.png", "http://example.com/x.jpg"])
def test_public_image_url_is_rejected(url):
    error = rejection({"job_id": "j", "prompt": "p", "images": [url]})

    assert error.field_name == "images[0]"
    assert "field 'images[0]' is a public https image URL, which Bedrock does not accept" in error.reason
    assert "send its s3:// URI, or send it inline as a data URL" in error.reason


@pytest.mark.parametrize(
    ("messages", "location"),
    [
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}], "messages[0].content[0]"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": "https://example.com/a.png"}]}], "messages[0].content[0]"),
    ],
)
def test_public_image_url_in_message_is_rejected(messages, location):
    error = rejection({"job_id": "j", "messages": messages})

    assert f"field '{location}' is a public https image URL" in error.reason


def test_public_image_url_in_responses_input_is_rejected():
    items = [{"role": "user", "content": [{"type": "input_image", "image_url": "https://example.com/a.png"}]}]

    error = rejection({"job_id": "j", "api": "responses", "messages": items})

    assert "field 'messages[0].content[0]' is a public https image URL" in error.reason


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("s3://other-bucket/inputs/a.png", "field 'images[0]' is outside the input location s3://input-bucket/inputs/"),
        ("s3://input-bucket/elsewhere/a.png", "is outside the input location"),
        ("data:image/png;base64,!!!", "has data that is not valid base64"),
        ("data:image/tiff;base64," + PNG_DATA, "has media type 'image/tiff'; use one of image/png"),
        ("data:text/plain,hello", "is not a base64 data URL"),
        ("ftp://example.com/a.png", "field 'images[0]' is 'ftp://example.com/a.png'; send a list of s3:// URIs"),
        (7, "field 'images[0]' is a JSON number"),
    ],
)
def test_invalid_image_is_rejected(image, expected):
    error = rejection({"job_id": "j", "prompt": "p", "images": [image]})

    assert expected in error.reason


def test_images_without_user_message_are_rejected():
    error = rejection({"job_id": "j", "messages": [{"role": "system", "content": "rules"}], "images": [PNG_URL]})

    assert "'messages' has no user message to attach the images to" in error.reason


@pytest.mark.parametrize(
    ("tools", "location", "expected"),
    [
        ("get_weather", "tools", "field 'tools' is 'get_weather'; send a list of function tools"),
        ([7], "tools[0]", "field 'tools[0]' is a JSON number; send a function tool object"),
        ([{"type": "web_search"}], "tools[0].type", "only function tools are supported"),
        ([{"type": "function", "function": {"description": "no name"}}], "tools[0].name", "field 'tools[0].name' is null"),
        ([{"type": "function", "name": "has space"}], "tools[0].name", "use 1 to 64 characters from A-Z"),
        ([{"type": "function", "name": "f", "parameters": {"type": "string"}}], "tools[0].parameters", "is not a JSON Schema object"),
        ([{"type": "function", "name": "f", "parameters": {"type": "object", "properties": []}}], "tools[0].parameters", "properties' is not an object"),
        ([{"type": "function", "name": "f", "description": 5}], "tools[0].description", "is not a string"),
        ([{"type": "function", "name": "f", "strict": "yes"}], "tools[0].strict", "is not true or false"),
        ([FLAT_TOOL, FLAT_TOOL], "tools[1].name", "repeats the tool name 'lookup'"),
    ],
)
def test_malformed_tools_are_rejected(tools, location, expected):
    error = rejection({"job_id": "j", "prompt": "p", "tools": tools})

    assert error.field_name == location
    assert expected in error.reason


@pytest.mark.parametrize(
    ("tools", "choice", "expected"),
    [
        (None, "auto", "field 'tool_choice' is set, but 'tools' is empty"),
        ([FLAT_TOOL], "always", "field 'tool_choice' is 'always'; use one of auto, none, required"),
        ([FLAT_TOOL], {"type": "function", "name": "other"}, "names the tool 'other', which is not in 'tools'"),
        ([FLAT_TOOL], {"type": "tool"}, "field 'tool_choice' is malformed"),
    ],
)
def test_malformed_tool_choice_is_rejected(tools, choice, expected):
    document = {"job_id": "j", "prompt": "p", "tool_choice": choice}
    if tools is not None:
        document["tools"] = tools

    error = rejection(document)

    assert error.field_name == "tool_choice"
    assert expected in error.reason


def test_all_problems_are_listed():
    error = rejection({"job_id": "j", "prompt": "p", "model": "gpt", "reasoning_effort": "max", "extra": 1})

    assert error.field_name == "model"
    assert error.reason.count("\nalso: ") == 2
    assert "field 'reasoning_effort' is 'max'" in error.reason
    assert "unknown field 'extra'" in error.reason


def test_rejection_does_not_quote_long_values():
    # GIVEN a prompt sent in the model field by mistake
    prompt = "Please write a long essay about the history of the Roman Empire and its provinces."

    error = rejection({"job_id": "j", "model": prompt, "prompt": "p"})

    # THEN the reason quotes only the start of the value
    assert prompt not in error.reason
    assert "field 'model' is 'Please write" in error.reason


@pytest.mark.parametrize(
    ("body", "expected_field"),
    [
        ("[]", "body"),
        ('{"prompt": "p"}', "job_id"),
        ('{"job_id": "j", "prompt": "p", "model": "Some prompt text sent in the wrong field"}', "model"),
        ('{"job_id": "j", "messages": [{"role": "user", "content": 5}]}', "messages[0].content"),
        ('{"job_id": "j", "prompt": "p", "seed": 5}', "seed"),
    ],
)
def test_rejection_names_field(body, expected_field):
    # The worker logs only the field name, because the reason may quote part of a value.
    assert rejection(body).field_name == expected_field


def test_image_location_check_is_skipped_without_location():
    defaults = JobDefaults(model=DEFAULT_MODEL, max_output_tokens=DEFAULT_MAX_TOKENS)

    job = parse_job(json.dumps({"job_id": "j", "prompt": "p", "images": ["s3://any-bucket/a.png"]}), defaults)

    assert job.images[0].s3_bucket == "any-bucket"
