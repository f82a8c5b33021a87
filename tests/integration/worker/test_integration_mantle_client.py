"""The worker's Mantle client against the emulator: one SDK client, key swaps, no SDK retries, both APIs."""

from __future__ import annotations

import json

import pytest

from gemma_batch.emulator import expected_answer, expected_reasoning
from worker.job import JobDefaults, parse_job
from worker.mantle_client import MantleClient, MantleRequestError
from worker.request_builder import build_request

DEFAULTS = JobDefaults(model="google.gemma-4-e2b", max_output_tokens=64)
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def make_request(job_id: str, **fields):
    job = parse_job(json.dumps({"job_id": job_id, "prompt": "Hello there.", **fields}), DEFAULTS)
    return build_request(job, [])


def complete(client, request, job_id, api_key, receive_count=1, service_tier=None):
    return client.complete(
        request,
        job_id=job_id,
        api_key=api_key,
        timeout_seconds=5,
        receive_count=receive_count,
        service_tier=service_tier,
    )


def test_key_swap_keeps_sdk_retries_off(emulator, mint):
    # GIVEN a client that has sent one request with key A
    client = MantleClient(emulator.base_url, "flex", timeout_seconds=5)
    complete(client, make_request("swap-1"), "swap-1", mint("AKIAMANTLECLIENT0001"))

    # WHEN the key changes and the next request is throttled
    emulator.faults.fail_next(1, "throttle", retry_after=0)
    with pytest.raises(MantleRequestError) as raised:
        complete(client, make_request("swap-2"), "swap-2", mint("AKIAMANTLECLIENT0002"))

    # THEN the request used key B, and the SDK did not retry it on its own
    assert raised.value.status == 429
    assert raised.value.headers["retry-after"] == "0"
    stats = emulator.stats.snapshot()
    assert stats["by_access_key"] == {"AKIAMANTLECLIENT0001": 1, "AKIAMANTLECLIENT0002": 1}
    assert stats["jobs"]["swap-2"]["requests"] == 1


def test_completion_fields(emulator, mint):
    client = MantleClient(emulator.base_url, "priority", timeout_seconds=5)

    completion = complete(client, make_request("fields"), "fields", mint("AKIAMANTLECLIENT0001"), receive_count=3)

    assert completion.model == "google.gemma-4-e2b"
    assert completion.served_service_tier == "priority"
    assert completion.finish_reason == "stop"
    assert completion.input_tokens == 2
    assert completion.total_tokens == completion.input_tokens + completion.output_tokens
    assert emulator.stats.snapshot()["jobs"]["fields"]["by_receive_count"] == {"3": 1}
    assert completion.answer
    assert completion.answer not in repr(completion)


def test_service_tier_override_per_request(emulator, mint):
    client = MantleClient(emulator.base_url, "flex", timeout_seconds=5)

    completion = complete(client, make_request("tier"), "tier", mint("AKIAMANTLECLIENT0001"), service_tier="default")

    assert completion.served_service_tier == "default"
    assert emulator.stats.requests_for("tier")[0]["service_tier"] == "default"


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_reasoning_is_kept_apart(emulator, mint, api):
    client = MantleClient(emulator.base_url, "flex", timeout_seconds=5)

    completion = complete(
        client, make_request("reasons", api=api, reasoning_effort="medium"), "reasons", mint("AKIAMANTLECLIENT0001")
    )

    assert completion.answer == expected_answer("Hello there.")[0]
    assert completion.reasoning == expected_reasoning("Hello there.", "medium")
    assert completion.reasoning_tokens == len(completion.reasoning.split())
    assert completion.reasoning not in repr(completion)


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_tool_calls_are_returned(emulator, mint, api):
    client = MantleClient(emulator.base_url, "flex", timeout_seconds=5)

    completion = complete(
        client, make_request("tools", api=api, tools=[WEATHER_TOOL]), "tools", mint("AKIAMANTLECLIENT0001")
    )

    (call,) = completion.tool_calls
    assert call.name == "get_weather"
    assert set(json.loads(call.arguments)) == {"city"}
    assert call.call_id.startswith("call_")
    assert completion.finish_reason == "tool_calls"
    assert completion.answer is None


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_cached_input_tokens_are_read(emulator, mint, api):
    client = MantleClient(emulator.base_url, "flex", timeout_seconds=5)
    request = make_request("cached", api=api, instructions="Shared style guide for every job.")

    first = complete(client, request, "cached", mint("AKIAMANTLECLIENT0001"))
    second = complete(client, request, "cached", mint("AKIAMANTLECLIENT0001"))

    assert first.cached_input_tokens == 0
    assert second.cached_input_tokens == 6


def test_truncated_response_reports_length(emulator, mint):
    client = MantleClient(emulator.base_url, "flex", timeout_seconds=5)

    completion = complete(
        client, make_request("short", api="responses", max_output_tokens=2), "short", mint("AKIAMANTLECLIENT0001")
    )

    assert completion.finish_reason == "length"
    assert completion.output_tokens == 2
