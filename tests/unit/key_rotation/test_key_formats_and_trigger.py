"""Long-term key documents, the key metrics' EMF output, the new rotation settings and the worker's rotation trigger."""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.stub import Stubber

from bedrock_key import ApiKeySecret, MalformedSecretError, key_metrics
from key_rotation.config import KeyMode, RotationConfig, RotationConfigError
from worker.key_cache import KeyCacheOptions, KeyCacheSettingsError
from worker.key_rotation_trigger import RotationTrigger, rotation_token

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:gemma-batch-api-key-AbCdEf"
NOW = datetime(2027, 6, 1, 12, 0, tzinfo=timezone.utc)


def long_term_document(**overrides: object) -> str:
    document = {
        "format_version": 1,
        "api_key": "ABSKQmVkcm9ja0FQSUtleS1leGFtcGxl",
        "expires_at": "2027-09-01T12:00:00Z",
        "issued_at": "2027-06-01T12:00:00Z",
        "issued_by": "gemma-batch-user",
        "credential_id": "ACCA0000000000000001",
    }
    document.update(overrides)
    return json.dumps(document)


def test_long_term_document_round_trip() -> None:
    secret = ApiKeySecret.from_json(long_term_document())
    assert secret.is_long_term
    assert secret.credential_id == "ACCA0000000000000001"
    assert ApiKeySecret.from_json(secret.to_json()) == secret
    # The key never appears in a repr
    assert "ABSK" not in repr(secret)


def test_short_term_document_has_no_credential_id() -> None:
    secret = ApiKeySecret(
        api_key="bedrock-api-key-eA==", expires_at=NOW, issued_at=NOW, issued_by="arn:aws:sts::1:assumed-role/r/s"
    )
    assert "credential_id" not in json.loads(secret.to_json())
    assert not secret.is_long_term


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"credential_id": ""}, "'credential_id'"),
        ({"credential_id": 7}, "'credential_id'"),
        ({"api_key": "two words"}, "'api_key'"),
        ({"api_key": ""}, "'api_key'"),
        ({"credential_id": None, "api_key": "ABSKnot-short-term"}, "'api_key'"),
    ],
)
def test_malformed_long_term_document_names_field(overrides: dict, field: str) -> None:
    with pytest.raises(MalformedSecretError) as raised:
        ApiKeySecret.from_json(long_term_document(**overrides))
    assert field in str(raised.value)
    assert "ABSK" not in str(raised.value)


def test_emf_document_names_units_and_dimension() -> None:
    stream = io.StringIO()
    key_metrics.write_metrics("GemmaBatch", {key_metrics.KEY_VALIDITY_SECONDS: 1234.0}, stream=stream)
    document = json.loads(stream.getvalue())
    assert document["ApiKeyValiditySeconds"] == 1234.0
    assert document["Service"] == "gemma-batch-key-rotation"
    assert document["_aws"]["CloudWatchMetrics"] == [
        {
            "Namespace": "GemmaBatch",
            "Dimensions": [["Service"]],
            "Metrics": [{"Name": "ApiKeyValiditySeconds", "Unit": "Seconds"}],
        }
    ]


def test_emf_rejects_unknown_metric() -> None:
    with pytest.raises(ValueError) as raised:
        key_metrics.emf_document("GemmaBatch", {"Typo": 1}, 0)
    assert "unknown key metric 'Typo'" in str(raised.value)


def test_long_term_config() -> None:
    config = RotationConfig.from_environment(
        {
            "KEY_MODE": "long_term",
            "LONG_TERM_KEY_USER_NAME": "GemmaBatch-us-east-1-User",
            "LONG_TERM_KEY_AGE_DAYS": "90",
            "MIN_KEY_VALIDITY_SECONDS": str(60 * 86400),
            "TEST_SECRET_MODE": "format",
            "METRICS_NAMESPACE": "GemmaBatch",
        }
    )
    assert config.key_mode is KeyMode.LONG_TERM
    assert config.key_issuer_role_arn == ""
    assert config.long_term_key_age_days == 90
    assert config.metrics_namespace == "GemmaBatch"


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"KEY_MODE": "forever"}, "KEY_MODE is 'forever'; expected one of 'short_term', 'long_term'"),
        ({"KEY_MODE": "long_term"}, "LONG_TERM_KEY_USER_NAME is ''"),
        (
            {"KEY_MODE": "long_term", "LONG_TERM_KEY_USER_NAME": "u", "LONG_TERM_KEY_AGE_DAYS": "0"},
            "LONG_TERM_KEY_AGE_DAYS is 0; expected days from 1 to 36600",
        ),
        (
            {"KEY_MODE": "long_term", "LONG_TERM_KEY_USER_NAME": "u", "LONG_TERM_KEY_AGE_DAYS": "10",
             "MIN_KEY_VALIDITY_SECONDS": "864000"},
            "MIN_KEY_VALIDITY_SECONDS (864000) must be less than LONG_TERM_KEY_AGE_DAYS (10)",
        ),
        ({"STALE_PENDING_SECONDS": "30"}, "STALE_PENDING_SECONDS is 30; expected seconds from 60 to 43200"),
    ],
)
def test_invalid_rotation_settings_rejected(environment: dict, expected: str) -> None:
    base = {"KEY_ISSUER_ROLE_ARN": "arn:aws:iam::123456789012:role/issuer", "TEST_SECRET_MODE": "format"}
    with pytest.raises(RotationConfigError) as raised:
        RotationConfig.from_environment({**base, **environment})
    assert expected in str(raised.value)


