"""Job message parsing: valid bodies become Jobs, and every rejection names the field and the fix."""

from __future__ import annotations

import json

import pytest

from worker.job import MAX_OUTPUT_TOKENS_LIMIT, SUPPORTED_MODELS, InvalidJobError, parse_job

DEFAULT_MODEL = "google.gemma-4-31b"
DEFAULT_MAX_TOKENS = 1024


def parse(document: object) -> object:
    return parse_job(json.dumps(document), DEFAULT_MODEL, DEFAULT_MAX_TOKENS)


def test_prompt_job_gets_defaults():
    job = parse({"job_id": "job-1", "prompt": "Summarize the report."})

    assert job.job_id == "job-1"
    assert job.model == DEFAULT_MODEL
    assert job.max_output_tokens == DEFAULT_MAX_TOKENS
    assert job.chat_messages == [{"role": "user", "content": "Summarize the report."}]


def test_instructions_become_system_message():
    job = parse({"job_id": "j", "prompt": "Hi", "instructions": "Answer in French."})

    assert job.chat_messages == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hi"},
    ]


def test_messages_job_keeps_chat_list():
    messages = [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi, how can I help?"},
        {"role": "user", "content": [{"type": "text", "text": "Count to 3."}]},
    ]

    job = parse({"job_id": "j", "messages": messages, "instructions": "Be brief."})

    assert job.chat_messages[0] == {"role": "system", "content": "Be brief."}
    assert job.chat_messages[1:] == messages


@pytest.mark.parametrize("model", SUPPORTED_MODELS)
def test_each_supported_model_is_accepted(model):
    assert parse({"job_id": "j", "prompt": "p", "model": model}).model == model


@pytest.mark.parametrize("tokens", [1, 512, MAX_OUTPUT_TOKENS_LIMIT])
def test_max_output_tokens_in_range(tokens):
    assert parse({"job_id": "j", "prompt": "p", "max_output_tokens": tokens}).max_output_tokens == tokens


@pytest.mark.parametrize("job_id", ["a", "A.b_c:d-9", "x" * 128, "2026-01-01T00:00:00.000"])
def test_valid_job_ids(job_id):
    assert parse({"job_id": job_id, "prompt": "p"}).job_id == job_id


def test_job_repr_hides_messages():
    job = parse({"job_id": "j", "prompt": "confidential prompt text"})

    assert "confidential" not in repr(job)


@pytest.mark.parametrize(
    ("body", "expected_reason", "expected_job_id"),
    [
        ("not json at all", "body is not valid JSON", None),
        ("", "body is not valid JSON", None),
        ('["job_id", "prompt"]', "body is a JSON array; send a JSON object", None),
        ('"a string"', "body is a JSON string", None),
        ('{"prompt": "p"}', "field 'job_id' is missing; add a job id of 1 to 128 characters", None),
        ('{"job_id": 42, "prompt": "p"}', "field 'job_id' is a JSON number; send the job id as a string", None),
        ('{"job_id": "", "prompt": "p"}', "field 'job_id' is ''; use 1 to 128 characters", None),
        ('{"job_id": "a/b", "prompt": "p"}', "field 'job_id' is 'a/b'; use 1 to 128 characters", None),
        (json.dumps({"job_id": "x" * 129, "prompt": "p"}), "field 'job_id' is 'xxx", None),
        ('{"job_id": "j"}', "fields 'prompt' and 'messages' are both missing", "j"),
        ('{"job_id": "j", "prompt": null}', "fields 'prompt' and 'messages' are both missing", "j"),
        (
            '{"job_id": "j", "prompt": "p", "messages": [{"role": "user", "content": "c"}]}',
            "fields 'prompt' and 'messages' are both set; send only one of them",
            "j",
        ),
        ('{"job_id": "j", "prompt": 7}', "field 'prompt' is a JSON number; send the prompt as a string", "j"),
        ('{"job_id": "j", "prompt": "   "}', "field 'prompt' is empty", "j"),
        ('{"job_id": "j", "messages": "hi"}', "field 'messages' is a JSON string; send a list of objects", "j"),
        ('{"job_id": "j", "messages": []}', "field 'messages' is an empty list", "j"),
        ('{"job_id": "j", "messages": ["hi"]}', "field 'messages[0]' is a JSON string", "j"),
        ('{"job_id": "j", "messages": [{"content": "c"}]}', "field 'messages[0].role' is missing", "j"),
        (
            '{"job_id": "j", "messages": [{"role": "user", "content": "c"}, {"role": "robot", "content": "c"}]}',
            "field 'messages[1].role' is 'robot'; use one of system, developer, user, assistant, tool",
            "j",
        ),
        ('{"job_id": "j", "messages": [{"role": "user"}]}', "field 'messages[0].content' is a JSON null", "j"),
        ('{"job_id": "j", "prompt": "p", "instructions": ["x"]}', "field 'instructions' is a JSON array", "j"),
        ('{"job_id": "j", "prompt": "p", "model": "gpt-4o"}', "field 'model' is 'gpt-4o'; use one of google.gemma-4-31b", "j"),
        ('{"job_id": "j", "prompt": "p", "max_output_tokens": 0}', "field 'max_output_tokens' is 0; use a whole number from 1 to 32768", "j"),
        ('{"job_id": "j", "prompt": "p", "max_output_tokens": 32769}', "field 'max_output_tokens' is 32769", "j"),
        ('{"job_id": "j", "prompt": "p", "max_output_tokens": "100"}', "field 'max_output_tokens' is '100'", "j"),
        ('{"job_id": "j", "prompt": "p", "max_output_tokens": 1.5}', "field 'max_output_tokens' is 1.5", "j"),
        ('{"job_id": "j", "prompt": "p", "max_output_tokens": true}', "field 'max_output_tokens' is True", "j"),
        ('{"job_id": "j", "prompt": "p", "max_tokens": 5}', "unknown field 'max_tokens'; the supported fields are", "j"),
    ],
)
def test_invalid_body_is_rejected(body, expected_reason, expected_job_id):
    # WHEN an invalid body is parsed
    with pytest.raises(InvalidJobError) as raised:
        parse_job(body, DEFAULT_MODEL, DEFAULT_MAX_TOKENS)

    # THEN the reason names the field and the fix, and the job id is kept when it was valid
    assert expected_reason in raised.value.reason
    assert raised.value.job_id == expected_job_id


def test_rejection_does_not_quote_long_values():
    # GIVEN a prompt sent in the model field by mistake
    prompt = "Please write a long essay about the history of the Roman Empire and its provinces."

    with pytest.raises(InvalidJobError) as raised:
        parse({"job_id": "j", "model": prompt, "prompt": "p"})

    # THEN the reason quotes only the start of the value
    assert prompt not in raised.value.reason
    assert "field 'model' is 'Please write" in raised.value.reason


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
    with pytest.raises(InvalidJobError) as raised:
        parse_job(body, DEFAULT_MODEL, DEFAULT_MAX_TOKENS)

    assert raised.value.field_name == expected_field
