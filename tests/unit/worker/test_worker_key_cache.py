"""The API key cache against Secrets Manager on moto server, with a settable clock."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest

from bedrock_key import ApiKeySecret
from worker.key_cache import ApiKeyCache, ApiKeyUnavailableError

MARGIN_SECONDS = 300
KEY_A = "bedrock-api-key-QUFBQUFBQUFBQUFBQUFBQQ=="
KEY_B = "bedrock-api-key-QkJCQkJCQkJCQkJCQkJCQg=="


def secret_value(api_key: str, expires_at: datetime) -> str:
    return ApiKeySecret(
        api_key=api_key,
        expires_at=expires_at,
        issued_at=expires_at - timedelta(hours=1),
        issued_by="arn:aws:sts::123456789012:assumed-role/key-issuer/rotation",
    ).to_json()


class ReadCounter:
    """Counts the GetSecretValue calls a real boto3 client sends, through botocore's event hooks."""

    def __init__(self, client: Any) -> None:
        self.calls: list[dict[str, Any]] = []
        client.meta.events.register("provide-client-params.secrets-manager.GetSecretValue", self._record)

    def _record(self, params: dict[str, Any], **_: Any) -> None:
        self.calls.append(dict(params))


@pytest.fixture()
def reads(secrets_client) -> ReadCounter:
    return ReadCounter(secrets_client)


def make_cache(secrets_client, secret_id: str, clock) -> ApiKeyCache:
    return ApiKeyCache(secrets_client, secret_id, MARGIN_SECONDS, clock=clock)


def test_key_is_read_once_and_cached(secrets_client, clock, reads, new_secret_name):
    # GIVEN a secret whose key is valid for an hour
    arn = secrets_client.create_secret(
        Name=new_secret_name, SecretString=secret_value(KEY_A, clock.now + timedelta(hours=1))
    )["ARN"]
    cache = make_cache(secrets_client, arn, clock)

    # WHEN the key is requested twice, 10 minutes apart
    first = cache.get()
    clock.advance(600)
    second = cache.get()

    # THEN the secret is read once, with the AWSCURRENT stage named explicitly
    assert first.api_key == KEY_A
    assert second.api_key == KEY_A
    assert len(reads.calls) == 1
    assert reads.calls[0]["VersionStage"] == "AWSCURRENT"


def test_key_is_reread_at_expiry_margin(secrets_client, clock, reads, new_secret_name):
    # GIVEN a cached key A that expires in an hour, and a rotation that stores key B
    arn = secrets_client.create_secret(
        Name=new_secret_name, SecretString=secret_value(KEY_A, clock.now + timedelta(hours=1))
    )["ARN"]
    cache = make_cache(secrets_client, arn, clock)
    assert cache.get().api_key == KEY_A
    secrets_client.put_secret_value(SecretId=arn, SecretString=secret_value(KEY_B, clock.now + timedelta(hours=2)))

    # WHEN the clock is one second before expiry minus the margin, THEN key A is still used
    clock.advance(3600 - MARGIN_SECONDS - 1)
    assert cache.get().api_key == KEY_A

    # WHEN the clock reaches expiry minus the margin, THEN the secret is read again and key B is used
    clock.advance(1)
    assert cache.get().api_key == KEY_B
    assert len(reads.calls) == 2


def test_rotation_by_version_stage_is_seen(secrets_client, clock, new_secret_name):
    # GIVEN a secret whose AWSCURRENT stage moves to a new version, as a rotation's finishSecret does
    arn = secrets_client.create_secret(
        Name=new_secret_name, SecretString=secret_value(KEY_A, clock.now + timedelta(minutes=6))
    )["ARN"]
    cache = make_cache(secrets_client, arn, clock)
    assert cache.get().api_key == KEY_A
    old_version = secrets_client.describe_secret(SecretId=arn)["VersionIdsToStages"]
    (old_version_id,) = [version for version, stages in old_version.items() if "AWSCURRENT" in stages]
    secrets_client.put_secret_value(
        SecretId=arn,
        ClientRequestToken="22222222-2222-2222-2222-222222222222",
        SecretString=secret_value(KEY_B, clock.now + timedelta(hours=1)),
        VersionStages=["AWSPENDING"],
    )
    secrets_client.update_secret_version_stage(
        SecretId=arn,
        VersionStage="AWSCURRENT",
        MoveToVersionId="22222222-2222-2222-2222-222222222222",
        RemoveFromVersionId=old_version_id,
    )

    # WHEN key A passes its refresh point
    clock.advance(61)

    # THEN the cache reads the new AWSCURRENT version
    assert cache.get().api_key == KEY_B


