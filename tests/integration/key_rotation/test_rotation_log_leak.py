"""No log line carries the API key, its base64 body or any credentials, even with every logger at DEBUG."""

from __future__ import annotations

import json
import logging
import traceback
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import quote

import pytest
from rotation_support import FUNCTION_SECRET_ACCESS_KEY, FUNCTION_SESSION_TOKEN, current_document

from gemma_batch.emulator import MantleEmulator
from gemma_batch.local.rotation_harness import ROTATION_STEPS, RotationStepError, run_step, start_rotation
from key_rotation.log_redaction import WATCHED_LOGGER_PREFIXES, WITHHELD_MESSAGE

pytestmark = pytest.mark.xdist_group("key_rotation_moto")

DEBUG_LOGGERS = ("", "boto3", "botocore", "urllib3", "key_rotation", "gemma_batch")


class CapturingHandler(logging.Handler):
    """Keeps every record as the formatted line a log handler would write, traceback included."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))


@contextmanager
def debug_logging() -> Iterator[CapturingHandler]:
    """Set the root logger and the AWS SDK and HTTP loggers to DEBUG, as AWS_LAMBDA_LOG_LEVEL=DEBUG would, and capture.

    Filters that other code in this test process added to those loggers are set aside meanwhile,
    so only the filter that the rotation function installs keeps key material out.
    """
    handler = CapturingHandler()
    saved_levels = {name: logging.getLogger(name).level for name in DEBUG_LOGGERS}
    sdk_loggers = [
        logger
        for name, logger in list(logging.Logger.manager.loggerDict.items())
        if isinstance(logger, logging.Logger) and name.split(".")[0] in WATCHED_LOGGER_PREFIXES
    ]
    saved_filters = {logger: list(logger.filters) for logger in sdk_loggers}
    for logger in sdk_loggers:
        logger.filters.clear()
    for name in DEBUG_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)

    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)
        for logger, filters in saved_filters.items():
            logger.filters[:] = filters


@pytest.fixture(scope="module")
def emulator() -> Iterator[MantleEmulator]:
    emulator = MantleEmulator(region="us-east-1", host="127.0.0.1", port=0).start()
    yield emulator
    emulator.stop()


def leaked(lines: list[str], secrets: dict[str, str]) -> list[str]:
    """Return one entry per secret found in a line, naming the secret and the line's start."""
    return [f"{name}: {line[:120]}" for line in lines for name, value in secrets.items() if value in line]


def test_rotation_logs_no_key_material(secretsmanager, secret_arn, make_handler, sts, emulator):
    # GIVEN a started rotation and the function in mantle mode against the emulator
    handler = make_handler(TEST_SECRET_MODE="mantle", MANTLE_BASE_URL=emulator.base_url)
    request = start_rotation(secretsmanager, secret_arn)

    # WHEN the four steps run with every logger at DEBUG
    with debug_logging() as debug_log:
        for step in ROTATION_STEPS:
            run_step(handler, request, step)
    api_key = current_document(secretsmanager, secret_arn)["api_key"]
    credentials = sts.calls[0].response["Credentials"]

    # THEN no line carries the key, its base64 body, the key-issuer session's credentials,
    # or the function's own credentials, plain or URL-encoded as in a presigned URL
    secrets = {
        "API key": api_key,
        "API key base64 body": api_key.removeprefix("bedrock-api-key-"),
        "issuer secret access key": credentials["SecretAccessKey"],
        "issuer session token": credentials["SessionToken"],
        "issuer session token, URL-encoded": quote(credentials["SessionToken"], safe=""),
        "function secret access key": FUNCTION_SECRET_ACCESS_KEY,
        "function session token": FUNCTION_SESSION_TOKEN,
    }
    assert leaked(debug_log.lines, secrets) == []

    # AND debug logging did happen, including botocore's payload lines, which were withheld
    logger_names = {record.name for record in debug_log.records}
    assert {"botocore.endpoint", "botocore.parsers", "botocore.auth", "urllib3.connectionpool"} <= logger_names
    assert any(line.endswith(WITHHELD_MESSAGE % "botocore.parsers") for line in debug_log.lines)
    assert any(request.token in line and "createSecret: stored a new key" in line for line in debug_log.lines)


def test_failed_rotation_logs_no_key(secretsmanager, secret_arn, make_handler, sts, misbehaving_mantle):
    # GIVEN a started rotation and a Mantle stand-in whose 401 body echoes the Authorization header
    handler = make_handler(TEST_SECRET_MODE="mantle", MANTLE_BASE_URL=f"{misbehaving_mantle}/echo/openai/v1")
    request = start_rotation(secretsmanager, secret_arn)

    # WHEN the steps run with every logger at DEBUG, testSecret fails,
    # and the error is logged with its traceback as Lambda does
    with debug_logging() as debug_log:
        with pytest.raises(RotationStepError) as raised:
            for step in ROTATION_STEPS:
                run_step(handler, request, step)
        logging.getLogger("test").error("rotation failed", exc_info=raised.value)
    pending = secretsmanager.get_secret_value(SecretId=secret_arn, VersionId=raised.value.token)
    api_key = json.loads(pending["SecretString"])["api_key"]

    # THEN neither the log lines nor the formatted exception chain carry the key or the issuer's credentials
    credentials = sts.calls[0].response["Credentials"]
    secrets = {
        "API key": api_key,
        "API key base64 body": api_key.removeprefix("bedrock-api-key-"),
        "issuer secret access key": credentials["SecretAccessKey"],
        "issuer session token": credentials["SessionToken"],
    }
    assert raised.value.step == "testSecret"
    assert leaked(debug_log.lines, secrets) == []
    assert leaked(traceback.format_exception(raised.value), secrets) == []
