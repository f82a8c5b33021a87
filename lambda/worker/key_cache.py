"""The Bedrock API key cache: reads the key secret from Secrets Manager and keeps it until it is too close to expiry.

Options come from environment variables that the stack sets (see ``KeyCacheOptions``):

- KEY_CACHE_SECONDS: re-read AWSCURRENT at least this often, so a rotated key is picked up and a
  long-term key that lost AWSCURRENT is dropped. Unset means "only at the refresh margin".
- KEY_ROTATION_TRIGGER_SECONDS: when a read finds an AWSCURRENT key with less validity than this,
  the worker requests a rotation (``worker.key_rotation_trigger``). Unset turns the trigger off.
- KEY_ROTATION_MIN_INTERVAL_SECONDS: the window of the trigger's single-flight token.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping

from botocore.exceptions import BotoCoreError, ClientError

from bedrock_key import ApiKeySecret, MalformedSecretError
from worker.key_rotation_trigger import RotationTrigger

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]

DEFAULT_ROTATION_MIN_INTERVAL_SECONDS = 1200.0


class ApiKeyUnavailableError(RuntimeError):
    """Raised when no usable key can be read. The processor then defers the jobs, so they return to the queue."""


class KeyCacheSettingsError(ValueError):
    """Raised when a key cache environment variable is invalid; the message names it."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class KeyCacheOptions:
    """Re-read period and rotation trigger settings of the cache; None turns a feature off."""

    cache_seconds: float | None = None
    rotation_trigger_seconds: float | None = None
    rotation_min_interval_seconds: float = DEFAULT_ROTATION_MIN_INTERVAL_SECONDS

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> "KeyCacheOptions":
        environ = os.environ if environ is None else environ
        interval = _seconds(environ, "KEY_ROTATION_MIN_INTERVAL_SECONDS")
        return cls(
            cache_seconds=_seconds(environ, "KEY_CACHE_SECONDS"),
            rotation_trigger_seconds=_seconds(environ, "KEY_ROTATION_TRIGGER_SECONDS"),
            rotation_min_interval_seconds=DEFAULT_ROTATION_MIN_INTERVAL_SECONDS if interval is None else interval,
        )


def _seconds(environ: Mapping[str, str], name: str) -> float | None:
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise KeyCacheSettingsError(f"environment variable {name} is {raw!r}; expected a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise KeyCacheSettingsError(f"environment variable {name} is {raw!r}; expected a positive number of seconds")
    return value


class ApiKeyCache:
    """Thread-safe cache of the current API key.

    A cached key is used until ``expires_at - refresh_margin``. After that point it is never
    returned, so a key with less than the margin left is never sent. ``refresh_after_rejection``
    re-reads the secret once per rejected key, however many jobs saw the 401 at the same time.
    ``options`` defaults to ``KeyCacheOptions.from_environ()``.
    """

    def __init__(
        self,
        secrets_client: Any,
        secret_arn: str,
        refresh_margin_seconds: float,
        clock: Clock = utc_now,
        options: KeyCacheOptions | None = None,
    ) -> None:
        options = KeyCacheOptions.from_environ() if options is None else options
        self._secrets_client = secrets_client
        self._secret_arn = secret_arn
        self._refresh_margin = timedelta(seconds=refresh_margin_seconds)
        self._clock = clock
        self._options = options
        self._trigger = (
            RotationTrigger(secrets_client, secret_arn, options.rotation_min_interval_seconds, clock)
            if options.rotation_trigger_seconds is not None
            else None
        )
        self._lock = threading.Lock()
        self._cached: ApiKeySecret | None = None
        self._cached_version_id = ""
        self._read_at: datetime | None = None

    def get(self) -> ApiKeySecret:
        """Return a key that stays valid for at least the refresh margin, reading the secret when needed."""
        with self._lock:
            now = self._clock()
            cached = self._cached
            if cached is None or not self._is_usable(cached, now):
                return self._read_locked(now)
            if not self._is_due_for_reread(now):
                return cached
            try:
                return self._read_locked(now)
            except ApiKeyUnavailableError as error:
                # The cached key is still usable, so jobs go on with it; the next read is one cache period away.
                logger.warning(
                    "re-reading the API key secret failed, so the cached key (valid for %.0f s more) stays in use: %s",
                    cached.seconds_left(now),
                    error,
                )
                self._cached, self._read_at = cached, now
                return cached

    def refresh_after_rejection(self, rejected_api_key: str) -> ApiKeySecret:
        """Re-read the secret after Mantle rejected ``rejected_api_key`` with 401 or 403.

        When another thread already replaced that key, the newer cached key is returned without a read.
        When the secret still contains the rejected key, a rotation is requested (if the trigger is on).
        """
        with self._lock:
            now = self._clock()
            cached = self._cached
            if cached is not None and cached.api_key != rejected_api_key and self._is_usable(cached, now):
                return cached
            secret = self._read_locked(now)
            if secret.api_key == rejected_api_key and self._trigger is not None:
                self._trigger.request_rotation(
                    self._cached_version_id, "Mantle rejected the AWSCURRENT key with 401 or 403"
                )
            return secret

    def _is_usable(self, secret: ApiKeySecret, now: datetime) -> bool:
        return now < secret.expires_at - self._refresh_margin

    def _is_due_for_reread(self, now: datetime) -> bool:
        cache_seconds = self._options.cache_seconds
        return cache_seconds is not None and (
            self._read_at is None or (now - self._read_at).total_seconds() >= cache_seconds
        )

    def _read_locked(self, now: datetime) -> ApiKeySecret:
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

        seconds_left = secret.seconds_left(now)
        self._request_rotation_if_expiring(version_id, seconds_left)
        if not self._is_usable(secret, now):
            validity = (
                f"expired {-seconds_left:.0f} s ago"
                if seconds_left <= 0
                else f"expires in {seconds_left:.0f} s, less than KEY_REFRESH_MARGIN_SECONDS "
                f"({self._refresh_margin.total_seconds():.0f} s)"
            )
            raise ApiKeyUnavailableError(
                f"the API key in secret {self._secret_arn} (version {version_id}) {validity}. "
                "Run a rotation (aws secretsmanager rotate-secret) and check the rotation schedule."
            )

        logger.info(
            "read API key secret version %s, issued by %s, valid for %.0f s more",
            version_id,
            secret.issued_by,
            seconds_left,
        )
        self._cached, self._cached_version_id, self._read_at = secret, version_id, now
        return secret

    def _request_rotation_if_expiring(self, version_id: str, seconds_left: float) -> None:
        threshold = self._options.rotation_trigger_seconds
        if self._trigger is None or threshold is None:
            return
        if seconds_left < max(threshold, self._refresh_margin.total_seconds()):
            self._trigger.request_rotation(
                version_id,
                f"the AWSCURRENT key expires in {seconds_left:.0f} s, less than KEY_ROTATION_TRIGGER_SECONDS "
                f"({threshold:.0f} s)",
            )
