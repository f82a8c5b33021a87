"""Emulator fault injection and request accounting, in-process and over the /_emulator/ HTTP endpoints."""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import openai
import pytest

from gemma_batch.emulator import FaultRule

PROMPT = "A prompt that must never be logged."


def chat(client: openai.OpenAI, job_id: str | None = None, receive_count: str = "1"):
    headers = {"X-Job-Id": job_id, "X-Job-Receive-Count": receive_count} if job_id else None
    return client.chat.completions.create(
        model="google.gemma-4-31b",
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=32,
        service_tier="flex",
        extra_headers=headers,
    )


def outcome(client: openai.OpenAI, job_id: str | None = None) -> int:
    try:
        chat(client, job_id)
    except openai.APIStatusError as error:
        return error.status_code
    return 200


def control(emulator, method: str, path: str, document: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(document).encode() if document is not None else None
    request = urllib.request.Request(
        emulator.root_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_next_requests_are_throttled_with_retry_after(client, emulator):
    # GIVEN the next two requests throttled with Retry-After: 3
    emulator.faults.fail_next(2, "throttle", retry_after=3)

    # WHEN three requests arrive
    errors = []
    for _ in range(2):
        with pytest.raises(openai.RateLimitError) as raised:
            chat(client)
        errors.append(raised.value)
    completion = chat(client)

    # THEN the first two get 429 with the header, and the third succeeds
    assert [error.response.headers["retry-after"] for error in errors] == ["3", "3"]
    assert errors[0].body["type"] == "rate_limit_error"
    assert completion.choices[0].message.content


def test_unavailable_without_retry_after(client, emulator):
    emulator.faults.fail_next(1, "unavailable")

    with pytest.raises(openai.InternalServerError) as raised:
        chat(client)

    assert raised.value.status_code == 503
    assert "retry-after" not in raised.value.response.headers


def test_retry_after_as_http_date(client, emulator):
    # GIVEN an emulator clock frozen a quarter second into a second, and a 503 fault asking for 30 s as an HTTP date
    now = datetime.now(timezone.utc).replace(microsecond=250000)
    emulator.clock.set(now)
    emulator.faults.fail_next(1, "unavailable", retry_after=30, retry_after_format="http-date")

    with pytest.raises(openai.InternalServerError) as raised:
        chat(client)

    # THEN the date is at least 30 s after the emulator's time, rounded up to a whole second
    retry_at = parsedate_to_datetime(raised.value.response.headers["retry-after"])
    assert retry_at - now == timedelta(seconds=30.75)


def test_route_and_tier_faults(client, emulator):
    emulator.faults.fail_next(1, "route")
    emulator.faults.fail_next(1, "tier")

    with pytest.raises(openai.BadRequestError) as route_error:
        chat(client)
    with pytest.raises(openai.BadRequestError) as tier_error:
        chat(client)

    assert "isn't supported on this route" in route_error.value.message
    assert "Invalid service_tier 'flex'" in tier_error.value.message
    assert chat(client).choices


def test_fault_limited_to_one_job(client, emulator):
    emulator.faults.fail_fraction(1.0, "throttle", job_id="doomed")

    assert outcome(client, "doomed") == 429
    assert outcome(client, "healthy") == 200
    assert outcome(client, "doomed") == 429


def test_fraction_faults_repeat_with_seed(client, emulator):
    # GIVEN half of all requests throttled
    def run() -> list[int]:
        emulator.reset()
        emulator.faults.fail_fraction(0.5, "throttle")
        return [outcome(client) for _ in range(30)]

    # WHEN the same sequence runs twice after a reset
    first = run()
    second = run()

    # THEN the seeded random source gives the same pattern, with both outcomes present
    assert first == second
    assert 429 in first
    assert 200 in first


def test_fixed_latency(client, emulator):
    emulator.faults.set_latency(0.3)

    started = time.monotonic()
    chat(client)
    elapsed = time.monotonic() - started

    assert elapsed >= 0.3


def test_fault_rule_validation():
    with pytest.raises(ValueError, match="fault kind 'explode' is unknown"):
        FaultRule("explode")
    with pytest.raises(ValueError, match="fraction must be between 0 and 1"):
        FaultRule("throttle", fraction=1.5)
    with pytest.raises(ValueError, match="count must be at least 1"):
        FaultRule("throttle", count=0)
    with pytest.raises(ValueError, match="retry_after_format 'minutes' is unknown"):
        FaultRule("throttle", retry_after=1, retry_after_format="minutes")


def test_stats_by_status_path_and_job(client, emulator, mint):
    # GIVEN one throttled and one successful request for job j1 on two deliveries, and one other request
    emulator.faults.fail_next(1, "throttle", job_id="j1")
    with pytest.raises(openai.RateLimitError):
        chat(client, "j1", receive_count="1")
    chat(client, "j1", receive_count="2")
    client.models.list()

    # WHEN the stats are read in-process and over HTTP
    in_process = emulator.stats.snapshot()
    status, over_http = control(emulator, "GET", "/_emulator/stats")

    # THEN both show totals, statuses, paths and the per-job, per-delivery counts
    assert status == 200
    assert over_http == in_process
    assert in_process["requests_total"] == 3
    assert in_process["by_status"] == {"200": 2, "429": 1}
    assert in_process["by_path"] == {"/openai/v1/chat/completions": 2, "/openai/v1/models": 1}
    assert in_process["jobs"]["j1"]["requests"] == 2
    assert in_process["jobs"]["j1"]["by_status"] == {"200": 1, "429": 1}
    assert in_process["jobs"]["j1"]["by_receive_count"] == {"1": 1, "2": 1}
    assert in_process["jobs"]["j1"]["max_tokens"] == [32, 32]


def test_http_faults_endpoint(client, emulator):
    # WHEN faults are set over HTTP
    status, snapshot = control(
        emulator,
        "POST",
        "/_emulator/faults",
        {"rules": [{"kind": "unavailable", "count": 1, "retry_after": 2}], "latency_seconds": 0},
    )

    # THEN the SDK gets the faults
    assert status == 200
    assert snapshot["rules"][0]["kind"] == "unavailable"
    with pytest.raises(openai.InternalServerError) as raised:
        chat(client)
    assert raised.value.response.headers["retry-after"] == "2"
    assert control(emulator, "GET", "/_emulator/faults")[1]["rules"] == []


def test_http_single_fault_object(client, emulator):
    status, _ = control(emulator, "POST", "/_emulator/faults", {"kind": "throttle", "count": 1})

    assert status == 200
    assert outcome(client) == 429
    assert outcome(client) == 200


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"kind": "explode"}, "fault kind 'explode' is unknown"),
        ({"kind": "throttle", "colour": "red"}, "fault field 'colour' is unknown"),
        ({"rules": "throttle"}, "send 'rules' as a list"),
        ({"count": 2}, "fault field 'kind' is missing"),
        ({"latency_seconds": -1}, "latency must not be negative"),
    ],
)
def test_http_faults_rejects_bad_configuration(emulator, document, expected):
    status, body = control(emulator, "POST", "/_emulator/faults", document)

    assert status == 400
    assert expected in body["error"]["message"]


