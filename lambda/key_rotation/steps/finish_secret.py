"""finishSecret: move AWSCURRENT to the token's version and remove AWSPENDING from it."""

from __future__ import annotations

import logging

from key_rotation.dependencies import RotationDependencies
from key_rotation.secret_versions import AWSCURRENT, AWSPENDING, find_version_with_stage

logger = logging.getLogger(__name__)


def run(dependencies: RotationDependencies, secret_id: str, token: str) -> bool:
    """Make the token's version AWSCURRENT and return whether this call moved the label.

    Secrets Manager then moves AWSPREVIOUS to the version that lost AWSCURRENT.
    """
    secretsmanager = dependencies.secretsmanager
    metadata = secretsmanager.describe_secret(SecretId=secret_id)
    current_version = find_version_with_stage(metadata, AWSCURRENT)
    if current_version == token:
        logger.info("finishSecret: version %s of secret %s is already AWSCURRENT", token, secret_id)
        return False

    move_request = {"SecretId": secret_id, "VersionStage": AWSCURRENT, "MoveToVersionId": token}
    if current_version is not None:
        move_request["RemoveFromVersionId"] = current_version
    secretsmanager.update_secret_version_stage(**move_request)

    # Removing AWSPENDING, as the AWS rotation template does, leaves the secret ready for the next
    # RotateSecret. The version has the label: run_rotation_step runs this step only for an AWSPENDING
    # version. A retry after the move is a no-op there, because the version is AWSCURRENT by then, and
    # AWSPENDING on the AWSCURRENT version counts as finished.
    secretsmanager.update_secret_version_stage(SecretId=secret_id, VersionStage=AWSPENDING, RemoveFromVersionId=token)
    logger.info(
        "finishSecret: version %s of secret %s is now AWSCURRENT (previous AWSCURRENT: %s)",
        token,
        secret_id,
        current_version,
    )
    return True
