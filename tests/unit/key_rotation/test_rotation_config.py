"""RotationConfig.from_environment: defaults, validation and the messages that name each bad variable."""

from __future__ import annotations

import pytest

from key_rotation.config import (
    DEFAULT_KEY_SESSION_SECONDS,
    DEFAULT_MIN_KEY_VALIDITY_SECONDS,
    KeyCheckMode,
    RotationConfig,
    RotationConfigError,
)

ROLE_ARN = "arn:aws:iam::123456789012:role/key-issuer"
BASE_URL = "https://bedrock-mantle.us-east-1.api.aws/openai/v1"


def minimal_environment(**overrides: str) -> dict[str, str]:
    environment = {"KEY_ISSUER_ROLE_ARN": ROLE_ARN, "MANTLE_BASE_URL": BASE_URL}
    environment.update(overrides)
    return environment


def test_config_defaults_apply():
    # GIVEN only the two variables without defaults
    environment = minimal_environment()

    # WHEN the settings are parsed
    config = RotationConfig.from_environment(environment)

    # THEN every other setting has its documented default
    assert config.key_issuer_role_arn == ROLE_ARN
    assert config.mantle_base_url == BASE_URL
    assert config.key_session_seconds == DEFAULT_KEY_SESSION_SECONDS == 3600
    assert config.min_key_validity_seconds == DEFAULT_MIN_KEY_VALIDITY_SECONDS == 1800
    assert config.key_check_mode is KeyCheckMode.MANTLE
    assert config.function_name == "key-rotation"


def test_config_reads_every_variable():
    # GIVEN every variable set to a non-default value, with a trailing slash on the URL
    environment = minimal_environment(
        MANTLE_BASE_URL="http://127.0.0.1:8765/openai/v1/",
        KEY_SESSION_SECONDS="900",
        MIN_KEY_VALIDITY_SECONDS="600",
        TEST_SECRET_MODE="FORMAT",
        AWS_LAMBDA_FUNCTION_NAME="gemma-batch-rotation",
    )

    # WHEN the settings are parsed
    config = RotationConfig.from_environment(environment)

    # THEN each value is used, the URL without its trailing slash and the mode case-insensitively
    assert config.mantle_base_url == "http://127.0.0.1:8765/openai/v1"
    assert config.key_session_seconds == 900
    assert config.min_key_validity_seconds == 600
    assert config.key_check_mode is KeyCheckMode.FORMAT
    assert config.function_name == "gemma-batch-rotation"


def test_config_format_mode_needs_no_url():
    # GIVEN format mode without MANTLE_BASE_URL
    environment = {"KEY_ISSUER_ROLE_ARN": ROLE_ARN, "TEST_SECRET_MODE": "format"}

    # WHEN the settings are parsed
    config = RotationConfig.from_environment(environment)

    # THEN no URL is required
    assert config.mantle_base_url is None
    assert config.key_check_mode is KeyCheckMode.FORMAT


@pytest.mark.parametrize(
    ("overrides", "expected_fragment"),
    [
        ({"KEY_ISSUER_ROLE_ARN": ""}, "KEY_ISSUER_ROLE_ARN is ''"),
        ({"KEY_ISSUER_ROLE_ARN": "key-issuer"}, "KEY_ISSUER_ROLE_ARN is 'key-issuer'"),
        ({"KEY_SESSION_SECONDS": "an hour"}, "KEY_SESSION_SECONDS is 'an hour'"),
        ({"KEY_SESSION_SECONDS": "600"}, "KEY_SESSION_SECONDS is 600; expected seconds from 900 to 43200"),
        ({"MIN_KEY_VALIDITY_SECONDS": "-1"}, "MIN_KEY_VALIDITY_SECONDS is -1"),
        ({"MIN_KEY_VALIDITY_SECONDS": "3600"}, "MIN_KEY_VALIDITY_SECONDS (3600) must be less than KEY_SESSION_SECONDS (3600)"),
        ({"TEST_SECRET_MODE": "live"}, "TEST_SECRET_MODE is 'live'"),
        ({"MANTLE_BASE_URL": ""}, "MANTLE_BASE_URL is missing"),
        ({"MANTLE_BASE_URL": "bedrock-mantle.us-east-1.api.aws"}, "MANTLE_BASE_URL is 'bedrock-mantle.us-east-1.api.aws'"),
    ],
)
def test_config_rejects_bad_variable(overrides, expected_fragment):
    # GIVEN one invalid variable
    environment = minimal_environment(**overrides)

    # WHEN the settings are parsed
    with pytest.raises(RotationConfigError) as raised:
        RotationConfig.from_environment(environment)

    # THEN the error names that variable and its value, and nothing else is reported
    assert len(raised.value.problems) == 1
    assert expected_fragment in raised.value.problems[0]


def test_config_reports_all_problems_at_once():
    # GIVEN three invalid variables
    environment = {"KEY_SESSION_SECONDS": "x", "TEST_SECRET_MODE": "live"}

    # WHEN the settings are parsed
    with pytest.raises(RotationConfigError) as raised:
        RotationConfig.from_environment(environment)

    # THEN one error lists each of them
    message = str(raised.value)
    assert "KEY_ISSUER_ROLE_ARN" in message
    assert "KEY_SESSION_SECONDS" in message
    assert "TEST_SECRET_MODE" in message
    assert len(raised.value.problems) == 3
