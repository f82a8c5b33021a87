"""Emulator features of the full job contract: reasoning, tool calls, images, cached tokens, per-request records."""

from __future__ import annotations

import base64
import json

import openai
import pytest

from gemma_batch.emulator import expected_answer, expected_reasoning, expected_tool_arguments
from gemma_batch.emulator.request_features import Tool

PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nfake image bytes").decode("ascii")
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}


def test_chat_reasoning_is_separate_from_answer(client, emulator):
    # WHEN a chat request sets a reasoning effort
    completion = client.chat.completions.create(
        model="google.gemma-4-e2b",
        messages=[{"role": "user", "content": "Why is the sky blue?"}],
        max_tokens=50,
        reasoning_effort="high",
    )

    # THEN the reasoning comes in reasoning_content, apart from the answer, and counts as reasoning tokens
    message = completion.choices[0].message
    reasoning = expected_reasoning("Why is the sky blue?", "high")
    assert message.content == expected_answer("Why is the sky blue?")[0]
    assert message.model_extra["reasoning_content"] == reasoning
    assert completion.usage.completion_tokens_details.reasoning_tokens == len(reasoning.split())
    assert emulator.stats.snapshot()["requests"][-1]["reasoning_effort"] == "high"


def test_responses_reasoning_item_comes_first(client):
    response = client.responses.create(
        model="google.gemma-4-31b", input="Plan a trip.", reasoning={"effort": "low"}, max_output_tokens=50
    )

    assert [item.type for item in response.output] == ["reasoning", "message"]
    assert response.output[0].content[0].text == expected_reasoning("Plan a trip.", "low")
    assert response.output_text == expected_answer("Plan a trip.")[0]
    assert response.usage.output_tokens_details.reasoning_tokens > 0


def test_reasoning_effort_out_of_range_is_rejected(client):
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model="google.gemma-4-e2b",
            messages=[{"role": "user", "content": "x"}],
            reasoning_effort="extreme",  # type: ignore[arg-type]
        )

    assert "Invalid value for 'reasoning_effort': 'extreme'" in raised.value.message


def test_chat_tool_call_then_answer(client):
    # WHEN tools are offered and the last turn is the user's
    first = client.chat.completions.create(
        model="google.gemma-4-31b",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER_TOOL],
        max_tokens=50,
    )

    # THEN the model calls the first tool with arguments derived from its schema
    choice = first.choices[0]
    (call,) = choice.message.tool_calls
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert call.function.name == "get_weather"
    tool = Tool("get_weather", WEATHER_TOOL["function"]["parameters"])
    assert json.loads(call.function.arguments) == expected_tool_arguments("Weather in Paris?", tool)

    # WHEN the client sends the tool's output as the next turn
    second = client.chat.completions.create(
        model="google.gemma-4-31b",
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 C"},
        ],
        tools=[WEATHER_TOOL],
        max_tokens=50,
    )

    # THEN the model answers with text
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.tool_calls is None


def test_responses_named_tool_choice(client):
    tools = [
        {"type": "function", "name": "first", "parameters": {"type": "object", "properties": {}}},
        {"type": "function", "name": "second", "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}}},
    ]

    response = client.responses.create(
        model="google.gemma-4-31b", input="Pick one.", tools=tools, tool_choice={"type": "function", "name": "second"}
    )

    (call,) = [item for item in response.output if item.type == "function_call"]
    assert call.name == "second"
    assert json.loads(call.arguments) == {"n": 2}


def test_tool_choice_none_answers_with_text(client):
    completion = client.chat.completions.create(
        model="google.gemma-4-31b",
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[WEATHER_TOOL],
        tool_choice="none",
    )

    assert completion.choices[0].message.tool_calls is None


def test_image_parts_are_counted_in_order(client, emulator):
    client.chat.completions.create(
        model="google.gemma-4-26b-a4b",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": PNG}},
                    {"type": "image_url", "image_url": {"url": PNG}},
                    {"type": "text", "text": "Compare these."},
                ],
            }
        ],
    )
    client.responses.create(
        model="google.gemma-4-26b-a4b",
        input=[
            {"role": "user", "content": [{"type": "input_text", "text": "Describe."}, {"type": "input_image", "image_url": PNG}]}
        ],
    )

    chat_record, responses_record = emulator.stats.snapshot()["requests"]
    assert chat_record["image_parts"] == 2
    assert chat_record["images_before_text"] is True
    assert responses_record["image_parts"] == 1
    assert responses_record["images_before_text"] is False


@pytest.mark.parametrize("url", ["https://example.com/cat.png", "http://example.com/cat.png"])
def test_image_url_is_rejected(client, url):
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model="google.gemma-4-31b",
            messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}],
        )

    assert "Image URLs are not supported" in raised.value.message


def test_repeated_instructions_are_cached(client, emulator):
    instructions = "You are a careful analyst. Follow the house style guide in every answer."

    first = client.responses.create(model="google.gemma-4-31b", instructions=instructions, input="Question one.")
    second = client.responses.create(model="google.gemma-4-31b", instructions=instructions, input="Question two.")
    other_model = client.responses.create(model="google.gemma-4-e2b", instructions=instructions, input="Question.")

    assert first.usage.input_tokens_details.cached_tokens == 0
    assert second.usage.input_tokens_details.cached_tokens == len(instructions.split())
    assert other_model.usage.input_tokens_details.cached_tokens == 0


def test_chat_system_prefix_is_cached(client):
    messages = [{"role": "system", "content": "Shared document text."}, {"role": "user", "content": "Q"}]

    client.chat.completions.create(model="google.gemma-4-31b", messages=messages)
    completion = client.chat.completions.create(model="google.gemma-4-31b", messages=messages)

    assert completion.usage.prompt_tokens_details.cached_tokens == 3


def test_reasoning_items_in_input_are_counted(client, emulator):
    client.responses.create(
        model="google.gemma-4-31b",
        input=[
            {"role": "user", "content": "First question."},
            {"type": "reasoning", "id": "rs_1", "summary": [], "content": [{"type": "reasoning_text", "text": "x"}]},
            {"role": "assistant", "content": "First answer."},
            {"role": "user", "content": "Second question."},
        ],
    )

    record = emulator.stats.snapshot()["requests"][-1]
    assert record["reasoning_items_in_input"] == 1
    assert record["input_item_types"] == ["message", "reasoning", "message", "message"]


def test_tier_limited_fault_spares_other_tiers(client, emulator):
    emulator.faults.fail_fraction(1.0, "unavailable", service_tier="flex")

    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(
            model="google.gemma-4-31b", messages=[{"role": "user", "content": "x"}], service_tier="flex"
        )
    completion = client.chat.completions.create(
        model="google.gemma-4-31b", messages=[{"role": "user", "content": "x"}], service_tier="default"
    )

    assert completion.service_tier == "default"
    assert [record["status"] for record in emulator.stats.snapshot()["requests"]] == [503, 200]
