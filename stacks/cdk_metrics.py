"""Turn the metric and alarm definitions (plain data) into CDK CloudWatch metrics and math expressions."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs

from stacks.alarm_definitions import MetricAlarmDefinition
from stacks.metrics import MetricSpec, Resource


@dataclass(frozen=True)
class MetricResources:
    """The resources that AWS metrics name in their dimensions."""

    job_queue: sqs.IQueue
    dead_letter_queue: sqs.IQueue
    worker_function: lambda_.IFunction

    def name_of(self, resource: Resource) -> str:
        if resource is Resource.JOB_QUEUE:
            return self.job_queue.queue_name
        if resource is Resource.DEAD_LETTER_QUEUE:
            return self.dead_letter_queue.queue_name
        return self.worker_function.function_name


def cdk_metric(spec: MetricSpec, period: Duration, resources: MetricResources, label: str | None = None
               ) -> cloudwatch.Metric:
    dimensions = {
        name: resources.name_of(value) if isinstance(value, Resource) else value for name, value in spec.dimensions
    }
    return cloudwatch.Metric(
        namespace=spec.namespace,
        metric_name=spec.metric_name,
        dimensions_map=dimensions,
        statistic=spec.statistic,
        period=period,
        label=label,
    )


def alarm_metric(alarm: MetricAlarmDefinition, resources: MetricResources) -> cloudwatch.IMetric:
    """Return what the alarm watches: its one metric, or its math expression over its metrics."""
    period = Duration.seconds(alarm.period_seconds)
    if alarm.expression is None:
        # Without a label, CloudFormation gets the plain MetricName form, which the console shows as is.
        ((_, spec),) = alarm.metrics
        return cdk_metric(spec, period, resources)
    return cloudwatch.MathExpression(
        expression=alarm.expression,
        using_metrics={query_id: cdk_metric(spec, period, resources) for query_id, spec in alarm.metrics},
        label=alarm.label,
        period=period,
    )
