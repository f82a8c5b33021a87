"""The full job contract end to end: reasoning, multi-turn input, tools, images, deadlines, tier escalation, status."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

from gemma_batch.emulator import expected_answer, expected_reasoning
from worker import metrics

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"pixels" * 10
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG_BYTES).decode("ascii")
LOOKUP_TOOL = {
    "type": "function",
    "name": "lookup_order",
    "description": "Find an order",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
}


def emf_total(captured_stdout: str, name: str) -> int:
    return sum(json.loads(line)[name] for line in captured_stdout.splitlines() if '"_aws"' in line)


def in_seconds(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat()


def test_multi_turn_reasoning_never_reaches_model(stack, driver, emulator):
    # GIVEN multi-turn jobs of both APIs whose earlier turns carry the model's reasoning
    responses_items = [
        {"role": "user", "content": "What is 17 * 3?"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "content": [{"type": "reasoning_text", "text": "17*3=51"}]},
        {"role": "assistant", "content": "51"},
        {"type": "reasoning", "id": "rs_2", "summary": [{"type": "summary_text", "text": "checked"}]},
        {"role": "user", "content": "And times 2?"},
    ]
    chat_messages = [
        {"role": "user", "content": "What is 17 * 3?"},
        {"role": "assistant", "content": "51", "reasoning_content": "17*3=51"},
        {"role": "user", "content": "And times 2?"},
    ]
    stack.send(
        {"job_id": "turns-responses", "api": "responses", "messages": responses_items, "reasoning_effort": "low"},
        {"job_id": "turns-chat", "messages": chat_messages},
    )

    # WHEN the jobs run
    driver.drain()

    # THEN no request that reached the emulator carried a reasoning item
    records = emulator.stats.requests_for("turns-responses") + emulator.stats.requests_for("turns-chat")
    assert len(records) == 2
    assert [record["reasoning_items_in_input"] for record in records] == [0, 0]
    assert emulator.stats.requests_for("turns-responses")[0]["input_item_types"] == ["message", "message", "message"]

    # AND each result says how many reasoning items were removed, and keeps the new reasoning apart
    results = stack.results()
    assert results["turns-responses"]["removed_reasoning_items"] == 2
    assert results["turns-chat"]["removed_reasoning_items"] == 1
    input_text = "What is 17 * 3?\n51\nAnd times 2?"
    assert results["turns-responses"]["answer"] == expected_answer(input_text)[0]
    assert results["turns-responses"]["reasoning"] == expected_reasoning(input_text, "low")
    assert results["turns-chat"]["reasoning"] is None


def test_reasoning_effort_default_for_e2b(stack, driver, emulator, worker_environment):
    # GIVEN the configuration's per-model default, high for google.gemma-4-e2b
    worker_environment(REASONING_EFFORT_BY_MODEL='{"google.gemma-4-e2b": "high"}')
    stack.send(
        {"job_id": "small-model", "prompt": "Explain tides.", "model": "google.gemma-4-e2b"},
        {"job_id": "big-model", "prompt": "Explain tides."},
    )

    driver.drain()

    # THEN only the e2b request carried a reasoning effort, and its reasoning is stored apart from the answer
    assert emulator.stats.requests_for("small-model")[0]["reasoning_effort"] == "high"
    assert emulator.stats.requests_for("big-model")[0]["reasoning_effort"] is None
    result = stack.results()["small-model"]
    assert result["reasoning"] == expected_reasoning("Explain tides.", "high")
    assert result["answer"] == expected_answer("Explain tides.")[0]
    assert result["reasoning_effort"] == "high"
    assert result["usage"]["reasoning_tokens"] == len(result["reasoning"].split())


def test_tool_call_loop_as_two_jobs(stack, driver, emulator):
    # GIVEN a job that offers a tool
    stack.send({"job_id": "tool-turn-1", "api": "responses", "prompt": "Where is order 42?", "tools": [LOOKUP_TOOL]})
    driver.drain()

    # THEN its result carries the tool call instead of an answer
    first = stack.results()["tool-turn-1"]
    (call,) = first["tool_calls"]
    assert call["name"] == "lookup_order"
    assert set(json.loads(call["arguments"])) == {"order_id"}
    assert first["finish_reason"] == "tool_calls"
    assert first["answer"] is None

    # WHEN the client runs the tool and sends the next turn as a new job
    stack.send(
        {
            "job_id": "tool-turn-2",
            "api": "responses",
            "tools": [LOOKUP_TOOL],
            "messages": [
                {"role": "user", "content": "Where is order 42?"},
                {"type": "function_call", "call_id": call["call_id"], "name": call["name"], "arguments": call["arguments"]},
                {"type": "function_call_output", "call_id": call["call_id"], "output": "Shipped on Monday."},
            ],
        }
    )
    driver.drain()

    # THEN the model answers with text
    second = stack.results()["tool-turn-2"]
    assert second["tool_calls"] == []
    assert second["answer"] == expected_answer("Where is order 42?\nShipped on Monday.")[0]
    assert emulator.stats.requests_for("tool-turn-2")[0]["tools"] == ["lookup_order"]


def test_images_from_s3_and_inline_go_before_text(stack, driver, emulator):
    # GIVEN an image in the input location and an inline image
    s3_uri = stack.put_input("photos/cat.png", PNG_BYTES)
    stack.send({"job_id": "look", "prompt": "Compare the two images.", "images": [s3_uri, PNG_URL]})

    driver.drain()

    # THEN both reached the model as image parts, before the text
    (record,) = emulator.stats.requests_for("look")
    assert record["image_parts"] == 2
    assert record["images_before_text"] is True
    assert stack.results()["look"]["status"] == "succeeded"


def test_missing_or_foreign_image_is_invalid(stack, driver, emulator):
    stack.send(
        {"job_id": "no-image", "prompt": "Look.", "images": [f"s3://{stack.bucket}/inputs/missing.png"]},
        {"job_id": "foreign-image", "prompt": "Look.", "images": ["s3://someone-elses-bucket/inputs/a.png"]},
        {"job_id": "public-image", "prompt": "Look.", "images": ["https://example.com/a.png"]},
    )

    driver.drain()

    failures = stack.failures()
    assert f"s3://{stack.bucket}/inputs/missing.png, which does not exist" in failures["no-image"]["reason"]
    assert "is outside the input location" in failures["foreign-image"]["reason"]
    assert "public https image URL, which Bedrock does not accept" in failures["public-image"]["reason"]
    for job_id in ("no-image", "foreign-image", "public-image"):
        assert stack.job_state(job_id)["status"] == "invalid"
        assert stack.job_state(job_id)["record_key"] == f"failures/{job_id}.json"
    assert emulator.stats.snapshot()["requests_total"] == 0


def test_metadata_and_cached_tokens_in_result(stack, driver, emulator, capsys):
    shared = "Style guide: answer in one sentence, cite no sources, use metric units."
    stack.send({"job_id": "cache-1", "prompt": "Q1", "instructions": shared, "metadata": {"batch": "b-7"}})
    driver.drain()
    stack.send({"job_id": "cache-2", "prompt": "Q2", "instructions": shared})
    driver.drain()

    results = stack.results()
    assert results["cache-1"]["metadata"] == {"batch": "b-7"}
    assert results["cache-1"]["usage"]["cached_input_tokens"] == 0
    assert results["cache-2"]["usage"]["cached_input_tokens"] == len(shared.split())
    assert emf_total(capsys.readouterr().out, metrics.CACHED_INPUT_TOKENS) == len(shared.split())


def test_status_records_follow_each_job(stack, driver, emulator):
    stack.send({"job_id": "status-ok", "prompt": "Hello."}, {"job_id": "status-bad", "prompt": "Hi.", "model": "nope"})

    driver.drain()

    succeeded = stack.job_state("status-ok")
    assert succeeded["status"] == "succeeded"
    assert succeeded["record_key"] == "results/status-ok.json"
    assert succeeded["model"] == "google.gemma-4-31b"
    assert succeeded["service_tier_served"] == "flex"
    assert int(succeeded["expires_at"]) > datetime.now(timezone.utc).timestamp() + 29 * 86400
    invalid = stack.job_state("status-bad")
    assert invalid["status"] == "invalid"
    assert "field 'model' is 'nope'" in invalid["error"]


def test_past_deadline_fails_without_a_call(stack, driver, emulator):
    stack.send({"job_id": "too-late", "prompt": "Hello.", "deadline": in_seconds(-60)})

    driver.drain()

    failure = stack.failures()["too-late"]
    assert failure["status"] == "failed"
    assert "deadline" in failure["error"]
    assert "passed before Mantle answered (0 requests sent)" in failure["error"]
    assert stack.job_state("too-late")["status"] == "failed"
    assert emulator.stats.snapshot()["requests_total"] == 0


def test_flex_503_near_deadline_escalates(stack, driver, emulator, worker_environment, capsys):
    # GIVEN escalation allowed by the configuration, and Flex answering 503 to every request
    worker_environment(ALLOW_STANDARD_TIER_ESCALATION="true")
    emulator.faults.fail_fraction(1.0, "unavailable", service_tier="flex")
    stack.send(
        {"job_id": "urgent", "prompt": "Hello.", "deadline": in_seconds(5), "allow_standard_tier_escalation": True}
    )

    # WHEN the job runs
    driver.drain(until_empty=True, max_rounds=10)

    # THEN after two 503s from Flex it was served on the standard tier, and the result says so
    result = stack.results()["urgent"]
    assert result["service_tier"] == {"requested": "flex", "sent": "default", "served": "default", "escalated": True}
    assert [(record["service_tier"], record["status"]) for record in emulator.stats.requests_for("urgent")] == [
        ("flex", 503),
        ("flex", 503),
        ("default", 200),
    ]
    assert stack.job_state("urgent")["escalated"] is True

    # AND the escalation metric counted it
    assert emf_total(capsys.readouterr().out, metrics.TIER_ESCALATIONS) == 1


def test_no_escalation_without_permission_or_urgency(stack, driver, emulator, worker_environment):
    # GIVEN escalation allowed by the configuration, Flex answering 503, and three jobs that may not escalate
    worker_environment(ALLOW_STANDARD_TIER_ESCALATION="true")
    emulator.faults.fail_fraction(1.0, "unavailable", service_tier="flex")
    stack.send(
        {"job_id": "not-allowed", "prompt": "Hello.", "deadline": in_seconds(5)},
        {"job_id": "not-urgent", "prompt": "Hello.", "deadline": in_seconds(3600), "allow_standard_tier_escalation": True},
        {"job_id": "no-deadline", "prompt": "Hello.", "allow_standard_tier_escalation": True},
    )

    # WHEN one batch is delivered
    batch = driver.deliver_once()

    # THEN every job stayed on Flex and was deferred, with its status back to queued
    assert len(batch.reported_failures) == 3
    for job_id in ("not-allowed", "not-urgent", "no-deadline"):
        assert {record["service_tier"] for record in emulator.stats.requests_for(job_id)} == {"flex"}
        assert stack.job_state(job_id)["status"] == "queued"
    assert stack.results() == {}


def test_config_forbids_escalation(stack, driver, emulator):
    # GIVEN the default configuration (escalation off) and a job that asks for it
    emulator.faults.fail_fraction(1.0, "unavailable", service_tier="flex")
    stack.send({"job_id": "asks", "prompt": "Hello.", "deadline": in_seconds(5), "allow_standard_tier_escalation": True})

    batch = driver.deliver_once()

    assert len(batch.reported_failures) == 1
    assert {record["service_tier"] for record in emulator.stats.requests_for("asks")} == {"flex"}


def test_last_delivery_marks_status_dead_lettered(stack, driver, emulator):
    # GIVEN a job that Mantle always throttles
    emulator.faults.fail_fraction(1.0, "throttle", job_id="doomed")
    stack.send({"job_id": "doomed", "prompt": "Never."})

    # WHEN it is delivered until SQS moves it to the dead-letter queue
    driver.drain(until_empty=True, max_rounds=50)

    # THEN its status says failed and dead-lettered, so status readers stop waiting
    state = stack.job_state("doomed")
    assert state["status"] == "failed"
    assert state["dead_lettered"] is True
    assert "dead-letter queue" in state["error"]
    assert len(stack.dead_letters()) == 1
