"""The Bedrock API key cache: reads the key secret from Secrets Manager and keeps it until it is too close to expiry."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError

from bedrock_key import ApiKeySecret, MalformedSecretError

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class ApiKeyUnavailableError(RuntimeError):
    """Raised when no usable key can be read. The processor then defers the jobs, so they return to the queue."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class ApiKeyCache:
    """Thread-safe cache of the current API key.

    A cached key is used until ``expires_at - refresh_margin``. After that point it is never
    returned, so a key with less than the margin left is never sent. ``refresh_after_rejection``
    re-reads the secret once per rejected key, however many jobs saw the 401 at the same time.
    """

    def __init__(
        self,
        secrets_client: Any,
        secret_arn: str,
        refresh_margin_seconds: float,
        clock: Clock = utc_now,
    ) -> None:
        self._secrets_client = secrets_client
        self._secret_arn = secret_arn
        self._refresh_margin = timedelta(seconds=refresh_margin_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: ApiKeySecret | None = None

    def get(self) -> ApiKeySecret:
        """Return a key that stays valid for at least the refresh margin, reading the secret when needed."""
        with self._lock:
            if self._cached is not None and self._is_usable(self._cached):
                return self._cached
            return self._read_locked()

    def refresh_after_rejection(self, rejected_api_key: str) -> ApiKeySecret:
        """Re-read the secret after Mantle rejected ``rejected_api_key`` with 401 or 403.

        When another thread already replaced that key, the newer cached key is returned without a read.
        """
        with self._lock:
            cached = self._cached
            if cached is not None and cached.api_key != rejected_api_key and self._is_usable(cached):
                return cached
            return self._read_locked()

    def _is_usable(self, secret: ApiKeySecret) -> bool:
        return self._clock() < secret.expires_at - self._refresh_margin

    def _read_locked(self) -> ApiKeySecret:
        self._cached = None
        try:
            response = self._secrets_client.get_secret_value(SecretId=self._secret_arn, VersionStage="AWSCURRENT")
        except (ClientError, BotoCoreError) as error:
            raise ApiKeyUnavailableError(
                f"reading the API key secret {self._secret_arn} failed: {error}. "
                "Check that the secret exists and that the function's role may read it."
            ) from error

        version_id = response.get("VersionId", "unknown")
        secret_string = response.get("SecretString")
        if secret_string is None:
            raise ApiKeyUnavailableError(
                f"the API key secret {self._secret_arn} (version {version_id}) has no SecretString; "
                "run a rotation to store a key"
            )
        try:
            secret = ApiKeySecret.from_json(secret_string)
        except MalformedSecretError as error:
            # MalformedSecretError messages name the field, never its value.
            raise ApiKeyUnavailableError(
                f"the API key secret {self._secret_arn} (version {version_id}) is malformed: {error}"
            ) from None

        seconds_left = secret.seconds_left(self._clock())
        if not self._is_usable(secret):
            raise ApiKeyUnavailableError(
                f"the API key in secret {self._secret_arn} (version {version_id}) expires in {seconds_left:.0f} s, "
                f"less than KEY_REFRESH_MARGIN_SECONDS ({self._refresh_margin.total_seconds():.0f} s). "
                "Run a rotation (aws secretsmanager rotate-secret) and check the rotation schedule."
            )

        logger.info(
            "read API key secret version %s, issued by %s, valid for %.0f s more",
            version_id,
            secret.issued_by,
            seconds_left,
        )
        self._cached = secret
        return secret
