"""Helpers of the key rotation integration tests: moto clients, an AssumeRole recorder, a test clock and state snapshots."""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3

REPOSITORY_ROOT = Path(__file__).resolve().parents[3]
for path in (REPOSITORY_ROOT, REPOSITORY_ROOT / "lambda"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

REGION = "us-east-1"
KEY_ISSUER_ROLE_ARN = "arn:aws:iam::123456789012:role/gemma-batch-key-issuer"
FUNCTION_NAME = "gemma-batch-key-rotation"
# The function's own credentials. The log-leak test checks that their session token never appears.
FUNCTION_ACCESS_KEY_ID = "AKIAKEYROTATIONTEST"
FUNCTION_SECRET_ACCESS_KEY = "function-secret-access-key-for-leak-checks"
FUNCTION_SESSION_TOKEN = "function-session-token-for-leak-checks"
INITIAL_SECRET_STRING = "placeholder written at deployment, not rotated yet"


def make_client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=FUNCTION_ACCESS_KEY_ID,
        aws_secret_access_key=FUNCTION_SECRET_ACCESS_KEY,
        aws_session_token=FUNCTION_SESSION_TOKEN,
    )


@dataclass
class AssumeRoleCall:
    """One AssumeRole request the function sent, with the response it parsed."""

    request: dict[str, Any]
    response: dict[str, Any] | None = None


@dataclass
class RecordingSts:
    """An STS client on moto whose AssumeRole requests and responses the test can read."""

    client: Any
    calls: list[AssumeRoleCall] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.client.meta.events.register("provide-client-params.sts.AssumeRole", self._record_request)
        self.client.meta.events.register("after-call.sts.AssumeRole", self._record_response)

    def _record_request(self, params: dict[str, Any], **_: Any) -> None:
        self.calls.append(AssumeRoleCall(request=dict(params)))

    def _record_response(self, parsed: dict[str, Any], **_: Any) -> None:
        self.calls[-1].response = parsed


class SteppableClock:
    """The rotation function's clock: real UTC time (moto's STS uses it too) plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)

    def reset(self) -> None:
        self.offset = timedelta(0)


def rotation_environment(**overrides: str) -> dict[str, str]:
    """The environment variables the stack sets, in format mode unless overridden."""
    environment = {
        "KEY_ISSUER_ROLE_ARN": KEY_ISSUER_ROLE_ARN,
        "KEY_SESSION_SECONDS": "3600",
        "MIN_KEY_VALIDITY_SECONDS": "1800",
        "TEST_SECRET_MODE": "format",
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
    }
    environment.update(overrides)
    return environment


def version_stages(secretsmanager: Any, secret_id: str) -> dict[str, list[str]]:
    """Return each version id with its sorted staging labels."""
    versions = secretsmanager.describe_secret(SecretId=secret_id)["VersionIdsToStages"]
    return {version_id: sorted(stages) for version_id, stages in versions.items()}


def secret_state(secretsmanager: Any, secret_id: str) -> dict[str, tuple[list[str], str]]:
    """Return each version id with its staging labels and value, to compare before and after a step."""
    state = {}
    for version_id, stages in version_stages(secretsmanager, secret_id).items():
        value = secretsmanager.get_secret_value(SecretId=secret_id, VersionId=version_id)["SecretString"]
        state[version_id] = (stages, value)
    return state


def current_document(secretsmanager: Any, secret_id: str) -> dict[str, Any]:
    # VersionStage is explicit because moto 5.2.5 returns the old value without it after a stage move.
    value = secretsmanager.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")["SecretString"]
    return json.loads(value)


def rotation_event(step: str, secret_id: str, token: str) -> dict[str, str]:
    return {"Step": step, "SecretId": secret_id, "ClientRequestToken": token}


class MisbehavingMantle(BaseHTTPRequestHandler):
    """Serves /redirect/... with a 302 to /landing and /echo/... with a 401 that echoes the Authorization header."""

    requested_paths: list[str] = []

    def do_GET(self) -> None:
        self.requested_paths.append(self.path)
        if self.path.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", "/landing")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps({"error": {"message": f"rejected {self.headers.get('Authorization')}"}}).encode()
        self.send_response(401 if self.path.startswith("/echo/") else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's parameter name
        return
