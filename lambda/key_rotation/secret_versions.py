"""Staging-label checks and reads of the secret's versions that the rotation steps share."""

from __future__ import annotations

import logging
from enum import Enum
from typing import Any, Mapping

from key_rotation.errors import RotationNotEnabledError, VersionNotPendingError

logger = logging.getLogger(__name__)

AWSCURRENT = "AWSCURRENT"
AWSPENDING = "AWSPENDING"
AWSPREVIOUS = "AWSPREVIOUS"


class TokenState(Enum):
    """State of the rotation's version before a step runs."""

    PENDING = "pending"
    ALREADY_CURRENT = "already_current"


def check_rotation_request(metadata: Mapping[str, Any], secret_id: str, token: str) -> TokenState:
    """Check a DescribeSecret response before a step, as Secrets Manager requires of a rotation function.

    Raises RotationNotEnabledError when rotation is off, and VersionNotPendingError when the token
    is no version of the secret or a version that is neither AWSCURRENT nor AWSPENDING.
    """
    # moto 5.2.5 omits RotationEnabled until RotateSecret was called, so a missing field counts as off.
    if not metadata.get("RotationEnabled", False):
        raise RotationNotEnabledError(
            f"secret {secret_id} does not have rotation enabled; configure a rotation schedule with this function"
        )

    versions = metadata.get("VersionIdsToStages", {})
    if token not in versions:
        raise VersionNotPendingError(
            f"ClientRequestToken {token} is not a version of secret {secret_id}; start a rotation with RotateSecret"
        )
    stages = versions[token]
    if AWSCURRENT in stages:
        return TokenState.ALREADY_CURRENT
    if AWSPENDING not in stages:
        raise VersionNotPendingError(
            f"version {token} of secret {secret_id} has stages {sorted(stages)} but not AWSPENDING; "
            "its rotation was finished or abandoned, so start a new rotation with RotateSecret"
        )
    return TokenState.PENDING


def find_version_with_stage(metadata: Mapping[str, Any], stage: str) -> str | None:
    """Return the version id that carries ``stage``, or None."""
    for version_id, stages in metadata.get("VersionIdsToStages", {}).items():
        if stage in stages:
            return version_id
    return None


def read_pending_value(secretsmanager: Any, secret_id: str, token: str) -> str | None:
    """Return the SecretString of the token's AWSPENDING version, or None when the version has no value yet.

    Secrets Manager creates the AWSPENDING version without a value, and GetSecretValue then
    raises ResourceNotFoundException.
    """
    try:
        response = secretsmanager.get_secret_value(SecretId=secret_id, VersionId=token, VersionStage=AWSPENDING)
    except secretsmanager.exceptions.ResourceNotFoundException:
        return None
    return response.get("SecretString")


def abandon_pending_version(secretsmanager: Any, secret_id: str, token: str) -> bool:
    """Remove AWSPENDING from the token's version unless it is AWSCURRENT; return whether a label was removed.

    Secrets Manager requires a rotation to end with AWSPENDING on the AWSCURRENT version or on no
    version, because RotateSecret refuses to start while AWSPENDING is anywhere else.
    """
    stages = secretsmanager.describe_secret(SecretId=secret_id).get("VersionIdsToStages", {}).get(token, [])
    if AWSPENDING not in stages or AWSCURRENT in stages:
        return False
    secretsmanager.update_secret_version_stage(SecretId=secret_id, VersionStage=AWSPENDING, RemoveFromVersionId=token)
    logger.warning("abandoned version %s of secret %s: removed AWSPENDING", token, secret_id)
    return True


def list_versions(secretsmanager: Any, secret_id: str) -> list[Mapping[str, Any]]:
    """Return every labelled version with VersionId, VersionStages and CreatedDate (ListSecretVersionIds)."""
    versions: list[Mapping[str, Any]] = []
    request = {"SecretId": secret_id}
    while True:
        response = secretsmanager.list_secret_version_ids(**request)
        versions.extend(response.get("Versions", []))
        next_token = response.get("NextToken")
        if not next_token:
            return versions
        request["NextToken"] = next_token
