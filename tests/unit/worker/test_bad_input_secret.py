"""Bad input in the API key secret: every malformed document raises MalformedSecretError that names the field.

The worker turns MalformedSecretError into a deferral, so the jobs return to the queue. Any other
exception would end them as unexpected errors with a traceback instead.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from aws_bedrock_token_generator import provide_token
from botocore.credentials import Credentials

from bedrock_key import ApiKeySecret, MalformedSecretError


class StaticCredentialProvider:
    """A botocore-style credential provider with fixed fake credentials."""

    def __init__(self) -> None:
        self._credentials = Credentials("AKIAUNITTESTKEY00001", "fake-secret-access-key", "fake-session-token")

    def load(self) -> Credentials:
        return self._credentials


API_KEY = provide_token(region="us-east-1", aws_credentials_provider=StaticCredentialProvider())
VALID_DOCUMENT = {
    "format_version": 1,
    "api_key": API_KEY,
    "expires_at": "2026-01-01T13:00:00Z",
    "issued_at": "2026-01-01T12:00:00Z",
    "issued_by": "arn:aws:sts::123456789012:assumed-role/gemma-batch-key-issuer/rotation",
}


def test_minted_key_document_parses():
    # GIVEN the document the rotation writes for a key from aws-bedrock-token-generator
    secret = ApiKeySecret.from_json(json.dumps(VALID_DOCUMENT))

    # THEN every field is read back
    assert secret.api_key == API_KEY
    assert secret.expires_at == datetime(2026, 1, 1, 13, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"api_key": API_KEY + "\r\nX-Injected: 1"}, "secret field 'api_key' is missing or is not a Bedrock API key"),
        ({"api_key": API_KEY + "\n"}, "secret field 'api_key'"),
        ({"api_key": API_KEY + " "}, "secret field 'api_key'"),
        ({"api_key": API_KEY + "é"}, "secret field 'api_key'"),
        ({"api_key": "bedrock-api-key-"}, "secret field 'api_key'"),
        ({"expires_at": "0001-01-01T00:00:00Z"}, "secret field 'expires_at' is outside the years 2000 to 9998"),
        ({"expires_at": "0001-01-01T00:00:00+14:00"}, "secret field 'expires_at' is outside the years"),
        ({"expires_at": "9999-12-31T23:59:59-01:00"}, "secret field 'expires_at' is outside the years"),
        ({"expires_at": "9999-12-31T23:59:59Z"}, "secret field 'expires_at' is outside the years"),
        ({"issued_at": "1999-12-31T23:59:59Z"}, "secret field 'issued_at' is outside the years"),
        ({"issued_by": "arn\nERROR forged log line"}, "secret field 'issued_by' contains control characters"),
        ({"format_version": True}, "secret field 'format_version' is True, expected 1"),
        ({"format_version": 1.0}, "secret field 'format_version' is 1.0, expected 1"),
    ],
)
def test_malformed_field_is_named(changes, expected):
    # GIVEN a key document with one malformed field
    document = VALID_DOCUMENT | changes

    # WHEN it is parsed THEN the error names the field and quotes no key
    with pytest.raises(MalformedSecretError) as raised:
        ApiKeySecret.from_json(json.dumps(document))
    assert expected in str(raised.value)
    assert API_KEY not in str(raised.value)


def test_deeply_nested_secret_is_malformed():
    # GIVEN a secret string of arrays nested 100000 deep WHEN it is parsed THEN it is malformed, not a crash
    with pytest.raises(MalformedSecretError) as raised:
        ApiKeySecret.from_json("[" * 100_000 + "]" * 100_000)
    assert "nests JSON too deeply" in str(raised.value)


def test_parsed_expiry_allows_margin_arithmetic():
    # GIVEN the latest and earliest expiry a document may hold
    for expires_at in ("9998-12-31T23:59:59Z", "2000-01-01T00:00:00Z"):
        secret = ApiKeySecret.from_json(json.dumps(VALID_DOCUMENT | {"expires_at": expires_at}))

        # THEN subtracting or adding a refresh margin of a day stays within datetime's range
        assert secret.expires_at - timedelta(days=1) < secret.expires_at + timedelta(days=1)
