"""The worker pool: the job queue and its dead-letter queue feeding the worker function."""

from __future__ import annotations

import json

from aws_cdk import Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks import metrics
from stacks.config import RegionSettings
from stacks.functions import python_function
from stacks.job_inputs import JobInputs
from stacks.nag import acknowledge
from stacks.results_store import RESULT_PREFIXES

# SQS keeps a message at most 14 days; the DLQ keeps it that long so nothing expires before an operator looks.
MAX_RETENTION = Duration.days(14)


class WorkerPool(Construct):
    """Job queue, DLQ and the worker function on an event source mapping capped at the pool size."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: RegionSettings, data_key: kms.IKey,
                 api_key_secret: secretsmanager.ISecret, results_bucket: s3.IBucket, bundle: bool) -> None:
        super().__init__(scope, construct_id)

        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=data_key,
            enforce_ssl=True,
            retention_period=MAX_RETENTION,
        )
        acknowledge(
            self.dead_letter_queue,
            "Serverless-SQSRedrivePolicy",
            "This is the dead-letter queue of the job queue; a dead-letter queue of its own would only move "
            "failed jobs further from the operator who redrives them.",
        )

        self.job_queue = sqs.Queue(
            self,
            "JobQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=data_key,
            enforce_ssl=True,
            retention_period=MAX_RETENTION,
            visibility_timeout=Duration.seconds(settings.queue_visibility_timeout_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=settings.max_receive_count
            ),
        )

        self.function = python_function(
            self,
            "Worker",
            package="worker",
            description="Runs Gemma 4 jobs from the job queue through Bedrock Mantle and stores the results",
            settings=settings,
            timeout=Duration.seconds(settings.function_timeout_seconds),
            memory_mb=settings.function_memory_mb,
            bundle=bundle,
            environment={
                "MANTLE_BASE_URL": settings.mantle_base_url,
                "MODEL_ID": settings.model_id,
                "SERVICE_TIER": settings.service_tier,
                "API_KEY_SECRET_ARN": api_key_secret.secret_arn,
                "RESULTS_BUCKET": results_bucket.bucket_name,
                "JOB_QUEUE_URL": self.job_queue.queue_url,
                "MAX_ATTEMPTS_PER_DELIVERY": str(settings.max_attempts_per_delivery),
                "DEFAULT_MAX_OUTPUT_TOKENS": str(settings.default_max_output_tokens),
                "KEY_REFRESH_MARGIN_SECONDS": str(settings.key_refresh_margin_seconds),
                "METRICS_NAMESPACE": metrics.NAMESPACE,
                "METRICS_SERVICE": metrics.WORKER_SERVICE,
            },
        )
        self._grant_worker(data_key, api_key_secret, results_bucket)

        self.function.add_event_source(
            event_sources.SqsEventSource(
                self.job_queue,
                batch_size=settings.batch_size,
                max_batching_window=Duration.seconds(settings.max_batching_window_seconds),
                report_batch_item_failures=True,
                max_concurrency=settings.worker_pool_size,
            )
        )
        acknowledge(
            self.function,
            "Serverless-LambdaEventSourceMappingDestination",
            "SQS event source mappings do not support on-failure destinations; failed jobs move to the job "
            "queue's dead-letter queue after max_receive_count deliveries, and an alarm watches that queue.",
        )
        acknowledge(
            self.function,
            "Serverless-LambdaDLQ",
            "The function is invoked only by its SQS event source mapping, where failed messages go to the job "
            "queue's dead-letter queue; a function dead-letter queue applies to asynchronous invocations only.",
        )
        for pack in ("NIST.800.53.R5", "HIPAA.Security"):
            acknowledge(
                self.function,
                f"{pack}-LambdaConcurrency",
                "The event source mapping's maximum concurrency (worker_pool_size) caps how many workers run; "
                "reserved concurrency would also take that many executions from the account's pool while idle.",
            )

    def connect_job_contract(self, *, settings: RegionSettings, job_state_table: dynamodb.ITable, job_inputs: JobInputs) -> None:
        """Give the worker the job state table, the input location and the job contract settings.

        The worker updates its jobs' state items (claims and final statuses, all UpdateItem) and
        reads ``s3://`` images from the input location, nothing else there.
        """
        environment = {
            "JOB_STATE_TABLE": job_state_table.table_name,
            "JOB_STATE_TTL_DAYS": str(settings.result_retention_days),
            "INPUT_BUCKET": job_inputs.bucket.bucket_name,
            "INPUT_PREFIX": job_inputs.prefix,
            "ALLOW_STANDARD_TIER_ESCALATION": "true" if settings.allow_standard_tier_escalation else "false",
            "REASONING_EFFORT_BY_MODEL": json.dumps(dict(settings.reasoning_effort_by_model), sort_keys=True),
            "MAX_RECEIVE_COUNT": str(settings.max_receive_count),
        }
        for name, value in environment.items():
            self.function.add_environment(name, value)

        role = self.function.role
        assert role is not None
        # NOTE: the role's kms:Decrypt and kms:GenerateDataKey on the data key (UseDataKey) are assumed to cover
        # DynamoDB's use of that key for this table; this was not checked against AWS.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="TrackJobState",
                actions=["dynamodb:UpdateItem"],
                resources=[job_state_table.table_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(sid="ReadJobInputs", actions=["s3:GetObject"], resources=[job_inputs.objects_arn])
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{_nag_resource(job_inputs.objects_arn, job_inputs.bucket)}]",
            "The worker reads the images that jobs name under the input location; their keys are known only at run "
            "time, and it may read nothing else there.",
        )

    def _grant_worker(self, data_key: kms.IKey, secret: secretsmanager.ISecret, bucket: s3.IBucket) -> None:
        """Grant the worker what it calls besides its queue, which the event source grants."""
        role = self.function.role
        assert role is not None
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadApiKey",
                actions=["secretsmanager:GetSecretValue"],
                resources=[secret.secret_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteResults",
                actions=["s3:PutObject"],
                resources=[bucket.arn_for_objects(f"{prefix}*") for prefix in RESULT_PREFIXES],
            )
        )
        for prefix in RESULT_PREFIXES:
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::<{Stack.of(bucket).get_logical_id(bucket.node.default_child)}.Arn>/{prefix}*]",
                "The worker writes one object per job under this prefix, keyed by a job id only known at run time.",
            )
        # Decrypt: queue messages and the secret. GenerateDataKey: result objects (SSE-KMS with a bucket key).
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="UseDataKey",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[data_key.key_arn],
            )
        )


def _nag_resource(objects_arn: str, bucket: s3.IBucket) -> str:
    """Return an object ARN as cdk-nag writes it in a finding: a stack bucket by its logical id, an imported one by name."""
    child = bucket.node.default_child
    if child is not None:
        prefix = objects_arn.split("/", 1)[1] if "/" in objects_arn else "*"
        return f"<{Stack.of(bucket).get_logical_id(child)}.Arn>/{prefix}"  # type: ignore[arg-type]
    return f"arn:<AWS::Partition>:s3:::{bucket.bucket_name}/*"
