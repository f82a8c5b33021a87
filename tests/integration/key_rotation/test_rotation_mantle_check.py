"""testSecret in mantle mode: the pending key against the project's Mantle emulator, and the failure cases."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone
from typing import Iterator

import pytest
from rotation_support import REGION, MisbehavingMantle, current_document, version_stages

from gemma_batch.emulator import MantleEmulator, parse_bearer_token
from gemma_batch.local.rotation_harness import RotationStepError, rotate, run_step, start_rotation
from key_rotation.errors import MantleCheckError
from key_rotation.mantle_check import check_api_key

pytestmark = pytest.mark.xdist_group("key_rotation_moto")


@pytest.fixture(scope="module")
def emulator() -> Iterator[MantleEmulator]:
    emulator = MantleEmulator(region=REGION, host="127.0.0.1", port=0).start()
    yield emulator
    emulator.stop()


def test_mantle_mode_rotation_succeeds(secretsmanager, secret_arn, make_handler, emulator, sts):
    # GIVEN the function in mantle mode, pointed at the emulator
    handler = make_handler(TEST_SECRET_MODE="mantle", MANTLE_BASE_URL=emulator.base_url)

    # WHEN the secret is rotated
    token = rotate(secretsmanager, secret_arn, handler=handler)

    # THEN the key is AWSCURRENT, signed by the key-issuer session for the secret's region
    assert version_stages(secretsmanager, secret_arn)[token] == ["AWSCURRENT"]
    api_key = current_document(secretsmanager, secret_arn)["api_key"]
    session_access_key = sts.calls[0].response["Credentials"]["AccessKeyId"]
    assert parse_bearer_token(api_key).access_key_id == session_access_key
    assert parse_bearer_token(api_key).region == REGION

    # AND the emulator accepted exactly one request with that key, on GET /models
    stats = emulator.stats.snapshot()
    assert stats["by_access_key"].get(session_access_key) == 1
    assert stats["by_path"].get("/openai/v1/models", 0) >= 1


def test_rejected_key_fails_test_step(secretsmanager, secret_arn, make_handler, emulator, sts):
    # GIVEN a stored pending key whose signing session Mantle already considers ended
    handler = make_handler(TEST_SECRET_MODE="mantle", MANTLE_BASE_URL=emulator.base_url)
    current_before = current_document_text(secretsmanager, secret_arn)
    request = start_rotation(secretsmanager, secret_arn)
    run_step(handler, request, "createSecret")
    session_access_key = sts.calls[0].response["Credentials"]["AccessKeyId"]
    emulator.set_session_expiry(session_access_key, datetime.now(timezone.utc) - timedelta(seconds=1))

    # WHEN testSecret runs
    with pytest.raises(RotationStepError) as raised:
        run_step(handler, request, "testSecret")

    # THEN it fails with Mantle's status, abandons the version (no AWSPENDING left to block the next
    # RotateSecret) and leaves AWSCURRENT alone
    assert isinstance(raised.value.__cause__, MantleCheckError)
    assert "returned HTTP 401" in str(raised.value)
    assert version_stages(secretsmanager, secret_arn)[request.token] == []
    assert current_document_text(secretsmanager, secret_arn) == current_before

    # AND the next rotation starts at once with a new token and a new key
    token = rotate(secretsmanager, secret_arn, handler=make_handler(TEST_SECRET_MODE="format"))
    assert token != request.token
    assert version_stages(secretsmanager, secret_arn)[token] == ["AWSCURRENT"]


def test_wrong_region_key_is_rejected(secretsmanager, secret_arn, make_handler):
    # GIVEN a key minted for us-east-1, and an emulator of another region
    other_region = MantleEmulator(region="eu-central-1", host="127.0.0.1", port=0).start()
    try:
        rotate(secretsmanager, secret_arn, handler=make_handler())
        api_key = current_document(secretsmanager, secret_arn)["api_key"]

        # WHEN the key is checked against that region's endpoint
        with pytest.raises(MantleCheckError) as raised:
            check_api_key(other_region.base_url, api_key, timeout_seconds=5)
    finally:
        other_region.stop()

    # THEN the check fails with 401, and the message does not contain the key
    assert "HTTP 401" in str(raised.value)
    assert api_key not in str(raised.value)


def test_redirect_is_not_followed(misbehaving_mantle):
    # GIVEN a server that redirects GET /models elsewhere
    base_url = f"{misbehaving_mantle}/redirect/openai/v1"
    MisbehavingMantle.requested_paths.clear()

    # WHEN the key is checked
    with pytest.raises(MantleCheckError) as raised:
        check_api_key(base_url, "bedrock-api-key-bm90LWEtcmVhbC1rZXk=", timeout_seconds=5)

    # THEN the redirect fails the check and the key is not sent to its target
    assert "HTTP 302" in str(raised.value)
    assert MisbehavingMantle.requested_paths == ["/redirect/openai/v1/models"]


def test_echoed_key_is_masked(misbehaving_mantle):
    # GIVEN a server whose 401 body echoes the Authorization header
    base_url = f"{misbehaving_mantle}/echo/openai/v1"
    api_key = "bedrock-api-key-bm90LWEtcmVhbC1rZXk="

    # WHEN the key is checked
    with pytest.raises(MantleCheckError) as raised:
        check_api_key(base_url, api_key, timeout_seconds=5)

    # THEN the error shows the body with the key and its base64 body masked
    message = str(raised.value)
    assert "HTTP 401" in message
    assert "rejected Bearer <api key>" in message
    assert "bm90LWEtcmVhbC1rZXk=" not in message


def test_unreachable_mantle_fails_check():
    # GIVEN a loopback port with nothing listening
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    # WHEN the key is checked against it
    with pytest.raises(MantleCheckError) as raised:
        check_api_key(f"http://127.0.0.1:{closed_port}/openai/v1", "bedrock-api-key-eA==", timeout_seconds=5)

    # THEN the error names the URL and the connection failure
    assert f"GET http://127.0.0.1:{closed_port}/openai/v1/models with the pending key failed" in str(raised.value)


def current_document_text(secretsmanager, secret_arn: str) -> str:
    return secretsmanager.get_secret_value(SecretId=secret_arn, VersionStage="AWSCURRENT")["SecretString"]
