"""Customer managed KMS keys of a region: one for job data, one for the alarm topic."""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


class Encryption(Construct):
    """Two keys, so CloudWatch, which must use the alarm topic's key, gets no access to job data."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)

        self.data_key = kms.Key(
            self,
            "DataKey",
            description="Encrypts Gemma batch jobs (queues), the Bedrock API key secret and the results",
            enable_key_rotation=True,
            pending_window=Duration.days(30),
        )

        self.alarm_topic_key = kms.Key(
            self,
            "AlarmTopicKey",
            description="Encrypts the Gemma batch alarm topic; CloudWatch may use it to publish alarms",
            enable_key_rotation=True,
            pending_window=Duration.days(30),
        )
        # CloudWatch alarms publish to an encrypted topic only if they can use its key. The grant is
        # limited to the two actions SNS needs and to alarms of this account.
        self.alarm_topic_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
