"""Fixtures of the worker unit tests. Function code is imported from lambda/, as Lambda does.

The key cache tests read secrets from Secrets Manager on a moto server (127.0.0.1 only), started
once per test process. Everything else here runs without a network.
"""

from __future__ import annotations

import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

REPOSITORY_ROOT = Path(__file__).resolve().parents[3]
for path in (REPOSITORY_ROOT, REPOSITORY_ROOT / "lambda"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

REGION = "us-east-1"


class TestClock:
    """A settable UTC clock for the key cache."""

    __test__ = False  # not a test class, despite the name

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture()
def secrets_client(moto_endpoint: str) -> Any:
    return boto3.client(
        "secretsmanager",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture()
def clock() -> TestClock:
    return TestClock(datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc))


@pytest.fixture()
def new_secret_name() -> str:
    return f"worker-unit-key-{uuid.uuid4().hex[:12]}"
