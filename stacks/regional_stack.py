"""One region of Gemma batch: the table of contents of what a region runs."""

from __future__ import annotations

from aws_cdk import CfnOutput, Environment, Stack
from constructs import Construct

from stacks.access import JobProducerPolicy, OperatorAccess
from stacks.alarms import Alarms
from stacks.api_key import ApiKey
from stacks.config import RegionSettings
from stacks.encryption import Encryption
from stacks.results_store import RESULT_PREFIXES, ResultsStore
from stacks.worker_pool import WorkerPool


def stack_name(region: str) -> str:
    """Return the stack name of a region, the same on every deployment path."""
    return f"GemmaBatch-{region}"


class RegionalStack(Stack):
    """Everything Gemma batch runs in one region; it references no other region."""

    def __init__(self, scope: Construct, *, settings: RegionSettings, account: str | None, bundle: bool) -> None:
        super().__init__(
            scope,
            stack_name(settings.region),
            env=Environment(account=account, region=settings.region),
            description=f"Gemma 4 batch jobs on Amazon Bedrock (Mantle, {settings.service_tier} tier) "
            f"in {settings.region}",
        )

        encryption = Encryption(self, "Encryption")
        api_key = ApiKey(self, "ApiKey", settings=settings, data_key=encryption.data_key, bundle=bundle)
        results = ResultsStore(self, "ResultsStore", settings=settings, data_key=encryption.data_key)
        pool = WorkerPool(
            self,
            "WorkerPool",
            settings=settings,
            data_key=encryption.data_key,
            api_key_secret=api_key.secret,
            results_bucket=results.bucket,
            bundle=bundle,
        )
        operators = OperatorAccess(self, "Operators", trusted_principals=settings.operator_trusted_principals)
        producers = JobProducerPolicy(
            self,
            "Producers",
            job_queue=pool.job_queue,
            results_bucket=results.bucket,
            data_key=encryption.data_key,
            result_prefixes=RESULT_PREFIXES,
        )
        alarms = Alarms(
            self,
            "Alarms",
            settings=settings,
            topic_key=encryption.alarm_topic_key,
            job_queue=pool.job_queue,
            dead_letter_queue=pool.dead_letter_queue,
        )

        CfnOutput(self, "JobQueueUrl", value=pool.job_queue.queue_url)
        CfnOutput(self, "DeadLetterQueueUrl", value=pool.dead_letter_queue.queue_url)
        CfnOutput(self, "ResultsBucketName", value=results.bucket.bucket_name)
        CfnOutput(self, "ApiKeySecretArn", value=api_key.secret.secret_arn)
        CfnOutput(self, "ProducerPolicyArn", value=producers.policy.managed_policy_arn)
        CfnOutput(self, "OperatorRoleArn", value=operators.role.role_arn)
        CfnOutput(self, "AlarmTopicArn", value=alarms.topic.topic_arn)
