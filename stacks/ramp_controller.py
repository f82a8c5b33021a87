"""The ramp controller: a scheduled function that sets the worker pool's maximum concurrency.

Every run reads the pool's 503 and 429 counts and follows AWS's ramp procedure (halve on 503s,
hold, raise by 50 %) on a rate that it keeps in its own DynamoDB table. It maps the rate to the
event source mapping's maximum concurrency and applies it. The logic is in ``lambda/ramp_controller/``.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from constructs import Construct

from stacks import metrics
from stacks.config import RegionSettings
from stacks.functions import python_function
from stacks.nag import acknowledge


class RampController(Construct):
    """State table, controller function and its schedule, acting on the worker's SQS event source mapping."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: RegionSettings, data_key: kms.IKey,
                 worker_function: lambda_.Function, bundle: bool) -> None:
        super().__init__(scope, construct_id)
        mapping = event_source_mapping_of(worker_function)

        self.state_table = dynamodb.Table(
            self,
            "StateTable",
            partition_key=dynamodb.Attribute(name="controller_id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=data_key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            # The table contains one item, which the controller recreates at the target rate.
            removal_policy=RemovalPolicy.DESTROY,
        )
        for pack in ("NIST.800.53.R5", "HIPAA.Security"):
            acknowledge(
                self.state_table,
                f"{pack}-DynamoDBInBackupPlan",
                "The table holds one item, the controller's current rate, which the controller recreates at the "
                "target rate when it is missing; point-in-time recovery is on, and a backup plan would keep nothing "
                "worth restoring.",
            )

        self.function = python_function(
            self,
            "Controller",
            package="ramp_controller",
            description="Sets the Gemma batch worker pool's maximum concurrency from its 503 and 429 counts",
            settings=settings,
            timeout=Duration.seconds(60),
            memory_mb=256,
            bundle=bundle,
            environment={
                "RAMP_CONTROLLER_ENABLED": "true" if settings.ramp_controller_enabled else "false",
                "RAMP_STATE_TABLE": self.state_table.table_name,
                "EVENT_SOURCE_MAPPING_UUID": mapping.event_source_mapping_id,
                "WORKER_POOL_SIZE": str(settings.worker_pool_size),
                "RAMP_TARGET_REQUESTS_PER_MINUTE": str(settings.ramp_target_requests_per_minute),
                "RAMP_HOLD_MINUTES": str(settings.ramp_hold_minutes),
                "METRICS_NAMESPACE": metrics.NAMESPACE,
                "WORKER_METRICS_SERVICE": metrics.WORKER_SERVICE,
                "METRICS_SERVICE": metrics.RAMP_CONTROLLER_SERVICE,
            },
        )
        # One run at a time: a second scheduled invocation waits for the scheduler's retry instead.
        cfn_function = self.function.node.default_child
        assert isinstance(cfn_function, lambda_.CfnFunction)
        cfn_function.reserved_concurrent_executions = 1
        self._grant(data_key, mapping)

        self._schedule(settings)
        acknowledge(
            self.function,
            "Serverless-LambdaDLQ",
            "The schedule runs the controller every few minutes and the next run decides again from fresh "
            "metrics; a dead-letter queue would keep stale runs that must not be replayed. Failures show in the "
            "function's log and Errors metric.",
        )

    def _schedule(self, settings: RegionSettings) -> None:
        schedule_role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
            ),
            description="Lets EventBridge Scheduler invoke the ramp controller",
        )
        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            description="Runs the Gemma batch ramp controller",
            schedule=scheduler.ScheduleExpression.expression(settings.ramp_controller_schedule),
            target=scheduler_targets.LambdaInvoke(
                self.function,
                role=schedule_role,
                # The next run reads fresh metrics, so a failed or late run is not worth repeating.
                retry_attempts=0,
                max_event_age=Duration.minutes(1),
            ),
        )
        function_id = Stack.of(self).get_logical_id(self.function.node.default_child)
        acknowledge(
            schedule_role,
            f"AwsSolutions-IAM5[Resource::<{function_id}.Arn>:*]",
            "The scheduler target grants lambda:InvokeFunction on the controller's ARN and on its qualified "
            "ARNs (versions and aliases); the stack publishes none, so the wildcard adds no other function.",
        )

    def _grant(self, data_key: kms.IKey, mapping: lambda_.EventSourceMapping) -> None:
        role = self.function.role
        assert role is not None
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadWriteRampState",
                actions=["dynamodb:GetItem", "dynamodb:PutItem"],
                resources=[self.state_table.table_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="UseDataKeyForRampState",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[data_key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{Stack.of(self).region}.amazonaws.com"}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="SetPoolConcurrency",
                actions=["lambda:GetEventSourceMapping", "lambda:UpdateEventSourceMapping"],
                resources=[mapping.event_source_mapping_arn],
            )
        )
        # A policy of its own, so its acknowledgement names only this statement.
        read_metrics = iam.Policy(
            self,
            "ReadPoolMetrics",
            statements=[iam.PolicyStatement(actions=["cloudwatch:GetMetricData"], resources=["*"])],
            roles=[role],
        )
        acknowledge(
            read_metrics,
            "AwsSolutions-IAM5[Resource::*]",
            "cloudwatch:GetMetricData supports no resource-level permissions or namespace condition; the "
            "controller reads only the worker's request counts with it and writes nothing to CloudWatch.",
        )


def event_source_mapping_of(function: lambda_.Function) -> lambda_.EventSourceMapping:
    """Return the function's only event source mapping, which ``add_event_source`` created as its child."""
    mappings = [child for child in function.node.children if isinstance(child, lambda_.EventSourceMapping)]
    if len(mappings) != 1:
        raise ValueError(
            f"the ramp controller needs exactly one event source mapping on {function.node.path}, found "
            f"{len(mappings)}; it sets that mapping's maximum concurrency"
        )
    return mappings[0]
