"""The ramp simulator: the controller's decisions against the emulator's token quota and 503 episodes."""

from __future__ import annotations

import argparse

import pytest

from gemma_batch.__main__ import main
from gemma_batch.ramp_simulator import Scenario, parse_minutes, simulate
from ramp_controller.policy import RampPolicy


def scenario(**changes) -> Scenario:
    values = {
        "minutes": 60,
        "demand_rate": 3000,
        "tokens_per_minute": 10_000_000,
        "input_tokens": 300,
        "max_tokens": 200,
        "output_tokens": 150,
        "unavailable_minutes": frozenset(),
        "unavailable_capacity": 600,
    } | changes
    return Scenario(**values)


@pytest.fixture()
def policy() -> RampPolicy:
    return RampPolicy(target_rate=2000, pool_size=100, hold_seconds=15 * 60)


def test_ample_quota_keeps_the_full_pool(policy: RampPolicy) -> None:
    results = simulate(policy, scenario())
    assert {result.concurrency for result in results} == {100}
    assert sum(result.throttled_429 + result.unavailable_503 for result in results) == 0


def test_503_episode_halves_until_below_capacity_then_recovers(policy: RampPolicy) -> None:
    # GIVEN a region that serves only 600 requests per minute in minutes 10 and 11
    results = simulate(policy, scenario(unavailable_minutes=frozenset({10, 11})))

    # THEN minute 10 sends the full 2,000 and gets 503s; the cut to 1,000 still exceeds 600 in minute 11
    assert (results[10].requests, results[10].unavailable_503, results[10].action) == (2000, 1400, "cut")
    assert (results[11].requests, results[11].unavailable_503, results[11].action) == (1000, 400, "cut")
    # AND from minute 12 the pool runs at 500, a quarter of the target, and stays there
    assert results[12].concurrency == 25
    assert [result.action for result in results[12:26]] == ["hold"] * 14
    # AND 15 stable minutes later it raises by 50 %
    assert results[26].action == "raise"
    assert results[27].rate == 750


def test_quota_beyond_pool_rate_gets_429_and_cut(policy: RampPolicy) -> None:
    # GIVEN a quota of 600,000 tokens per minute at 500 tokens charged per request: 1,200 requests fit
    results = simulate(policy, scenario(tokens_per_minute=600_000, minutes=5))

    # THEN the first minute at 2,000 requests gets 429s and the rate drops to 75 %
    assert results[0].throttled_429 > 0
    assert results[0].action == "cut"
    assert results[1].rate == 1500


def test_report_prints_concurrency_over_time(capsys: pytest.CaptureFixture[str]) -> None:
    # WHEN the command runs
    code = main(["simulate-ramp", "--minutes", "30", "--unavailable", "5-6", "--every", "10"])

    # THEN it prints a row per change with a concurrency bar, and the totals
    output = capsys.readouterr().out
    assert code == 0
    assert "minute     rate conc requests   429   503  decision concurrency" in output
    assert "    5   1125.0   57     1140     0   540  cut      #######################\n" in output
    assert "429 share" in output
    assert "of the quota" in output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--minutes", "0"], "--minutes is 0; it must be at least 1"),
        (["--pool-size", "1"], "pool_size must be from 2 to 1000"),
        (["--max-tokens", "10", "--output-tokens", "20"], "--max-tokens is 10; it must be at least --output-tokens"),
    ],
)
def test_invalid_options_exit_with_message(arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    assert main(["simulate-ramp", *arguments]) == 2
    assert message in capsys.readouterr().err


def test_parse_minutes() -> None:
    assert parse_minutes("3-5,9") == frozenset({3, 4, 5, 9})
    assert parse_minutes("") == frozenset()
    with pytest.raises(argparse.ArgumentTypeError, match="episode '5-3' must run forward"):
        parse_minutes("5-3")
