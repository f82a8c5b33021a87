"""Fill the local run's API key secret by running the real rotation function against moto server and the emulator.

moto's STS issues the key-issuer session, the function mints the key with its credentials, and
testSecret runs in ``mantle`` mode: it sends ``GET /models`` with the pending key to the emulator.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from gemma_batch.emulator import MantleEmulator, parse_bearer_token
from gemma_batch.local.function_code import add_function_code_to_path
from gemma_batch.local.resources import LocalResources
from gemma_batch.local.rotation_harness import enable_rotation_on_moto, rotate

add_function_code_to_path()

from bedrock_key import ApiKeySecret  # noqa: E402 - needs the function code on the path
from key_rotation.config import RotationConfig  # noqa: E402
from key_rotation.dependencies import RotationDependencies  # noqa: E402
from key_rotation.handler import build_handler  # noqa: E402

logger = logging.getLogger(__name__)

ROTATION_FUNCTION_NAME = "gemma-batch-key-rotation-local"
# The values the stack gives the rotation function with the default key_rotation_interval_minutes
# of 20. Role chaining caps the session at 1 hour, and a pending key must have 30 minutes left.
# NOTE: the local run uses these values whatever key_rotation_interval_minutes cdk.json sets.
KEY_SESSION_SECONDS = 3600
MIN_KEY_VALIDITY_SECONDS = 1800
ROTATION_INTERVAL_SECONDS = 20 * 60


@dataclass(frozen=True)
class RotatedKey:
    """The outcome of one rotation, without the key itself."""

    version_id: str
    expires_at: datetime
    issued_by: str


class LocalKeyRotation:
    """Rotates the local secret with the real rotation handler, bound to the moto clients."""

    def __init__(
        self, clients: Mapping[str, Any], resources: LocalResources, emulator: MantleEmulator, mantle_base_url: str
    ) -> None:
        config = RotationConfig.from_environment(
            {
                "KEY_ISSUER_ROLE_ARN": resources.key_issuer_role_arn,
                "KEY_SESSION_SECONDS": str(KEY_SESSION_SECONDS),
                "MIN_KEY_VALIDITY_SECONDS": str(MIN_KEY_VALIDITY_SECONDS),
                "TEST_SECRET_MODE": "mantle",
                "MANTLE_BASE_URL": mantle_base_url,
                "AWS_LAMBDA_FUNCTION_NAME": ROTATION_FUNCTION_NAME,
            }
        )
        self._secretsmanager = clients["secretsmanager"]
        self._secret_arn = resources.secret_arn
        self._emulator = emulator
        self._handler = build_handler(
            RotationDependencies(config=config, secretsmanager=clients["secretsmanager"], sts=clients["sts"])
        )
        enable_rotation_on_moto(self._secretsmanager, self._secret_arn)

    def rotate(self) -> RotatedKey:
        """Run createSecret, setSecret, testSecret and finishSecret, and return the new AWSCURRENT version.

        The emulator then rejects the new key once its signing session ends, as Bedrock does.
        Raises RotationStepError from the step that failed.
        """
        version_id = rotate(self._secretsmanager, self._secret_arn, handler=self._handler)
        # VersionStage is explicit because moto 5.2.5 returns the old value without it after a stage move.
        secret_string = self._secretsmanager.get_secret_value(SecretId=self._secret_arn, VersionStage="AWSCURRENT")[
            "SecretString"
        ]
        secret = ApiKeySecret.from_json(secret_string)
        self._emulator.set_session_expiry(parse_bearer_token(secret.api_key).access_key_id, secret.expires_at)
        return RotatedKey(version_id=version_id, expires_at=secret.expires_at, issued_by=secret.issued_by)

    def rotate_periodically(
        self, stop: threading.Event, interval_seconds: float = ROTATION_INTERVAL_SECONDS
    ) -> threading.Thread:
        """Start a daemon thread that rotates every ``interval_seconds`` until ``stop`` is set, like the stack's schedule.

        A failed rotation is logged and tried again at the next interval.
        """

        def run() -> None:
            while not stop.wait(interval_seconds):
                try:
                    rotated = self.rotate()
                except Exception:  # noqa: BLE001 - the loop outlives one failed rotation, as the schedule does
                    logger.exception("scheduled rotation of secret %s failed", self._secret_arn)
                    continue
                logger.info(
                    "scheduled rotation stored version %s of secret %s, valid until %s",
                    rotated.version_id,
                    self._secret_arn,
                    rotated.expires_at.isoformat(),
                )

        thread = threading.Thread(target=run, name="key-rotation-schedule", daemon=True)
        thread.start()
        return thread
