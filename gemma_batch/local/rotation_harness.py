"""Run a secret rotation the way Secrets Manager does, for tests and the local run on moto.

moto 5.2.5 cannot run the rotation itself: RotateSecret with a Lambda ARN needs Docker to run
the function, and RotateSecret without one moves AWSCURRENT to an empty version at once. So
``rotate`` does what Secrets Manager does: it raises while another rotation is unfinished,
creates the AWSPENDING version for a new ClientRequestToken and calls the rotation handler with
createSecret, setSecret, testSecret and finishSecret, in that order. ``start_rotation`` and
``run_step`` do the same one part at a time, for tests that interleave their own checks.
``route_rotate_secret`` makes a boto3 client's RotateSecret calls run ``rotate``, so code that
calls RotateSecret (the worker's rotation trigger) drives the real rotation function on moto.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

logger = logging.getLogger(__name__)

RotationHandler = Callable[[Mapping[str, str], Any], None]

ROTATION_STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
AWSCURRENT = "AWSCURRENT"
AWSPENDING = "AWSPENDING"
# Secrets Manager creates the AWSPENDING version without a value. moto cannot, and rejects an
# empty SecretString, so the version gets this text, which is no key document, until createSecret
# replaces it.
PLACEHOLDER_SECRET_STRING = "placeholder: createSecret stores the key"
# The function code lives in lambda/ at the repository root, beside this package.
FUNCTION_CODE_DIRECTORY = Path(__file__).resolve().parents[2] / "lambda"


class RotationInProgressError(RuntimeError):
    """Raised when another rotation of the secret is unfinished, as RotateSecret does."""


class RotationStepError(RuntimeError):
    """Raised when the handler fails a step. ``step`` and ``token`` name the step and the version."""

    def __init__(self, step: str, token: str, secret_id: str, error: Exception) -> None:
        self.step = step
        self.token = token
        super().__init__(f"{step} failed for version {token} of secret {secret_id}: {error}")


@dataclass(frozen=True)
class RotationRequest:
    """A started rotation: the secret's ARN and the ClientRequestToken of its AWSPENDING version."""

    secret_arn: str
    token: str


def rotate(
    secretsmanager_client: Any,
    secret_id: str,
    handler: RotationHandler | None = None,
    token: str | None = None,
    context: Any = None,
) -> str:
    """Rotate the secret once with ``handler`` and return the ClientRequestToken of the new version.

    ``handler`` defaults to the function's ``key_rotation.handler.lambda_handler``, which reads
    its settings and AWS endpoint from environment variables. Pass the token of an unfinished
    rotation to resume it, as Secrets Manager does when it retries a failed rotation.
    Raises RotationInProgressError, or RotationStepError from the step that failed.
    """
    handler = handler or _default_handler()
    request = start_rotation(secretsmanager_client, secret_id, token)
    logger.info("Rotating secret %s with version %s", request.secret_arn, request.token)
    for step in ROTATION_STEPS:
        run_step(handler, request, step, context)
    logger.info("Rotated secret %s: version %s is AWSCURRENT", request.secret_arn, request.token)
    return request.token


def start_rotation(secretsmanager_client: Any, secret_id: str, token: str | None = None) -> RotationRequest:
    """Do what RotateSecret does before it invokes the function: check for an unfinished rotation and create the AWSPENDING version.

    A token that is already a version of the secret is reused as it is, which resumes that rotation.
    """
    metadata = secretsmanager_client.describe_secret(SecretId=secret_id)
    secret_arn = metadata["ARN"]
    versions: Mapping[str, list[str]] = metadata.get("VersionIdsToStages", {})

    if _version_with_stage(versions, AWSCURRENT) is None:
        raise ValueError(
            f"secret {secret_id} has no AWSCURRENT version; create it with a placeholder value first, "
            "because on moto the first value stored becomes AWSCURRENT"
        )
    unfinished = _unfinished_rotation(versions)
    if unfinished is not None and unfinished != token:
        raise RotationInProgressError(
            f"a previous rotation of secret {secret_id} isn't complete: version {unfinished} has AWSPENDING. "
            f"Resume it with token={unfinished!r}, or remove AWSPENDING from that version."
        )

    token = token or str(uuid.uuid4())
    if token not in versions:
        secretsmanager_client.put_secret_value(
            SecretId=secret_arn,
            ClientRequestToken=token,
            SecretString=PLACEHOLDER_SECRET_STRING,
            VersionStages=[AWSPENDING],
        )
    return RotationRequest(secret_arn=secret_arn, token=token)