def test_http_reset_clears_faults_and_counters(client, emulator):
    emulator.faults.fail_fraction(1.0, "throttle")
    assert outcome(client) == 429

    status, _ = control(emulator, "POST", "/_emulator/reset", {})

    assert status == 200
    assert emulator.stats.snapshot()["requests_total"] == 0
    assert outcome(client) == 200


def test_http_config_switches_tier_echo_and_session_expiry(client, emulator):
    status, _ = control(emulator, "POST", "/_emulator/config", {"echo_service_tier": False})
    assert status == 200
    assert chat(client).service_tier is None

    expired = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()
    status, _ = control(emulator, "POST", "/_emulator/config", {"session_expiries": {"AKIAEMULATORTEST0001": expired}})
    assert status == 200
    assert outcome(client) == 401


def test_logs_never_contain_prompt_or_key(client, emulator, caplog):
    emulator.faults.fail_next(1, "throttle", retry_after=1)

    with caplog.at_level(logging.DEBUG):
        assert outcome(client, "job-log") == 429
        assert outcome(client, "job-log") == 200

    lines = [record.getMessage() for record in caplog.records]
    assert any("job-log" in line for line in lines)
    assert all(PROMPT not in line for line in lines)
    assert all("bedrock-api-key-" not in line for line in lines)
