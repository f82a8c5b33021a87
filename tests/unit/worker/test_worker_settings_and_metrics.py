"""Worker settings from environment variables, EMF documents and the rejection texts of failed jobs."""

from __future__ import annotations

import io
import json
import logging

import pytest

from gemma_batch.emulator import GEMMA_MODELS
from worker import metrics
from worker.job import SUPPORTED_MODELS
from worker.log_redaction import REDACTED, install_body_redaction
from worker.mantle_client import MantleRequestError
from worker.metrics import METRIC_NAMES, MetricsRecorder
from worker.processor import describe_rejection
from worker.settings import Settings, SettingsError

REQUIRED = {
    "MANTLE_BASE_URL": "https://bedrock-mantle.us-east-1.api.aws/openai/v1/",
    "MODEL_ID": "google.gemma-4-31b",
    "API_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:key-AbCdEf",
    "RESULTS_BUCKET": "results",
    "JOB_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/jobs",
    "METRICS_NAMESPACE": "GemmaBatch",
    "METRICS_SERVICE": "gemma-batch-worker",
    "JOB_STATE_TABLE": "job-state",
}


def test_settings_defaults():
    settings = Settings.from_environ(REQUIRED)

    assert settings.mantle_base_url == "https://bedrock-mantle.us-east-1.api.aws/openai/v1"
    assert settings.service_tier == "flex"
    assert settings.max_attempts_per_delivery == 3
    assert settings.backoff_base_seconds == 1.0
    assert settings.backoff_max_seconds == 20.0
    assert settings.request_timeout_seconds == 60.0
    assert settings.default_max_output_tokens == 1024
    assert settings.key_refresh_margin_seconds == 300.0
    assert settings.job_state_ttl_seconds == 30 * 86400
    assert settings.input_location is None
    assert settings.allow_standard_tier_escalation is False
    assert settings.reasoning_effort_by_model == {}
    assert settings.max_receive_count is None


def test_job_contract_settings_are_read():
    settings = Settings.from_environ(
        {
            **REQUIRED,
            "INPUT_BUCKET": "images",
            "INPUT_PREFIX": "inputs/",
            "ALLOW_STANDARD_TIER_ESCALATION": "true",
            "REASONING_EFFORT_BY_MODEL": '{"google.gemma-4-e2b": "high"}',
            "MAX_RECEIVE_COUNT": "5",
            "JOB_STATE_TTL_DAYS": "7",
        }
    )

    assert settings.input_location.uri == "s3://images/inputs/"
    assert settings.allow_standard_tier_escalation is True
    assert settings.reasoning_effort_by_model == {"google.gemma-4-e2b": "high"}
    assert settings.max_receive_count == 5
    assert settings.job_state_ttl_seconds == 7 * 86400


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_missing_variable_is_named(name):
    environ = {key: value for key, value in REQUIRED.items() if key != name}

    with pytest.raises(SettingsError) as raised:
        Settings.from_environ(environ)

    assert f"missing environment variable {name}" in str(raised.value)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("MAX_ATTEMPTS_PER_DELIVERY", "three", "MAX_ATTEMPTS_PER_DELIVERY is 'three'; expected a whole number"),
        ("MAX_ATTEMPTS_PER_DELIVERY", "0", "MAX_ATTEMPTS_PER_DELIVERY is 0; expected a value at least 1"),
        ("BACKOFF_BASE_SECONDS", "fast", "BACKOFF_BASE_SECONDS is 'fast'; expected a number of seconds"),
        ("BACKOFF_MAX_SECONDS", "0.5", "BACKOFF_MAX_SECONDS (0.5) is less than BACKOFF_BASE_SECONDS (1.0)"),
        ("REQUEST_TIMEOUT_SECONDS", "inf", "REQUEST_TIMEOUT_SECONDS is inf"),
        ("DEFAULT_MAX_OUTPUT_TOKENS", "40000", "DEFAULT_MAX_OUTPUT_TOKENS is 40000; expected a value between 1 and 32768"),
        ("MODEL_ID", "gpt-4o", "MODEL_ID is 'gpt-4o'; expected one of google.gemma-4-31b"),
        ("MANTLE_BASE_URL", "bedrock-mantle.us-east-1.api.aws", "MANTLE_BASE_URL is 'bedrock-mantle"),
        ("ALLOW_STANDARD_TIER_ESCALATION", "yes", "ALLOW_STANDARD_TIER_ESCALATION is 'yes'; expected true or false"),
        ("REASONING_EFFORT_BY_MODEL", '{"google.gemma-4-e2b": "max"}', "REASONING_EFFORT_BY_MODEL is"),
        ("REASONING_EFFORT_BY_MODEL", "high", "expected a JSON object that maps model ids"),
        ("MAX_RECEIVE_COUNT", "0", "MAX_RECEIVE_COUNT is 0; expected a value at least 1"),
    ],
)
def test_invalid_variable_is_named(name, value, expected):
    with pytest.raises(SettingsError) as raised:
        Settings.from_environ({**REQUIRED, name: value})

    assert expected in str(raised.value)