def run_step(handler: RotationHandler, request: RotationRequest, step: str, context: Any = None) -> None:
    """Invoke ``handler`` with one step's event, raising RotationStepError when it fails."""
    event = {"Step": step, "SecretId": request.secret_arn, "ClientRequestToken": request.token}
    try:
        handler(event, context)
    except Exception as error:
        # Any exception fails the step, as a failed Lambda invocation does for Secrets Manager.
        raise RotationStepError(step, request.token, request.secret_arn, error) from error


@dataclass
class RotateSecretLog:
    """Tokens of the routed RotateSecret calls, by outcome: finished, failed, and refused (rotation in progress)."""

    finished: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def route_rotate_secret(
    client: Any, secretsmanager_client: Any, handler: RotationHandler | None = None
) -> RotateSecretLog:
    """Handle ``client``'s RotateSecret calls by rotating with ``handler`` on ``secretsmanager_client``, and return their log.

    As in Secrets Manager, a call while another rotation is unfinished fails with
    InvalidRequestException, and a call that starts a rotation succeeds even if the rotation then
    fails, because RotateSecret only starts it. Unlike Secrets Manager, the rotation has finished
    when the call returns. The request never reaches moto.
    """
    log = RotateSecretLog()

    def answer(params: Mapping[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        request = json.loads(params["body"])
        secret_id, token = request["SecretId"], request.get("ClientRequestToken")
        try:
            token = rotate(secretsmanager_client, secret_id, handler=handler, token=token)
        except RotationInProgressError as error:
            log.refused.append(token or "")
            return _ResponseStub(400), {
                "Error": {"Code": "InvalidRequestException", "Message": str(error)},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            }
        except RotationStepError as error:
            log.failed.append(error.token)
            token = error.token
        else:
            log.finished.append(token)
        return _ResponseStub(200), {"ARN": secret_id, "VersionId": token, "ResponseMetadata": {"HTTPStatusCode": 200}}

    client.meta.events.register("before-call.secrets-manager.RotateSecret", answer)
    return log


@dataclass(frozen=True)
class _ResponseStub:
    """The part of botocore's AWSResponse that the client reads from a before-call handler's result."""

    status_code: int
    headers: Mapping[str, str] = field(default_factory=dict)


def enable_rotation_on_moto(secretsmanager_client: Any, secret_id: str) -> None:
    """Make moto report RotationEnabled for the secret, which the rotation function checks.

    moto 5.2.5 sets RotationEnabled only for RotateSecret with RotationRules.AutomaticallyAfterDays
    and reads no ScheduleExpression. When the secret has a value, that call also copies the
    AWSCURRENT value into a new version and makes it AWSCURRENT, so the value stays the same.
    Against AWS, configure rotation with the rotation function's ARN instead.
    """
    metadata = secretsmanager_client.describe_secret(SecretId=secret_id)
    if metadata.get("RotationEnabled"):
        return
    secretsmanager_client.rotate_secret(
        SecretId=secret_id, RotationRules={"AutomaticallyAfterDays": 1}, RotateImmediately=False
    )


def _version_with_stage(versions: Mapping[str, list[str]], stage: str) -> str | None:
    for version_id, stages in versions.items():
        if stage in stages:
            return version_id
    return None


def _unfinished_rotation(versions: Mapping[str, list[str]]) -> str | None:
    """Return the version that has AWSPENDING without AWSCURRENT, which marks an unfinished rotation."""
    for version_id, stages in versions.items():
        if AWSPENDING in stages and AWSCURRENT not in stages:
            return version_id
    return None


def _default_handler() -> RotationHandler:
    if str(FUNCTION_CODE_DIRECTORY) not in sys.path:
        # Lambda puts the asset root (lambda/) on the path; do the same for the function code.
        sys.path.insert(0, str(FUNCTION_CODE_DIRECTORY))
    from key_rotation.handler import lambda_handler

    return lambda_handler
