"""The Bedrock API key of a region: the secret, the identity that issues keys, and the rotation that refreshes it.

Short-term mode (the default): a key is a SigV4 presigned URL signed with the key-issuer role's
credentials, so it stops working when that role session ends. The rotation function reaches the
role by role chaining, which caps the session at one hour. An EventBridge Scheduler schedule
therefore calls RotateSecret every ``key_rotation_interval_minutes``, workers call it when the
current key runs low, and Secrets Manager's own schedule (every 4 hours, its shortest interval)
is the backstop.

Long-term mode (``long_term_api_key``): a key is an IAM service-specific credential of an IAM user
of this region (``stacks.long_term_key``), rotated by Secrets Manager's schedule every
``long_term_key_rotation_days``.

In both modes a key check schedule invokes the rotation function every 5 minutes to report the
current key's validity and to unblock a rotation that stopped. ``stacks.key_timing`` derives
every interval and threshold.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stacks import metrics
from stacks.config import RegionSettings
from stacks.functions import python_function
from stacks.key_timing import (
    KEY_CHECK_INTERVAL_SECONDS,
    KEY_SESSION_SECONDS,
    WORKER_CACHE_SECONDS,
    KeyTiming,
    min_key_validity_seconds,
)
from stacks.long_term_key import LongTermKeyUser
from stacks.nag import acknowledge

__all__ = ["ApiKey", "KEY_SESSION_SECONDS", "MANTLE_INFERENCE_POLICY", "min_key_validity_seconds"]

MANTLE_INFERENCE_POLICY = "AmazonBedrockMantleInferenceAccess"
KEY_CHECK_ACTION = "CheckKey"


class ApiKey(Construct):
    """Secret, key issuer (role or IAM user), rotation function, its schedules and the grants around them."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: RegionSettings, data_key: kms.IKey,
                 bundle: bool) -> None:
        super().__init__(scope, construct_id)
        self.timing = KeyTiming.for_settings(settings)
        self.settings = settings

        self.secret = secretsmanager.Secret(
            self,
            "Secret",
            description="Bedrock API key for Gemma batch workers "
            "(JSON: api_key, expires_at, issued_at, issued_by, and credential_id for a long-term key)",
            encryption_key=data_key,
        )

        self.rotation_function = python_function(
            self,
            "RotationFunction",
            package="key_rotation",
            description="Issues a Bedrock API key, stores it in the secret, and checks the current key's validity",
            settings=settings,
            timeout=Duration.minutes(1),
            memory_mb=256,
            bundle=bundle,
            environment={
                "MANTLE_BASE_URL": settings.mantle_base_url,
                "MIN_KEY_VALIDITY_SECONDS": str(self.timing.min_pending_validity),
                "TEST_SECRET_MODE": "mantle",
                "METRICS_NAMESPACE": metrics.NAMESPACE,
            },
        )

        self.key_issuer_role: iam.Role | None = None
        self.long_term_user: LongTermKeyUser | None = None
        if self.timing.long_term:
            self.long_term_user = LongTermKeyUser(
                self,
                "LongTermKey",
                rotation_function=self.rotation_function,
                key_age_days=self.timing.long_term_key_age_days,
                retire_after_seconds=3 * WORKER_CACHE_SECONDS,
                inference_policy_name=MANTLE_INFERENCE_POLICY,
            )
        else:
            self.key_issuer_role = self._create_key_issuer_role()

        self._grant_rotation(data_key)
        self.schedule_group = scheduler.ScheduleGroup(self, "Schedules", removal_policy=RemovalPolicy.DESTROY)
        self._schedule_backstop_rotation()
        if not self.timing.long_term:
            self._schedule_frequent_rotation(settings)
        self._schedule_key_check()

    def _create_key_issuer_role(self) -> iam.Role:
        # The key carries the permissions of the identity that signed it, so this role has the
        # inference permissions and nothing else. Only the rotation function may assume it.
        role = iam.Role(
            self,
            "KeyIssuerRole",
            assumed_by=iam.ArnPrincipal(self.rotation_function.role.role_arn),
            description="Signs the short-term Bedrock API keys of Gemma batch; the keys carry its permissions",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(MANTLE_INFERENCE_POLICY)],
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{MANTLE_INFERENCE_POLICY}]",
            "API keys carry the permissions of the identity that signs them; this AWS managed policy is the "
            "inference-only permission set AWS defines for Bedrock Mantle keys, and this role holds nothing else.",
        )
        self.rotation_function.add_environment("KEY_MODE", "short_term")
        self.rotation_function.add_environment("KEY_SESSION_SECONDS", str(KEY_SESSION_SECONDS))
        self.rotation_function.add_environment("KEY_ISSUER_ROLE_ARN", role.role_arn)
        role.grant_assume_role(self.rotation_function.role)
        return role

    def _grant_rotation(self, data_key: kms.IKey) -> None:
        """Let the rotation function change only this secret, and only Secrets Manager invoke it for this secret."""
        self.rotation_function.add_to_role_policy(
            iam.PolicyStatement(
                sid="RotateApiKeySecret",
                actions=[
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:GetSecretValue",
                    "secretsmanager:ListSecretVersionIds",
                    "secretsmanager:PutSecretValue",
                    "secretsmanager:UpdateSecretVersionStage",
                ],
                resources=[self.secret.secret_arn],
            )
        )
        self.rotation_function.add_to_role_policy(
            iam.PolicyStatement(
                sid="UseDataKeyForSecret",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[data_key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{Stack.of(self).region}.amazonaws.com"}},
            )
        )
        self.rotation_function.add_permission(
            "InvokeBySecretsManager",
            principal=iam.ServicePrincipal("secretsmanager.amazonaws.com"),
            source_account=Aws.ACCOUNT_ID,
            source_arn=self.secret.secret_arn,
        )
        acknowledge(
            self.rotation_function,
            "Serverless-LambdaDLQ",
            "Secrets Manager invokes this function one rotation step at a time and a schedule invokes its key "
            "check. A failed step abandons its version and the next RotateSecret starts over, so a dead-letter "
            "queue would hold nothing to act on; failures show in the KeyRotationFailures metric and its alarm.",
        )
        for pack in ("NIST.800.53.R5", "HIPAA.Security"):
            acknowledge(
                self.rotation_function,
                f"{pack}-LambdaConcurrency",
                "Secrets Manager runs one rotation of this one secret at a time and RotateSecret fails while one is "
                "in progress, so the function runs a few invocations at most; reserving concurrency for it would "
                "take executions from the account's pool and bound nothing.",
            )

    def _schedule_backstop_rotation(self) -> None:
        # Declared without the L2 helper, which would also grant secretsmanager:GetRandomPassword on "*" and
        # let any account's secrets invoke the function.
        if self.timing.long_term:
            expression = f"rate({self.timing.backstop_interval // 86400} days)"
        else:
            expression = f"rate({self.timing.backstop_interval // 3600} hours)"
        schedule = secretsmanager.CfnRotationSchedule(
            self,
            "BackstopRotation",
            secret_id=self.secret.secret_arn,
            rotation_lambda_arn=self.rotation_function.function_arn,
            rotation_rules=secretsmanager.CfnRotationSchedule.RotationRulesProperty(schedule_expression=expression),
            rotate_immediately_on_update=True,
        )
        # Rotating immediately on creation needs the invoke permission in place first.
        schedule.node.add_dependency(self.rotation_function.node.find_child("InvokeBySecretsManager"))

    def _rotate_secret_statements(self) -> list[iam.PolicyStatement]:
        # RotateSecret also needs lambda:InvokeFunction on the rotation function (RotateSecret API reference).
        return [
            iam.PolicyStatement(actions=["secretsmanager:RotateSecret"], resources=[self.secret.secret_arn]),
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[self.rotation_function.function_arn]),
        ]

    def _schedule_frequent_rotation(self, settings: RegionSettings) -> None:
        target = scheduler_targets.Universal(
            service="secretsmanager",
            action="rotateSecret",
            input=scheduler.ScheduleTargetInput.from_object({"SecretId": self.secret.secret_arn}),
            policy_statements=self._rotate_secret_statements(),
            retry_attempts=0,
        )
        self.rotation_schedule = scheduler.Schedule(
            self,
            "FrequentRotation",
            description=f"Rotates the Bedrock API key every {settings.key_rotation_interval_minutes} minutes, "
            "well inside the key's one-hour life",
            schedule=scheduler.ScheduleExpression.rate(Duration.minutes(settings.key_rotation_interval_minutes)),
            schedule_group=self.schedule_group,
            target=target,
        )

    def _schedule_key_check(self) -> None:
        role = iam.Role(
            self,
            "KeyCheckRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
            ),
            description="Lets the key check schedule invoke the key rotation function",
        )
        target = scheduler_targets.LambdaInvoke(
            self.rotation_function,
            input=scheduler.ScheduleTargetInput.from_object(
                {"Action": KEY_CHECK_ACTION, "SecretId": self.secret.secret_arn}
            ),
            retry_attempts=0,
            role=role,
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::<{Stack.of(self).get_logical_id(self.rotation_function.node.default_child)}"
            ".Arn>:*]",
            "The wildcard covers the versions and aliases of the one rotation function that this role may invoke; "
            "the CDK's grantInvoke adds it next to the function's own ARN.",
        )
        self.key_check_schedule = scheduler.Schedule(
            self,
            "KeyCheck",
            description="Reports the Bedrock API key's remaining validity and unblocks a rotation that stopped",
            schedule=scheduler.ScheduleExpression.rate(Duration.seconds(KEY_CHECK_INTERVAL_SECONDS)),
            schedule_group=self.schedule_group,
            target=target,
        )

    def connect_worker(self, worker: lambda_.IFunction) -> None:
        """Give the worker its key cache settings, and let it request a rotation of this secret only."""
        environment = {
            "KEY_CACHE_SECONDS": str(WORKER_CACHE_SECONDS),
            "KEY_ROTATION_TRIGGER_SECONDS": str(self.timing.worker_trigger),
            "KEY_ROTATION_MIN_INTERVAL_SECONDS": str(self.timing.trigger_window),
        }
        for name, value in environment.items():
            worker.add_environment(name, value)
        for statement in self._rotate_secret_statements():
            worker.add_to_role_policy(statement)
