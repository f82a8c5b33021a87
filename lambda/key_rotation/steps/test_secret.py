"""testSecret: check the pending key's remaining validity, then check it against Mantle or only its format.

A pending key with less than MIN_KEY_VALIDITY_SECONDS left fails the step. Like every failed step,
that abandons the version (``key_rotation.rotation`` removes AWSPENDING from it), so Secrets
Manager's retries of this rotation fail fast and the next RotateSecret starts a fresh rotation.
"""

from __future__ import annotations

import logging

from bedrock_key import ApiKeySecret, MalformedSecretError
from key_rotation.config import KeyCheckMode
from key_rotation.dependencies import RotationDependencies
from key_rotation.errors import PendingKeyExpiringError, PendingKeyInvalidError
from key_rotation.mantle_check import check_api_key
from key_rotation.secret_versions import read_pending_value

logger = logging.getLogger(__name__)


def run(dependencies: RotationDependencies, secret_id: str, token: str) -> None:
    """Raise unless the pending key is valid long enough and passes the TEST_SECRET_MODE check."""
    config = dependencies.config
    pending = _read_pending_key(dependencies, secret_id, token)

    seconds_left = pending.seconds_left(dependencies.clock())
    if seconds_left < config.min_key_validity_seconds:
        raise PendingKeyExpiringError(
            f"the pending key in version {token} of secret {secret_id} has {seconds_left:.0f} s of validity left "
            f"(expires_at {pending.expires_at.isoformat()}), less than MIN_KEY_VALIDITY_SECONDS="
            f"{config.min_key_validity_seconds}; the version is abandoned so that the next rotation mints a new key"
        )

    if config.key_check_mode is KeyCheckMode.MANTLE:
        check_api_key(config.mantle_base_url, pending.api_key, config.mantle_timeout_seconds)
    logger.info(
        "testSecret: the key in version %s of secret %s passed the %s check with %.0f s of validity left",
        token,
        secret_id,
        config.key_check_mode.value,
        seconds_left,
    )


def _read_pending_key(dependencies: RotationDependencies, secret_id: str, token: str) -> ApiKeySecret:
    pending_value = read_pending_value(dependencies.secretsmanager, secret_id, token)
    if pending_value is None:
        raise PendingKeyInvalidError(
            f"version {token} of secret {secret_id} has no value; createSecret must run before testSecret"
        )
    try:
        return ApiKeySecret.from_json(pending_value)
    except MalformedSecretError as error:
        raise PendingKeyInvalidError(f"version {token} of secret {secret_id} holds no valid key: {error}") from error

