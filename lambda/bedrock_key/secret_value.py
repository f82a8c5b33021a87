"""The JSON document stored in the Bedrock API key secret.

The rotation function writes it and the worker reads it. ``expires_at`` is the end of the
STS session that signed the key, because a SigV4 presigned key stops working when its
signing credentials expire, whatever lifetime the token itself claims.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

FORMAT_VERSION = 1


class MalformedSecretError(ValueError):
    """Raised when the secret string is not a key document this project wrote."""


def _parse_utc(field: str, value: object) -> datetime:
    if not isinstance(value, str):
        raise MalformedSecretError(f"secret field {field!r} must be an ISO 8601 UTC timestamp string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise MalformedSecretError(f"secret field {field!r} is not an ISO 8601 timestamp") from error
    if parsed.tzinfo is None:
        raise MalformedSecretError(f"secret field {field!r} has no time zone; write it in UTC with a 'Z'")
    return parsed.astimezone(timezone.utc)


def _format_utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ApiKeySecret:
    """A short-term Bedrock API key with the expiry of the session that signed it."""

    api_key: str
    expires_at: datetime
    issued_at: datetime
    issued_by: str

    def __repr__(self) -> str:
        # The key never appears in a repr, so a logged object cannot leak it.
        return (
            f"ApiKeySecret(expires_at={_format_utc(self.expires_at)}, "
            f"issued_at={_format_utc(self.issued_at)}, issued_by={self.issued_by!r})"
        )

    def seconds_left(self, now: datetime) -> float:
        """Return the seconds until the key stops working (negative once expired)."""
        return (self.expires_at - now).total_seconds()

    def to_json(self) -> str:
        return json.dumps(
            {
                "format_version": FORMAT_VERSION,
                "api_key": self.api_key,
                "expires_at": _format_utc(self.expires_at),
                "issued_at": _format_utc(self.issued_at),
                "issued_by": self.issued_by,
            }
        )

    @classmethod
    def from_json(cls, secret_string: str) -> "ApiKeySecret":
        """Parse a secret string, raising MalformedSecretError with the field at fault."""
        try:
            document = json.loads(secret_string)
        except (TypeError, ValueError) as error:
            raise MalformedSecretError(
                "secret value is not JSON; it has not been rotated yet or was written by hand. "
                "Run a rotation (aws secretsmanager rotate-secret) to store a key."
            ) from error
        if not isinstance(document, dict):
            raise MalformedSecretError("secret value must be a JSON object")
        if document.get("format_version") != FORMAT_VERSION:
            raise MalformedSecretError(
                f"secret field 'format_version' is {document.get('format_version')!r}, expected {FORMAT_VERSION}; "
                "run a rotation to rewrite the secret"
            )
        api_key = document.get("api_key")
        if not isinstance(api_key, str) or not api_key.startswith("bedrock-api-key-"):
            raise MalformedSecretError("secret field 'api_key' is missing or is not a Bedrock API key")
        issued_by = document.get("issued_by")
        if not isinstance(issued_by, str) or not issued_by:
            raise MalformedSecretError("secret field 'issued_by' is missing")
        return cls(
            api_key=api_key,
            expires_at=_parse_utc("expires_at", document.get("expires_at")),
            issued_at=_parse_utc("issued_at", document.get("issued_at")),
            issued_by=issued_by,
        )
