"""Two-slot rotation of long-term keys: IAM through botocore's Stubber (checked against botocore's IAM model), Secrets Manager on moto."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import boto3
import pytest
import time_machine
from botocore.stub import Stubber
from rotation_support import REGION, make_client, version_stages

from bedrock_key import ApiKeySecret
from gemma_batch.local.rotation_harness import RotationStepError, rotate
from key_rotation.config import RotationConfig
from key_rotation.dependencies import RotationDependencies
from key_rotation.errors import LongTermKeyError
from key_rotation.handler import build_handler
from key_rotation.long_term_keys import BEDROCK_SERVICE_NAME
from worker.key_cache import ApiKeyCache, KeyCacheOptions

pytestmark = pytest.mark.xdist_group("key_rotation_moto")

NOW = datetime(2027, 5, 1, 9, 0, tzinfo=timezone.utc)
USER = "GemmaBatch-us-east-1-ApiKeyLongTermKeyUser-ABC123"
AGE_DAYS = 90


def credential(number: int, created: datetime) -> dict:
    return {
        "UserName": USER,
        "Status": "Active",
        "ServiceUserName": f"{USER}-at-123456789012",
        "ServiceCredentialAlias": f"{USER}+{number}",
        "CreateDate": created,
        "ExpirationDate": created + timedelta(days=AGE_DAYS),
        "ServiceSpecificCredentialId": f"ACCA{number:016d}",
        "ServiceName": BEDROCK_SERVICE_NAME,
    }


def key_document(number: int, created: datetime) -> str:
    return ApiKeySecret(
        api_key=f"ABSKlong-term-key-{number}",
        expires_at=created + timedelta(days=AGE_DAYS),
        issued_at=created,
        issued_by=USER,
        credential_id=f"ACCA{number:016d}",
    ).to_json()


@pytest.fixture()
def iam():
    # The client is never used unstubbed: Stubber raises on any call it does not expect.
    client = boto3.client(
        "iam", region_name=REGION, endpoint_url="http://127.0.0.1:9", aws_access_key_id="a", aws_secret_access_key="b"
    )
    with Stubber(client) as stubber:
        yield client, stubber


def long_term_handler(secretsmanager, iam_client):
    config = RotationConfig.from_environment(
        {
            "KEY_MODE": "long_term",
            "LONG_TERM_KEY_USER_NAME": USER,
            "LONG_TERM_KEY_AGE_DAYS": str(AGE_DAYS),
            "LONG_TERM_KEY_RETIRE_AFTER_SECONDS": "900",
            "MIN_KEY_VALIDITY_SECONDS": str(60 * 86400),
            "TEST_SECRET_MODE": "format",
        }
    )
    return build_handler(RotationDependencies(config=config, secretsmanager=secretsmanager, sts=None, iam=iam_client))


def test_two_slot_rotation_deletes_older_key_first(secretsmanager, secret_arn, iam, moto_endpoint):
    iam_client, stubber = iam
    deleted: set[str] = set()
    iam_client.meta.events.register(
        "provide-client-params.iam.DeleteServiceSpecificCredential",
        lambda params, **_: deleted.add(params["ServiceSpecificCredentialId"]),
    )
    first_created, second_created = NOW - timedelta(days=60), NOW - timedelta(days=30)
    worker = ApiKeyCache(
        make_client("secretsmanager", moto_endpoint), secret_arn, 300, options=KeyCacheOptions(cache_seconds=300)
    )

    with time_machine.travel(first_created, tick=False) as traveller:
        # GIVEN key 1, which a worker read while it was current
        secretsmanager.put_secret_value(SecretId=secret_arn, SecretString=key_document(1, first_created))
        assert worker.get().credential_id == "ACCA0000000000000001"
        # AND key 2, current for 30 days, so both credential slots are taken
        traveller.move_to(second_created)
        secretsmanager.put_secret_value(SecretId=secret_arn, SecretString=key_document(2, second_created))
        traveller.move_to(NOW)

        # WHEN the rotation runs, with IAM expecting exactly these calls in this order
        stubber.add_response(
            "list_service_specific_credentials",
            {"ServiceSpecificCredentials": [credential(2, second_created), credential(1, first_created)]},
            {"UserName": USER, "ServiceName": BEDROCK_SERVICE_NAME},
        )
        stubber.add_response(
            "delete_service_specific_credential",
            {},
            {"UserName": USER, "ServiceSpecificCredentialId": "ACCA0000000000000001"},
        )
        stubber.add_response(
            "create_service_specific_credential",
            {"ServiceSpecificCredential": {**credential(3, NOW), "ServiceCredentialSecret": "ABSKlong-term-key-3"}},
            {"UserName": USER, "ServiceName": BEDROCK_SERVICE_NAME, "CredentialAgeDays": AGE_DAYS},
        )
        token = rotate(secretsmanager, secret_arn, handler=long_term_handler(secretsmanager, iam_client))

        # THEN the older key was deleted before the new one was created (Stubber enforces the order), and
        # nothing else was called
        stubber.assert_no_pending_responses()
        assert deleted == {"ACCA0000000000000001"}
        # AND the new key is AWSCURRENT with its credential id and IAM's expiry
        stored = ApiKeySecret.from_json(
            secretsmanager.get_secret_value(SecretId=secret_arn, VersionStage="AWSCURRENT")["SecretString"]
        )
        assert version_stages(secretsmanager, secret_arn)[token] == ["AWSCURRENT"]
        assert (stored.api_key, stored.credential_id) == ("ABSKlong-term-key-3", "ACCA0000000000000003")
        assert stored.expires_at == NOW + timedelta(days=AGE_DAYS)
        # AND the worker that once held key 1 gets a key whose credential still exists
        served = worker.get()
        assert served.credential_id not in deleted
        assert served.credential_id == "ACCA0000000000000003"


def test_previous_key_kept_while_workers_may_hold_it(secretsmanager, secret_arn, iam, moto_endpoint):
    iam_client, stubber = iam
    created = NOW - timedelta(days=30)
    worker = ApiKeyCache(
        make_client("secretsmanager", moto_endpoint), secret_arn, 300, options=KeyCacheOptions(cache_seconds=300)
    )
    with time_machine.travel(created, tick=False) as traveller:
        # GIVEN key 2, which a worker holds, and key 3, which became current one minute ago
        secretsmanager.put_secret_value(SecretId=secret_arn, SecretString=key_document(2, created))
        traveller.move_to(NOW - timedelta(minutes=1))
        assert worker.get().credential_id == "ACCA0000000000000002"
        secretsmanager.put_secret_value(SecretId=secret_arn, SecretString=key_document(3, NOW - timedelta(minutes=1)))
        traveller.move_to(NOW)

        # WHEN another rotation runs at once, and IAM lists both slots as taken
        stubber.add_response(
            "list_service_specific_credentials",
            {"ServiceSpecificCredentials": [credential(2, created), credential(3, NOW - timedelta(minutes=1))]},
            {"UserName": USER, "ServiceName": BEDROCK_SERVICE_NAME},
        )
        with pytest.raises(RotationStepError) as raised:
            rotate(secretsmanager, secret_arn, handler=long_term_handler(secretsmanager, iam_client))

        # THEN it fails without deleting key 2, which the worker may still send, and names the wait
        stubber.assert_no_pending_responses()
        assert isinstance(raised.value.__cause__, LongTermKeyError)
        assert "ACCA0000000000000002, is the AWSPREVIOUS key" in str(raised.value)
        assert "Rotate again after that time" in str(raised.value)
        assert worker.get().credential_id == "ACCA0000000000000002"
        assert version_stages(secretsmanager, secret_arn)[raised.value.token] == []
