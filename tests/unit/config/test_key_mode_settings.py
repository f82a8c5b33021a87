"""The key mode settings and the key timing derived from them: defaults, overrides, rejections and the arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stacks.config import ConfigError, load_settings
from stacks.key_timing import (
    KEY_SESSION_SECONDS,
    MIN_VERSION_INTERVAL_SECONDS,
    WORKER_CACHE_SECONDS,
    KeyTiming,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
DAY = 86400


@pytest.fixture(scope="module")
def default_context() -> dict:
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"]


def problems_of(context: dict) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_settings(context)
    return raised.value.problems


def test_long_term_mode_is_off_by_default(default_context: dict) -> None:
    region = load_settings(default_context).for_region("us-east-1")
    assert region.long_term_api_key is False
    assert region.long_term_key_rotation_days == 30


def test_long_term_mode_per_region(default_context: dict) -> None:
    # GIVEN long-term mode for one region, given as command-line strings
    context = {
        **default_context,
        "region_overrides": json.dumps({"us-west-2": {"long_term_api_key": "true", "long_term_key_rotation_days": "7"}}),
    }

    settings = load_settings(context)

    # THEN only that region uses it
    assert settings.for_region("us-west-2").long_term_api_key is True
    assert settings.for_region("us-west-2").long_term_key_rotation_days == 7
    assert settings.for_region("us-east-1").long_term_api_key is False


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("long_term_api_key", "yes", 'long_term_api_key="yes" is invalid: must be true or false'),
        ("long_term_api_key", 1, "long_term_api_key=1 is invalid: must be true or false"),
        ("long_term_key_rotation_days", 0, "long_term_key_rotation_days=0 is invalid: must be a whole number from 1 to 365"),
        ("long_term_key_rotation_days", 366, "long_term_key_rotation_days=366 is invalid: must be a whole number from 1 to 365"),
        ("long_term_key_rotation_days", "monthly", 'long_term_key_rotation_days="monthly" is invalid'),
    ],
)
def test_invalid_key_mode_values_rejected(default_context: dict, key: str, value: object, expected: str) -> None:
    problems = problems_of({**default_context, key: value})
    assert len(problems) == 1
    assert problems[0].startswith(expected)


@pytest.mark.parametrize("interval_minutes", range(10, 31))
def test_short_term_thresholds_are_ordered(interval_minutes: int) -> None:
    timing = KeyTiming.short_term_mode(interval_minutes)
    healthy_minimum = KEY_SESSION_SECONDS - interval_minutes * 60
    # A fresh key passes testSecret, and a key made current outlives the next scheduled rotation.
    assert interval_minutes * 60 <= timing.min_pending_validity <= KEY_SESSION_SECONDS - 900
    # Workers ask for a rotation only after a scheduled one is overdue, and the alarm fires later still,
    # while the key is still valid for longer than the largest refresh margin (900 s).
    assert healthy_minimum > timing.worker_trigger > timing.alarm_threshold > 900
    # The trigger window never allows more than one workers' rotation per 10 minutes.
    assert timing.trigger_window >= MIN_VERSION_INTERVAL_SECONDS


def test_default_worst_version_rate() -> None:
    timing = KeyTiming.short_term_mode(20)
    # 72 scheduled rotations and 6 backstop rotations a day; workers add at most 72 more.
    assert timing.versions_per_day(worst_case=False) == 78
    assert timing.versions_per_day(worst_case=True) == 150
    assert DAY / timing.versions_per_day(worst_case=True) > 9 * 60


def test_long_term_timing() -> None:
    timing = KeyTiming.long_term_mode(30)
    assert timing.long_term_key_age_days == 90
    assert timing.min_pending_validity == 60 * DAY
    assert timing.backstop_interval == 30 * DAY
    assert timing.alarm_threshold == 59 * DAY
    assert timing.alarm_threshold < timing.worker_trigger < timing.min_pending_validity
    # Workers re-read the secret long before the rotation after next deletes the previous key.
    assert WORKER_CACHE_SECONDS * 3 < timing.rotation_interval
