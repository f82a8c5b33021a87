"""The Bedrock API key of a region: the secret, the key-issuer role and the rotation that refreshes it.

A short-term key is a SigV4 presigned URL signed with the key-issuer role's credentials, so it
stops working when that role session ends. The rotation function reaches the role by role
chaining, which caps the session at one hour, so a key lives at most one hour. An EventBridge
Scheduler schedule therefore calls RotateSecret every ``key_rotation_interval_minutes``, and
Secrets Manager's own schedule (every 4 hours, its shortest interval) is only a backstop.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stacks.config import RegionSettings
from stacks.functions import python_function
from stacks.nag import acknowledge

MANTLE_INFERENCE_POLICY = "AmazonBedrockMantleInferenceAccess"
# Role chaining caps an assumed-role session at one hour, and the key dies with that session.
KEY_SESSION_SECONDS = 3600
SECRETS_MANAGER_BACKSTOP = Duration.hours(4)


def min_key_validity_seconds(rotation_interval_minutes: int) -> int:
    """Return the validity below which a pending key is abandoned instead of made current.

    Two rotation intervals, so a key made current outlives the next rotation with room to spare,
    but at most the session length minus 15 minutes, so a freshly minted key always passes.
    """
    return min(2 * rotation_interval_minutes * 60, KEY_SESSION_SECONDS - 900)


class ApiKey(Construct):
    """Secret, key-issuer role, rotation function and the rotation schedules."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: RegionSettings, data_key: kms.IKey,
                 bundle: bool) -> None:
        super().__init__(scope, construct_id)

        self.secret = secretsmanager.Secret(
            self,
            "Secret",
            description="Short-term Bedrock API key for Gemma batch workers (JSON: api_key, expires_at, issued_by)",
            encryption_key=data_key,
        )

        self.rotation_function = python_function(
            self,
            "RotationFunction",
            package="key_rotation",
            description="Mints a short-term Bedrock API key with the key-issuer role and stores it in the secret",
            settings=settings,
            timeout=Duration.minutes(1),
            memory_mb=256,
            bundle=bundle,
            environment={
                "MANTLE_BASE_URL": settings.mantle_base_url,
                "KEY_SESSION_SECONDS": str(KEY_SESSION_SECONDS),
                "MIN_KEY_VALIDITY_SECONDS": str(min_key_validity_seconds(settings.key_rotation_interval_minutes)),
                "TEST_SECRET_MODE": "mantle",
            },
        )

        # The key carries the permissions of the identity that signed it, so this role holds the
        # inference permissions and nothing else; only the rotation function may assume it.
        self.key_issuer_role = iam.Role(
            self,
            "KeyIssuerRole",
            assumed_by=iam.ArnPrincipal(self.rotation_function.role.role_arn),
            description="Signs the short-term Bedrock API keys of Gemma batch; the keys carry its permissions",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(MANTLE_INFERENCE_POLICY)],
        )
        acknowledge(
            self.key_issuer_role,
            f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{MANTLE_INFERENCE_POLICY}]",
            "API keys carry the permissions of the identity that signs them; this AWS managed policy is the "
            "inference-only permission set AWS defines for Bedrock Mantle keys, and this role holds nothing else.",
        )
        self.rotation_function.add_environment("KEY_ISSUER_ROLE_ARN", self.key_issuer_role.role_arn)
        self.key_issuer_role.grant_assume_role(self.rotation_function.role)

        self._grant_rotation(data_key)
        self._schedule_backstop_rotation()
        self._schedule_frequent_rotation(settings)

    def _grant_rotation(self, data_key: kms.IKey) -> None:
        """Let the rotation function change only this secret, and only Secrets Manager invoke it for this secret."""
        self.rotation_function.add_to_role_policy(
            iam.PolicyStatement(
                sid="RotateApiKeySecret",
                actions=[
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:GetSecretValue",
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
            "Only Secrets Manager invokes this function, one rotation step at a time. A failed step leaves the "
            "rotation pending and the next scheduled RotateSecret call retries it, so a dead-letter queue would "
            "hold nothing to act on; the function's errors show in its logs and Errors metric.",
        )

    def _schedule_backstop_rotation(self) -> None:
        # Declared without the L2 helper, which would also grant secretsmanager:GetRandomPassword on "*" and
        # let any account's secrets invoke the function.
        schedule = secretsmanager.CfnRotationSchedule(
            self,
            "BackstopRotation",
            secret_id=self.secret.secret_arn,
            rotation_lambda_arn=self.rotation_function.function_arn,
            rotation_rules=secretsmanager.CfnRotationSchedule.RotationRulesProperty(
                schedule_expression=f"rate({int(SECRETS_MANAGER_BACKSTOP.to_hours())} hours)",
            ),
            rotate_immediately_on_update=True,
        )
        # Rotating immediately on creation needs the invoke permission in place first.
        schedule.node.add_dependency(self.rotation_function.node.find_child("InvokeBySecretsManager"))

    def _schedule_frequent_rotation(self, settings: RegionSettings) -> None:
        target = scheduler_targets.Universal(
            service="secretsmanager",
            action="rotateSecret",
            input=scheduler.ScheduleTargetInput.from_object({"SecretId": self.secret.secret_arn}),
            policy_statements=[
                iam.PolicyStatement(actions=["secretsmanager:RotateSecret"], resources=[self.secret.secret_arn])
            ],
        )
        self.rotation_schedule = scheduler.Schedule(
            self,
            "FrequentRotation",
            description=f"Rotates the Bedrock API key every {settings.key_rotation_interval_minutes} minutes, "
            "well inside the key's one-hour life",
            schedule=scheduler.ScheduleExpression.rate(Duration.minutes(settings.key_rotation_interval_minutes)),
            target=target,
        )
