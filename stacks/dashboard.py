"""The CloudWatch dashboard of a region: traffic, throttling, tokens, latency, the queues, the pool and the ramp."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from stacks import metrics
from stacks.alarm_definitions import THROTTLED_429_RATE, UNAVAILABLE_503_RATE, region_alarms
from stacks.alarms import Alarms
from stacks.cdk_metrics import alarm_metric, cdk_metric
from stacks.config import RegionSettings
from stacks.metrics import Resource

WIDTH = 12
HEIGHT = 6
# The controller writes one datapoint per run, and its schedule runs it at most once a minute.
RAMP_PERIOD = Duration.minutes(1)


def dashboard_name(region: str) -> str:
    return f"GemmaBatch-{region}"


class OperationsDashboard(Construct):
    """One dashboard per region. Graphs use the alarm period, so they show what the alarms evaluate.

    The alarm widget lists the alarms that exist when the dashboard is built, so the regional
    stack builds it last.
    """

    def __init__(self, scope: Construct, construct_id: str, *, settings: RegionSettings, alarms: Alarms) -> None:
        super().__init__(scope, construct_id)
        resources = alarms.metric_resources
        period = Duration.seconds(settings.alarm_period_seconds)
        definitions = region_alarms(settings)

        def worker(name: str, statistic: str = "Sum", label: str | None = None) -> cloudwatch.Metric:
            return cdk_metric(metrics.worker_metric(name, statistic), period, resources, label=label or name)

        def ramp(name: str, statistic: str, label: str) -> cloudwatch.Metric:
            return cdk_metric(metrics.ramp_controller_metric(name, statistic), RAMP_PERIOD, resources, label=label)

        def aws(spec: metrics.MetricSpec, label: str) -> cloudwatch.Metric:
            return cdk_metric(spec, period, resources, label=label)

        throttled = definitions.metric_alarm(THROTTLED_429_RATE)
        unavailable = definitions.metric_alarm(UNAVAILABLE_503_RATE)

        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=dashboard_name(settings.region),
            default_interval=Duration.hours(3),
        )
        self.dashboard.add_widgets(
            _graph("Mantle requests", [
                worker(metrics.REQUESTS),
                worker(metrics.THROTTLED_429, label="429 answers"),
                worker(metrics.UNAVAILABLE_503, label="503 answers"),
                worker(metrics.OTHER_ERRORS, label="other failures"),
            ], right=[
                worker(metrics.JOBS_SUCCEEDED, label="jobs succeeded"),
                worker(metrics.JOBS_FAILED, label="jobs failed"),
            ]),
            cloudwatch.GraphWidget(
                title="429 and 503 rates (%), 0 below the alarms' request floor",
                left=[alarm_metric(throttled, resources), alarm_metric(unavailable, resources)],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=throttled.threshold, label="429 alarm threshold"),
                    cloudwatch.HorizontalAnnotation(value=unavailable.threshold, label="503 alarm threshold"),
                ],
                width=WIDTH,
                height=HEIGHT,
            ),
        )
        self.dashboard.add_widgets(
            _graph("Tokens", [
                worker(metrics.INPUT_TOKENS, label="input tokens"),
                worker(metrics.OUTPUT_TOKENS, label="output tokens"),
                worker(metrics.CACHED_INPUT_TOKENS, label="cached input tokens"),
            ]),
            _graph("Mantle request latency (ms)", [
                worker(metrics.REQUEST_LATENCY, "p50", label="p50"),
                worker(metrics.REQUEST_LATENCY, "p90", label="p90"),
                worker(metrics.REQUEST_LATENCY, "p99", label="p99"),
            ]),
        )
        self.dashboard.add_widgets(
            _graph("Queues", [
                aws(metrics.queue_metric("ApproximateNumberOfMessagesVisible", Resource.JOB_QUEUE), "jobs waiting"),
                aws(metrics.queue_metric("ApproximateNumberOfMessagesNotVisible", Resource.JOB_QUEUE), "jobs in flight"),
                aws(metrics.queue_metric("ApproximateNumberOfMessagesVisible", Resource.DEAD_LETTER_QUEUE),
                    "dead-lettered jobs"),
            ], right=[
                aws(metrics.queue_metric("ApproximateAgeOfOldestMessage", Resource.JOB_QUEUE), "oldest job age (s)"),
            ]),
            _graph("Pool concurrency", [
                aws(metrics.worker_function_metric("ConcurrentExecutions", "Maximum"), "worker invocations running"),
                ramp(metrics.RAMP_CONCURRENCY, "Maximum", "maximum concurrency set by the ramp controller"),
            ], right=[
                aws(metrics.worker_function_metric("Errors"), "worker errors"),
                aws(metrics.worker_function_metric("Throttles"), "worker throttles"),
            ]),
        )
        self.dashboard.add_widgets(
            _graph("Ramp controller decisions", [
                ramp(metrics.RAMP_RATE, "Maximum", "rate (requests per minute)"),
            ], right=[
                ramp(metrics.RAMP_CUTS, "Sum", "cuts"),
                ramp(metrics.RAMP_RAISES, "Sum", "raises"),
                ramp(metrics.RAMP_REAPPLIED, "Sum", "re-applied after a reset"),
            ]),
            cloudwatch.AlarmStatusWidget(
                title="Alarms",
                alarms=_alarms_of_stack(self),
                width=WIDTH,
                height=HEIGHT,
            ),
        )


def _alarms_of_stack(scope: Construct) -> list[cloudwatch.AlarmBase]:
    """Return every alarm created in the stack so far, so build the dashboard after the other constructs."""
    return [child for child in Stack.of(scope).node.find_all() if isinstance(child, cloudwatch.AlarmBase)]


def _graph(title: str, left: list[cloudwatch.IMetric], right: list[cloudwatch.IMetric] | None = None
           ) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(title=title, left=left, right=right or [], width=WIDTH, height=HEIGHT)
