"""The job state table: one item per job with its status and the lock that makes jobs idempotent.

The worker claims a job with a conditional write before it calls the model, and records the
final status afterwards (see lambda/worker/job_state.py). Producers read the status to see how
their jobs went. Items expire through TTL after the result retention period.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.nag import acknowledge

# The same names as worker.job_state.PARTITION_KEY and TTL_ATTRIBUTE; a template test checks them.
PARTITION_KEY = "job_id"
TTL_ATTRIBUTE = "expires_at"


class JobState(Construct):
    """An on-demand DynamoDB table keyed by job id, encrypted with the data key, with TTL and point-in-time recovery."""

    def __init__(self, scope: Construct, construct_id: str, *, data_key: kms.IKey) -> None:
        super().__init__(scope, construct_id)

        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=data_key,
            time_to_live_attribute=TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )
        for pack in ("NIST.800.53.R5", "HIPAA.Security"):
            acknowledge(
                self.table,
                f"{pack}-DynamoDBInBackupPlan",
                "The table holds job statuses and locks that expire with the results; point-in-time recovery is on, "
                "and the results themselves live in the versioned results bucket, so a backup plan would add nothing.",
            )
