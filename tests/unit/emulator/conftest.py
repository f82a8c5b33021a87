"""Fixtures of the Mantle emulator tests: one emulator per test process on 127.0.0.1, reset before each test.

Keys are minted with aws_bedrock_token_generator from fake credentials, so they have the exact
format of real short-term Bedrock API keys.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Callable, Iterator

import openai
import pytest
from aws_bedrock_token_generator import provide_token
from botocore.credentials import Credentials

REPOSITORY_ROOT = Path(__file__).resolve().parents[3]
if str(REPOSITORY_ROOT) not in sys.path:
    sys.path.insert(0, str(REPOSITORY_ROOT))

from gemma_batch.emulator import MantleEmulator  # noqa: E402 - needs the path above

REGION = "us-east-1"
ACCESS_KEY_ID = "AKIAEMULATORTEST0001"

KeyMinter = Callable[..., str]


class StaticCredentialProvider:
    """A botocore-style credential provider with fixed fake credentials."""

    def __init__(self, access_key_id: str) -> None:
        self._credentials = Credentials(access_key_id, "fake-secret-access-key", "fake-session-token")

    def load(self) -> Credentials:
        return self._credentials


def mint_key(access_key_id: str = ACCESS_KEY_ID, region: str = REGION, lifetime: timedelta = timedelta(hours=1)) -> str:
    return provide_token(
        region=region, aws_credentials_provider=StaticCredentialProvider(access_key_id), expiry=lifetime
    )


@pytest.fixture()
def mint() -> KeyMinter:
    return mint_key


@pytest.fixture(scope="session")
def running_emulator() -> Iterator[MantleEmulator]:
    emulator = MantleEmulator(region=REGION, host="127.0.0.1", port=0, seed=7).start()
    yield emulator
    emulator.stop()


@pytest.fixture()
def emulator(running_emulator: MantleEmulator) -> Iterator[MantleEmulator]:
    """The session's emulator with no faults, zeroed counters, real time and no session expiries."""
    running_emulator.restore_defaults()
    yield running_emulator
    running_emulator.reset()


@pytest.fixture()
def client(emulator: MantleEmulator) -> openai.OpenAI:
    """The real OpenAI SDK on the emulator, with retries off as the worker uses it."""
    return openai.OpenAI(base_url=emulator.base_url, api_key=mint_key(), max_retries=0, timeout=10)
