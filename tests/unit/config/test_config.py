"""Settings: defaults, command-line string forms, per-region overrides and every rejection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stacks.config import SUPPORTED_REGIONS, ConfigError, load_settings

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def default_context() -> dict:
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"]


def _problems(context: dict) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_settings(context)
    return raised.value.problems


def test_defaults_cover_four_launch_regions(default_context: dict) -> None:
    settings = load_settings(default_context)
    assert settings.regions == SUPPORTED_REGIONS
    assert settings.account is None
    region = settings.for_region("eu-central-1")
    assert region.model_id == "google.gemma-4-26b-a4b"
    assert region.mantle_base_url == "https://bedrock-mantle.eu-central-1.api.aws/openai/v1"
    assert region.service_tier == "flex"
    assert region.queue_visibility_timeout_seconds == 6 * 300 + 1


def test_settings_are_frozen(default_context: dict) -> None:
    region = load_settings(default_context).for_region("us-east-1")
    with pytest.raises(AttributeError):
        region.worker_pool_size = 3  # type: ignore[misc]


def test_command_line_strings_are_parsed(default_context: dict) -> None:
    # GIVEN values as `cdk synth -c key=value` passes them: strings
    context = default_context | {
        "regions": "us-west-2,eu-central-1",
        "worker_pool_size": "50",
        "alarm_429_rate_percent": "2.5",
        "bundling": "false",
        "region_overrides": '{"eu-central-1": {"worker_pool_size": 4}}',
    }
    settings = load_settings(context)
    assert settings.regions == ("us-west-2", "eu-central-1")
    assert settings.bundling is False
    assert settings.for_region("us-west-2").worker_pool_size == 50
    assert settings.for_region("us-west-2").alarm_429_rate_percent == 2.5
    assert settings.for_region("eu-central-1").worker_pool_size == 4


def test_account_from_config_or_environment(default_context: dict) -> None:
    assert load_settings(default_context, default_account="111122223333").account == "111122223333"
    assert load_settings(default_context | {"account": "444455556666"}, "111122223333").account == "444455556666"
    assert load_settings(default_context, default_account=None).account is None


def test_unsupported_region_rejected(default_context: dict) -> None:
    problems = _problems(default_context | {"regions": ["us-east-1", "ap-south-1"]})
    assert problems == [
        'regions=["us-east-1", "ap-south-1"] is invalid: contains ap-south-1, where Gemma 4 is not offered; '
        "supported regions: us-east-1, us-east-2, us-west-2, eu-central-1"
    ]


def test_pool_size_one_rejected(default_context: dict) -> None:
    assert _problems(default_context | {"worker_pool_size": 1}) == [
        "worker_pool_size=1 is invalid: must be a whole number from 2 to 1000"
    ]


def test_unknown_model_rejected(default_context: dict) -> None:
    assert _problems(default_context | {"model_id": "google.gemma-3-27b"}) == [
        'model_id="google.gemma-3-27b" is invalid: must be one of: google.gemma-4-31b, google.gemma-4-26b-a4b, '
        "google.gemma-4-e2b"
    ]


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("mantle_base_path", "/openai", "must be one of: /openai/v1, /v1"),
        ("service_tier", "cheap", "must be one of: flex, default, priority"),
        ("batch_size", 11, "must be a whole number from 1 to 10"),
        ("function_timeout_seconds", 901, "must be a whole number from 30 to 900"),
        ("max_receive_count", 4, "must be a whole number from 5 to 1000"),
        ("log_retention_days", 2, "must be one of: 1, 3, 5, 7"),
        ("alarm_429_rate_percent", 0, "must be a number greater than 0 and at most 100"),
        ("alarm_email", "ops-at-example", "must be an e-mail address"),
        ("operator_trusted_principals", ["arn:aws:iam::12:root"], "is not an IAM principal ARN"),
        ("account", "12345", "must be a 12-digit AWS account id"),
        ("bundling", "maybe", "must be true or false"),
        ("key_rotation_interval_minutes", 45, "must be a whole number from 10 to 30"),
        ("worker_pool_size", True, "must be a whole number from 2 to 1000"),
    ],
)
def test_invalid_value_names_key_value_and_allowed(default_context: dict, key: str, value: object, expected: str) -> None:
    (problem,) = _problems(default_context | {key: value})
    assert problem.startswith(f"{key}={json.dumps(value)} is invalid: ")
    assert expected in problem


def test_all_problems_reported_together(default_context: dict) -> None:
    problems = _problems(default_context | {"worker_pool_size": 1, "model_id": "x", "batch_size": 0})
    assert len(problems) == 3


def test_misspelled_key_suggests_the_right_one(default_context: dict) -> None:
    assert _problems(default_context | {"worker_pol_size": 20}) == [
        "unknown key 'worker_pol_size'; did you mean 'worker_pool_size'?"
    ]


def test_cdk_feature_flags_are_not_reported(default_context: dict) -> None:
    load_settings(default_context | {"@aws-cdk/core:newStyleStackSynthesis": True, "aws-cdk:enableDiffNoFail": True})


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"ap-south-1": {"worker_pool_size": 4}}, "names region 'ap-south-1', where Gemma 4 is not offered"),
        ({"us-east-1": {"regions": ["us-east-1"]}}, "sets unknown key 'regions'; keys that can differ per region:"),
        ({"us-east-1": {"worker_pool_size": 1}}, "region_overrides.us-east-1.worker_pool_size=1 is invalid"),
        ({"us-east-1": 5}, "region_overrides.us-east-1 is invalid: must be an object"),
        ("{not json", "must be a JSON object such as"),
    ],
)
def test_invalid_overrides(default_context: dict, overrides: object, expected: str) -> None:
    (problem,) = _problems(default_context | {"region_overrides": overrides})
    assert expected in problem


def test_config_error_message_lists_problems(default_context: dict) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(default_context | {"worker_pool_size": 1})
    assert str(raised.value).startswith("Invalid configuration (1 problem); fix these in cdk.json or the -c options:")
