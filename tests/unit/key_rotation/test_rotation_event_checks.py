"""Parsing the rotation event and the staging-label checks that run before every step."""

from __future__ import annotations

import pytest

from key_rotation.errors import InvalidRotationEventError, RotationNotEnabledError, VersionNotPendingError
from key_rotation.rotation import RotationEvent
from key_rotation.secret_versions import TokenState, check_rotation_request, find_version_with_stage

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:gemma-batch-api-key-AbCdEf"
TOKEN = "6f1c2a8e-0000-4000-8000-000000000001"
OTHER_VERSION = "6f1c2a8e-0000-4000-8000-000000000002"


def describe_response(stages_by_version: dict[str, list[str]], rotation_enabled: bool | None = True) -> dict:
    response = {"ARN": SECRET_ARN, "VersionIdsToStages": stages_by_version}
    if rotation_enabled is not None:
        response["RotationEnabled"] = rotation_enabled
    return response


@pytest.mark.parametrize("step", ["createSecret", "setSecret", "testSecret", "finishSecret"])
def test_event_parses_each_step(step):
    # GIVEN an event as Secrets Manager sends it, with the newer RotationToken field
    event = {"Step": step, "SecretId": SECRET_ARN, "ClientRequestToken": TOKEN, "RotationToken": "opaque"}

    # WHEN it is parsed
    parsed = RotationEvent.parse(event)

    # THEN the three fields the function uses are kept
    assert parsed == RotationEvent(step=step, secret_id=SECRET_ARN, token=TOKEN)


@pytest.mark.parametrize(
    ("event", "expected_fragment"),
    [
        ({"SecretId": SECRET_ARN, "ClientRequestToken": TOKEN}, "'Step' is missing"),
        ({"Step": "createSecret", "ClientRequestToken": TOKEN}, "'SecretId' is missing"),
        ({"Step": "createSecret", "SecretId": SECRET_ARN, "ClientRequestToken": ""}, "'ClientRequestToken' is missing"),
        ({"Step": "create_secret", "SecretId": SECRET_ARN, "ClientRequestToken": TOKEN}, "'Step' is 'create_secret'"),
        (["createSecret"], "the event is a list"),
    ],
)
def test_event_rejects_malformed(event, expected_fragment):
    # GIVEN an event that is not a rotation request
    # WHEN it is parsed
    with pytest.raises(InvalidRotationEventError) as raised:
        RotationEvent.parse(event)

    # THEN the error names the field at fault
    assert expected_fragment in str(raised.value)


def test_check_pending_token_proceeds():
    # GIVEN a token whose version has AWSPENDING
    metadata = describe_response({OTHER_VERSION: ["AWSCURRENT"], TOKEN: ["AWSPENDING"]})

    # WHEN the request is checked
    state = check_rotation_request(metadata, SECRET_ARN, TOKEN)

    # THEN the step may run
    assert state is TokenState.PENDING


@pytest.mark.parametrize("stages", [["AWSCURRENT"], ["AWSCURRENT", "AWSPENDING"]])
def test_check_current_token_is_noop(stages):
    # GIVEN a token whose version is already AWSCURRENT
    metadata = describe_response({TOKEN: stages, OTHER_VERSION: ["AWSPREVIOUS"]})

    # WHEN the request is checked
    state = check_rotation_request(metadata, SECRET_ARN, TOKEN)

    # THEN the step has nothing to do
    assert state is TokenState.ALREADY_CURRENT


@pytest.mark.parametrize("rotation_enabled", [False, None])
def test_check_rejects_rotation_disabled(rotation_enabled):
    # GIVEN a secret whose rotation is off, or never configured (DescribeSecret then omits the field)
    metadata = describe_response({TOKEN: ["AWSPENDING"]}, rotation_enabled=rotation_enabled)

    # WHEN the request is checked
    with pytest.raises(RotationNotEnabledError) as raised:
        check_rotation_request(metadata, SECRET_ARN, TOKEN)

    # THEN the error names the secret
    assert SECRET_ARN in str(raised.value)


def test_check_rejects_unknown_token():
    # GIVEN a token that is no version of the secret
    metadata = describe_response({OTHER_VERSION: ["AWSCURRENT"]})

    # WHEN the request is checked
    with pytest.raises(VersionNotPendingError) as raised:
        check_rotation_request(metadata, SECRET_ARN, TOKEN)

    # THEN the error names the token and the secret
    assert f"ClientRequestToken {TOKEN} is not a version of secret {SECRET_ARN}" in str(raised.value)


@pytest.mark.parametrize("stages", [[], ["AWSPREVIOUS"]])
def test_check_rejects_token_not_pending(stages):
    # GIVEN a token whose version has neither AWSCURRENT nor AWSPENDING
    metadata = describe_response({OTHER_VERSION: ["AWSCURRENT"], TOKEN: stages})

    # WHEN the request is checked
    with pytest.raises(VersionNotPendingError) as raised:
        check_rotation_request(metadata, SECRET_ARN, TOKEN)

    # THEN the error reports that the version is not AWSPENDING
    assert "but not AWSPENDING" in str(raised.value)


def test_find_version_with_stage():
    # GIVEN a secret with a current and a previous version
    metadata = describe_response({TOKEN: ["AWSCURRENT"], OTHER_VERSION: ["AWSPREVIOUS"]})

    # WHEN versions are looked up by stage
    # THEN each stage leads to its version, and a missing stage to None
    assert find_version_with_stage(metadata, "AWSCURRENT") == TOKEN
    assert find_version_with_stage(metadata, "AWSPREVIOUS") == OTHER_VERSION
    assert find_version_with_stage(metadata, "AWSPENDING") is None