def test_metric_names_are_fixed():
    # The alarms read exactly these names, so a rename must fail here first.
    assert METRIC_NAMES == (
        "Requests",
        "Throttled429",
        "Unavailable503",
        "OtherErrors",
        "InputTokens",
        "CachedInputTokens",
        "OutputTokens",
        "JobsSucceeded",
        "JobsFailed",
        "TierEscalations",
    )


def test_emf_document_has_one_service_dimension():
    recorder = MetricsRecorder()
    recorder.add(metrics.REQUESTS, 3)
    recorder.add(metrics.THROTTLED_429)
    recorder.add(metrics.INPUT_TOKENS, 120)

    stream = io.StringIO()
    recorder.flush("GemmaBatch", "gemma-batch-worker", stream=stream)

    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    document = json.loads(lines[0])
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "GemmaBatch"
    assert directive["Dimensions"] == [["Service"]]
    assert [metric["Name"] for metric in directive["Metrics"]] == list(METRIC_NAMES)
    assert isinstance(document["_aws"]["Timestamp"], int)
    assert document["Service"] == "gemma-batch-worker"
    assert document["Requests"] == 3
    assert document["Throttled429"] == 1
    assert document["InputTokens"] == 120
    assert document["JobsFailed"] == 0


def test_unknown_metric_is_rejected():
    with pytest.raises(ValueError, match="unknown metric 'Latency'"):
        MetricsRecorder().add("Latency")


def settings() -> Settings:
    return Settings.from_environ(REQUIRED)


def test_route_rejection_names_mantle_base_path():
    error = MantleRequestError("The model 'google.gemma-4-31b' isn't supported on this route.", status=400)

    text = describe_rejection(error, settings(), "google.gemma-4-31b")

    assert "mantle_base_path" in text
    assert "isn't supported on this route" in text


def test_tier_rejection_names_service_tier():
    error = MantleRequestError("Invalid value for tier.", status=400, param="service_tier")

    text = describe_rejection(error, settings(), "google.gemma-4-e2b")

    assert "config key service_tier" in text
    assert "'flex'" in text


def test_other_rejection_keeps_service_message():
    error = MantleRequestError("Input is too long for this model.", status=413)

    text = describe_rejection(error, settings(), "google.gemma-4-e2b")

    assert text == "Mantle rejected the request with HTTP 413: Input is too long for this model."


def test_botocore_body_logs_are_redacted(caplog):
    # GIVEN botocore's loggers with the worker's filters and a DEBUG capture
    install_body_redaction()
    install_body_redaction()  # a second call adds no second filter
    assert len([f for f in logging.getLogger("botocore.parsers").filters if type(f).__name__ == "BodyRedactionFilter"]) == 1

    # WHEN botocore logs a response body and request parameters
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("botocore.parsers").debug("Response body:\n%r", b'{"SecretString": "bedrock-api-key-abc"}')
        logging.getLogger("botocore.endpoint").debug(
            "Making request for %s with params: %s", "OperationModel(name=PutObject)", {"body": b"the answer"}
        )
        logging.getLogger("botocore.parsers").debug("Response headers: %r", {"x-amzn-requestid": "1"})

    # THEN the bodies are gone and the rest of each message stays
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0] == f"Response body:\n{REDACTED!r}"
    assert messages[1] == f"Making request for OperationModel(name=PutObject) with params: {REDACTED}"
    assert messages[2] == "Response headers: {'x-amzn-requestid': '1'}"


def test_emulator_serves_worker_models():
    assert GEMMA_MODELS == SUPPORTED_MODELS
