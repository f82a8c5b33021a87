"""The rotation function against Secrets Manager and STS on moto server, driven the way Secrets Manager drives it."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
from rotation_support import (
    FUNCTION_NAME,
    INITIAL_SECRET_STRING,
    KEY_ISSUER_ROLE_ARN,
    current_document,
    rotation_environment,
    rotation_event,
    secret_state,
    version_stages,
)

from bedrock_key import ApiKeySecret
from gemma_batch.local.rotation_harness import (
    ROTATION_STEPS,
    RotationInProgressError,
    RotationStepError,
    rotate,
    run_step,
    start_rotation,
)
from key_rotation.errors import PendingKeyExpiringError, RotationNotEnabledError, VersionNotPendingError

pytestmark = pytest.mark.xdist_group("key_rotation_moto")


def token_query(api_key: str) -> dict[str, str]:
    presigned_url = base64.b64decode(api_key.removeprefix("bedrock-api-key-")).decode()
    return {name: values[0] for name, values in parse_qs(urlsplit(f"https://{presigned_url}").query).items()}


def test_two_rotations_in_a_row(secretsmanager, secret_arn, make_handler):
    # GIVEN a secret that holds only the deployment placeholder
    handler = make_handler()
    placeholder_version = next(iter(version_stages(secretsmanager, secret_arn)))

    # WHEN it is rotated twice
    first_token = rotate(secretsmanager, secret_arn, handler=handler)
    first = current_document(secretsmanager, secret_arn)
    second_token = rotate(secretsmanager, secret_arn, handler=handler)
    second = current_document(secretsmanager, secret_arn)

    # THEN each rotation stored a new key, AWSCURRENT moved to the second version,
    # AWSPREVIOUS is the first one and no AWSPENDING is left
    assert first["api_key"] != second["api_key"]
    assert ApiKeySecret.from_json(json.dumps(second)).api_key == second["api_key"]
    stages = version_stages(secretsmanager, secret_arn)
    assert stages[second_token] == ["AWSCURRENT"]
    assert stages[first_token] == ["AWSPREVIOUS"]
    assert stages[placeholder_version] == []
    previous = secretsmanager.get_secret_value(SecretId=secret_arn, VersionStage="AWSPREVIOUS")
    assert json.loads(previous["SecretString"])["api_key"] == first["api_key"]


def test_expiry_is_sts_session_end(secretsmanager, secret_arn, make_handler, sts):
    # GIVEN the stack's settings: one-hour key-issuer sessions
    handler = make_handler(KEY_SESSION_SECONDS="3600")

    # WHEN the secret is rotated
    token = rotate(secretsmanager, secret_arn, handler=handler)
    stored = ApiKeySecret.from_json(json.dumps(current_document(secretsmanager, secret_arn)))

    # THEN one AssumeRole call asked for the configured session with a name that leads back to this rotation
    assert len(sts.calls) == 1
    call = sts.calls[0]
    assert call.request["RoleArn"] == KEY_ISSUER_ROLE_ARN
    assert call.request["DurationSeconds"] == 3600
    assert call.request["RoleSessionName"] == f"{FUNCTION_NAME}-{token[:8]}"

    # AND the stored expiry is the session's end (to the second), not the twelve hours the token claims
    session_end = call.response["Credentials"]["Expiration"].astimezone(timezone.utc)
    assert stored.expires_at == session_end.replace(microsecond=0)
    query = token_query(stored.api_key)
    token_end = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc) + timedelta(
        seconds=int(query["X-Amz-Expires"])
    )
    assert query["X-Amz-Expires"] == "43200"
    assert token_end - stored.expires_at > timedelta(hours=10)

    # AND the key was signed by that session and names it as issuer
    assert query["X-Amz-Credential"].startswith(call.response["Credentials"]["AccessKeyId"] + "/")
    assert stored.issued_by == call.response["AssumedRoleUser"]["Arn"]
    assert stored.issued_by.endswith(f"/{FUNCTION_NAME}-{token[:8]}")


def test_repeated_steps_change_nothing(secretsmanager, secret_arn, make_handler, sts):
    # GIVEN a rotation that Secrets Manager started
    handler = make_handler()
    request = start_rotation(secretsmanager, secret_arn)

    for step in ROTATION_STEPS:
        # WHEN each step runs twice with the same token, as a retried invocation does
        run_step(handler, request, step)
        after_first_run = secret_state(secretsmanager, secret_arn)
        run_step(handler, request, step)

        # THEN the second run leaves every version's stages and value as the first left them
        assert secret_state(secretsmanager, secret_arn) == after_first_run, step

    # AND only one key was minted, and it is AWSCURRENT
    assert len(sts.calls) == 1
    assert version_stages(secretsmanager, secret_arn)[request.token] == ["AWSCURRENT"]


def test_unknown_token_is_error(secretsmanager, secret_arn, make_handler):
    # GIVEN a token that is no version of the secret
    handler = make_handler()
    before = secret_state(secretsmanager, secret_arn)
    unknown_token = "00000000-0000-4000-8000-000000000000"

    for step in ROTATION_STEPS:
        # WHEN any step runs with it
        with pytest.raises(VersionNotPendingError) as raised:
            handler(rotation_event(step, secret_arn, unknown_token), None)

        # THEN the step fails and names the token
        assert unknown_token in str(raised.value)

    # AND the secret is unchanged
    assert secret_state(secretsmanager, secret_arn) == before


def test_current_token_is_noop(secretsmanager, secret_arn, make_handler, sts):
    # GIVEN a finished rotation
    handler = make_handler()
    token = rotate(secretsmanager, secret_arn, handler=handler)
    before = secret_state(secretsmanager, secret_arn)

    # WHEN every step runs again with the token that is now AWSCURRENT
    for step in ROTATION_STEPS:
        handler(rotation_event(step, secret_arn, token), None)

    # THEN nothing changes and no new key is minted
    assert secret_state(secretsmanager, secret_arn) == before
    assert len(sts.calls) == 1


def test_previous_version_token_is_error(secretsmanager, secret_arn, make_handler):
    # GIVEN two finished rotations, so the first token's version is AWSPREVIOUS
    handler = make_handler()
    first_token = rotate(secretsmanager, secret_arn, handler=handler)
    rotate(secretsmanager, secret_arn, handler=handler)

    # WHEN createSecret runs with that token
    with pytest.raises(VersionNotPendingError) as raised:
        handler(rotation_event("createSecret", secret_arn, first_token), None)

    # THEN the step fails because the version is not AWSPENDING
    assert "['AWSPREVIOUS'] but not AWSPENDING" in str(raised.value)


def test_rotation_disabled_is_error(secretsmanager, make_handler):
    # GIVEN a secret without rotation configured
    secret = secretsmanager.create_secret(Name="gemma-batch-api-key-no-rotation", SecretString=INITIAL_SECRET_STRING)
    request = start_rotation(secretsmanager, secret["ARN"])

    # WHEN createSecret runs
    with pytest.raises(RotationNotEnabledError) as raised:
        make_handler()(rotation_event("createSecret", request.secret_arn, request.token), None)

    # THEN it fails before minting a key
    assert "does not have rotation enabled" in str(raised.value)
    assert version_stages(secretsmanager, secret["ARN"])[request.token] == ["AWSPENDING"]


def test_expiring_pending_key_is_abandoned(secretsmanager, secret_arn, make_handler, clock):
    # GIVEN a rotation whose key was stored, and that is retried 35 minutes later,
    # when the one-hour key has less than MIN_KEY_VALIDITY_SECONDS (30 minutes) left
    handler = make_handler(KEY_SESSION_SECONDS="3600", MIN_KEY_VALIDITY_SECONDS="1800")
    placeholder = current_document_text(secretsmanager, secret_arn)
    stalled = start_rotation(secretsmanager, secret_arn)
    run_step(handler, stalled, "createSecret")
    run_step(handler, stalled, "setSecret")
    abandoned_key = pending_api_key(secretsmanager, secret_arn, stalled.token)
    with pytest.raises(RotationInProgressError):
        start_rotation(secretsmanager, secret_arn)
    clock.advance(35 * 60)

    # WHEN testSecret runs
    with pytest.raises(RotationStepError) as raised:
        run_step(handler, stalled, "testSecret")

    # THEN it fails with the reason, removes AWSPENDING from the version and leaves AWSCURRENT alone
    assert isinstance(raised.value.__cause__, PendingKeyExpiringError)
    assert "less than MIN_KEY_VALIDITY_SECONDS=1800" in str(raised.value)
    assert version_stages(secretsmanager, secret_arn)[stalled.token] == []
    assert current_document_text(secretsmanager, secret_arn) == placeholder

    # AND Secrets Manager's retries of that rotation fail at once
    with pytest.raises(RotationStepError) as retried:
        rotate(secretsmanager, secret_arn, handler=handler, token=stalled.token)
    assert retried.value.step == "createSecret"
    assert isinstance(retried.value.__cause__, VersionNotPendingError)

    # AND the next rotation starts fresh and stores a new key. moto's STS issues sessions on the
    # real clock, which the test cannot move, so the function's clock goes back to agreeing with it.
    clock.reset()
    token = rotate(secretsmanager, secret_arn, handler=handler)
    assert token != stalled.token
    assert version_stages(secretsmanager, secret_arn)[token] == ["AWSCURRENT"]
    assert current_document(secretsmanager, secret_arn)["api_key"] != abandoned_key


def test_valid_pending_key_passes_later(secretsmanager, secret_arn, make_handler, clock):
    # GIVEN a stored key that is retried 20 minutes later, with 40 minutes of validity left
    handler = make_handler(KEY_SESSION_SECONDS="3600", MIN_KEY_VALIDITY_SECONDS="1800")
    request = start_rotation(secretsmanager, secret_arn)
    run_step(handler, request, "createSecret")
    clock.advance(20 * 60)

    # WHEN the rest of the rotation runs
    for step in ("setSecret", "testSecret", "finishSecret"):
        run_step(handler, request, step)

    # THEN the key becomes AWSCURRENT
    assert version_stages(secretsmanager, secret_arn)[request.token] == ["AWSCURRENT"]


def test_harness_resumes_unfinished_rotation(secretsmanager, secret_arn, make_handler, sts):
    # GIVEN a rotation that stopped after createSecret
    handler = make_handler()
    stalled = start_rotation(secretsmanager, secret_arn)
    run_step(handler, stalled, "createSecret")
    stored_key = pending_api_key(secretsmanager, secret_arn, stalled.token)

    # WHEN the harness resumes it with its token
    token = rotate(secretsmanager, secret_arn, handler=handler, token=stalled.token)

    # THEN the key minted first becomes AWSCURRENT, and no second key is minted
    assert token == stalled.token
    assert current_document(secretsmanager, secret_arn)["api_key"] == stored_key
    assert len(sts.calls) == 1


def test_lambda_handler_reads_environment(secretsmanager, secret_arn, moto_endpoint, monkeypatch):
    # GIVEN the environment Lambda and the stack provide, with AWS_ENDPOINT_URL pointing at moto
    import key_rotation.handler as handler_module

    for name, value in rotation_environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(handler_module, "_dependencies", None)

    # WHEN the harness rotates with its default handler, the function's lambda_handler
    token = rotate(secretsmanager, secret_arn)

    # THEN the key is stored and AWSCURRENT, signed for the region of the secret
    document = current_document(secretsmanager, secret_arn)
    assert version_stages(secretsmanager, secret_arn)[token] == ["AWSCURRENT"]
    assert "/us-east-1/bedrock/aws4_request" in token_query(document["api_key"])["X-Amz-Credential"]
    assert document["issued_by"].endswith(f"/{FUNCTION_NAME}-{token[:8]}")


def test_harness_rejects_secret_without_value(secretsmanager):
    # GIVEN a secret without any version
    secret = secretsmanager.create_secret(Name="gemma-batch-api-key-empty")

    # WHEN a rotation starts
    with pytest.raises(ValueError) as raised:
        start_rotation(secretsmanager, secret["ARN"])

    # THEN the error names the fix: store a placeholder first
    assert "has no AWSCURRENT version" in str(raised.value)


def current_document_text(secretsmanager, secret_arn: str) -> str:
    return secretsmanager.get_secret_value(SecretId=secret_arn, VersionStage="AWSCURRENT")["SecretString"]


def pending_api_key(secretsmanager, secret_arn: str, token: str) -> str:
    value = secretsmanager.get_secret_value(SecretId=secret_arn, VersionId=token, VersionStage="AWSPENDING")
    return json.loads(value["SecretString"])["api_key"]
