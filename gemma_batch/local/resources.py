"""Start moto server and the Mantle emulator on 127.0.0.1 and create one region's resources on moto.

Every boto3 client made here names the moto server endpoint and fake credentials. The worker's
environment sets AWS_ENDPOINT_URL to the same endpoint, so nothing reaches AWS.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import boto3
from moto.server import ThreadedMotoServer

from gemma_batch.emulator import MantleEmulator
from gemma_batch.local.job_state_table import create_job_state_table

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
# moto's default account, which its STS and IAM use.
ACCOUNT_ID = "123456789012"
# Fake credentials. moto server accepts any, and its STS issues the key-issuer session.
FAKE_ACCESS_KEY_ID = "testing"
FAKE_SECRET_ACCESS_KEY = "testing"
# The function timeout leaves room for a request after the retry policy's 5 s safety margin.
FUNCTION_TIMEOUT_SECONDS = 15
# A deployed queue's visibility timeout is 6 x the function timeout + the batching window, so an
# invocation always ends before its messages reappear. The delivery driver receives nothing while an
# invocation runs, so here a message that reappears early is never processed twice at the same time.
# The short timeout brings back the messages of a failed invocation within seconds.
QUEUE_VISIBILITY_TIMEOUT_SECONDS = 5
# Written at creation, as the stack does, and replaced by the first rotation.
INITIAL_SECRET_STRING = "placeholder written at creation; the first rotation stores a key"
KEY_ISSUER_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}, "Action": "sts:AssumeRole"}
    ],
}
# Variables removed from the worker's environment because they would send its boto3 clients
# elsewhere than moto server or to other credentials.
_AWS_VARIABLES_TO_CLEAR = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
)


class PortInUseError(RuntimeError):
    """Raised when a requested port on 127.0.0.1 is taken. The message names the option to change."""


@dataclass
class LocalServers:
    """moto server and the Mantle emulator, both listening on 127.0.0.1."""

    moto: ThreadedMotoServer
    emulator: MantleEmulator

    @property
    def moto_endpoint(self) -> str:
        host, port = self.moto.get_host_and_port()
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.emulator.stop()
        self.moto.stop()
        logger.info("moto server and the Mantle emulator stopped")


@dataclass(frozen=True)
class LocalResources:
    """The job queue, its dead-letter queue, the results bucket, the job state table, the secret and the key-issuer role."""

    queue_url: str
    queue_arn: str
    dead_letter_queue_url: str
    dead_letter_queue_arn: str
    results_bucket: str
    job_state_table: str
    secret_arn: str
    key_issuer_role_arn: str


def start_servers(region: str, moto_port: int, emulator_port: int, seed: int) -> LocalServers:
    """Start moto server and an emulator of ``region`` on 127.0.0.1. Port 0 picks a free port.

    Raises PortInUseError before starting anything when a requested port is taken.
    """
    _check_port_free(moto_port, "--moto-port")
    _check_port_free(emulator_port, "--emulator-port")
    moto = ThreadedMotoServer(ip_address=LOOPBACK, port=moto_port, verbose=False)
    moto.start()
    try:
        emulator = MantleEmulator(region=region, host=LOOPBACK, port=emulator_port, seed=seed).start()
    except BaseException:
        moto.stop()
        raise
    servers = LocalServers(moto=moto, emulator=emulator)
    logger.info("moto server listening on %s", servers.moto_endpoint)
    return servers


def aws_clients(moto_endpoint: str, region: str) -> dict[str, Any]:
    """Return the boto3 clients of the local run, each pointed at moto server with fake credentials."""
    return {
        service: boto3.client(
            service,
            endpoint_url=moto_endpoint,
            region_name=region,
            aws_access_key_id=FAKE_ACCESS_KEY_ID,
            aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
        )
        for service in ("sqs", "s3", "dynamodb", "secretsmanager", "sts", "iam")
    }


def create_resources(clients: Mapping[str, Any], max_receive_count: int) -> LocalResources:
    """Create the job queue with a redrive policy to its dead-letter queue, the bucket, the table, the secret and the role.

    Names end in a random suffix because moto keeps one in-memory state per Python process, which
    every moto server started in that process shares.
    """
    suffix = uuid.uuid4().hex[:8]
    sqs = clients["sqs"]

    dead_letter_queue_url = sqs.create_queue(QueueName=f"gemma-batch-jobs-dlq-{suffix}")["QueueUrl"]
    dead_letter_queue_arn = _queue_arn(sqs, dead_letter_queue_url)
    queue_url = sqs.create_queue(
        QueueName=f"gemma-batch-jobs-{suffix}",
        Attributes={
            "VisibilityTimeout": str(QUEUE_VISIBILITY_TIMEOUT_SECONDS),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dead_letter_queue_arn, "maxReceiveCount": max_receive_count}
            ),
        },
    )["QueueUrl"]

    results_bucket = f"gemma-batch-results-{suffix}"
    clients["s3"].create_bucket(Bucket=results_bucket)
    job_state_table = create_job_state_table(clients["dynamodb"], f"gemma-batch-job-state-{suffix}")

    secret_arn = clients["secretsmanager"].create_secret(
        Name=f"gemma-batch-api-key-{suffix}", SecretString=INITIAL_SECRET_STRING
    )["ARN"]
    key_issuer_role_arn = clients["iam"].create_role(
        RoleName=f"gemma-batch-key-issuer-{suffix}", AssumeRolePolicyDocument=json.dumps(KEY_ISSUER_TRUST_POLICY)
    )["Role"]["Arn"]

    resources = LocalResources(
        queue_url=queue_url,
        queue_arn=_queue_arn(sqs, queue_url),
        dead_letter_queue_url=dead_letter_queue_url,
        dead_letter_queue_arn=dead_letter_queue_arn,
        results_bucket=results_bucket,
        job_state_table=job_state_table,
        secret_arn=secret_arn,
        key_issuer_role_arn=key_issuer_role_arn,
    )
    logger.info(
        "created job queue %s, its dead-letter queue, bucket %s and secret %s", queue_url, results_bucket, secret_arn
    )
    return resources


def aws_environment(moto_endpoint: str, region: str) -> dict[str, str]:
    """Return the variables that point boto3 (and the AWS CLI) at moto server with fake credentials."""
    return {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_ACCESS_KEY,
    }


@contextlib.contextmanager
def isolated_aws_environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set ``values`` in os.environ and hide the variables that could point boto3 at AWS, then restore all of them.

    The shared config and credentials files are replaced by the null device, so a profile's
    endpoint or credentials cannot override the values, and service-specific endpoint variables
    (AWS_ENDPOINT_URL_<SERVICE>) are removed.
    """
    isolated = {
        **values,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    removed = [name for name in os.environ if name in _AWS_VARIABLES_TO_CLEAR or name.startswith("AWS_ENDPOINT_URL_")]
    saved = {name: os.environ.get(name) for name in [*isolated, *removed]}
    try:
        for name in removed:
            del os.environ[name]
        os.environ.update(isolated)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _queue_arn(sqs: Any, queue_url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _check_port_free(port: int, option: str) -> None:
    """Raise PortInUseError when ``port`` on 127.0.0.1 has a listener.

    ThreadedMotoServer.start (moto 5.2.5) waits forever when its server thread cannot bind, so the
    port is checked here first. A program that takes the port between this check and the start
    can still cause that wait.
    """
    if port == 0:
        return
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # The servers set SO_REUSEADDR too, so a port held only by closed connections counts as free.
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind((LOOPBACK, port))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"port {port} on {LOOPBACK} is in use; pass {option} with another port, or 0 for any free port"
            ) from None
        raise PortInUseError(f"cannot listen on {LOOPBACK}:{port} ({error}); pass {option} with another port") from None
    finally:
        probe.close()
