"""The AWS side of a worker pool on moto server, for the ramp controller's tests.

It creates what the controller reads and writes: the state table, a worker function with an
SQS event source mapping whose MaximumConcurrency is the pool size, and the worker's request
counts in CloudWatch at chosen minutes.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3

REGION = "us-east-1"
NAMESPACE = "GemmaBatch"
WORKER_SERVICE = "gemma-batch-worker"
CONTROLLER_SERVICE = "gemma-batch-ramp-controller"
LAMBDA_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def aws_clients(endpoint: str) -> dict[str, Any]:
    """Return boto3 clients on moto server, with the endpoint and fake credentials named explicitly."""
    return {
        name: boto3.client(
            name,
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        for name in ("dynamodb", "lambda", "sqs", "iam", "cloudwatch")
    }


@dataclass
class MotoPool:
    """One test's state table, worker function and event source mapping."""

    clients: dict[str, Any]
    table_name: str
    mapping_uuid: str
    pool_size: int
    worker_service: str
    """The worker's Service dimension, unique per test because moto server keeps every metric."""

    def maximum_concurrency(self) -> int:
        mapping = self.clients["lambda"].get_event_source_mapping(UUID=self.mapping_uuid)
        return mapping["ScalingConfig"]["MaximumConcurrency"]

    def reset_concurrency_as_a_deployment_does(self) -> None:
        self.clients["lambda"].update_event_source_mapping(
            UUID=self.mapping_uuid, ScalingConfig={"MaximumConcurrency": self.pool_size}
        )

    def put_counts(self, minute: datetime, *, requests: int, throttled_429: int = 0, unavailable_503: int = 0) -> None:
        """Store one minute of the worker's counts, as its EMF documents would after extraction."""
        self.clients["cloudwatch"].put_metric_data(
            Namespace=NAMESPACE,
            MetricData=[
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": "Service", "Value": self.worker_service}],
                    "Timestamp": minute,
                    "Value": value,
                    "Unit": "Count",
                }
                for name, value in (
                    ("Requests", requests),
                    ("Throttled429", throttled_429),
                    ("Unavailable503", unavailable_503),
                )
            ],
        )

    def stored_item(self) -> dict[str, Any] | None:
        response = self.clients["dynamodb"].get_item(
            TableName=self.table_name, Key={"controller_id": {"S": "ramp"}}, ConsistentRead=True
        )
        return response.get("Item")

    def environment(self, **overrides: str) -> dict[str, str]:
        """Return the controller's environment variables as the stack sets them."""
        return {
            "RAMP_CONTROLLER_ENABLED": "true",
            "RAMP_STATE_TABLE": self.table_name,
            "EVENT_SOURCE_MAPPING_UUID": self.mapping_uuid,
            "WORKER_POOL_SIZE": str(self.pool_size),
            "RAMP_TARGET_REQUESTS_PER_MINUTE": "2000",
            "RAMP_HOLD_MINUTES": "15",
            "METRICS_NAMESPACE": NAMESPACE,
            "WORKER_METRICS_SERVICE": self.worker_service,
            "METRICS_SERVICE": CONTROLLER_SERVICE,
            **overrides,
        }


def create_pool(clients: dict[str, Any], pool_size: int = 10) -> MotoPool:
    suffix = uuid.uuid4().hex[:10]
    table_name = f"ramp-state-{suffix}"
    clients["dynamodb"].create_table(
        TableName=table_name,
        AttributeDefinitions=[{"AttributeName": "controller_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "controller_id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    role_arn = clients["iam"].create_role(
        RoleName=f"worker-{suffix}", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST_POLICY)
    )["Role"]["Arn"]
    function_arn = clients["lambda"].create_function(
        FunctionName=f"worker-{suffix}",
        Runtime="python3.12",
        Role=role_arn,
        Handler="worker.handler.lambda_handler",
        Code={"ZipFile": _placeholder_code()},
    )["FunctionArn"]
    queue_url = clients["sqs"].create_queue(QueueName=f"jobs-{suffix}")["QueueUrl"]
    queue_arn = clients["sqs"].get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    mapping_uuid = clients["lambda"].create_event_source_mapping(
        EventSourceArn=queue_arn,
        FunctionName=function_arn,
        BatchSize=5,
        ScalingConfig={"MaximumConcurrency": pool_size},
    )["UUID"]
    return MotoPool(clients, table_name, mapping_uuid, pool_size, f"{WORKER_SERVICE}-{suffix}")


def _placeholder_code() -> bytes:
    # moto stores the package but never runs it: the job queue stays empty.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("worker/handler.py", "def lambda_handler(event, context):\n    return None\n")
    return buffer.getvalue()
