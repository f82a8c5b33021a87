"""Two-slot rotation of long-term Bedrock API keys: IAM service-specific credentials of one IAM user.

IAM allows at most two service-specific credentials per user and service (botocore 1.44 IAM model,
CreateServiceSpecificCredential). One slot has the AWSCURRENT key, which workers use. Before it
creates a key, the rotation deletes the oldest credential that AWSCURRENT does not use, which is
normally the AWSPREVIOUS key. Workers re-read the secret at least every ``KEY_CACHE_SECONDS``, so
the AWSPREVIOUS key is deleted only once AWSCURRENT has been current for ``retire_after_seconds``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from botocore.exceptions import BotoCoreError, ClientError

from bedrock_key import ApiKeySecret
from key_rotation.errors import LongTermKeyError

logger = logging.getLogger(__name__)

BEDROCK_SERVICE_NAME = "bedrock.amazonaws.com"
MAX_CREDENTIALS_PER_SERVICE = 2


@dataclass(frozen=True)
class KeysInUse:
    """The keys that workers may hold: AWSCURRENT's, and AWSPREVIOUS's until it is retired."""

    current: ApiKeySecret | None
    previous: ApiKeySecret | None


def issue_long_term_key(
    iam: Any,
    *,
    user_name: str,
    age_days: int,
    keys_in_use: KeysInUse,
    retire_after_seconds: float,
    now: datetime,
) -> ApiKeySecret:
    """Free a slot if both are taken, create a credential valid for ``age_days`` and return it as a key document.

    Raises LongTermKeyError when the only credential that could be deleted is the AWSPREVIOUS key and
    AWSCURRENT became current less than ``retire_after_seconds`` ago, or when an IAM call fails.
    """
    credentials = _list_credentials(iam, user_name)
    current_id = keys_in_use.current.credential_id if keys_in_use.current else None
    while len(credentials) >= MAX_CREDENTIALS_PER_SERVICE:
        deletable = [item for item in credentials if item["ServiceSpecificCredentialId"] != current_id]
        oldest = min(deletable, key=lambda item: item["CreateDate"])
        _check_retired(oldest["ServiceSpecificCredentialId"], keys_in_use, retire_after_seconds, now)
        _delete_credential(iam, user_name, oldest["ServiceSpecificCredentialId"])
        credentials.remove(oldest)

    try:
        response = iam.create_service_specific_credential(
            UserName=user_name, ServiceName=BEDROCK_SERVICE_NAME, CredentialAgeDays=age_days
        )
    except (ClientError, BotoCoreError) as error:
        raise LongTermKeyError(
            f"CreateServiceSpecificCredential for IAM user {user_name} failed: {error}. Check that the rotation "
            "role may call iam:CreateServiceSpecificCredential on this user."
        ) from error

    credential = response["ServiceSpecificCredential"]
    expires_at = credential.get("ExpirationDate") or now + timedelta(days=age_days)
    logger.info(
        "created service-specific credential %s for IAM user %s, expires_at %s",
        credential["ServiceSpecificCredentialId"],
        user_name,
        expires_at.isoformat(),
    )
    return ApiKeySecret(
        api_key=credential["ServiceCredentialSecret"],
        expires_at=expires_at.astimezone(timezone.utc),
        issued_at=now,
        issued_by=credential.get("UserName", user_name),
        credential_id=credential["ServiceSpecificCredentialId"],
    )


def _list_credentials(iam: Any, user_name: str) -> list[Mapping[str, Any]]:
    try:
        response = iam.list_service_specific_credentials(UserName=user_name, ServiceName=BEDROCK_SERVICE_NAME)
    except (ClientError, BotoCoreError) as error:
        raise LongTermKeyError(
            f"ListServiceSpecificCredentials for IAM user {user_name} failed: {error}. Check that the user exists "
            "and that the rotation role may call iam:ListServiceSpecificCredentials on it."
        ) from error
    return list(response.get("ServiceSpecificCredentials", []))


def _check_retired(credential_id: str, keys_in_use: KeysInUse, retire_after_seconds: float, now: datetime) -> None:
    previous, current = keys_in_use.previous, keys_in_use.current
    if previous is None or previous.credential_id != credential_id or current is None:
        return
    current_for = (now - current.issued_at).total_seconds()
    if current_for < retire_after_seconds:
        raise LongTermKeyError(
            f"both credential slots are taken and the other one, {credential_id}, is the AWSPREVIOUS key, which "
            f"workers may still hold: AWSCURRENT has been current for {current_for:.0f} s, less than "
            f"{retire_after_seconds:.0f} s. Rotate again after that time."
        )


def _delete_credential(iam: Any, user_name: str, credential_id: str) -> None:
    try:
        iam.delete_service_specific_credential(UserName=user_name, ServiceSpecificCredentialId=credential_id)
    except (ClientError, BotoCoreError) as error:
        raise LongTermKeyError(
            f"DeleteServiceSpecificCredential {credential_id} of IAM user {user_name} failed: {error}"
        ) from error
    logger.info("deleted service-specific credential %s of IAM user %s to free a slot", credential_id, user_name)
