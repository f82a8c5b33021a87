"""Metric definitions the alarms read, kept apart from the alarms themselves.

The worker emits these metrics in CloudWatch embedded metric format. The stack passes the
namespace and the ``Service`` dimension value to the worker through environment variables,
and a test runs the worker and checks that every metric an alarm reads is one it emits.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch

NAMESPACE = "GemmaBatch"
SERVICE_DIMENSION = "Service"
WORKER_SERVICE = "gemma-batch-worker"

# Names of the worker's metrics. Every HTTP request sent to Mantle counts in REQUESTS, and
# each failed one in exactly one of THROTTLED_429, UNAVAILABLE_503 or OTHER_ERRORS.
REQUESTS = "Requests"
THROTTLED_429 = "Throttled429"
UNAVAILABLE_503 = "Unavailable503"
OTHER_ERRORS = "OtherErrors"
INPUT_TOKENS = "InputTokens"
OUTPUT_TOKENS = "OutputTokens"
JOBS_SUCCEEDED = "JobsSucceeded"
JOBS_FAILED = "JobsFailed"


@dataclass(frozen=True)
class WorkerMetrics:
    """Factory for the worker's metrics over one alarm period."""

    period: Duration

    def _sum(self, name: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=NAMESPACE,
            metric_name=name,
            dimensions_map={SERVICE_DIMENSION: WORKER_SERVICE},
            statistic="Sum",
            period=self.period,
        )

    def requests(self) -> cloudwatch.Metric:
        return self._sum(REQUESTS)

    def throttled_429(self) -> cloudwatch.Metric:
        return self._sum(THROTTLED_429)

    def unavailable_503(self) -> cloudwatch.Metric:
        return self._sum(UNAVAILABLE_503)

    def rate_percent(self, failures: cloudwatch.Metric, label: str, min_requests: int) -> cloudwatch.MathExpression:
        """Return ``failures`` as a percentage of requests, 0 below ``min_requests`` requests.

        Missing datapoints count as zero, so a period without traffic evaluates to 0 instead of
        missing data, and the division never sees zero requests.
        """
        return cloudwatch.MathExpression(
            expression=f"IF(FILL(requests, 0) >= {min_requests}, 100 * FILL(failures, 0) / FILL(requests, 0), 0)",
            using_metrics={"requests": self.requests(), "failures": failures},
            label=label,
            period=self.period,
        )
