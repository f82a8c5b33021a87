"""Emulator routes, service tiers, usage and answers, driven by the real OpenAI SDK over HTTP."""

from __future__ import annotations

import openai
import pytest

from gemma_batch.emulator import GEMMA_MODELS, SERVICE_TIERS, count_tokens, expected_answer

PROMPT = "Name three rivers in Europe."


def v1_client(emulator, mint) -> openai.OpenAI:
    root_v1 = emulator.root_url + "/v1"
    return openai.OpenAI(base_url=root_v1, api_key=mint(), max_retries=0, timeout=10)


@pytest.mark.parametrize("model", GEMMA_MODELS)
def test_chat_completion_on_openai_v1(client, model):
    # WHEN a Gemma 4 model is called under /openai/v1
    completion = client.chat.completions.create(
        model=model,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}],
        max_tokens=100,
        service_tier="flex",
    )

    # THEN the answer and usage are deterministic functions of the input text
    input_text = "Be brief.\n" + PROMPT
    answer, finish_reason = expected_answer(input_text)
    assert completion.model == model
    assert completion.choices[0].message.content == answer
    assert completion.choices[0].finish_reason == finish_reason == "stop"
    assert completion.usage.prompt_tokens == count_tokens(input_text) == 7
    assert completion.usage.completion_tokens == count_tokens(answer)
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


def test_answer_never_repeats_prompt(client):
    completion = client.chat.completions.create(
        model="google.gemma-4-e2b", messages=[{"role": "user", "content": PROMPT}], max_tokens=50
    )

    assert "rivers" not in completion.choices[0].message.content


def test_max_tokens_truncates_answer(client):
    completion = client.chat.completions.create(
        model="google.gemma-4-e2b", messages=[{"role": "user", "content": PROMPT}], max_tokens=3
    )

    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 3
    assert completion.choices[0].message.content == expected_answer(PROMPT, 3)[0]


def test_content_parts_count_as_text(client):
    completion = client.chat.completions.create(
        model="google.gemma-4-e2b",
        messages=[{"role": "user", "content": [{"type": "text", "text": "one two"}, {"type": "text", "text": "three"}]}],
        max_tokens=50,
    )

    assert completion.usage.prompt_tokens == 3


def test_responses_on_openai_v1(client):
    response = client.responses.create(
        model="google.gemma-4-26b-a4b", instructions="Be brief.", input=PROMPT, max_output_tokens=64
    )

    expected, _ = expected_answer("Be brief.\n" + PROMPT)
    assert response.output_text == expected
    assert response.usage.input_tokens == 7
    assert response.usage.output_tokens == count_tokens(expected)
    assert response.status == "completed"


@pytest.mark.parametrize("model", GEMMA_MODELS)
def test_v1_route_rejects_gemma_chat(emulator, mint, model):
    # WHEN a Gemma model is called under /v1 instead of /openai/v1
    with pytest.raises(openai.BadRequestError) as raised:
        v1_client(emulator, mint).chat.completions.create(
            model=model, messages=[{"role": "user", "content": PROMPT}], max_tokens=10
        )

    # THEN the emulator responds with 400, as bedrock-mantle does
    assert f"The model '{model}' isn't supported on this route" in raised.value.message
    assert raised.value.body["type"] == "invalid_request_error"
    assert raised.value.body["param"] == "model"


def test_v1_route_rejects_gemma_responses(emulator, mint):
    with pytest.raises(openai.BadRequestError) as raised:
        v1_client(emulator, mint).responses.create(model="google.gemma-4-31b", input=PROMPT)

    assert "isn't supported on this route" in raised.value.message


def test_unknown_model_is_not_found(client):
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="google.gemma-3-27b", messages=[{"role": "user", "content": "x"}])

    assert "The model 'google.gemma-3-27b' does not exist" in raised.value.message


def test_unknown_path_is_not_found(client):
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="google.gemma-4-e2b", input="x")


@pytest.mark.parametrize(("requested", "served"), [("flex", "flex"), ("priority", "priority"), ("default", "default"), ("auto", "default")])
def test_service_tier_is_echoed(client, requested, served):
    completion = client.chat.completions.create(
        model="google.gemma-4-e2b", messages=[{"role": "user", "content": "x"}], max_tokens=5, service_tier=requested
    )

    assert completion.service_tier == served


def test_service_tier_echo_can_be_off(client, emulator):
    emulator.echo_service_tier = False

    completion = client.chat.completions.create(
        model="google.gemma-4-e2b", messages=[{"role": "user", "content": "x"}], max_tokens=5, service_tier="flex"
    )

    assert completion.service_tier is None


def test_unknown_service_tier_is_rejected(client):
    # The SDK types service_tier as a Literal but does not check it at run time.
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model="google.gemma-4-e2b",
            messages=[{"role": "user", "content": "x"}],
            max_tokens=5,
            service_tier="turbo",  # type: ignore[arg-type]
        )

    assert "Invalid service_tier 'turbo'" in raised.value.message
    assert raised.value.body["param"] == "service_tier"
    for tier in SERVICE_TIERS:
        assert tier in raised.value.message


def test_missing_messages_is_rejected(client):
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="google.gemma-4-e2b", messages=[])

    assert "'messages'" in raised.value.message
