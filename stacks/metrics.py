"""Metric definitions that the alarms and the dashboard read, kept apart from both.

The worker and the ramp controller emit their metrics in CloudWatch embedded metric format. The
stack passes the namespace and the ``Service`` dimension values to them through environment
variables, and a test runs both and checks that every metric an alarm or the dashboard reads is
one they emit. AWS's own metrics (SQS, Lambda) name their resource in a dimension, which the
stack fills in from a ``Resource`` placeholder.

This module imports no CDK code, so tests and the alarm evaluator read it without synthesizing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

NAMESPACE = "GemmaBatch"
SERVICE_DIMENSION = "Service"
WORKER_SERVICE = "gemma-batch-worker"
RAMP_CONTROLLER_SERVICE = "gemma-batch-ramp-controller"

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
TIER_ESCALATIONS = "TierEscalations"
"""Jobs the worker moved from Flex to the standard tier because Flex kept answering 503 near their deadline."""
CACHED_INPUT_TOKENS = "CachedInputTokens"
REQUEST_LATENCY = "RequestLatency"
"""Milliseconds per successful Mantle request, emitted as a list of values so percentiles work."""

# Names of the ramp controller's metrics, one datapoint each per run.
RAMP_RATE = "RampRate"
RAMP_CONCURRENCY = "RampConcurrency"
RAMP_CUTS = "RampCuts"
RAMP_RAISES = "RampRaises"
RAMP_HOLDS = "RampHolds"
RAMP_REAPPLIED = "RampReapplied"

SQS_NAMESPACE = "AWS/SQS"
LAMBDA_NAMESPACE = "AWS/Lambda"


class Resource(enum.Enum):
    """A resource of the regional stack that an AWS metric's dimension names; the stack fills in its name."""

    JOB_QUEUE = "job queue"
    DEAD_LETTER_QUEUE = "dead-letter queue"
    WORKER_FUNCTION = "worker function"


DimensionValue = str | Resource


@dataclass(frozen=True)
class MetricSpec:
    """One CloudWatch metric with the statistic read from it.

    ``dimensions`` is a tuple of (name, value) pairs. A ``Resource`` value is a placeholder for
    the name of that resource, which the stack fills in.
    """

    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, DimensionValue], ...]
    statistic: str

    def with_statistic(self, statistic: str) -> "MetricSpec":
        return MetricSpec(self.namespace, self.metric_name, self.dimensions, statistic)


def worker_metric(name: str, statistic: str = "Sum") -> MetricSpec:
    return MetricSpec(NAMESPACE, name, ((SERVICE_DIMENSION, WORKER_SERVICE),), statistic)


def ramp_controller_metric(name: str, statistic: str = "Maximum") -> MetricSpec:
    return MetricSpec(NAMESPACE, name, ((SERVICE_DIMENSION, RAMP_CONTROLLER_SERVICE),), statistic)


def queue_metric(name: str, queue: Resource, statistic: str = "Maximum") -> MetricSpec:
    return MetricSpec(SQS_NAMESPACE, name, (("QueueName", queue),), statistic)


def worker_function_metric(name: str, statistic: str = "Sum") -> MetricSpec:
    return MetricSpec(LAMBDA_NAMESPACE, name, (("FunctionName", Resource.WORKER_FUNCTION),), statistic)
