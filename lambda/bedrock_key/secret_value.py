"""The JSON document stored in the Bedrock API key secret.

The rotation function writes it and the worker reads it. For a short-term key, ``expires_at``
is the end of the STS session that signed the key, because a SigV4 presigned key stops working
when its signing credentials expire, whatever lifetime the token itself claims. For a long-term
key (an IAM service-specific credential), ``expires_at`` is the credential's expiration date and
``credential_id`` names the credential, so the rotation can tell which one is in use.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone

FORMAT_VERSION = 1
SHORT_TERM_KEY_PREFIX = "bedrock-api-key-"
# The prefix, then standard base64 (aws-bedrock-token-generator 1.1.0 uses base64.b64encode). Any
# other character, such as a line break, makes the HTTP client reject the Authorization header and
# quote the whole header, key included, in its error.
_SHORT_TERM_KEY_PATTERN = re.compile(re.escape(SHORT_TERM_KEY_PREFIX) + r"[A-Za-z0-9+/]+={0,2}")
# Timestamps outside these years are rejected, so that adding or subtracting a refresh margin or a
# rotation interval never leaves the range of datetime (years 1 to 9999).
_EARLIEST_YEAR = 2000
_LATEST_YEAR = 9998


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
    try:
        in_utc: datetime | None = parsed.astimezone(timezone.utc)
    except OverflowError:
        in_utc = None
    if in_utc is None or not _EARLIEST_YEAR <= in_utc.year <= _LATEST_YEAR:
        raise MalformedSecretError(
            f"secret field {field!r} is outside the years {_EARLIEST_YEAR} to {_LATEST_YEAR}; "
            "run a rotation to rewrite the secret"
        )
    return in_utc


def _format_utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ApiKeySecret:
    """A Bedrock API key with the moment it stops working and the identity that issued it.

    ``credential_id`` is set for a long-term key only: the ServiceSpecificCredentialId in IAM.
    """

    api_key: str
    expires_at: datetime
    issued_at: datetime
    issued_by: str
    credential_id: str | None = None

    def __repr__(self) -> str:
        # The key never appears in a repr, so a logged object cannot leak it.
        return (
            f"ApiKeySecret(expires_at={_format_utc(self.expires_at)}, "
            f"issued_at={_format_utc(self.issued_at)}, issued_by={self.issued_by!r}, "
            f"credential_id={self.credential_id!r})"
        )

    @property
    def is_long_term(self) -> bool:
        return self.credential_id is not None

    def seconds_left(self, now: datetime) -> float:
        """Return the seconds until the key stops working (negative once expired)."""
        return (self.expires_at - now).total_seconds()

    def to_json(self) -> str:
        document = {
            "format_version": FORMAT_VERSION,
            "api_key": self.api_key,
            "expires_at": _format_utc(self.expires_at),
            "issued_at": _format_utc(self.issued_at),
            "issued_by": self.issued_by,
        }
        if self.credential_id is not None:
            document["credential_id"] = self.credential_id
        return json.dumps(document)

    @classmethod
    def from_json(cls, secret_string: str) -> "ApiKeySecret":
        """Parse a secret string, raising MalformedSecretError with the field at fault."""
        try:
            document = json.loads(secret_string)
        except RecursionError:
            raise MalformedSecretError(
                "secret value nests JSON too deeply to parse; run a rotation (aws secretsmanager rotate-secret) "
                "to store a key"
            ) from None
        except (TypeError, ValueError) as error:
            raise MalformedSecretError(
                "secret value is not JSON; it has not been rotated yet or was written by hand. "
                "Run a rotation (aws secretsmanager rotate-secret) to store a key."
            ) from error

        if not isinstance(document, dict):
            raise MalformedSecretError("secret value must be a JSON object")
        # JSON true equals 1 in Python, so the type is checked too.
        if type(document.get("format_version")) is not int or document.get("format_version") != FORMAT_VERSION:
            raise MalformedSecretError(
                f"secret field 'format_version' is {document.get('format_version')!r}, expected {FORMAT_VERSION}; "
                "run a rotation to rewrite the secret"
            )

        credential_id = document.get("credential_id")
        if credential_id is not None and (not isinstance(credential_id, str) or not credential_id):
            raise MalformedSecretError("secret field 'credential_id' must be a non-empty string when present")
        api_key = document.get("api_key")
        if not _is_api_key(api_key, long_term=credential_id is not None):
            raise MalformedSecretError(
                "secret field 'api_key' is missing or is not a Bedrock API key: a short-term key is "
                f"{SHORT_TERM_KEY_PREFIX!r} followed by base64, a long-term key one token of printable ASCII. "
                "Run a rotation to store a fresh key."
            )

        issued_by = document.get("issued_by")
        if not isinstance(issued_by, str) or not issued_by:
            raise MalformedSecretError("secret field 'issued_by' is missing")
        if not issued_by.isprintable():
            # The worker logs issued_by, so a line break in it would forge log lines.
            raise MalformedSecretError(
                "secret field 'issued_by' contains control characters, but it is the ARN of the identity "
                "that issued the key. Run a rotation to rewrite the secret."
            )

        return cls(
            api_key=api_key,
            expires_at=_parse_utc("expires_at", document.get("expires_at")),
            issued_at=_parse_utc("issued_at", document.get("issued_at")),
            issued_by=issued_by,
            credential_id=credential_id,
        )


def _is_api_key(value: object, *, long_term: bool) -> bool:
    if not isinstance(value, str) or not value:
        return False
    if long_term:
        # NOTE: IAM documents no format for the ServiceCredentialSecret of a Bedrock API key, so a long-term
        # key is only checked to be one token of printable ASCII, as an HTTP bearer token must be.
        return value.isascii() and value.isprintable() and not any(character.isspace() for character in value)
    return _SHORT_TERM_KEY_PATTERN.fullmatch(value) is not None