@pytest.mark.parametrize("value", ["soon", "0", "-5", "inf", "nan"])
def test_invalid_key_cache_settings_rejected(value: str) -> None:
    with pytest.raises(KeyCacheSettingsError) as raised:
        KeyCacheOptions.from_environ({"KEY_CACHE_SECONDS": value})
    assert f"KEY_CACHE_SECONDS is {value!r}" in str(raised.value)


def test_key_cache_settings_default_off() -> None:
    assert KeyCacheOptions.from_environ({}) == KeyCacheOptions(None, None, 1200.0)


def test_token_is_shared_within_window() -> None:
    window = int(NOW.timestamp() // 1200)
    assert rotation_token(SECRET_ARN, "v1", window) == rotation_token(SECRET_ARN, "v1", window)
    assert rotation_token(SECRET_ARN, "v1", window) != rotation_token(SECRET_ARN, "v1", window + 1)
    assert rotation_token(SECRET_ARN, "v1", window) != rotation_token(SECRET_ARN, "v2", window)


@pytest.fixture()
def stubbed_secretsmanager():
    client = boto3.client(
        "secretsmanager",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="a",
        aws_secret_access_key="b",
    )
    with Stubber(client) as stubber:
        yield client, stubber


def test_trigger_asks_once_per_window(stubbed_secretsmanager) -> None:
    # GIVEN a trigger whose RotateSecret call expects the window's token
    client, stubber = stubbed_secretsmanager
    clock = [NOW]
    trigger = RotationTrigger(client, SECRET_ARN, 1200, lambda: clock[0])
    window = int(NOW.timestamp() // 1200)
    stubber.add_response(
        "rotate_secret",
        {"ARN": SECRET_ARN, "VersionId": rotation_token(SECRET_ARN, "v1", window)},
        {"SecretId": SECRET_ARN, "ClientRequestToken": rotation_token(SECRET_ARN, "v1", window)},
    )

    # WHEN it is asked twice in the window, THEN one request is sent
    assert trigger.request_rotation("v1", "low validity") is True
    clock[0] = NOW + timedelta(minutes=5)
    assert trigger.request_rotation("v1", "low validity") is False
    stubber.assert_no_pending_responses()


def test_trigger_treats_refusal_as_rotation_in_progress(stubbed_secretsmanager, caplog) -> None:
    client, stubber = stubbed_secretsmanager
    trigger = RotationTrigger(client, SECRET_ARN, 1200, lambda: NOW)
    stubber.add_client_error(
        "rotate_secret",
        service_error_code="InvalidRequestException",
        service_message="A previous rotation isn't complete.",
    )

    with caplog.at_level(logging.INFO, logger="worker.key_rotation_trigger"):
        assert trigger.request_rotation("v1", "Mantle rejected the key") is False

    assert "a rotation is already in progress" in caplog.text


def test_trigger_logs_other_errors(stubbed_secretsmanager, caplog) -> None:
    client, stubber = stubbed_secretsmanager
    trigger = RotationTrigger(client, SECRET_ARN, 1200, lambda: NOW)
    stubber.add_client_error("rotate_secret", service_error_code="AccessDeniedException", service_message="denied")

    with caplog.at_level(logging.ERROR, logger="worker.key_rotation_trigger"):
        assert trigger.request_rotation("v1", "low validity") is False

    assert "requesting a rotation of" in caplog.text
    assert "AccessDeniedException" in caplog.text
