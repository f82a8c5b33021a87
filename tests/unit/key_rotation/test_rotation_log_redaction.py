"""KeyMaterialFilter and its installation on the loggers of botocore, boto3 and urllib3."""

from __future__ import annotations

import logging

import pytest

from key_rotation.log_redaction import KeyMaterialFilter, install_key_material_filter, remove_key_material_filter

API_KEY = "bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29tLz9BY3Rpb249Q2FsbFdpdGhCZWFyZXJUb2tlbg=="


def make_record(message: str, *args: object, name: str = "botocore.parsers") -> logging.LogRecord:
    return logging.LogRecord(name, logging.DEBUG, __file__, 1, message, args, None)


@pytest.mark.parametrize(
    ("message", "args"),
    [
        ("Response body:\n%s", (b"<SecretAccessKey>abc</SecretAccessKey><SessionToken>def</SessionToken>",),),
        ("Response body:\n%s", (b'{"ARN": "arn", "SecretString": "{\\"api_key\\": \\"k\\"}"}',)),
        ("Making request for %s with params: %s", ("PutSecretValue", {"body": b'{"SecretString": "x"}'})),
        ("CanonicalRequest:\n%s", ("POST\n/\nX-Amz-Security-Token=abc",)),
        ("Signature:\n%s", ("0f" * 32,)),
        ("Sending http request: %s", ("headers={'Authorization': b'AWS4-HMAC-SHA256 ...'}",)),
        ("Stored %s", (API_KEY,)),
    ],
)
def test_filter_withholds_sensitive_message(message, args):
    # GIVEN a botocore debug record that carries a payload, a signature or the key
    record = make_record(message, *args)

    # WHEN the filter processes it
    kept = KeyMaterialFilter().filter(record)

    # THEN the record is kept, but its text is replaced
    assert kept is True
    assert record.getMessage() == "botocore.parsers message withheld because it may contain key material or credentials"


def test_filter_keeps_ordinary_message():
    # GIVEN a debug record without anything sensitive
    record = make_record("Event %s: calling handler %s", "before-call.sts.AssumeRole", "inject_api_version")

    # WHEN the filter processes it
    kept = KeyMaterialFilter().filter(record)

    # THEN it passes unchanged
    assert kept is True
    assert record.getMessage() == "Event before-call.sts.AssumeRole: calling handler inject_api_version"


def test_install_covers_child_loggers():
    # GIVEN a botocore module logger created before installation, and an unrelated logger
    child = logging.getLogger("botocore.unit_test_child")
    unrelated = logging.getLogger("botocorex.unit_test")

    # WHEN the filter is installed twice
    install_key_material_filter()
    added_again = install_key_material_filter()

    # THEN the child logger has it exactly once, the unrelated one has none, and the second call adds nothing
    assert sum(isinstance(item, KeyMaterialFilter) for item in child.filters) == 1
    assert not any(isinstance(item, KeyMaterialFilter) for item in unrelated.filters)
    assert added_again == 0


def test_remove_clears_every_logger():
    # GIVEN the filter installed on the SDK's loggers
    install_key_material_filter()

    # WHEN it is removed
    remove_key_material_filter()

    # THEN no logger has it any more
    loggers = [item for item in logging.Logger.manager.loggerDict.values() if isinstance(item, logging.Logger)]
    assert loggers
    assert not any(isinstance(item, KeyMaterialFilter) for logger in loggers for item in logger.filters)
