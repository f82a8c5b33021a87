"""The ramp policy: AWS's worked example on the rate, the hold, 429s, idle windows and validation."""

from __future__ import annotations

import pytest

from ramp_controller.policy import (
    Action,
    RampPolicy,
    RampState,
    WindowCounts,
    decide,
    initial_state,
)

MINUTE = 60.0


def stable_minute(requests: int = 500) -> WindowCounts:
    return WindowCounts(seconds=MINUTE, requests=requests, throttled_429=0, unavailable_503=0)


def minute_with_503s(count: int = 25, requests: int = 500) -> WindowCounts:
    return WindowCounts(seconds=MINUTE, requests=requests, throttled_429=0, unavailable_503=count)


def minute_with_429s(count: int = 25, requests: int = 500) -> WindowCounts:
    return WindowCounts(seconds=MINUTE, requests=requests, throttled_429=count, unavailable_503=0)


@pytest.fixture()
def policy() -> RampPolicy:
    # A pool of 100 puts the minimum rate at 40 requests per minute, far below the example's rates.
    return RampPolicy(target_rate=2000, pool_size=100, hold_seconds=15 * MINUTE)


def run_minutes(policy: RampPolicy, state: RampState, windows: list[WindowCounts]) -> tuple[RampState, list[Action]]:
    actions = []
    for window in windows:
        decision = decide(policy, state, window)
        actions.append(decision.action)
        state = decision.state
    return state, actions


def test_worked_example_cuts_then_raises_to_target(policy: RampPolicy) -> None:
    # GIVEN a controller at the target of 2,000 requests per minute
    state = initial_state(policy)
    assert state.rate == 2000

    # WHEN a minute has 503s, and the next minute still has them
    first = decide(policy, state, minute_with_503s())
    second = decide(policy, first.state, minute_with_503s())

    # THEN the rate halves to 1,000, then to 500
    assert (first.action, first.rate) == (Action.CUT, 1000)
    assert (second.action, second.rate) == (Action.CUT, 500)

    # WHEN 15 stable minutes pass, THEN the rate holds for 14 and rises by 50 % to 750 on the 15th
    state, actions = run_minutes(policy, second.state, [stable_minute()] * 15)
    assert actions == [Action.HOLD] * 14 + [Action.RAISE]
    assert state.rate == 750

    # AND each further 15 stable minutes raise it by 50 %, up to the target and no further
    rates = []
    for _ in range(4):
        state, actions = run_minutes(policy, state, [stable_minute()] * 15)
        rates.append(state.rate)
    assert rates == [1125, 1687.5, 2000, 2000]


def test_raise_needs_a_full_hold_after_each_raise(policy: RampPolicy) -> None:
    # GIVEN a rate of 500 that was just raised from an earlier hold
    state = RampState(rate=500, stable_seconds=0)

    # WHEN 29 stable minutes pass
    state, actions = run_minutes(policy, state, [stable_minute()] * 29)

    # THEN there was exactly one raise, after minute 15
    assert actions.count(Action.RAISE) == 1
    assert actions.index(Action.RAISE) == 14
    assert state.rate == 750
    assert state.stable_seconds == 14 * MINUTE


def test_503_during_hold_restarts_it(policy: RampPolicy) -> None:
    # GIVEN 10 stable minutes at 1,000
    state, _ = run_minutes(policy, RampState(rate=1000), [stable_minute()] * 10)
    assert state.stable_seconds == 10 * MINUTE

    # WHEN a minute has one 503
    decision = decide(policy, state, minute_with_503s(count=1))

    # THEN the rate halves and the hold starts from zero
    assert decision.action is Action.CUT
    assert decision.state == RampState(rate=500, stable_seconds=0)
    assert "1 503 responses of 500 requests in 60 s" in decision.reason


def test_429s_lower_the_rate(policy: RampPolicy) -> None:
    # GIVEN the target rate
    state = initial_state(policy)

    # WHEN a minute has 429s
    decision = decide(policy, state, minute_with_429s())

    # THEN the rate drops to 75 % and the hold restarts
    assert decision.action is Action.CUT
    assert decision.rate == 1500
    assert decision.state.stable_seconds == 0
    assert "429 responses" in decision.reason


