"""The project's Lambda function defaults: arm64, the newest Python runtime, JSON logs, tracing."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.bundling import function_code
from stacks.config import RegionSettings
from stacks.nag import acknowledge

RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
SHARED_PACKAGES = ("bedrock_key",)


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
    return lambda_.Function(
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


def _retention_name(days: int) -> str:
    names = {
        1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
        60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS", 150: "FIVE_MONTHS", 180: "SIX_MONTHS",
        365: "ONE_YEAR", 400: "THIRTEEN_MONTHS", 545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS",
        1096: "THREE_YEARS", 1827: "FIVE_YEARS", 2192: "SIX_YEARS", 2557: "SEVEN_YEARS",
        2922: "EIGHT_YEARS", 3288: "NINE_YEARS", 3653: "TEN_YEARS",
    }
    return names[days]
