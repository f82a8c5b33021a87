"""The emulator's capacity model: a tokens-per-minute quota, charged input + max_tokens up front, 429 beyond it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import openai
import pytest

from gemma_batch.emulator import MantleEmulator
from gemma_batch.emulator.capacity import TokenQuota, reserved_tokens, used_tokens


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_quota_admits_until_window_is_full() -> None:
    # GIVEN a quota of 100 tokens per minute
    clock = FakeClock()
    quota = TokenQuota(100, clock=clock)

    # WHEN requests of 40 tokens arrive in the same second
    results = [quota.try_reserve(40) for _ in range(3)]

    # THEN two fit and the third does not
    assert [result is not None for result in results] == [True, True, False]
    assert quota.used_tokens() == 80


def test_window_slides() -> None:
    # GIVEN a full quota
    clock = FakeClock()
    quota = TokenQuota(100, clock=clock)
    assert quota.try_reserve(100) is not None
    assert quota.try_reserve(1) is None

    # WHEN 59.9 s pass, THEN it is still full; WHEN a full minute has passed, THEN it is free again
    clock.now += 59.9
    assert quota.try_reserve(1) is None
    clock.now += 0.1
    assert quota.try_reserve(100) is not None


def test_settling_frees_unused_max_tokens() -> None:
    # GIVEN a request charged 10 input + 80 max tokens
    clock = FakeClock()
    quota = TokenQuota(100, clock=clock)
    reservation = quota.try_reserve(reserved_tokens(10, 80))
    assert reservation is not None
    assert quota.try_reserve(20) is None

    # WHEN it finishes with 15 tokens used
    quota.settle(reservation, 15)

    # THEN the rest of the window is free for others
    assert quota.used_tokens() == 15
    assert quota.try_reserve(85) is not None


def test_settling_never_raises_a_charge() -> None:
    clock = FakeClock()
    quota = TokenQuota(100, clock=clock)
    reservation = quota.try_reserve(30)
    assert reservation is not None
    quota.settle(reservation, 500)
    assert quota.used_tokens() == 30


def test_scaled_window() -> None:
    # GIVEN a benchmark's quota where one second stands for one minute
    clock = FakeClock()
    quota = TokenQuota(50, window_seconds=1.0, clock=clock)
    assert quota.try_reserve(50) is not None

    # THEN the next second has the whole quota again
    clock.now += 1.0
    assert quota.try_reserve(50) is not None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"tokens_per_minute": 0}, "tokens_per_minute must be a whole number of at least 1"),
        ({"tokens_per_minute": 10.5}, "tokens_per_minute must be a whole number of at least 1"),
        ({"tokens_per_minute": 10, "window_seconds": 0}, "window_seconds must be greater than 0"),
    ],
)
def test_quota_rejects_invalid_values(arguments: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TokenQuota(**arguments)


def test_used_tokens_reads_both_usage_shapes() -> None:
    assert used_tokens({"usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}) == 12
    assert used_tokens({"usage": {"input_tokens": 5, "output_tokens": 7}}) == 12
    assert used_tokens({}) == 0


def test_emulator_answers_429_beyond_quota(emulator: MantleEmulator, client: openai.OpenAI) -> None:
    # GIVEN an emulator whose quota fits one request of 5 input + 50 max tokens per minute
    emulator.set_token_quota(60)

    # WHEN two such requests arrive at once
    def send() -> None:
        client.chat.completions.create(
            model="google.gemma-4-31b",
            messages=[{"role": "user", "content": "one two three four five"}],
            max_tokens=50,
        )

    send()
    with pytest.raises(openai.RateLimitError) as raised:
        send()

    # THEN the second gets 429 with the quota message, and the emulator counted it
    assert raised.value.status_code == 429
    assert "tokens per minute" in raised.value.message
    assert emulator.stats.snapshot()["by_status"] == {"200": 1, "429": 1}

    # AND reset removes the quota
    emulator.reset()
    send()


def configure(emulator: MantleEmulator, document: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        emulator.root_url + "/_emulator/config",
        data=json.dumps(document).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_quota_set_over_control_endpoint(emulator: MantleEmulator) -> None:
    # WHEN the quota is set over HTTP with a scaled window
    status, _ = configure(emulator, {"tokens_per_minute": 5, "quota_window_seconds": 2})

    # THEN the emulator has it
    assert status == 200
    quota = emulator.service.token_quota
    assert quota is not None
    assert (quota.tokens_per_minute, quota.window_seconds) == (5, 2.0)

    # AND null removes it, while an invalid value is rejected and named
    assert configure(emulator, {"tokens_per_minute": None})[0] == 200
    assert emulator.service.token_quota is None
    status, body = configure(emulator, {"tokens_per_minute": 0})
    assert status == 400
    assert "tokens_per_minute must be a whole number" in body["error"]["message"]
