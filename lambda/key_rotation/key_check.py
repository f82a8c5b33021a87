"""The key check, run every few minutes by a schedule: report the current key's validity and unblock rotation.

The event is ``{"Action": "CheckKey", "SecretId": "<secret ARN>"}``. The check

- writes ``ApiKeyValiditySeconds``, the seconds until the AWSCURRENT key stops working (0 when the
  secret contains no valid key), which the key validity alarm reads whether or not jobs run;
- abandons an AWSPENDING version older than STALE_PENDING_SECONDS. Such a rotation stopped without
  cleaning up (for example at the function timeout), and RotateSecret refuses every new rotation
  while it is there. Each abandoned version counts as a failed rotation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

from bedrock_key import ApiKeySecret, MalformedSecretError
from key_rotation.dependencies import RotationDependencies
from key_rotation.errors import InvalidRotationEventError
from key_rotation.secret_versions import AWSCURRENT, AWSPENDING, abandon_pending_version, list_versions

logger = logging.getLogger(__name__)

CHECK_ACTION = "CheckKey"


@dataclass(frozen=True)
class KeyCheckResult:
    """Result of one check: the current key's validity in seconds and the versions it abandoned."""

    validity_seconds: float
    abandoned_versions: list[str] = field(default_factory=list)


def is_key_check_event(event: Any) -> bool:
    return isinstance(event, Mapping) and event.get("Action") == CHECK_ACTION


def secret_id_of(event: Mapping[str, Any]) -> str:
    secret_id = event.get("SecretId")
    if not isinstance(secret_id, str) or not secret_id:
        raise InvalidRotationEventError(
            f"the {CHECK_ACTION} event has no 'SecretId'; send {{\"Action\": \"{CHECK_ACTION}\", \"SecretId\": \"<ARN>\"}}"
        )
    return secret_id


def run_key_check(dependencies: RotationDependencies, secret_id: str) -> KeyCheckResult:
    now = dependencies.clock()
    abandoned = _abandon_stale_pending(dependencies, secret_id, now)
    validity = _current_key_validity(dependencies, secret_id, now)
    logger.info(
        "key check of secret %s: AWSCURRENT key valid for %.0f s more, %d stale pending versions abandoned",
        secret_id,
        validity,
        len(abandoned),
    )
    return KeyCheckResult(validity_seconds=validity, abandoned_versions=abandoned)


def _abandon_stale_pending(dependencies: RotationDependencies, secret_id: str, now: datetime) -> list[str]:
    abandoned = []
    limit = dependencies.config.stale_pending_seconds
    # DescribeSecret is the cheaper call; versions are listed with their dates only when a rotation is unfinished.
    stages_by_version = dependencies.secretsmanager.describe_secret(SecretId=secret_id).get("VersionIdsToStages", {})
    if not any(AWSPENDING in stages and AWSCURRENT not in stages for stages in stages_by_version.values()):
        return abandoned
    for version in list_versions(dependencies.secretsmanager, secret_id):
        stages = version.get("VersionStages", [])
        if AWSPENDING not in stages or AWSCURRENT in stages:
            continue
        age = _pending_age_seconds(dependencies, secret_id, version, now)
        if age < limit:
            continue
        version_id = version["VersionId"]
        logger.error(
            "key check: version %s of secret %s has had AWSPENDING for %.0f s, at least STALE_PENDING_SECONDS=%d; "
            "its rotation stopped without cleaning up, so AWSPENDING is removed to let the next rotation start",
            version_id,
            secret_id,
            age,
            limit,
        )
        if abandon_pending_version(dependencies.secretsmanager, secret_id, version_id):
            abandoned.append(version_id)
    return abandoned


def _pending_age_seconds(
    dependencies: RotationDependencies, secret_id: str, version: Mapping[str, Any], now: datetime
) -> float:
    """Return the age of a pending version from the older of its CreatedDate and its key's issued_at.

    moto 5.2.5 reports every version as created at the moment of the listing, so the key's issued_at
    is what ages a pending version there.
    """
    created = version.get("CreatedDate")
    oldest = created.astimezone(timezone.utc) if isinstance(created, datetime) else now
    secretsmanager = dependencies.secretsmanager
    try:
        response = secretsmanager.get_secret_value(
            SecretId=secret_id, VersionId=version["VersionId"], VersionStage=AWSPENDING
        )
        oldest = min(oldest, ApiKeySecret.from_json(response.get("SecretString") or "").issued_at)
    except (secretsmanager.exceptions.ResourceNotFoundException, MalformedSecretError):
        pass  # Secrets Manager's pending version has no value until createSecret stores the key.
    return (now - oldest).total_seconds()


def _current_key_validity(dependencies: RotationDependencies, secret_id: str, now: datetime) -> float:
    secretsmanager = dependencies.secretsmanager
    try:
        response = secretsmanager.get_secret_value(SecretId=secret_id, VersionStage=AWSCURRENT)
        current = ApiKeySecret.from_json(response.get("SecretString") or "")
    except secretsmanager.exceptions.ResourceNotFoundException:
        logger.error("key check: secret %s has no AWSCURRENT value; reporting 0 s of validity", secret_id)
        return 0.0
    except MalformedSecretError as error:
        # The message names the field at fault, never its value.
        logger.error("key check: the AWSCURRENT value of secret %s is malformed (%s); reporting 0 s", secret_id, error)
        return 0.0
    return max(0.0, current.seconds_left(now))
