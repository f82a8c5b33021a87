"""The key cache's periodic re-read (KEY_CACHE_SECONDS): it follows a rotation and survives a failed read."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from bedrock_key import ApiKeySecret
from worker.key_cache import ApiKeyCache, ApiKeyUnavailableError, KeyCacheOptions

KEY_A = "bedrock-api-key-QUFBQUFBQUFBQUFBQUFBQQ=="
KEY_B = "bedrock-api-key-QkJCQkJCQkJCQkJCQkJCQg=="
OPTIONS = KeyCacheOptions(cache_seconds=300)


def secret_value(api_key: str, expires_at: datetime) -> str:
    return ApiKeySecret(
        api_key=api_key,
        expires_at=expires_at,
        issued_at=expires_at - timedelta(hours=1),
        issued_by="arn:aws:sts::123456789012:assumed-role/key-issuer/rotation",
    ).to_json()


class FailingReads:
    """Makes the client's GetSecretValue calls fail while ``failing`` is set, through botocore's event hooks."""

    def __init__(self, client: Any) -> None:
        self.failing = False
        client.meta.events.register("before-parameter-build.secrets-manager.GetSecretValue", self._maybe_fail)

    def _maybe_fail(self, **_: Any) -> None:
        if self.failing:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")


def test_rotated_key_is_picked_up_after_cache_period(secrets_client, clock, new_secret_name):
    # GIVEN a cached key A that is valid for an hour, and a rotation that stores key B
    arn = secrets_client.create_secret(
        Name=new_secret_name, SecretString=secret_value(KEY_A, clock.now + timedelta(hours=1))
    )["ARN"]
    cache = ApiKeyCache(secrets_client, arn, 300, clock=clock, options=OPTIONS)
    assert cache.get().api_key == KEY_A
    secrets_client.put_secret_value(SecretId=arn, SecretString=secret_value(KEY_B, clock.now + timedelta(hours=1)))

    # WHEN less than KEY_CACHE_SECONDS passed, THEN key A is still used
    clock.advance(299)
    assert cache.get().api_key == KEY_A

    # WHEN KEY_CACHE_SECONDS passed, THEN the secret is read again and key B is used
    clock.advance(1)
    assert cache.get().api_key == KEY_B


def test_failed_reread_keeps_usable_key(secrets_client, clock, new_secret_name):
    # GIVEN a cached key A, valid for an hour, and Secrets Manager unreachable from the next read on
    arn = secrets_client.create_secret(
        Name=new_secret_name, SecretString=secret_value(KEY_A, clock.now + timedelta(hours=1))
    )["ARN"]
    reads = FailingReads(secrets_client)
    cache = ApiKeyCache(secrets_client, arn, 300, clock=clock, options=OPTIONS)
    assert cache.get().api_key == KEY_A
    reads.failing = True

    # WHEN the cache period ends, THEN key A stays in use instead of failing the jobs
    clock.advance(600)
    assert cache.get().api_key == KEY_A

    # WHEN key A reaches the refresh margin while the reads still fail, THEN no key is returned
    clock.advance(3600 - 600 - 300)
    with pytest.raises(ApiKeyUnavailableError) as raised:
        cache.get()
    assert "reading the API key secret" in str(raised.value)
