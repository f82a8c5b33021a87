"""Fixtures for the key rotation tests against Secrets Manager and STS on moto server (127.0.0.1 only).

The moto server starts once per test process. Each test gets its own secret, so tests do not
share versions. Every boto3 client here names the loopback endpoint and test credentials
explicitly, so nothing reaches AWS or the instance metadata service.
"""

from __future__ import annotations

import threading
import uuid
from http.server import ThreadingHTTPServer
from typing import Any, Callable, Iterator

import pytest
from moto.server import ThreadedMotoServer

from rotation_support import (
    INITIAL_SECRET_STRING,
    MisbehavingMantle,
    RecordingSts,
    SteppableClock,
    make_client,
    rotation_environment,
)

from gemma_batch.local.rotation_harness import enable_rotation_on_moto
from key_rotation.config import RotationConfig
from key_rotation.dependencies import RotationDependencies
from key_rotation.handler import RotationHandler, build_handler
from key_rotation.log_redaction import remove_key_material_filter


@pytest.fixture(autouse=True)
def key_material_filter_removed() -> Iterator[None]:
    """Remove the logging filter that each handler invocation installs, so tests of other packages see botocore's loggers as they were."""
    yield
    remove_key_material_filter()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def secretsmanager(moto_endpoint: str) -> Any:
    return make_client("secretsmanager", moto_endpoint)


@pytest.fixture()
def sts(moto_endpoint: str) -> RecordingSts:
    return RecordingSts(make_client("sts", moto_endpoint))


@pytest.fixture()
def clock() -> SteppableClock:
    return SteppableClock()


@pytest.fixture()
def make_handler(secretsmanager: Any, sts: RecordingSts, clock: SteppableClock) -> Callable[..., RotationHandler]:
    """Build the real handler on the moto clients and the test clock; keyword arguments override environment variables."""

    def build(**environment_overrides: str) -> RotationHandler:
        config = RotationConfig.from_environment(rotation_environment(**environment_overrides))
        return build_handler(
            RotationDependencies(config=config, secretsmanager=secretsmanager, sts=sts.client, clock=clock)
        )

    return build


@pytest.fixture()
def secret_arn(secretsmanager: Any) -> str:
    """A new secret with a placeholder AWSCURRENT value and rotation enabled, as the stack creates it."""
    response = secretsmanager.create_secret(
        Name=f"gemma-batch-api-key-{uuid.uuid4().hex[:12]}", SecretString=INITIAL_SECRET_STRING
    )
    enable_rotation_on_moto(secretsmanager, response["ARN"])
    return response["ARN"]


@pytest.fixture(scope="session")
def misbehaving_mantle() -> Iterator[str]:
    """Base URL of a loopback server that redirects or echoes the key; see MisbehavingMantle."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), MisbehavingMantle)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield f"http://{host}:{port}"
    server.shutdown()
    server.server_close()
