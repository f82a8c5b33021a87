"""One region of Gemma batch: the table of contents of what a region runs."""

from __future__ import annotations

from aws_cdk import CfnOutput, Environment, Stack
from constructs import Construct

from stacks.access import JobProducerPolicy, OperatorAccess, allow_job_status
from stacks.alarms import Alarms
from stacks.api_key import ApiKey
from stacks.config import RegionSettings
from stacks.dashboard import OperationsDashboard
from stacks.encryption import Encryption
from stacks.job_inputs import JobInputs
from stacks.job_state import JobState
from stacks.key_alarms import KeyAlarms
from stacks.ramp_controller import RampController
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
            # Explicit, because inside a pipeline stage the default name would gain the stage's prefix.
            stack_name=stack_name(settings.region),
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
        api_key.connect_worker(pool.function)
        job_state = JobState(self, "JobState", data_key=encryption.data_key)
        inputs = JobInputs(self, "JobInputs", input_bucket_name=settings.input_bucket_name, results_bucket=results.bucket)
        pool.connect_job_contract(settings=settings, job_state_table=job_state.table, job_inputs=inputs)
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
            worker_function=pool.function,
        )
        RampController(self, "RampController", settings=settings, data_key=encryption.data_key, worker_function=pool.function, bundle=bundle)
        KeyAlarms(self, "KeyAlarms", api_key=api_key, topic=alarms.topic)
        OperationsDashboard(self, "Dashboard", settings=settings, alarms=alarms)

        allow_job_status(producers, job_state_table=job_state.table, results_bucket=results.bucket,
                         inputs_arn=inputs.objects_arn if inputs.in_results_bucket else None,
                         stack_name=stack_name(settings.region))

        CfnOutput(self, "JobQueueUrl", value=pool.job_queue.queue_url)
        CfnOutput(self, "JobStatusTableName", value=job_state.table.table_name)
        CfnOutput(self, "InputLocation", value=inputs.location)
        CfnOutput(self, "DeadLetterQueueUrl", value=pool.dead_letter_queue.queue_url)
        CfnOutput(self, "ResultsBucketName", value=results.bucket.bucket_name)
        CfnOutput(self, "ApiKeySecretArn", value=api_key.secret.secret_arn)
        CfnOutput(self, "ProducerPolicyArn", value=producers.policy.managed_policy_arn)
        CfnOutput(self, "OperatorRoleArn", value=operators.role.role_arn)
        CfnOutput(self, "AlarmTopicArn", value=alarms.topic.topic_arn)
