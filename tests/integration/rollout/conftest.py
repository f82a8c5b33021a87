"""Fixtures of the rollout checks' tests: the worker tests' moto server, emulator, stack and SQS driver.

The fixtures are imported from the worker tests' conftest, so the smoke test runs against the same
real worker handler, moto server and Mantle emulator on 127.0.0.1.
"""

from __future__ import annotations

import sys
from typing import Any

import boto3
import pytest

from tests.integration.worker.conftest import (  # noqa: F401 - fixtures used by name
    REGION,
    aws_clients,
    driver,
    emulator,
    moto_endpoint,
    running_emulator,
    stack,
    worker_environment,
)
from tests.infra.conftest import REPO_ROOT

if str(REPO_ROOT / "tools") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "tools"))


@pytest.fixture(scope="session")
def cloudwatch(moto_endpoint: str) -> Any:  # noqa: F811 - the imported fixture above
    return boto3.client("cloudwatch", endpoint_url=moto_endpoint, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


class FakeClock:
    """A monotonic clock that moves only when ``sleep`` is called."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()
