"""The project's Lambda function defaults: arm64, the newest Python runtime, JSON logs, tracing."""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.bundling import function_code
from stacks.config import RegionSettings
from stacks.nag import acknowledge

RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
SHARED_PACKAGES = ("bedrock_key",)
# Construct id of the stack's one key for function log groups, created by the first function.
LOGS_KEY_ID = "FunctionLogsKey"


def python_function(scope: Construct, construct_id: str, *, package: str, description: str,
                    settings: RegionSettings, timeout: Duration, memory_mb: int, bundle: bool,
                    environment: dict[str, str]) -> lambda_.Function:
    """Create a function for ``lambda/<package>`` with handler ``<package>.handler.lambda_handler``.

    The function gets its own log group with the configured retention and a role whose only
    policy writes to that log group; callers grant the rest.
    """
    log_group = logs.LogGroup(
        scope,
        f"{construct_id}Logs",
        retention=getattr(logs.RetentionDays, _retention_name(settings.log_retention_days)),
        encryption_key=function_logs_key(scope),
        removal_policy=RemovalPolicy.DESTROY,
    )
    role = iam.Role(
        scope,
        f"{construct_id}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=f"Execution role of the {package} function",
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group.log_group_arn],
        )
    )
    # Active tracing adds xray:PutTraceSegments and xray:PutTelemetryRecords on "*" to the role.
    acknowledge(
        role,
        "AwsSolutions-IAM5[Resource::*]",
        "The only statement on Resource::* is X-Ray tracing (xray:PutTraceSegments, xray:PutTelemetryRecords), "
        "which does not support resource-level permissions.",
    )
    function = lambda_.Function(
        scope,
        construct_id,
        description=description,
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        handler=f"{package}.handler.lambda_handler",
        code=function_code(package, SHARED_PACKAGES, RUNTIME, ARCHITECTURE, bundle),
        timeout=timeout,
        memory_size=memory_mb,
        role=role,
        log_group=log_group,
        logging_format=lambda_.LoggingFormat.JSON,
        application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
        system_log_level_v2=lambda_.SystemLogLevel.WARN,
        tracing=lambda_.Tracing.ACTIVE,
        environment=environment,
    )
    for pack in ("NIST.800.53.R5", "HIPAA.Security"):
        acknowledge(
            function,
            f"{pack}-LambdaInsideVPC",
            "The function calls only AWS service endpoints and the Bedrock Mantle endpoint over HTTPS with IAM or "
            "API key authentication, and no resource inside a VPC; a VPC would add NAT cost and no boundary.",
        )
    return function


def function_logs_key(scope: Construct) -> kms.IKey:
    """Return the stack's key for function log groups, creating it on first use.

    The key is apart from the data key because function logs never carry job data, and CloudWatch
    Logs may use it only for log groups of this account and region.
    """
    stack = Stack.of(scope)
    existing = stack.node.try_find_child(LOGS_KEY_ID)
    if existing is not None:
        return existing  # type: ignore[return-value]
    key = kms.Key(
        stack,
        LOGS_KEY_ID,
        description="Encrypts the Gemma batch function log groups",
        enable_key_rotation=True,
        pending_window=Duration.days(30),
    )
    # The statement CloudWatch Logs documents for encrypting log groups with a customer managed key.
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudWatchLogsOfThisAccount",
            principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:*"
                }
            },
        )
    )
    return key


def _retention_name(days: int) -> str:
    names = {
        1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
        60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS", 150: "FIVE_MONTHS", 180: "SIX_MONTHS",
        365: "ONE_YEAR", 400: "THIRTEEN_MONTHS", 545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS",
        1096: "THREE_YEARS", 1827: "FIVE_YEARS", 2192: "SIX_YEARS", 2557: "SEVEN_YEARS",
        2922: "EIGHT_YEARS", 3288: "NINE_YEARS", 3653: "TEN_YEARS",
    }
    return names[days]
