"""Fixtures of the worker's end-to-end tests: moto server, the Mantle emulator, the SQS driver and the real handler.

Both servers listen on 127.0.0.1 and start once per test process. Each test gets its own queue,
dead-letter queue, bucket and secret, and its own worker environment, so tests do not share state.
Every boto3 client, the worker's included, points at moto server with fake credentials.
"""

from __future__ import annotations

import json
import sys
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import boto3
import pytest
from aws_bedrock_token_generator import provide_token
from botocore.credentials import Credentials
from moto.server import ThreadedMotoServer

REPOSITORY_ROOT = Path(__file__).resolve().parents[3]
for path in (REPOSITORY_ROOT, REPOSITORY_ROOT / "lambda"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bedrock_key import ApiKeySecret  # noqa: E402 - needs the path above
from gemma_batch.emulator import MantleEmulator  # noqa: E402
from gemma_batch.local.job_state_table import create_job_state_table  # noqa: E402
from gemma_batch.local.sqs_driver import SqsDeliveryDriver  # noqa: E402
from worker import handler as worker_handler  # noqa: E402

REGION = "us-east-1"
MAX_ATTEMPTS = 3
MAX_RECEIVE_COUNT = 5
QUEUE_VISIBILITY_TIMEOUT_SECONDS = 2
FIRST_ACCESS_KEY_ID = "AKIAWORKERKEY0000001"


class StaticCredentialProvider:
    """A botocore-style credential provider with fixed fake credentials."""

    def __init__(self, access_key_id: str) -> None:
        self._credentials = Credentials(access_key_id, "fake-secret-access-key", "fake-session-token")

    def load(self) -> Credentials:
        return self._credentials


def mint_api_key(access_key_id: str, lifetime: timedelta = timedelta(hours=1)) -> str:
    return provide_token(region=REGION, aws_credentials_provider=StaticCredentialProvider(access_key_id), expiry=lifetime)


def secret_string(api_key: str, lifetime: timedelta = timedelta(hours=1)) -> str:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    return ApiKeySecret(
        api_key=api_key,
        expires_at=now + lifetime,
        issued_at=now,
        issued_by="arn:aws:sts::123456789012:assumed-role/gemma-batch-key-issuer/rotation",
    ).to_json()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def running_emulator() -> Iterator[MantleEmulator]:
    emulator = MantleEmulator(region=REGION, host="127.0.0.1", port=0, seed=11).start()
    yield emulator
    emulator.stop()


@pytest.fixture()
def emulator(running_emulator: MantleEmulator) -> Iterator[MantleEmulator]:
    running_emulator.restore_defaults()
    yield running_emulator
    running_emulator.reset()


@pytest.fixture(scope="session")
def aws_clients(moto_endpoint: str) -> dict[str, Any]:
    """The test's own boto3 clients, with the endpoint and fake credentials named explicitly."""
    return {
        name: boto3.client(
            name,
            endpoint_url=moto_endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        for name in ("sqs", "s3", "secretsmanager", "dynamodb")
    }


@dataclass
class WorkerStack:
    """One test's queues, bucket and secret, with helpers to send jobs and read every place a job can end."""

    clients: dict[str, Any]
    queue_url: str
    dlq_url: str
    bucket: str
    secret_arn: str
    api_key: str
    access_key_id: str
    job_state_table: str = ""
    environment: dict[str, str] = field(default_factory=dict)

    def job_state(self, job_id: str) -> dict[str, Any] | None:
        """Return the job's status record as plain values, or None when it has none."""
        item = self.clients["dynamodb"].get_item(
            TableName=self.job_state_table, Key={"job_id": {"S": job_id}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        return {name: next(iter(value.values())) for name, value in item.items()}

    def put_input(self, key: str, data: bytes, content_type: str = "image/png") -> str:
        """Upload an input object to the bucket's inputs/ prefix and return its s3:// URI."""
        self.clients["s3"].put_object(Bucket=self.bucket, Key=f"inputs/{key}", Body=data, ContentType=content_type)
        return f"s3://{self.bucket}/inputs/{key}"

    def send(self, *bodies: str | dict[str, Any]) -> list[str]:
        """Send job bodies (dicts are JSON-encoded) and return their message ids."""
        message_ids = []
        for body in bodies:
            text = body if isinstance(body, str) else json.dumps(body)
            message_ids.append(self.clients["sqs"].send_message(QueueUrl=self.queue_url, MessageBody=text)["MessageId"])
        return message_ids

    def objects(self, prefix: str) -> dict[str, dict[str, Any]]:
        """Return the stored records under a prefix, by the name between prefix and '.json'."""
        records = {}
        paginator = self.clients["s3"].get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                body = self.clients["s3"].get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
                records[item["Key"][len(prefix) : -len(".json")]] = json.loads(body)
        return records

    def results(self) -> dict[str, dict[str, Any]]:
        return self.objects("results/")

    def failures(self) -> dict[str, dict[str, Any]]:
        return self.objects("failures/")

    def dead_letters(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while True:
            response = self.clients["sqs"].receive_message(
                QueueUrl=self.dlq_url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=30
            )
            batch = response.get("Messages", [])
            if not batch:
                return messages
            messages.extend(batch)

    def queue_counts(self) -> dict[str, int]:
        attributes = self.clients["sqs"].get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return {name: int(value) for name, value in attributes.items()}

    def rotate_key(self, access_key_id: str, api_key: str | None = None) -> str:
        """Store a new key signed by ``access_key_id`` as the secret's AWSCURRENT version and return it.

        Pass ``api_key`` to store a key minted earlier: minting logs the key's signature at DEBUG.
        """
        api_key = api_key or mint_api_key(access_key_id)
        self.clients["secretsmanager"].put_secret_value(SecretId=self.secret_arn, SecretString=secret_string(api_key))
        self.api_key = api_key
        self.access_key_id = access_key_id
        return api_key


@pytest.fixture()
def mint() -> Callable[[str], str]:
    """Return a function that mints a one-hour key from fake credentials with the given access key id."""
    return mint_api_key


@pytest.fixture()
def stack(aws_clients: dict[str, Any]) -> WorkerStack:
    """A job queue with a redrive policy (maxReceiveCount 5) to a DLQ, a results bucket and a key secret."""
    suffix = uuid.uuid4().hex[:10]
    sqs = aws_clients["sqs"]
    dlq_url = sqs.create_queue(QueueName=f"jobs-dlq-{suffix}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=f"jobs-{suffix}",
        Attributes={
            "VisibilityTimeout": str(QUEUE_VISIBILITY_TIMEOUT_SECONDS),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}),
        },
    )["QueueUrl"]
    bucket = f"results-{suffix}"
    aws_clients["s3"].create_bucket(Bucket=bucket)
    api_key = mint_api_key(FIRST_ACCESS_KEY_ID)
    secret_arn = aws_clients["secretsmanager"].create_secret(
        Name=f"gemma-batch-api-key-{suffix}", SecretString=secret_string(api_key)
    )["ARN"]
    job_state_table = create_job_state_table(aws_clients["dynamodb"], f"job-state-{suffix}")
    return WorkerStack(
        aws_clients, queue_url, dlq_url, bucket, secret_arn, api_key, FIRST_ACCESS_KEY_ID, job_state_table
    )


@pytest.fixture()
def worker_environment(
    monkeypatch: pytest.MonkeyPatch, moto_endpoint: str, emulator: MantleEmulator, stack: WorkerStack
) -> Iterator[Callable[..., None]]:
    """Set the worker's environment as the stack would, with fast backoff. Call it with overrides to change values.

    The handler's cached runtime is dropped before and after, so each test starts cold.
    """

    def configure(**overrides: str) -> None:
        environment = {
            "AWS_ENDPOINT_URL": moto_endpoint,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",
            "MANTLE_BASE_URL": emulator.base_url,
            "MODEL_ID": "google.gemma-4-31b",
            "SERVICE_TIER": "flex",
            "API_KEY_SECRET_ARN": stack.secret_arn,
            "RESULTS_BUCKET": stack.bucket,
            "JOB_QUEUE_URL": stack.queue_url,
            "MAX_ATTEMPTS_PER_DELIVERY": str(MAX_ATTEMPTS),
            "BACKOFF_BASE_SECONDS": "0.001",
            "BACKOFF_MAX_SECONDS": "0.02",
            "REQUEST_TIMEOUT_SECONDS": "10",
            "DEFAULT_MAX_OUTPUT_TOKENS": "1024",
            "KEY_REFRESH_MARGIN_SECONDS": "300",
            "METRICS_NAMESPACE": "GemmaBatchTest",
            "METRICS_SERVICE": "gemma-batch-worker-test",
            "JOB_STATE_TABLE": stack.job_state_table,
            "INPUT_BUCKET": stack.bucket,
            "INPUT_PREFIX": "inputs/",
            "MAX_RECEIVE_COUNT": str(MAX_RECEIVE_COUNT),
            **overrides,
        }
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
            monkeypatch.delenv(name, raising=False)
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        stack.environment = environment
        worker_handler.reset_runtime()

    configure()
    yield configure
    worker_handler.reset_runtime()


@pytest.fixture()
def driver(aws_clients: dict[str, Any], stack: WorkerStack, worker_environment: Callable[..., None]) -> SqsDeliveryDriver:
    """The delivery driver on the test's queue, calling the real worker handler in this process."""
    return SqsDeliveryDriver(
        aws_clients["sqs"],
        stack.queue_url,
        worker_handler.lambda_handler,
        batch_size=10,
        timeout_seconds=60,
        wait_time_seconds=1,
    )


@pytest.fixture()
def requests_per_delivery(emulator: MantleEmulator) -> Callable[[], dict[tuple[str, str], int]]:
    """Return a function that reads the emulator's request count for each (job id, receive count) pair."""

    def read() -> dict[tuple[str, str], int]:
        counts = {}
        for job_id, job in emulator.stats.snapshot()["jobs"].items():
            for receive_count, count in job["by_receive_count"].items():
                counts[(job_id, receive_count)] = count
        return counts

    return read
