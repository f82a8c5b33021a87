"""The rotation function's abandon threshold stays below the life of a freshly minted key."""

from __future__ import annotations

import pytest

from stacks.api_key import KEY_SESSION_SECONDS, min_key_validity_seconds


@pytest.mark.parametrize("interval_minutes", range(10, 31))
def test_fresh_key_always_passes(interval_minutes: int) -> None:
    threshold = min_key_validity_seconds(interval_minutes)
    assert threshold <= KEY_SESSION_SECONDS - 900
    # A key made current outlives the next scheduled rotation.
    assert threshold >= interval_minutes * 60


def test_threshold_is_two_intervals_when_it_fits() -> None:
    assert min_key_validity_seconds(20) == 2400
    assert min_key_validity_seconds(30) == 2700
