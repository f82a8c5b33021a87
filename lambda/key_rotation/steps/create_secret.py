"""createSecret: issue a key and store it in the token's AWSPENDING version.

In short-term mode the key is signed by a key-issuer role session; in long-term mode it is a new
IAM service-specific credential. A retried step finds the key already stored and keeps it, unless
the key has less than MIN_KEY_VALIDITY_SECONDS left: then the step fails, and the rotation ends
with AWSPENDING removed so that the next rotation issues a fresh key.
"""

from __future__ import annotations

import logging

from bedrock_key import ApiKeySecret, MalformedSecretError
from key_rotation.config import KeyMode
from key_rotation.dependencies import RotationDependencies
from key_rotation.errors import PendingKeyExpiringError
from key_rotation.key_issuer import assume_key_issuer_role, mint_api_key, role_session_name
from key_rotation.long_term_keys import KeysInUse, issue_long_term_key
from key_rotation.secret_versions import AWSCURRENT, AWSPENDING, AWSPREVIOUS, read_pending_value

logger = logging.getLogger(__name__)


def run(dependencies: RotationDependencies, secret_id: str, token: str) -> None:
    """Store a new key in the AWSPENDING version, unless that version already contains one (a retried step)."""
    pending_value = read_pending_value(dependencies.secretsmanager, secret_id, token)
    if pending_value is not None:
        existing = _parse_or_none(pending_value)
        if existing is None:
            # On moto the version contains a placeholder in place of Secrets Manager's empty value.
            logger.info("createSecret: version %s of secret %s contains no key yet", token, secret_id)
        else:
            _check_still_valid(dependencies, secret_id, token, existing)
            logger.info(
                "createSecret: version %s of secret %s already contains a key (expires_at %s); nothing to do",
                token,
                secret_id,
                existing.expires_at.isoformat(),
            )
            return

    if dependencies.config.key_mode is KeyMode.LONG_TERM:
        key_secret = _issue_long_term_key(dependencies, secret_id)
    else:
        key_secret = _mint_short_term_key(dependencies, token)

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


def _mint_short_term_key(dependencies: RotationDependencies, token: str) -> ApiKeySecret:
    config = dependencies.config
    session = assume_key_issuer_role(
        dependencies.sts,
        role_arn=config.key_issuer_role_arn,
        session_name=role_session_name(config.function_name, token),
        duration_seconds=config.key_session_seconds,
    )
    return mint_api_key(session, region=dependencies.region, issued_at=dependencies.clock())


def _issue_long_term_key(dependencies: RotationDependencies, secret_id: str) -> ApiKeySecret:
    config = dependencies.config
    keys_in_use = KeysInUse(
        current=_read_stage(dependencies, secret_id, AWSCURRENT),
        previous=_read_stage(dependencies, secret_id, AWSPREVIOUS),
    )
    return issue_long_term_key(
        dependencies.iam,
        user_name=config.long_term_user_name,
        age_days=config.long_term_key_age_days,
        keys_in_use=keys_in_use,
        retire_after_seconds=config.retire_after_seconds,
        now=dependencies.clock(),
    )


def _read_stage(dependencies: RotationDependencies, secret_id: str, stage: str) -> ApiKeySecret | None:
    """Return the key document with ``stage``, or None when there is none or it contains no key (the deployment placeholder)."""
    secretsmanager = dependencies.secretsmanager
    try:
        response = secretsmanager.get_secret_value(SecretId=secret_id, VersionStage=stage)
    except secretsmanager.exceptions.ResourceNotFoundException:
        return None
    return _parse_or_none(response.get("SecretString"))


def _parse_or_none(secret_string: str | None) -> ApiKeySecret | None:
    if secret_string is None:
        return None
    try:
        return ApiKeySecret.from_json(secret_string)
    except MalformedSecretError:
        return None


def _check_still_valid(dependencies: RotationDependencies, secret_id: str, token: str, existing: ApiKeySecret) -> None:
    seconds_left = existing.seconds_left(dependencies.clock())
    minimum = dependencies.config.min_key_validity_seconds
    if seconds_left < minimum:
        raise PendingKeyExpiringError(
            f"the key stored in version {token} of secret {secret_id} by an earlier attempt has {seconds_left:.0f} s "
            f"of validity left (expires_at {existing.expires_at.isoformat()}), less than MIN_KEY_VALIDITY_SECONDS="
            f"{minimum}; the version is abandoned so that the next rotation issues a new key"
        )
