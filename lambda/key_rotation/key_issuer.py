"""Assume the key-issuer role and mint a short-term Bedrock API key with its credentials.

A short-term key from aws-bedrock-token-generator is ``bedrock-api-key-`` followed by the
base64 of a SigV4 presigned URL (service ``bedrock``). Bedrock accepts it until the earlier of
X-Amz-Date + X-Amz-Expires and the end of the session that signed it, so the stored
``expires_at`` is the earlier of the two.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aws_bedrock_token_generator import provide_token
from aws_bedrock_token_generator.token_generator import AUTH_PREFIX
from botocore.credentials import CredentialProvider, Credentials
from botocore.exceptions import BotoCoreError, ClientError

from bedrock_key import ApiKeySecret
from key_rotation.errors import KeyIssuerError

logger = logging.getLogger(__name__)

# The token generator's maximum. The signing session usually ends first (at most one hour with
# role chaining), and expires_at records that end. Asking for the maximum keeps a key from a
# longer session valid for that whole session.
REQUESTED_KEY_LIFETIME = timedelta(hours=12)
# STS limits RoleSessionName to 64 characters of [\w+=,.@-].
MAX_ROLE_SESSION_NAME_LENGTH = 64
TOKEN_PREFIX_LENGTH = 8
_SESSION_NAME_INVALID_CHARACTERS = re.compile(r"[^\w+=,.@-]")


@dataclass(frozen=True)
class IssuerSession:
    """Credentials of one key-issuer role session, with the session's end and the assumed-role ARN."""

    credentials: Credentials
    expiration: datetime
    assumed_role_arn: str

    def __repr__(self) -> str:
        # The credentials never appear in a repr, so a logged session cannot leak them.
        return f"IssuerSession(assumed_role_arn={self.assumed_role_arn!r}, expiration={self.expiration.isoformat()})"


class _SessionCredentialProvider(CredentialProvider):
    """Hands the token generator the credentials of one assumed-role session."""

    METHOD = "key-issuer-role-session"

    def __init__(self, credentials: Credentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> Credentials:
        return self._credentials


def role_session_name(function_name: str, token: str) -> str:
    """Build a RoleSessionName that names the function and the first characters of the rotation token.

    CloudTrail records the session name, so an AssumeRole event leads back to one rotation.
    """
    token_prefix = _SESSION_NAME_INVALID_CHARACTERS.sub("-", token[:TOKEN_PREFIX_LENGTH])
    name_budget = MAX_ROLE_SESSION_NAME_LENGTH - len(token_prefix) - 1
    function_part = _SESSION_NAME_INVALID_CHARACTERS.sub("-", function_name)[:name_budget]
    return f"{function_part}-{token_prefix}"


def assume_key_issuer_role(sts_client: Any, role_arn: str, session_name: str, duration_seconds: int) -> IssuerSession:
    """Call sts:AssumeRole and return the session, raising KeyIssuerError on failure."""
    logger.info(
        "Assuming the key-issuer role %s as session %s for %d seconds", role_arn, session_name, duration_seconds
    )
    try:
        response = sts_client.assume_role(
            RoleArn=role_arn, RoleSessionName=session_name, DurationSeconds=duration_seconds
        )
    except (ClientError, BotoCoreError) as error:
        raise KeyIssuerError(
            f"AssumeRole into {role_arn} as session {session_name} failed: {error}. Check that the role trusts "
            "this function's role and that DurationSeconds (KEY_SESSION_SECONDS) is at most 3600 for role chaining."
        ) from error

    credentials = response["Credentials"]
    return IssuerSession(
        credentials=Credentials(
            access_key=credentials["AccessKeyId"],
            secret_key=credentials["SecretAccessKey"],
            token=credentials["SessionToken"],
            method=_SessionCredentialProvider.METHOD,
        ),
        expiration=credentials["Expiration"].astimezone(timezone.utc),
        assumed_role_arn=response["AssumedRoleUser"]["Arn"],
    )


def mint_api_key(session: IssuerSession, region: str, issued_at: datetime) -> ApiKeySecret:
    """Sign a short-term API key for ``region`` with the session's credentials.

    ``expires_at`` is the earlier of the session's end and the lifetime that the token claims.
    """
    try:
        api_key = provide_token(
            region=region,
            aws_credentials_provider=_SessionCredentialProvider(session.credentials),
            expiry=REQUESTED_KEY_LIFETIME,
        )
    except (ValueError, RuntimeError, BotoCoreError) as error:
        raise KeyIssuerError(f"signing an API key for region {region} failed: {error}") from error

    return ApiKeySecret(
        api_key=api_key,
        expires_at=min(session.expiration, token_expiry(api_key)),
        issued_at=issued_at,
        issued_by=session.assumed_role_arn,
    )


def token_expiry(api_key: str) -> datetime:
    """Return X-Amz-Date + X-Amz-Expires of a short-term API key, the lifetime the token claims.

    Raises KeyIssuerError without quoting the key when it is not a presigned-URL token.
    """
    if not api_key.startswith(AUTH_PREFIX):
        raise KeyIssuerError(f"the API key does not start with {AUTH_PREFIX!r}")
    try:
        presigned_url = base64.b64decode(api_key[len(AUTH_PREFIX):], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as error:
        raise KeyIssuerError("the API key body is not base64 of a presigned URL") from error

    query = parse_qs(urlsplit(f"https://{presigned_url}").query)
    try:
        signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        lifetime = timedelta(seconds=int(query["X-Amz-Expires"][0]))
    except (KeyError, ValueError) as error:
        raise KeyIssuerError("the API key's presigned URL has no valid X-Amz-Date and X-Amz-Expires") from error
    return signed_at + lifetime
