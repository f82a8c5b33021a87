"""Fixtures of the ramp controller tests. The policy tests need nothing; the run tests use moto server on 127.0.0.1."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from ramp_controller.controller import RampController, build_controller
from ramp_controller.settings import Settings
from tests.unit.ramp_controller.moto_pool import MotoPool, aws_clients, create_pool


class SettableClock:
    """A UTC clock that tests move forward."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def clients(moto_endpoint: str) -> dict[str, Any]:
    return aws_clients(moto_endpoint)


@pytest.fixture()
def pool(clients: dict[str, Any]) -> MotoPool:
    return create_pool(clients, pool_size=10)


@pytest.fixture()
def clock() -> SettableClock:
    # 30 s past a whole minute, with the 60 s metric delay the first window is the minute before last.
    start = datetime.now(timezone.utc).replace(second=30, microsecond=0) - timedelta(hours=1)
    return SettableClock(start)


@pytest.fixture()
def make_controller(
    pool: MotoPool, clock: SettableClock, monkeypatch: pytest.MonkeyPatch, moto_endpoint: str
) -> Callable[..., tuple[RampController, io.StringIO]]:
    """Return a function that builds a controller from the stack's environment, with ``overrides``.

    The controller's clients come from a boto3 session that finds moto server through
    AWS_ENDPOINT_URL, as the handler's do. Its EMF output goes to the returned StringIO.
    """
    for name, value in {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)

    def make(**overrides: str) -> tuple[RampController, io.StringIO]:
        settings = Settings.from_environ(pool.environment(**overrides))
        stream = io.StringIO()
        return build_controller(settings, boto3.session.Session(), clock=clock, emf_stream=stream), stream

    return make
