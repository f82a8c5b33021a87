"""Bedrock API key checks for the Mantle emulator.

A short-term Bedrock API key is ``bedrock-api-key-`` followed by the base64 of a SigV4 presigned
URL, as ``aws_bedrock_token_generator`` (1.1.0) builds it::

    bedrock.amazonaws.com/?Action=CallWithBearerToken&X-Amz-Algorithm=AWS4-HMAC-SHA256
    &X-Amz-Credential=AKID%2F20260101%2Fus-east-1%2Fbedrock%2Faws4_request&X-Amz-Date=20260101T000000Z
    &X-Amz-Expires=43200&X-Amz-SignedHeaders=host&X-Amz-Security-Token=...&X-Amz-Signature=...&Version=1

The emulator has no secret keys, so it checks the shape, the region, the expiry and the expiry of the
signing session, never the signature itself.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Mapping
from urllib.parse import parse_qs, urlsplit

TOKEN_PREFIX = "bedrock-api-key-"
TOKEN_HOST = "bedrock.amazonaws.com"
TOKEN_ACTION = "CallWithBearerToken"
TOKEN_SERVICE = "bedrock"
SIGNING_ALGORITHM = "AWS4-HMAC-SHA256"
MAX_TOKEN_LIFETIME_SECONDS = 43200
# A token signed this far in the emulator's future is still accepted, to allow for clock skew.
ALLOWED_CLOCK_SKEW = timedelta(minutes=5)

_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")


class TokenError(Exception):
    """Raised for a key the emulator rejects. The message never contains the key."""


@dataclass(frozen=True)
class BearerToken:
    """The checked fields of a Bedrock API key."""

    access_key_id: str
    region: str
    signed_at: datetime
    lifetime_seconds: int

    @property
    def expires_at(self) -> datetime:
        return self.signed_at + timedelta(seconds=self.lifetime_seconds)


def parse_bearer_token(token: str) -> BearerToken:
    """Decode a Bedrock API key and check its shape, raising TokenError with the part at fault."""
    if not token.startswith(TOKEN_PREFIX):
        raise TokenError(f"the API key does not start with {TOKEN_PREFIX!r}")
    encoded = token[len(TOKEN_PREFIX) :]
    try:
        presigned_url = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        # b64decode raises a plain ValueError for non-ASCII text.
        raise TokenError("the API key is not valid base64 after its prefix") from None

    try:
        parts = urlsplit(f"https://{presigned_url}")
    except ValueError:
        raise TokenError("the API key's presigned URL is not a valid URL") from None
    if parts.hostname != TOKEN_HOST:
        raise TokenError(f"the API key's presigned URL is not for {TOKEN_HOST}")
    query = {name: values[0] for name, values in parse_qs(parts.query, keep_blank_values=True).items()}

    if query.get("Action") != TOKEN_ACTION:
        raise TokenError(f"the API key's presigned URL has no Action={TOKEN_ACTION}")
    if query.get("X-Amz-Algorithm") != SIGNING_ALGORITHM:
        raise TokenError(f"the API key is not signed with {SIGNING_ALGORITHM}")
    if not _SIGNATURE.fullmatch(query.get("X-Amz-Signature", "")):
        raise TokenError("the API key has no X-Amz-Signature")

    credential = query.get("X-Amz-Credential", "").split("/")
    if len(credential) != 5 or credential[3] != TOKEN_SERVICE or credential[4] != "aws4_request" or not credential[0]:
        raise TokenError(
            f"the API key's X-Amz-Credential is not <access key id>/<date>/<region>/{TOKEN_SERVICE}/aws4_request"
        )
    access_key_id, scope_date, region = credential[0], credential[1], credential[2]

    amz_date = query.get("X-Amz-Date", "")
    if not _AMZ_DATE.fullmatch(amz_date):
        raise TokenError("the API key's X-Amz-Date is not a YYYYMMDDTHHMMSSZ timestamp")
    if not amz_date.startswith(scope_date):
        raise TokenError("the API key's credential scope date does not match its X-Amz-Date")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        raise TokenError("the API key's X-Amz-Date is not a valid date and time") from None

    try:
        lifetime = int(query.get("X-Amz-Expires", ""))
    except ValueError:
        raise TokenError("the API key's X-Amz-Expires is not a number of seconds") from None
    if not 1 <= lifetime <= MAX_TOKEN_LIFETIME_SECONDS:
        raise TokenError(f"the API key's X-Amz-Expires must be between 1 and {MAX_TOKEN_LIFETIME_SECONDS} seconds")

    return BearerToken(access_key_id=access_key_id, region=region, signed_at=signed_at, lifetime_seconds=lifetime)


def validate_bearer_token(
    token: str, *, region: str, now: datetime, session_expiries: Mapping[str, datetime]
) -> BearerToken:
    """Check a key for use in ``region`` at ``now``, raising TokenError when it is invalid or expired.

    ``session_expiries`` maps an access key id to the end of its signing session. A key stops working
    when its session ends, even if X-Amz-Expires would allow more.
    """
    parsed = parse_bearer_token(token)
    if parsed.region != region:
        raise TokenError(f"the API key is signed for region {parsed.region}, but this endpoint is in {region}")
    if parsed.signed_at > now + ALLOWED_CLOCK_SKEW:
        raise TokenError("the API key's X-Amz-Date is in the future")
    if now >= parsed.expires_at:
        raise TokenError(f"the API key expired at {parsed.expires_at.isoformat()}")
    session_expiry = session_expiries.get(parsed.access_key_id)
    if session_expiry is not None and now >= session_expiry:
        raise TokenError(f"the session that signed the API key expired at {session_expiry.isoformat()}")
    return parsed
