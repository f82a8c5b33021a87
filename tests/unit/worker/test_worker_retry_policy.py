"""The retry policy is a pure function: these tests pass status, headers, time and random values in."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from worker.retry_policy import (
    REDELIVERY_MAX_SECONDS,
    SQS_MAX_VISIBILITY_SECONDS,
    Action,
    RetryPolicy,
    parse_retry_after,
)

NOW = datetime(2026, 3, 1, 10, 0, 0, tzinfo=timezone.utc)
PLENTY_MS = 600_000


def policy(max_attempts: int = 3, base: float = 1.0, maximum: float = 20.0) -> RetryPolicy:
    return RetryPolicy(max_attempts=max_attempts, backoff_base_seconds=base, backoff_max_seconds=maximum)


def fixed(value: float):
    return lambda: value


@pytest.mark.parametrize("status", [429, 503, 500, 502, 504, None])
def test_retryable_status_is_retried(status):
    # GIVEN a failed first request without Retry-After
    # WHEN the policy decides with plenty of time left
    decision = policy().decide(
        status=status, headers={}, attempt=1, remaining_ms=PLENTY_MS, now=NOW, random=fixed(0.5)
    )

    # THEN it retries after a full-jitter delay: 0.5 * min(20, 1 * 2**0)
    assert decision.action is Action.RETRY
    assert decision.delay_seconds == pytest.approx(0.5)
    assert decision.retry_after_seconds is None


@pytest.mark.parametrize(
    ("attempt", "random_value", "expected_delay"),
    [
        (1, 0.5, 0.5),  # ceiling 1
        (2, 0.5, 1.0),  # ceiling 2
        (3, 0.25, 1.0),  # ceiling 4
        (6, 0.5, 10.0),  # ceiling min(20, 32) = 20
        (40, 0.5, 10.0),  # a huge attempt number is still capped
    ],
)
def test_backoff_grows_exponentially_up_to_max(attempt, random_value, expected_delay):
    # GIVEN a budget large enough for the attempt
    retry_policy = policy(max_attempts=100)

    # WHEN a 429 arrives on that attempt
    decision = retry_policy.decide(
        status=429, headers={}, attempt=attempt, remaining_ms=PLENTY_MS, now=NOW, random=fixed(random_value)
    )

    # THEN the delay is random * min(max, base * 2 ** (attempt - 1))
    assert decision.action is Action.RETRY
    assert decision.delay_seconds == pytest.approx(expected_delay)


def test_full_jitter_spans_zero_to_ceiling():
    retry_policy = policy(max_attempts=10)

    lowest = retry_policy.backoff_seconds(attempt=4, random=fixed(0.0))
    highest = retry_policy.backoff_seconds(attempt=4, random=fixed(0.999999))

    assert lowest == 0.0
    assert highest == pytest.approx(8.0, abs=1e-4)
    assert highest < 8.0


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_seconds_is_the_delay(status):
    # GIVEN a response with Retry-After in delta-seconds
    headers = {"Retry-After": "3"}

    # WHEN the policy decides
    decision = policy().decide(
        status=status, headers=headers, attempt=1, remaining_ms=PLENTY_MS, now=NOW, random=fixed(0.9)
    )

    # THEN the server's value replaces the jittered backoff
    assert decision.action is Action.RETRY
    assert decision.delay_seconds == 3.0
    assert decision.retry_after_seconds == 3.0


def test_retry_after_http_date_is_relative_to_now():
    # GIVEN Retry-After as an HTTP date 7 seconds after the current time
    headers = {"retry-after": format_datetime(NOW + timedelta(seconds=7), usegmt=True)}

    decision = policy().decide(
        status=429, headers=headers, attempt=1, remaining_ms=PLENTY_MS, now=NOW, random=fixed(0.9)
    )

    assert decision.action is Action.RETRY
    assert decision.delay_seconds == pytest.approx(7.0)


def test_retry_after_date_in_past_means_no_wait():
    headers = {"Retry-After": format_datetime(NOW - timedelta(seconds=30), usegmt=True)}

    assert parse_retry_after(headers, NOW) == 0.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"Retry-After": "0"}, 0.0),
        ({"RETRY-AFTER": " 12 "}, 12.0),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "-5"}, None),
        ({"Retry-After": "nan"}, None),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),
        ({"retry-after-ms": "bad", "Retry-After": "9"}, 9.0),
    ],
)
def test_parse_retry_after_cases(headers, expected):
    assert parse_retry_after(headers, NOW) == expected


def test_unparseable_retry_after_falls_back_to_backoff():
    decision = policy().decide(
        status=503, headers={"Retry-After": "later"}, attempt=2, remaining_ms=PLENTY_MS, now=NOW, random=fixed(0.5)
    )

    assert decision.action is Action.RETRY
    assert decision.delay_seconds == pytest.approx(1.0)
    assert decision.retry_after_seconds is None


def test_retry_after_above_max_backoff_defers_to_queue():
    # GIVEN a server that requests a longer wait than the invocation should sleep
    headers = {"Retry-After": "45"}

    decision = policy(maximum=20).decide(
        status=429, headers=headers, attempt=1, remaining_ms=PLENTY_MS, now=NOW, random=fixed(0.5)
    )

    # THEN the job waits in the queue, and the hint goes to the next delivery's delay
    assert decision.action is Action.DEFER
    assert decision.retry_after_seconds == 45.0
    assert "exceeds the maximum backoff" in decision.reason


def test_budget_exhausted_defers():
    # GIVEN the third failed request with a budget of three requests per delivery
    decision = policy(max_attempts=3).decide(
        status=429, headers={"Retry-After": "1"}, attempt=3, remaining_ms=PLENTY_MS, now=NOW, random=fixed(0.5)
    )

    # THEN no fourth request is sent in this delivery
    assert decision.action is Action.DEFER
    assert decision.retry_after_seconds == 1.0
    assert "retry budget of 3 requests" in decision.reason


def test_budget_of_one_never_retries():
    decision = policy(max_attempts=1).decide(
        status=503, headers={}, attempt=1, remaining_ms=PLENTY_MS, now=NOW, random=fixed(0.0)
    )

    assert decision.action is Action.DEFER


def test_remaining_time_caps_backoff():
    # GIVEN a 4 s Retry-After and 8 s left: 4 s sleep + 5 s safety margin + 1 s for the request do not fit
    decision = policy().decide(
        status=429, headers={"Retry-After": "4"}, attempt=1, remaining_ms=8_000, now=NOW, random=fixed(0.5)
    )

    assert decision.action is Action.DEFER
    assert "does not fit" in decision.reason


def test_backoff_that_fits_remaining_time_retries():
    # 4 s sleep + 5 s margin + 1 s request = 10 s, which fits into 10 s exactly
    decision = policy().decide(
        status=429, headers={"Retry-After": "4"}, attempt=1, remaining_ms=10_000, now=NOW, random=fixed(0.5)
    )

    assert decision.action is Action.RETRY
    assert decision.delay_seconds == 4.0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422])
def test_client_errors_are_not_retried(status):
    decision = policy().decide(
        status=status, headers={"Retry-After": "1"}, attempt=1, remaining_ms=PLENTY_MS, now=NOW, random=fixed(0.5)
    )

    assert decision.action is Action.FAIL
    assert str(status) in decision.reason


def test_request_timeout_respects_remaining_time():
    retry_policy = policy()

    assert retry_policy.request_timeout_seconds(60.0, remaining_ms=900_000) == 60.0
    assert retry_policy.request_timeout_seconds(60.0, remaining_ms=25_000) == pytest.approx(20.0)
    assert retry_policy.request_timeout_seconds(60.0, remaining_ms=6_000) == pytest.approx(1.0)
    assert retry_policy.request_timeout_seconds(60.0, remaining_ms=5_999) is None


@pytest.mark.parametrize(
    ("receive_count", "random_value", "expected"),
    [
        (1, 0.0, 4),  # ceiling 1 * 2**3 = 8, the lower half starts at 4
        (1, 0.999, 8),
        (2, 0.0, 8),  # ceiling 16
        (4, 0.0, 32),  # ceiling 64
        (20, 0.0, REDELIVERY_MAX_SECONDS // 2),  # capped ceiling 900
        (20, 0.999, REDELIVERY_MAX_SECONDS),
    ],
)
def test_redelivery_delay_grows_with_receive_count(receive_count, random_value, expected):
    delay = policy(max_attempts=3, base=1.0).redelivery_delay_seconds(receive_count, None, fixed(random_value))

    assert delay == expected


def test_redelivery_delay_honours_retry_after():
    delay = policy().redelivery_delay_seconds(1, retry_after_seconds=120.0, random=fixed(0.0))

    assert delay == 120


def test_redelivery_delay_never_exceeds_sqs_limit():
    delay = policy().redelivery_delay_seconds(1, retry_after_seconds=10**9, random=fixed(0.0))

    assert delay == SQS_MAX_VISIBILITY_SECONDS


def test_redelivery_delay_rounds_small_delays_to_zero():
    # GIVEN backoff settings of a fast test run
    delay = policy(max_attempts=3, base=0.001, maximum=0.02).redelivery_delay_seconds(5, None, fixed(0.999))

    # THEN SQS gets whole seconds, and 0.128 s rounds to 0
    assert delay == 0
