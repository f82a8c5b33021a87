"""Bad configuration values: each one is reported with its key and value, never accepted or crashed on."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from stacks.config import ConfigError, load_settings

REPO_ROOT = Path(__file__).resolve().parents[3]
CDK = REPO_ROOT / "node_modules" / ".bin" / "cdk"
DEEP_JSON = "[" * 5000 + "]" * 5000


@pytest.fixture(scope="module")
def default_context() -> dict:
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"]


def _problems(context: dict) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_settings(context)
    return raised.value.problems


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        # JSON true equals 1 in Python, which made log_retention_days=true a one-day retention.
        ("log_retention_days", True, "log_retention_days=true is invalid: must be one of: 1, 3, 5"),
        ("log_retention_days", 30.0, "log_retention_days=30.0 is invalid: must be one of"),
        ("alarm_period_seconds", 300.0, "alarm_period_seconds=300.0 is invalid: must be one of: 60, 300"),
        ("log_retention_days", "²", 'log_retention_days="\\u00b2" is invalid: must be one of'),
        # "$" also matched before a trailing line break, and "\d" matched full-width digits.
        ("account", "123456789012\n", 'account="123456789012\\n" is invalid: must be a 12-digit AWS account id'),
        ("account", "１２３４５６７８９０１２", "account=\"\\uff11\\uff12\\uff13"),
        ("alarm_email", "ops@example.com\n", 'alarm_email="ops@example.com\\n" is invalid: must be an e-mail'),
        ("alarm_email", "o\x00ps@example.com", "alarm_email=\"o\\u0000ps@example.com\" is invalid"),
        (
            "operator_trusted_principals",
            ["arn:aws:iam::123456789012:root\n"],
            "contains 'arn:aws:iam::123456789012:root\\n', which is not an IAM principal ARN",
        ),
        (
            "operator_trusted_principals",
            ["arn:aws:iam::123456789012:role/ópérateur"],
            "which is not an IAM principal ARN",
        ),
    ],
)
def test_lookalike_value_is_rejected(default_context, key, value, expected):
    # GIVEN a value that equals or resembles an allowed one WHEN the settings load THEN it is rejected by name
    (problem,) = _problems(default_context | {key: value})
    assert expected in problem


@pytest.mark.parametrize("key", ["worker_pool_size", "log_retention_days", "alarm_429_rate_percent"])
def test_huge_number_rejected_briefly(default_context, key):
    # GIVEN a value of 5000 digits, past the 4300 digits that Python's int() converts
    (problem,) = _problems(default_context | {key: "9" * 5000})

    # THEN the problem quotes the start of the value and states the allowed range, not a Python setting
    assert problem.startswith(f'{key}="9999')
    assert "set_int_max_str_digits" not in problem
    assert "must be" in problem
    assert len(problem) < 400


def test_huge_python_int_is_rejected(default_context):
    # GIVEN a Python int too long for json.dumps, as a program calling load_settings could pass
    (problem,) = _problems(default_context | {"worker_pool_size": 10**5000})
    assert problem.startswith("worker_pool_size=<int too long to quote> is invalid")
    assert "must be a whole number from 2 to 1000" in problem


def test_deep_overrides_rejected(default_context):
    # GIVEN region_overrides as a string of arrays nested 5000 deep, as -c passes it
    (problem,) = _problems(default_context | {"region_overrides": DEEP_JSON})

    # THEN it is one problem that quotes the start of the value
    assert problem.startswith('region_overrides="[[[[')
    assert "is invalid: must be a JSON object such as" in problem


def test_left_out_region_override_checked(default_context):
    # GIVEN an invalid override for us-west-2 while only us-east-1 is synthesized
    context = default_context | {
        "regions": ["us-east-1"],
        "region_overrides": {"us-west-2": {"worker_pool_size": 1}},
    }

    # THEN the invalid override is reported now, not when us-west-2 is synthesized later
    assert _problems(context) == [
        "region_overrides.us-west-2.worker_pool_size=1 is invalid: must be a whole number from 2 to 1000"
    ]


def test_left_out_region_valid_override_loads(default_context):
    # GIVEN a valid override for a region that this synth leaves out
    context = default_context | {
        "regions": ["us-east-1"],
        "region_overrides": {"us-west-2": {"worker_pool_size": 50}},
    }

    # THEN the settings load with only the synthesized region
    settings = load_settings(context)
    assert settings.regions == ("us-east-1",)
    assert settings.for_region("us-east-1").worker_pool_size == 10


def test_synth_reports_deep_overrides(tmp_path):
    # WHEN the real CDK CLI synthesizes with region_overrides nested 5000 deep
    completed = subprocess.run(
        [str(CDK), "synth", "--quiet", "--output", str(tmp_path / "out"), "--context", "bundling=false",
         "--context", f"region_overrides={DEEP_JSON}"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )

    # THEN synth stops with the configuration error and no Python traceback
    assert completed.returncode != 0
    assert "Invalid configuration (1 problem)" in completed.stderr
    assert 'region_overrides="[[[[' in completed.stderr
    assert "Traceback" not in completed.stderr
    assert "RecursionError" not in completed.stderr


@pytest.mark.parametrize(
    ("period", "periods", "expected_fix"),
    [
        (900, 97, "set alarm_evaluation_periods to at most 96 or choose a longer alarm_period_seconds"),
        (3600, 169, "set alarm_evaluation_periods to at most 168"),
    ],
)
def test_alarm_window_beyond_cloudwatch_limit(default_context, period, periods, expected_fix):
    # GIVEN an alarm period and evaluation periods that are each allowed, but not together
    context = default_context | {"alarm_period_seconds": period, "alarm_evaluation_periods": periods}

    # THEN one problem names both keys, the regions and the largest allowed number of periods
    (problem,) = _problems(context)
    assert problem.startswith(
        f"alarm_evaluation_periods={periods} with alarm_period_seconds={period} "
        "(in us-east-1, us-east-2, us-west-2, eu-central-1) is invalid"
    )
    assert problem.endswith(expected_fix)


def test_alarm_window_at_cloudwatch_limit_loads(default_context):
    # GIVEN the longest windows CloudWatch accepts: one day of 300 s periods and seven days of 3600 s periods
    for period, periods in ((300, 288), (900, 96), (3600, 168)):
        settings = load_settings(default_context | {"alarm_period_seconds": period, "alarm_evaluation_periods": periods})

        # THEN the settings load
        assert settings.for_region("us-east-1").alarm_evaluation_periods == periods


def test_alarm_window_checked_per_region(default_context):
    # GIVEN a window beyond the limit in one region's overrides only
    context = default_context | {
        "region_overrides": {"us-west-2": {"alarm_period_seconds": 900, "alarm_evaluation_periods": 100}}
    }

    # THEN the problem names that region alone
    (problem,) = _problems(context)
    assert "(in us-west-2) is invalid" in problem


PIPELINE = {
    "enabled": True,
    "connection_arn": "arn:aws:codeconnections:us-east-2:123456789012:connection/0a1b2c3d-4e5f-6789-abcd-ef0123456789",
    "repository": "example-org/gemma-batch",
}


def test_valid_pipeline_loads(default_context):
    # GIVEN a pipeline with a connection and a repository THEN the settings load with it
    settings = load_settings(default_context | {"account": "123456789012", "pipeline": PIPELINE})
    assert settings.pipeline is not None
    assert settings.pipeline.repository == "example-org/gemma-batch"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("connection_arn", PIPELINE["connection_arn"] + "\n", "connection_arn must be the ARN"),
        ("repository", "example-org/gemma-batch\n", "repository must name the source repository"),
        ("region", "us-east-2\n", "region must be an AWS region"),
        ("region", "us-east-٢", "region must be an AWS region"),
    ],
)
def test_pipeline_lookalike_value_rejected(default_context, field, value, expected):
    # GIVEN a pipeline value with a trailing line break or a non-ASCII digit
    pipeline = PIPELINE | {field: value}

    # THEN the pipeline is rejected naming the field
    (problem,) = _problems(default_context | {"account": "123456789012", "pipeline": pipeline})
    assert problem.startswith("pipeline=")
    assert expected in problem


def test_deep_pipeline_rejected(default_context):
    # GIVEN the pipeline as a -c string whose waves nest 5000 deep
    pipeline = '{"enabled": true, "waves": ' + DEEP_JSON + "}"

    # THEN it is one problem, not a RecursionError
    (problem,) = _problems(default_context | {"account": "123456789012", "pipeline": pipeline})
    assert problem.endswith("is invalid: it nests JSON too deeply to parse")
