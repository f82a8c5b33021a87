"""Minting a key from an assumed-role session, the expiry it records, and the RoleSessionName."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.credentials import Credentials

from bedrock_key import ApiKeySecret
from key_rotation.errors import KeyIssuerError
from key_rotation.key_issuer import (
    MAX_ROLE_SESSION_NAME_LENGTH,
    REQUESTED_KEY_LIFETIME,
    IssuerSession,
    mint_api_key,
    role_session_name,
    token_expiry,
)

ASSUMED_ROLE_ARN = "arn:aws:sts::123456789012:assumed-role/key-issuer/key-rotation-1a2b3c4d"
SECRET_ACCESS_KEY = "unit-test-secret-access-key"
SESSION_TOKEN = "unit-test-session-token"


def issuer_session(expires_in: timedelta) -> IssuerSession:
    return IssuerSession(
        credentials=Credentials("ASIAUNITTESTKEYID", SECRET_ACCESS_KEY, SESSION_TOKEN),
        expiration=datetime.now(timezone.utc) + expires_in,
        assumed_role_arn=ASSUMED_ROLE_ARN,
    )


def presigned_query(api_key: str) -> dict[str, str]:
    presigned_url = base64.b64decode(api_key.removeprefix("bedrock-api-key-")).decode()
    return {name: values[0] for name, values in parse_qs(urlsplit(f"https://{presigned_url}").query).items()}


def test_mint_expiry_is_session_end():
    # GIVEN a one-hour session
    session = issuer_session(timedelta(hours=1))
    issued_at = datetime.now(timezone.utc)

    # WHEN a key is minted
    minted = mint_api_key(session, region="us-east-1", issued_at=issued_at)

    # THEN the token claims twelve hours, but the recorded expiry is the session's end
    assert token_expiry(minted.api_key) - issued_at > timedelta(hours=11, minutes=59)
    assert minted.expires_at == session.expiration
    assert minted.issued_at == issued_at
    assert minted.issued_by == ASSUMED_ROLE_ARN


def test_mint_expiry_is_token_end_when_earlier():
    # GIVEN a session that outlives the token's maximum lifetime
    session = issuer_session(timedelta(hours=13))

    # WHEN a key is minted
    minted = mint_api_key(session, region="us-east-1", issued_at=datetime.now(timezone.utc))

    # THEN the recorded expiry is the token's own end
    assert minted.expires_at == token_expiry(minted.api_key)
    assert minted.expires_at < session.expiration


def test_mint_signs_with_session_credentials():
    # GIVEN a session
    session = issuer_session(timedelta(hours=1))

    # WHEN a key is minted for eu-central-1
    minted = mint_api_key(session, region="eu-central-1", issued_at=datetime.now(timezone.utc))
    query = presigned_query(minted.api_key)

    # THEN it is a presigned CallWithBearerToken URL for bedrock in that region, signed by the session
    assert minted.api_key.startswith("bedrock-api-key-")
    assert query["Action"] == "CallWithBearerToken"
    assert query["X-Amz-Credential"].startswith("ASIAUNITTESTKEYID/")
    assert query["X-Amz-Credential"].endswith("/eu-central-1/bedrock/aws4_request")
    assert query["X-Amz-Security-Token"] == SESSION_TOKEN
    assert query["X-Amz-Expires"] == str(int(REQUESTED_KEY_LIFETIME.total_seconds()))


def test_minted_key_round_trips_secret_format():
    # GIVEN a minted key
    minted = mint_api_key(issuer_session(timedelta(hours=1)), region="us-east-1", issued_at=datetime.now(timezone.utc))

    # WHEN it is written and read back in the secret's format
    parsed = ApiKeySecret.from_json(minted.to_json())

    # THEN the key and issuer survive, and the times are kept to the second
    assert parsed.api_key == minted.api_key
    assert parsed.issued_by == ASSUMED_ROLE_ARN
    assert parsed.expires_at == minted.expires_at.replace(microsecond=0)


def test_token_expiry_reads_date_and_lifetime():
    # GIVEN a key whose presigned URL was signed at a known time for 900 seconds
    presigned_url = (
        "bedrock.amazonaws.com/?Action=CallWithBearerToken&X-Amz-Date=20260101T000000Z&X-Amz-Expires=900&Version=1"
    )
    api_key = "bedrock-api-key-" + base64.b64encode(presigned_url.encode()).decode()

    # WHEN its expiry is read
    expiry = token_expiry(api_key)

    # THEN it is X-Amz-Date plus X-Amz-Expires
    assert expiry == datetime(2026, 1, 1, 0, 15, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "api_key",
    [
        "sk-not-a-bedrock-key",
        "bedrock-api-key-***not base64***",
        "bedrock-api-key-" + base64.b64encode(b"bedrock.amazonaws.com/?Action=CallWithBearerToken").decode(),
        "bedrock-api-key-" + base64.b64encode(b"bedrock.amazonaws.com/?X-Amz-Date=soon&X-Amz-Expires=900").decode(),
    ],
)
def test_token_expiry_rejects_malformed_key(api_key):
    # GIVEN a string that is not a presigned-URL key
    # WHEN its expiry is read
    with pytest.raises(KeyIssuerError) as raised:
        token_expiry(api_key)

    # THEN the error does not quote the key
    assert api_key not in str(raised.value)


def test_session_repr_hides_credentials():
    # GIVEN a session
    session = issuer_session(timedelta(hours=1))

    # WHEN it is formatted, as a log line would
    text = repr(session)

    # THEN neither the secret access key nor the session token appear
    assert SECRET_ACCESS_KEY not in text
    assert SESSION_TOKEN not in text
    assert ASSUMED_ROLE_ARN in text


def test_session_name_has_function_and_token():
    # GIVEN a function name and a rotation token
    token = "1a2b3c4d-0000-4000-8000-000000000000"

    # WHEN the session name is built
    name = role_session_name("gemma-batch-rotation", token)

    # THEN it names both
    assert name == "gemma-batch-rotation-1a2b3c4d"


def test_session_name_fits_sts_limits():
    # GIVEN a function name at Lambda's 64-character maximum and a token with characters STS rejects
    function_name = "f" * 64
    token = "a/b c:d!-rest-of-token"

    # WHEN the session name is built
    name = role_session_name(function_name, token)

    # THEN it fits STS's 64 characters of [\w+=,.@-] and still ends with the token prefix
    assert len(name) == MAX_ROLE_SESSION_NAME_LENGTH
    assert name.endswith("-a-b-c-d-")
    assert all(character.isalnum() or character in "_+=,.@-" for character in name)