def test_key_too_close_to_expiry_is_never_returned(secrets_client, clock, new_secret_name):
    # GIVEN a secret whose key has 299 s left, less than the 300 s margin
    arn = secrets_client.create_secret(
        Name=new_secret_name, SecretString=secret_value(KEY_A, clock.now + timedelta(seconds=299))
    )["ARN"]
    cache = make_cache(secrets_client, arn, clock)

    # WHEN the key is requested, THEN the error names the setting and the fix, and not the key
    with pytest.raises(ApiKeyUnavailableError) as raised:
        cache.get()
    message = str(raised.value)
    assert "expires in 299 s" in message
    assert "KEY_REFRESH_MARGIN_SECONDS" in message
    assert "rotate-secret" in message
    assert KEY_A not in message


def test_missing_secret_raises_clear_error(secrets_client, clock):
    cache = make_cache(secrets_client, "arn:aws:secretsmanager:us-east-1:123456789012:secret:absent-AbCdEf", clock)

    with pytest.raises(ApiKeyUnavailableError) as raised:
        cache.get()

    assert "reading the API key secret" in str(raised.value)
    assert "ResourceNotFoundException" in str(raised.value)


@pytest.mark.parametrize(
    ("secret_string", "expected"),
    [
        ("placeholder written at deployment", "secret value is not JSON"),
        ('{"format_version": 1, "api_key": "sk-not-bedrock"}', "secret field 'api_key'"),
        ('{"format_version": 2}', "secret field 'format_version' is 2"),
    ],
)
def test_malformed_secret_raises_clear_error(secrets_client, clock, new_secret_name, secret_string, expected):
    arn = secrets_client.create_secret(Name=new_secret_name, SecretString=secret_string)["ARN"]
    cache = make_cache(secrets_client, arn, clock)

    with pytest.raises(ApiKeyUnavailableError) as raised:
        cache.get()

    assert "is malformed" in str(raised.value)
    assert expected in str(raised.value)


def test_refresh_after_rejection_reads_again(secrets_client, clock, reads, new_secret_name):
    # GIVEN a cached key A that Mantle rejects, and key B already in the secret
    arn = secrets_client.create_secret(
        Name=new_secret_name, SecretString=secret_value(KEY_A, clock.now + timedelta(hours=1))
    )["ARN"]
    cache = make_cache(secrets_client, arn, clock)
    assert cache.get().api_key == KEY_A
    secrets_client.put_secret_value(SecretId=arn, SecretString=secret_value(KEY_B, clock.now + timedelta(hours=1)))

    # WHEN a job reports the 401 for key A
    refreshed = cache.refresh_after_rejection(KEY_A)

    # THEN the secret is read again and key B is cached for the next get
    assert refreshed.api_key == KEY_B
    assert cache.get().api_key == KEY_B
    assert len(reads.calls) == 2


def test_concurrent_rejections_read_once(secrets_client, clock, reads, new_secret_name):
    # GIVEN ten jobs that all got a 401 for key A at the same time
    arn = secrets_client.create_secret(
        Name=new_secret_name, SecretString=secret_value(KEY_A, clock.now + timedelta(hours=1))
    )["ARN"]
    cache = make_cache(secrets_client, arn, clock)
    assert cache.get().api_key == KEY_A
    secrets_client.put_secret_value(SecretId=arn, SecretString=secret_value(KEY_B, clock.now + timedelta(hours=1)))

    # WHEN they all ask for a refresh
    results: list[str] = []
    start = threading.Barrier(10)

    def refresh() -> None:
        start.wait()
        results.append(cache.refresh_after_rejection(KEY_A).api_key)

    threads = [threading.Thread(target=refresh) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN one read serves them all
    assert results == [KEY_B] * 10
    assert len(reads.calls) == 2


def test_refresh_with_same_key_in_secret_returns_it(secrets_client, clock, reads, new_secret_name):
    # GIVEN a rejected key that is still the secret's current key (the rotation has not run yet)
    arn = secrets_client.create_secret(
        Name=new_secret_name, SecretString=secret_value(KEY_A, clock.now + timedelta(hours=1))
    )["ARN"]
    cache = make_cache(secrets_client, arn, clock)
    cache.get()

    # WHEN a refresh is requested, THEN the secret is read and the same key comes back for the caller to handle
    assert cache.refresh_after_rejection(KEY_A).api_key == KEY_A
    assert len(reads.calls) == 2
