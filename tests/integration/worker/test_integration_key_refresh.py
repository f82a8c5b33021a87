"""A worker holding a malformed or expired key: Mantle's 401, one re-read of the secret, and the job succeeds."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bedrock_key import ApiKeySecret

# base64 of "not-a-presigned-url": the secret's format check passes, Mantle rejects the key.
MALFORMED_KEY = "bedrock-api-key-bm90LWEtcHJlc2lnbmVkLXVybA=="
SECOND_ACCESS_KEY_ID = "AKIAWORKERKEY0000003"


def store_key(stack, api_key: str) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    document = ApiKeySecret(
        api_key=api_key,
        expires_at=now + timedelta(hours=1),
        issued_at=now,
        issued_by="arn:aws:sts::123456789012:assumed-role/gemma-batch-key-issuer/rotation",
    ).to_json()
    stack.clients["secretsmanager"].put_secret_value(SecretId=stack.secret_arn, SecretString=document)


def test_malformed_key_is_refreshed_and_job_succeeds(stack, driver, emulator, mint, requests_per_delivery):
    # GIVEN a secret whose current key is malformed, and one job
    store_key(stack, MALFORMED_KEY)
    stack.send({"job_id": "malformed-key-job", "prompt": "Hello."})

    # WHEN the job is delivered once
    first = driver.drain(until_empty=False, max_rounds=1)

    # THEN Mantle returned 401 twice: the malformed key, and the same key after one re-read of the secret,
    # and the job went back to the queue without a result or a failure record
    assert first.reported_failures == 1
    assert requests_per_delivery() == {("malformed-key-job", "1"): 2}
    assert emulator.stats.snapshot()["by_status"] == {"401": 2}
    assert stack.results() == {}
    assert stack.failures() == {}

    # WHEN a rotation stores a valid key and the job comes back to the warm worker, which still caches the bad key
    store_key(stack, mint(SECOND_ACCESS_KEY_ID))
    driver.drain(until_empty=True, max_rounds=20)

    # THEN the worker got one more 401, re-read the secret once, and the job succeeded with the new key
    result = stack.results()["malformed-key-job"]
    assert result["status"] == "succeeded"
    assert result["attempts"] == 2
    stats = emulator.stats.snapshot()
    assert stats["by_status"] == {"401": 3, "200": 1}
    assert stats["by_access_key"][SECOND_ACCESS_KEY_ID] == 1
