"""Settings of the job contract: reasoning effort per model, tier escalation and the input bucket."""

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
    region = load_settings(default_context).for_region("us-west-2")

    assert region.reasoning_effort_by_model == (("google.gemma-4-e2b", "high"),)
    assert region.allow_standard_tier_escalation is False
    assert region.input_bucket_name == ""


def test_command_line_strings_and_overrides(default_context: dict) -> None:
    # GIVEN values as `cdk synth -c key=value` passes them, and a per-region override
    context = default_context | {
        "reasoning_effort_by_model": '{"google.gemma-4-31b": "low", "google.gemma-4-e2b": "medium"}',
        "allow_standard_tier_escalation": "true",
        "region_overrides": {"eu-central-1": {"input_bucket_name": "team-images.eu", "reasoning_effort_by_model": {}}},
    }

    settings = load_settings(context)

    # THEN each is parsed, and the override applies to its region only
    us_east = settings.for_region("us-east-1")
    assert us_east.reasoning_effort_by_model == (("google.gemma-4-31b", "low"), ("google.gemma-4-e2b", "medium"))
    assert us_east.allow_standard_tier_escalation is True
    assert us_east.input_bucket_name == ""
    eu = settings.for_region("eu-central-1")
    assert eu.input_bucket_name == "team-images.eu"
    assert eu.reasoning_effort_by_model == ()


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("reasoning_effort_by_model", {"google.gemma-4-e2b": "max"}, "sets google.gemma-4-e2b to 'max'; use one of low, medium, high"),
        ("reasoning_effort_by_model", {"gpt-4o": "high"}, "names model 'gpt-4o'; use model ids from google.gemma-4-31b"),
        ("reasoning_effort_by_model", "high", "must be an object that maps model ids to low, medium, high"),
        ("reasoning_effort_by_model", ["google.gemma-4-e2b"], "must be an object that maps model ids"),
        ("allow_standard_tier_escalation", "yes", "allow_standard_tier_escalation=\"yes\" is invalid: must be true or false"),
        ("input_bucket_name", "Images_Bucket", "must be an S3 bucket name (3 to 63 lowercase letters"),
        ("input_bucket_name", "ab", "must be an S3 bucket name"),
        ("input_bucket_name", "bucket..name", "must be an S3 bucket name"),
        ("input_bucket_name", "s3://images", "must be an S3 bucket name"),
    ],
)
def test_invalid_value_is_rejected(default_context: dict, key: str, value: object, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(default_context | {key: value})

    (problem,) = raised.value.problems
    assert problem.startswith(f"{key}=")
    assert expected in problem


def test_invalid_override_names_region(default_context: dict) -> None:
    context = default_context | {"region_overrides": {"us-east-2": {"allow_standard_tier_escalation": 1}}}

    with pytest.raises(ConfigError) as raised:
        load_settings(context)

    assert "region_overrides.us-east-2.allow_standard_tier_escalation=1 is invalid: must be true or false" in str(raised.value)
