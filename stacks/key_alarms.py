"""Alarms on the API key: a rotation failed, and the current key's remaining validity is low.

The metric names come from ``lambda/bedrock_key/key_metrics.py``, the module the rotation function
writes them with, so the alarms and the function cannot drift apart. Both alarms notify the
region's alarm topic when they fire and when they recover.
"""

from __future__ import annotations

import importlib.util
from types import ModuleType

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks import metrics
from stacks.api_key import ApiKey
from stacks.bundling import LAMBDA_ROOT
from stacks.key_timing import KEY_CHECK_INTERVAL_SECONDS

# Two key checks fall into each period, so a period without data means the check itself stopped.
VALIDITY_PERIOD = Duration.seconds(2 * KEY_CHECK_INTERVAL_SECONDS)
FAILURE_PERIOD = Duration.minutes(5)


def load_key_metrics() -> ModuleType:
    """Load ``bedrock_key.key_metrics`` from the function code; it imports only the standard library."""
    path = LAMBDA_ROOT / "bedrock_key" / "key_metrics.py"
    spec = importlib.util.spec_from_file_location("gemma_batch_key_metrics", path)
    assert spec is not None and spec.loader is not None, f"cannot load {path}"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


KEY_METRICS = load_key_metrics()


def key_metric(name: str, statistic: str, period: Duration) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=metrics.NAMESPACE,
        metric_name=name,
        dimensions_map={KEY_METRICS.SERVICE_DIMENSION: KEY_METRICS.ROTATION_SERVICE},
        statistic=statistic,
        period=period,
    )


class KeyAlarms(Construct):
    """Rotation failed, and key validity below the threshold that ``stacks.key_timing`` derives."""

    def __init__(self, scope: Construct, construct_id: str, *, api_key: ApiKey, topic: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        timing = api_key.timing

        scheduler_errors = api_key.schedule_group.metric_target_errors(period=FAILURE_PERIOD, statistic="Sum")
        self.rotation_failed = cloudwatch.Alarm(
            self,
            "RotationFailed",
            alarm_description=(
                "A key rotation step failed, the key check abandoned a rotation that stopped, or a schedule's call "
                "(RotateSecret or the key check) failed. Read the rotation function's log for the step and the "
                "reason; the next scheduled rotation starts over with a new key."
            ),
            metric=cloudwatch.MathExpression(
                expression="FILL(failures, 0) + FILL(schedulerErrors, 0)",
                using_metrics={
                    "failures": key_metric(KEY_METRICS.ROTATION_FAILURES, "Sum", FAILURE_PERIOD),
                    "schedulerErrors": scheduler_errors,
                },
                label="Failed rotations and schedule calls",
                period=FAILURE_PERIOD,
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

        self.validity_low = cloudwatch.Alarm(
            self,
            "KeyValidityLow",
            alarm_description=(
                f"The current Bedrock API key is valid for less than {timing.alarm_threshold} s: its scheduled "
                "replacement is overdue, and workers lose the key when it expires. Missing key checks count as "
                "breaching. Check the RotationFailed alarm and the rotation function's log, then run "
                "aws secretsmanager rotate-secret."
            ),
            metric=key_metric(KEY_METRICS.KEY_VALIDITY_SECONDS, "Minimum", VALIDITY_PERIOD),
            threshold=timing.alarm_threshold,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
        )

        action = cloudwatch_actions.SnsAction(topic)
        for alarm in (self.rotation_failed, self.validity_low):
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
