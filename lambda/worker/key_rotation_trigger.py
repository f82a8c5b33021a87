"""The worker-side rotation trigger: requests a new API key from Secrets Manager, single-flight across the pool.

Every worker that requests one within the same window of ``min_interval_seconds`` while the same version is
AWSCURRENT sends RotateSecret with the same ClientRequestToken, a UUID derived from the secret,
that version and the window. Secrets Manager makes the token the new version's id, so the pool
creates at most one version per window however many workers ask at once. A request while
another rotation is unfinished gets InvalidRequestException, which means someone else is already
rotating. With the stack's window equal to the rotation interval, the schedule and the workers
together add at most two versions per interval.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import datetime
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError

logger = logging.getLogger(__name__)

# Fixed namespace of the derived ClientRequestTokens, so every worker derives the same token.
TOKEN_NAMESPACE = uuid.UUID("5d0b3a3e-7c1f-4a53-9d8e-2f6f0c9b1a47")
ROTATION_IN_PROGRESS_CODE = "InvalidRequestException"


def rotation_token(secret_arn: str, current_version_id: str, window: int) -> str:
    """Return the ClientRequestToken every worker uses for this secret, AWSCURRENT version and window."""
    return str(uuid.uuid5(TOKEN_NAMESPACE, f"{secret_arn}|{current_version_id}|{window}"))


class RotationTrigger:
    """Sends RotateSecret for the API key secret, at most once per window and AWSCURRENT version in this process."""

    def __init__(
        self, secrets_client: Any, secret_arn: str, min_interval_seconds: float, clock: Callable[[], datetime]
    ) -> None:
        if min_interval_seconds <= 0:
            raise ValueError(f"min_interval_seconds is {min_interval_seconds}; it must be positive")
        self._secrets_client = secrets_client
        self._secret_arn = secret_arn
        self._min_interval_seconds = min_interval_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._last_request: tuple[str, int] | None = None

    def request_rotation(self, current_version_id: str, reason: str) -> bool:
        """Ask for a rotation because of ``reason``; return whether RotateSecret accepted a request from this call."""
        window = int(self._clock().timestamp() // self._min_interval_seconds)
        with self._lock:
            if self._last_request == (current_version_id, window):
                return False
            self._last_request = (current_version_id, window)

        token = rotation_token(self._secret_arn, current_version_id, window)
        # NOTE: the RotateSecret reference does not say how it handles a token that is already a version id.
        # It may fail or run a no-op rotation, and in both cases no second version can get that id. Not tried
        # against AWS.
        try:
            self._secrets_client.rotate_secret(SecretId=self._secret_arn, ClientRequestToken=token)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == ROTATION_IN_PROGRESS_CODE:
                logger.info(
                    "rotation of %s not requested (%s): a rotation is already in progress: %s",
                    self._secret_arn,
                    reason,
                    error,
                )
            else:
                logger.error("requesting a rotation of %s (%s) failed: %s", self._secret_arn, reason, error)
            return False
        except BotoCoreError as error:
            logger.error("requesting a rotation of %s (%s) failed: %s", self._secret_arn, reason, error)
            return False
        logger.warning(
            "requested a rotation of %s as version %s because %s (AWSCURRENT version %s)",
            self._secret_arn,
            token,
            reason,
            current_version_id,
        )
        return True