def test_503s_take_precedence_over_429s(policy: RampPolicy) -> None:
    # GIVEN a minute with both, where the 429 cut alone would give 1,500
    window = WindowCounts(seconds=MINUTE, requests=400, throttled_429=10, unavailable_503=10)

    # WHEN a minute has both
    decision = decide(policy, initial_state(policy), window)

    # THEN the 503 cut applies
    assert decision.rate == 1000
    assert "503 responses" in decision.reason


def test_cuts_stop_at_minimum_rate() -> None:
    # GIVEN a pool of 10 for a target of 2,000: its minimum concurrency of 2 serves 400 requests per minute
    policy = RampPolicy(target_rate=2000, pool_size=10, hold_seconds=900)
    assert policy.minimum_rate == 400

    # WHEN 503s persist for five minutes
    state, actions = run_minutes(policy, initial_state(policy), [minute_with_503s()] * 5)

    # THEN the rate halves down to the minimum and stays there, and each minute still counts as a cut
    assert actions == [Action.CUT] * 5
    assert state.rate == 400
    assert "already at its minimum" in decide(policy, state, minute_with_503s()).reason


def test_idle_minutes_neither_advance_nor_reset_hold(policy: RampPolicy) -> None:
    # GIVEN 10 stable minutes at 1,000
    state, _ = run_minutes(policy, RampState(rate=1000), [stable_minute()] * 10)

    # WHEN 30 minutes pass without requests
    idle = WindowCounts(seconds=MINUTE, requests=0, throttled_429=0, unavailable_503=0)
    state, actions = run_minutes(policy, state, [idle] * 30)

    # THEN nothing changed, and 5 more stable minutes complete the hold
    assert actions == [Action.HOLD] * 30
    assert state == RampState(rate=1000, stable_seconds=10 * MINUTE)
    state, actions = run_minutes(policy, state, [stable_minute()] * 5)
    assert actions[-1] is Action.RAISE
    assert state.rate == 1500


def test_long_window_counts_its_whole_length(policy: RampPolicy) -> None:
    # GIVEN a controller that missed runs and now reads a 15-minute window at once
    window = WindowCounts(seconds=15 * MINUTE, requests=7000, throttled_429=0, unavailable_503=0)

    # WHEN it decides
    decision = decide(policy, RampState(rate=500), window)

    # THEN the window completes the hold
    assert decision.action is Action.RAISE
    assert decision.rate == 750


def test_rate_above_lowered_target_is_capped(policy: RampPolicy) -> None:
    # GIVEN a stored rate of 3,000 from before the target was lowered to 2,000
    decision = decide(policy, RampState(rate=3000, stable_seconds=0), stable_minute())

    # THEN the rate is the target
    assert decision.action is Action.HOLD
    assert decision.rate == 2000
    assert decision.previous_rate == 3000


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"target_rate": 0}, "target_rate must be a positive number"),
        ({"pool_size": 1}, "pool_size must be from 2 to 1000"),
        ({"pool_size": 1001}, "pool_size must be from 2 to 1000"),
        ({"hold_seconds": 0}, "hold_seconds must be a positive number"),
        ({"unavailable_cut_factor": 1.0}, "unavailable_cut_factor must be greater than 0 and less than 1"),
        ({"throttled_cut_factor": 0.0}, "throttled_cut_factor must be greater than 0 and less than 1"),
        ({"raise_factor": 1.0}, "raise_factor must be greater than 1"),
    ],
)
def test_policy_rejects_invalid_values(arguments: dict, message: str) -> None:
    values = {"target_rate": 2000, "pool_size": 10, "hold_seconds": 900} | arguments
    with pytest.raises(ValueError, match=message):
        RampPolicy(**values)


def test_window_rejects_invalid_counts() -> None:
    with pytest.raises(ValueError, match="a window must be longer than 0 seconds"):
        WindowCounts(seconds=0, requests=1, throttled_429=0, unavailable_503=0)
    with pytest.raises(ValueError, match="requests must not be negative"):
        WindowCounts(seconds=60, requests=-1, throttled_429=0, unavailable_503=0)
