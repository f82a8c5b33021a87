"""Settings of the alarms and the ramp controller: defaults, string forms, overrides and rejections."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stacks.config import ConfigError, load_settings

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def default_context() -> dict:
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"]


def test_defaults(default_context: dict) -> None:
    region = load_settings(default_context).for_region("us-east-2")
    assert region.ramp_controller_enabled is True
    assert region.ramp_controller_schedule == "rate(1 minute)"
    assert region.ramp_hold_minutes == 15
    assert region.ramp_target_requests_per_minute == 300
    assert region.alarm_dead_letter_messages == 0
    assert region.alarm_worker_errors == 0
    assert region.alarm_worker_throttles == 0


def test_command_line_strings_and_overrides(default_context: dict) -> None:
    # GIVEN values as `cdk synth -c key=value` passes them, and a per-region override
    context = default_context | {
        "ramp_controller_enabled": "false",
        "ramp_hold_minutes": "5",
        "ramp_controller_schedule": "rate(5 minutes)",
        "region_overrides": {"eu-central-1": {"ramp_target_requests_per_minute": 2000, "ramp_controller_enabled": True}},
    }
    settings = load_settings(context)

    # THEN the strings are parsed and the override wins in its region only
    assert settings.for_region("us-east-1").ramp_controller_enabled is False
    assert settings.for_region("us-east-1").ramp_hold_minutes == 5
    assert settings.for_region("us-east-1").ramp_controller_schedule == "rate(5 minutes)"
    assert settings.for_region("eu-central-1").ramp_controller_enabled is True
    assert settings.for_region("eu-central-1").ramp_target_requests_per_minute == 2000
    assert settings.for_region("us-east-1").ramp_target_requests_per_minute == 300


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("ramp_controller_enabled", "sometimes", "must be true or false"),
        ("ramp_controller_schedule", "rate(1 minutes)", "must be a schedule such as rate(1 minute) or rate(5 minutes)"),
        ("ramp_controller_schedule", "rate(90 minutes)", "from 1 to 60 minutes"),
        ("ramp_controller_schedule", "cron(0/5 * * * ? *)", "must be a schedule such as rate(1 minute)"),
        ("ramp_hold_minutes", 0, "must be a whole number from 1 to 1440"),
        ("ramp_target_requests_per_minute", 0, "must be a whole number from 1 to 1000000"),
        ("ramp_target_requests_per_minute", 12.5, "must be a whole number from 1 to 1000000"),
        ("alarm_dead_letter_messages", -1, "must be a whole number from 0 to 1000000"),
        ("alarm_worker_errors", "many", "must be a whole number from 0 to 1000000"),
        ("alarm_worker_throttles", -5, "must be a whole number from 0 to 1000000"),
    ],
)
def test_invalid_value_names_key_value_and_allowed(default_context: dict, key: str, value: object, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(default_context | {key: value})
    (problem,) = raised.value.problems
    assert problem.startswith(f"{key}={json.dumps(value)} is invalid: ")
    assert expected in problem


def test_invalid_override_names_region(default_context: dict) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(default_context | {"region_overrides": {"us-west-2": {"ramp_hold_minutes": 2000}}})
    assert raised.value.problems == [
        "region_overrides.us-west-2.ramp_hold_minutes=2000 is invalid: must be a whole number from 1 to 1440"
    ]
