"""The nag_packs and pipeline settings: defaults, the command-line forms, default waves and every rejection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stacks.config import ConfigError, load_settings

REPO_ROOT = Path(__file__).resolve().parents[3]
ACCOUNT = "123456789012"
CONNECTION_ARN = f"arn:aws:codeconnections:us-east-1:{ACCOUNT}:connection/0a1b2c3d-4e5f-6789-abcd-ef0123456789"


@pytest.fixture(scope="module")
def default_context() -> dict:
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"]


def _pipeline(**values: object) -> dict:
    return {"enabled": True, "connection_arn": CONNECTION_ARN, "repository": "example-org/gemma-batch", **values}


def _problems(context: dict) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_settings(context)
    return raised.value.problems


def test_defaults_add_no_pack_and_no_pipeline(default_context: dict) -> None:
    settings = load_settings(default_context)
    assert settings.nag_packs == ()
    assert settings.pipeline is None


def test_nag_packs_from_list_or_string(default_context: dict) -> None:
    assert load_settings(default_context | {"nag_packs": ["HIPAASecurity"]}).nag_packs == ("HIPAASecurity",)
    from_string = load_settings(default_context | {"nag_packs": "NIST80053R5,HIPAASecurity"})
    assert from_string.nag_packs == ("NIST80053R5", "HIPAASecurity")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("PCIDSS321", "contains 'PCIDSS321'; the extra packs are NIST80053R5, HIPAASecurity"),
        ("AwsSolutions", "(AwsSolutions, Serverless and GemmaBatch always run)"),
        ("NIST80053R5,NIST80053R5", "lists a pack twice"),
        (7, "must be a list of extra cdk-nag packs"),
    ],
)
def test_invalid_nag_packs_rejected(default_context: dict, value: object, expected: str) -> None:
    (problem,) = _problems(default_context | {"nag_packs": value})
    assert problem.startswith("nag_packs=")
    assert expected in problem


def test_pipeline_default_waves_put_canary_first(default_context: dict) -> None:
    # GIVEN the pipeline on with no waves, and an explicit account
    settings = load_settings(default_context | {"account": ACCOUNT, "pipeline": _pipeline()})
    pipeline = settings.pipeline
    # THEN the first region is the canary, every other region follows in one wave, and the pipeline lives in the canary's region
    assert pipeline is not None
    assert pipeline.waves == (("us-east-1",), ("us-east-2", "us-west-2", "eu-central-1"))
    assert pipeline.region == "us-east-1"
    assert pipeline.branch == "main"
    assert pipeline.bake_minutes == 30
    assert pipeline.manual_approval is True


def test_pipeline_from_command_line_string(default_context: dict) -> None:
    # GIVEN the pipeline as `-c pipeline='{...}'` passes it, with waves in the ";" and "," form
    value = json.dumps(_pipeline(waves="us-west-2;us-east-1,us-east-2;eu-central-1", region="eu-west-1"))
    pipeline = load_settings(default_context | {"account": ACCOUNT, "pipeline": value}).pipeline
    assert pipeline is not None
    assert pipeline.waves == (("us-west-2",), ("us-east-1", "us-east-2"), ("eu-central-1",))
    assert pipeline.region == "eu-west-1"


def test_disabled_pipeline_is_not_checked(default_context: dict) -> None:
    settings = load_settings(default_context | {"pipeline": {"enabled": False, "connection_arn": "not-an-arn"}})
    assert settings.pipeline is None


def test_pipeline_needs_explicit_account(default_context: dict) -> None:
    # WHEN only CDK_DEFAULT_ACCOUNT names an account
    with pytest.raises(ConfigError) as raised:
        load_settings(default_context | {"pipeline": _pipeline()}, default_account=ACCOUNT)
    # THEN the pipeline is rejected with the fix
    (problem,) = raised.value.problems
    assert problem.startswith("pipeline.enabled=true needs an explicit account: set account to the 12-digit id")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"connection_arn": "arn:aws:iam::123456789012:role/x"}, "connection_arn must be the ARN of an AWS CodeConnections"),
        ({"repository": "gemma-batch"}, "repository must name the source repository as owner/name"),
        ({"branch": "my branch"}, "branch must be a branch name without spaces"),
        ({"region": "mars-1"}, "region must be an AWS region such as us-east-1"),
        ({"waves": [["us-east-1"], []]}, "waves must be a list of non-empty region lists"),
        ({"bake_minutes": 0}, "bake_minutes must be a whole number from 1 to 480"),
        ({"manual_approval": "sometimes"}, "manual_approval must be true or false"),
        ({"enabled": "yes"}, "enabled must be true or false"),
        ({"bake_minute": 10}, "has unknown key 'bake_minute'; did you mean 'bake_minutes'?"),
    ],
)
def test_invalid_pipeline_value_rejected(default_context: dict, values: dict, expected: str) -> None:
    (problem,) = _problems(default_context | {"account": ACCOUNT, "pipeline": _pipeline(**values)})
    assert problem.startswith("pipeline=")
    assert expected in problem


def test_pipeline_not_an_object_rejected(default_context: dict) -> None:
    (problem,) = _problems(default_context | {"pipeline": "[1, 2]"})
    assert "must be an object such as" in problem


@pytest.mark.parametrize(
    ("waves", "expected"),
    [
        ([["us-east-1"], ["us-east-2", "us-west-2", "eu-central-1", "ap-south-1"]],
         ["pipeline.waves names ap-south-1, which is not in regions; add it to regions or remove it"]),
        ([["us-east-1"], ["us-east-1", "us-east-2", "us-west-2", "eu-central-1"]],
         ["pipeline.waves lists us-east-1 more than once; deploy each region in one wave"]),
        ([["us-east-1"], ["us-east-2", "us-west-2"]],
         ["pipeline.waves leaves out eu-central-1; add it to a wave or remove it from regions"]),
    ],
)
def test_waves_must_cover_regions_once(default_context: dict, waves: list, expected: list[str]) -> None:
    assert _problems(default_context | {"account": ACCOUNT, "pipeline": _pipeline(waves=waves)}) == expected
