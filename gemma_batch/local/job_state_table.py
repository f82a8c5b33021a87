"""Create the job state table on a local DynamoDB endpoint (moto server), with the key and TTL the stack declares.

The worker needs this table (JOB_STATE_TABLE) for job status and idempotency. In AWS the stack
creates it (stacks/job_state.py); tests and local runs create it with ``create_job_state_table``.
"""

from __future__ import annotations

from typing import Any

# The same names as worker.job_state.PARTITION_KEY and TTL_ATTRIBUTE; a test checks that they match.
PARTITION_KEY = "job_id"
TTL_ATTRIBUTE = "expires_at"


def create_job_state_table(dynamodb_client: Any, table_name: str) -> str:
    """Create an on-demand table keyed by job id with TTL on, and return its name once it is active."""
    dynamodb_client.create_table(
        TableName=table_name,
        AttributeDefinitions=[{"AttributeName": PARTITION_KEY, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb_client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    dynamodb_client.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
    )
    return table_name
