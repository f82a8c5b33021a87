"""createSecret: mint a key with the key-issuer role and store it in the token's AWSPENDING version."""

from __future__ import annotations

import logging

from bedrock_key import ApiKeySecret, MalformedSecretError
from key_rotation.dependencies import RotationDependencies
from key_rotation.key_issuer import assume_key_issuer_role, mint_api_key, role_session_name
from key_rotation.secret_versions import AWSPENDING, read_pending_value

logger = logging.getLogger(__name__)


def run(dependencies: RotationDependencies, secret_id: str, token: str) -> None:
    """Store a new key in the AWSPENDING version, unless that version already contains one (a retried step)."""
    pending_value = read_pending_value(dependencies.secretsmanager, secret_id, token)
    if pending_value is not None:
        try:
            existing = ApiKeySecret.from_json(pending_value)
        except MalformedSecretError:
            # On moto the version contains a placeholder in place of Secrets Manager's empty value.
            logger.info("createSecret: version %s of secret %s contains no key yet", token, secret_id)
        else:
            logger.info(
                "createSecret: version %s of secret %s already contains a key (expires_at %s); nothing to do",
                token,
                secret_id,
                existing.expires_at.isoformat(),
            )
            return

    config = dependencies.config
    session = assume_key_issuer_role(
        dependencies.sts,
        role_arn=config.key_issuer_role_arn,
        session_name=role_session_name(config.function_name, token),
        duration_seconds=config.key_session_seconds,
    )
    key_secret = mint_api_key(session, region=dependencies.region, issued_at=dependencies.clock())

    dependencies.secretsmanager.put_secret_value(
        SecretId=secret_id,
        ClientRequestToken=token,
        SecretString=key_secret.to_json(),
        VersionStages=[AWSPENDING],
    )
    logger.info(
        "createSecret: stored a new key in version %s of secret %s, issued by %s, expires_at %s",
        token,
        secret_id,
        key_secret.issued_by,
        key_secret.expires_at.isoformat(),
    )
