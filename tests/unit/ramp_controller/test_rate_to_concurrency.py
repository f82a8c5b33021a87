"""The rate-to-concurrency mapping: proportional to the pool, rounded up, never below 2 or above the pool."""

from __future__ import annotations

import pytest

from ramp_controller.policy import MIN_CONCURRENCY, RampPolicy, concurrency_for_rate


@pytest.fixture()
def policy() -> RampPolicy:
    return RampPolicy(target_rate=2000, pool_size=10, hold_seconds=900)


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        (2000, 10),
        (1000, 5),
        (500, 3),  # 2.5 rounds up
        (750, 4),  # 3.75 rounds up
        (1125, 6),  # 5.625 rounds up
        (1687.5, 9),  # 8.4375 rounds up
    ],
)
def test_concurrency_is_pool_share_rounded_up(policy: RampPolicy, rate: float, expected: int) -> None:
    assert concurrency_for_rate(policy, rate) == expected


def test_concurrency_never_below_two(policy: RampPolicy) -> None:
    for rate in (0.0, 1.0, 100.0, 199.99, 200.0):
        assert concurrency_for_rate(policy, rate) == MIN_CONCURRENCY


def test_concurrency_never_above_pool(policy: RampPolicy) -> None:
    for rate in (2000.01, 3000.0, 1e9):
        assert concurrency_for_rate(policy, rate) == 10


def test_exact_share_is_not_rounded_up() -> None:
    # GIVEN rates whose pool share is a whole number that floating point cannot hold exactly
    policy = RampPolicy(target_rate=300, pool_size=30, hold_seconds=900)

    # THEN the whole number is the concurrency, not the next one
    assert concurrency_for_rate(policy, 70) == 7
    assert concurrency_for_rate(policy, 30 * 0.1 * 10) == 3


def test_pool_of_two_always_maps_to_two() -> None:
    policy = RampPolicy(target_rate=2000, pool_size=2, hold_seconds=900)
    assert {concurrency_for_rate(policy, rate) for rate in (1, 500, 1000, 2000, 4000)} == {2}


def test_minimum_rate_maps_to_two(policy: RampPolicy) -> None:
    assert concurrency_for_rate(policy, policy.minimum_rate) == MIN_CONCURRENCY
    # One request per minute more needs a third slot.
    assert concurrency_for_rate(policy, policy.minimum_rate + 1) == 3


def test_worked_example_rates_map_within_pool() -> None:
    policy = RampPolicy(target_rate=2000, pool_size=100, hold_seconds=900)
    mapped = [concurrency_for_rate(policy, rate) for rate in (2000, 1000, 500, 750, 1125, 1687.5)]
    assert mapped == [100, 50, 25, 38, 57, 85]
