"""Recovery from stopped rotations, the key check, and the worker's single-flight rotation trigger, on moto server."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from rotation_support import current_document, make_client, version_stages

from gemma_batch.local.rotation_harness import (
    RotationInProgressError,
    RotationStepError,
    rotate,
    route_rotate_secret,
    run_step,
    start_rotation,
)
from key_rotation.errors import PendingKeyExpiringError
from worker.key_cache import ApiKeyCache, KeyCacheOptions

pytestmark = pytest.mark.xdist_group("key_rotation_moto")

START = datetime(2027, 3, 1, 12, 0, tzinfo=timezone.utc)
MIN_KEY_VALIDITY_SECONDS = "2400"


def test_crashed_rotation_reattempted_later_recovers(secretsmanager, secret_arn, make_handler, sts):
    handler = make_handler(MIN_KEY_VALIDITY_SECONDS=MIN_KEY_VALIDITY_SECONDS)
    with time_machine.travel(START, tick=False) as traveller:
        # GIVEN a rotation that stored its key in createSecret and then stopped, as at a function timeout
        first_token = rotate(secretsmanager, secret_arn, handler=handler)
        first_key = current_document(secretsmanager, secret_arn)["api_key"]
        crashed = start_rotation(secretsmanager, secret_arn)
        run_step(handler, crashed, "createSecret")
        stale_key = json.loads(
            secretsmanager.get_secret_value(SecretId=secret_arn, VersionId=crashed.token, VersionStage="AWSPENDING")[
                "SecretString"
            ]
        )["api_key"]

        # WHEN Secrets Manager reattempts that rotation with the same token two hours later
        traveller.shift(timedelta(hours=2))
        with pytest.raises(RotationStepError) as raised:
            rotate(secretsmanager, secret_arn, handler=handler, token=crashed.token)

        # THEN createSecret fails because the stored key has expired, and the version loses AWSPENDING
        assert raised.value.step == "createSecret"
        assert isinstance(raised.value.__cause__, PendingKeyExpiringError)
        assert version_stages(secretsmanager, secret_arn)[crashed.token] == []
        # AND the expired key never became AWSCURRENT
        assert current_document(secretsmanager, secret_arn)["api_key"] == first_key

        # WHEN the next RotateSecret arrives
        token = rotate(secretsmanager, secret_arn, handler=handler)

        # THEN it starts at once with a new token and makes a fresh one-hour key current
        document = current_document(secretsmanager, secret_arn)
        assert token not in (first_token, crashed.token)
        assert version_stages(secretsmanager, secret_arn)[token] == ["AWSCURRENT"]
        assert document["api_key"] not in (first_key, stale_key)
        expires_at = datetime.fromisoformat(document["expires_at"].replace("Z", "+00:00"))
        assert expires_at - datetime.now(timezone.utc) == timedelta(hours=1)
        assert len(sts.calls) == 3


def test_unfinished_rotation_blocks_rotate_secret(secretsmanager, secret_arn, make_handler):
    # GIVEN a rotation stopped after createSecret
    handler = make_handler()
    crashed = start_rotation(secretsmanager, secret_arn)
    run_step(handler, crashed, "createSecret")

    # WHEN RotateSecret is called, THEN it is refused, as Secrets Manager refuses it while AWSPENDING is elsewhere
    with pytest.raises(RotationInProgressError):
        rotate(secretsmanager, secret_arn, handler=handler)


def test_key_check_abandons_stopped_rotation(secretsmanager, secret_arn, make_handler, capsys):
    handler = make_handler(MIN_KEY_VALIDITY_SECONDS=MIN_KEY_VALIDITY_SECONDS, METRICS_NAMESPACE="GemmaBatchTest")
    with time_machine.travel(START, tick=False) as traveller:
        # GIVEN a current key, and a rotation that stopped after createSecret
        rotate(secretsmanager, secret_arn, handler=handler)
        crashed = start_rotation(secretsmanager, secret_arn)
        run_step(handler, crashed, "createSecret")
        capsys.readouterr()

        # WHEN the key check runs 9 minutes later, THEN it leaves the rotation alone
        traveller.shift(timedelta(minutes=9))
        early = handler({"Action": "CheckKey", "SecretId": secret_arn}, None)
        assert early.abandoned_versions == []
        assert version_stages(secretsmanager, secret_arn)[crashed.token] == ["AWSPENDING"]

        # WHEN it runs again at 10 minutes, STALE_PENDING_SECONDS
        traveller.shift(timedelta(minutes=1))
        late = handler({"Action": "CheckKey", "SecretId": secret_arn}, None)

        # THEN it removes AWSPENDING from the stopped rotation, so RotateSecret works again
        assert late.abandoned_versions == [crashed.token]
        assert version_stages(secretsmanager, secret_arn)[crashed.token] == []
        rotate(secretsmanager, secret_arn, handler=handler)

    # AND each check wrote the current key's validity, and the second one a failed rotation
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    checks = [document for document in documents if "ApiKeyValiditySeconds" in document]
    assert [document["ApiKeyValiditySeconds"] for document in checks] == [3060.0, 3000.0]
    assert "KeyRotationFailures" not in checks[0]
    assert checks[1]["KeyRotationFailures"] == 1
    assert all(document["Service"] == "gemma-batch-key-rotation" for document in documents)
    assert all(document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "GemmaBatchTest" for document in documents)


def test_key_check_reports_zero_without_key(secretsmanager, secret_arn, make_handler):
    # GIVEN a secret that still contains the deployment placeholder
    handler = make_handler()

    # WHEN the key check runs, THEN it reports no validity
    assert handler({"Action": "CheckKey", "SecretId": secret_arn}, None).validity_seconds == 0.0


def test_step_metrics_count_failures(secretsmanager, secret_arn, make_handler, capsys):
    # GIVEN the function with metrics on
    handler = make_handler(METRICS_NAMESPACE="GemmaBatchTest")

    # WHEN one rotation finishes and a step with an unknown token fails
    rotate(secretsmanager, secret_arn, handler=handler)
    with pytest.raises(Exception):
        handler({"Step": "createSecret", "SecretId": secret_arn, "ClientRequestToken": "0" * 32}, None)

    # THEN the four steps wrote no failure and one completion, and the failed step wrote one failure
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [document["KeyRotationFailures"] for document in documents] == [0, 0, 0, 0, 1]
    assert [document.get("KeyRotationsCompleted") for document in documents] == [0, 0, 0, 1, None]


def test_worker_trigger_is_single_flight(secretsmanager, secret_arn, make_handler, moto_endpoint):
    handler = make_handler(MIN_KEY_VALIDITY_SECONDS=MIN_KEY_VALIDITY_SECONDS)
    worker_clients = [make_client("secretsmanager", moto_endpoint) for _ in range(8)]
    logs = [route_rotate_secret(client, secretsmanager, handler) for client in worker_clients]
    options = KeyCacheOptions(cache_seconds=300, rotation_trigger_seconds=2100, rotation_min_interval_seconds=1200)

    with time_machine.travel(START, tick=False) as traveller:
        # GIVEN a key that a scheduled rotation did not replace: 28 minutes old, 32 minutes of validity left
        rotate(secretsmanager, secret_arn, handler=handler)
        versions_before = set(version_stages(secretsmanager, secret_arn))
        traveller.shift(timedelta(minutes=28))
        caches = [ApiKeyCache(client, secret_arn, 300, options=options) for client in worker_clients]

        # WHEN eight workers read the key at the same moment
        barrier = threading.Barrier(len(caches))
        errors: list[BaseException] = []

        def read(cache: ApiKeyCache) -> None:
            barrier.wait()
            try:
                cache.get()
            except BaseException as error:  # noqa: BLE001 - reported by the assertion below
                errors.append(error)

        threads = [threading.Thread(target=read, args=(cache,)) for cache in caches]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        # THEN every worker asked with the same token, and exactly one rotation ran
        assert errors == []
        tokens = {token for log in logs for token in log.finished + log.failed + log.refused}
        assert len(tokens) == 1
        new_versions = set(version_stages(secretsmanager, secret_arn)) - versions_before
        assert new_versions == tokens
        assert version_stages(secretsmanager, secret_arn)[tokens.pop()] == ["AWSCURRENT"]

        # AND a worker that reads again in the same window sends no second request
        traveller.shift(timedelta(minutes=6))
        calls_before = sum(len(log.finished + log.failed + log.refused) for log in logs)
        for cache in caches:
            assert cache.get().seconds_left(datetime.now(timezone.utc)) > 3000
        assert sum(len(log.finished + log.failed + log.refused) for log in logs) == calls_before


def test_rejected_current_key_requests_rotation(secretsmanager, secret_arn, make_handler, moto_endpoint):
    # GIVEN a fresh current key that Mantle nevertheless rejects, for example after its session was revoked
    handler = make_handler()
    worker_client = make_client("secretsmanager", moto_endpoint)
    log = route_rotate_secret(worker_client, secretsmanager, handler)
    rotate(secretsmanager, secret_arn, handler=handler)
    cache = ApiKeyCache(
        worker_client, secret_arn, 300, options=KeyCacheOptions(rotation_trigger_seconds=2100)
    )
    rejected = cache.get().api_key

    # WHEN the worker reports the 401 and re-reads the secret, which still contains the rejected key
    cache.refresh_after_rejection(rejected)

    # THEN it asked for a rotation, and the next read returns the new key
    assert len(log.finished) == 1
    assert cache.refresh_after_rejection(rejected).api_key != rejected
