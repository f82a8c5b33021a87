"""The alarms of a region as data: metric queries, expression, threshold, comparison, periods, missing data.

``stacks/alarms.py`` turns these definitions into CloudWatch alarms, and
``stacks/alarm_evaluator.py`` evaluates them over synthetic datapoints, so the tests check the
same expressions and thresholds that the stack deploys. This module imports no CDK code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from stacks import metrics
from stacks.config import RegionSettings
from stacks.metrics import MetricSpec, Resource


class Comparison(str, enum.Enum):
    """CloudWatch's ComparisonOperator values for static thresholds."""

    GREATER_THAN_THRESHOLD = "GreaterThanThreshold"
    GREATER_THAN_OR_EQUAL_TO_THRESHOLD = "GreaterThanOrEqualToThreshold"
    LESS_THAN_THRESHOLD = "LessThanThreshold"
    LESS_THAN_OR_EQUAL_TO_THRESHOLD = "LessThanOrEqualToThreshold"

    def breaches(self, value: float, threshold: float) -> bool:
        if self is Comparison.GREATER_THAN_THRESHOLD:
            return value > threshold
        if self is Comparison.GREATER_THAN_OR_EQUAL_TO_THRESHOLD:
            return value >= threshold
        if self is Comparison.LESS_THAN_THRESHOLD:
            return value < threshold
        return value <= threshold


class MissingData(str, enum.Enum):
    """CloudWatch's TreatMissingData values."""

    NOT_BREACHING = "notBreaching"
    BREACHING = "breaching"
    IGNORE = "ignore"
    MISSING = "missing"


@dataclass(frozen=True)
class MetricAlarmDefinition:
    """One metric alarm. Without ``expression`` it watches the only metric in ``metrics``.

    ``metrics`` pairs each query id that the expression uses with its metric. The alarm goes to
    ALARM when ``datapoints_to_alarm`` of the last ``evaluation_periods`` datapoints breach.
    """

    construct_id: str
    label: str
    description: str
    metrics: tuple[tuple[str, MetricSpec], ...]
    expression: str | None
    threshold: float
    comparison: Comparison
    period_seconds: int
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing_data: MissingData

    def __post_init__(self) -> None:
        if self.expression is None and len(self.metrics) != 1:
            raise ValueError(f"alarm {self.construct_id} has no expression, so it needs exactly one metric")
        if not 1 <= self.datapoints_to_alarm <= self.evaluation_periods:
            raise ValueError(
                f"alarm {self.construct_id}: datapoints_to_alarm ({self.datapoints_to_alarm}) must be from 1 to "
                f"evaluation_periods ({self.evaluation_periods})"
            )


@dataclass(frozen=True)
class CompositeAlarmDefinition:
    """A composite alarm: in ALARM when any alarm in ``any_of`` and every alarm in ``all_of`` is in ALARM."""

    construct_id: str
    description: str
    any_of: tuple[str, ...]
    all_of: tuple[str, ...]


@dataclass(frozen=True)
class RegionAlarms:
    metric_alarms: tuple[MetricAlarmDefinition, ...]
    composite_alarms: tuple[CompositeAlarmDefinition, ...]

    def metric_alarm(self, construct_id: str) -> MetricAlarmDefinition:
        for alarm in self.metric_alarms:
            if alarm.construct_id == construct_id:
                return alarm
        raise KeyError(f"no metric alarm {construct_id!r}; known: {[a.construct_id for a in self.metric_alarms]}")


THROTTLED_429_RATE = "Throttled429Rate"
UNAVAILABLE_503_RATE = "Unavailable503Rate"
DEAD_LETTER_QUEUE_NOT_EMPTY = "DeadLetterQueueNotEmpty"
OLDEST_JOB_AGE = "OldestJobAge"
WORKER_ERRORS = "WorkerErrors"
WORKER_THROTTLES = "WorkerThrottles"
SUSTAINED_THROTTLING = "SustainedThrottling"


def failure_rate_expression(failures_id: str, min_requests: int) -> str:
    """Return the query ``failures_id`` as a percentage of ``requests``, 0 below ``min_requests`` requests.

    FILL turns a period without datapoints into 0, so a quiet period evaluates to 0, and the
    division runs only where requests reach the floor, which is at least 1. Each rate has its own
    failures id because a dashboard graph shows both rates, and one graph cannot use an id for
    two metrics.
    """
    return f"IF(FILL(requests, 0) >= {min_requests}, 100 * FILL({failures_id}, 0) / FILL(requests, 0), 0)"


def region_alarms(settings: RegionSettings) -> RegionAlarms:
    """Return the alarms of one region with the thresholds from its settings."""
    period = settings.alarm_period_seconds
    periods = settings.alarm_evaluation_periods
    floor = settings.alarm_min_requests
    volume = f"over {periods} periods of {period} s with at least {floor} requests each"

    throttled_rate = MetricAlarmDefinition(
        construct_id=THROTTLED_429_RATE,
        label="429 rate (%)",
        description=(
            f"More than {settings.alarm_429_rate_percent:g}% of Mantle requests answered 429 (tokens-per-minute "
            f"quota) {volume}. The ramp controller lowers the rate; if this persists, ask for a higher quota or "
            "lower worker_pool_size."
        ),
        metrics=(("requests", metrics.worker_metric(metrics.REQUESTS)),
                 ("throttled", metrics.worker_metric(metrics.THROTTLED_429))),
        expression=failure_rate_expression("throttled", floor),
        threshold=settings.alarm_429_rate_percent,
        comparison=Comparison.GREATER_THAN_THRESHOLD,
        period_seconds=period,
        evaluation_periods=periods,
        datapoints_to_alarm=periods,
        treat_missing_data=MissingData.NOT_BREACHING,
    )
    unavailable_rate = MetricAlarmDefinition(
        construct_id=UNAVAILABLE_503_RATE,
        label="503 rate (%)",
        description=(
            f"More than {settings.alarm_503_rate_percent:g}% of Mantle requests answered 503 (regional capacity) "
            f"{volume}. The ramp controller halves the rate while 503s persist and raises it by 50% after "
            f"{settings.ramp_hold_minutes} stable minutes."
        ),
        metrics=(("requests", metrics.worker_metric(metrics.REQUESTS)),
                 ("unavailable", metrics.worker_metric(metrics.UNAVAILABLE_503))),
        expression=failure_rate_expression("unavailable", floor),
        threshold=settings.alarm_503_rate_percent,
        comparison=Comparison.GREATER_THAN_THRESHOLD,
        period_seconds=period,
        evaluation_periods=periods,
        datapoints_to_alarm=periods,
        treat_missing_data=MissingData.NOT_BREACHING,
    )
    dead_letters = MetricAlarmDefinition(
        construct_id=DEAD_LETTER_QUEUE_NOT_EMPTY,
        label="dead-letter queue depth",
        description=(
            f"More than {settings.alarm_dead_letter_messages} jobs are in the dead-letter queue. Inspect them, "
            "fix the cause, then redrive."
        ),
        metrics=(("depth", metrics.queue_metric("ApproximateNumberOfMessagesVisible", Resource.DEAD_LETTER_QUEUE)),),
        expression=None,
        threshold=settings.alarm_dead_letter_messages,
        comparison=Comparison.GREATER_THAN_THRESHOLD,
        period_seconds=period,
        evaluation_periods=1,
        datapoints_to_alarm=1,
        treat_missing_data=MissingData.NOT_BREACHING,
    )
    oldest_job_age = MetricAlarmDefinition(
        construct_id=OLDEST_JOB_AGE,
        label="oldest job age (s)",
        description=(
            f"A job has waited more than {settings.alarm_oldest_job_age_seconds} s in the queue for {periods} "
            "periods. The pool is too small for the load, the ramp controller holds it down, or the worker keeps "
            "failing."
        ),
        metrics=(("age", metrics.queue_metric("ApproximateAgeOfOldestMessage", Resource.JOB_QUEUE)),),
        expression=None,
        threshold=settings.alarm_oldest_job_age_seconds,
        comparison=Comparison.GREATER_THAN_THRESHOLD,
        period_seconds=period,
        evaluation_periods=periods,
        datapoints_to_alarm=periods,
        treat_missing_data=MissingData.NOT_BREACHING,
    )
    worker_errors = MetricAlarmDefinition(
        construct_id=WORKER_ERRORS,
        label="worker errors",
        description=(
            f"The worker function failed more than {settings.alarm_worker_errors} invocations in one period (a "
            "crash, a timeout or a configuration error); the batch returns to the queue. Read the function's log."
        ),
        metrics=(("errors", metrics.worker_function_metric("Errors")),),
        expression=None,
        threshold=settings.alarm_worker_errors,
        comparison=Comparison.GREATER_THAN_THRESHOLD,
        period_seconds=period,
        evaluation_periods=1,
        datapoints_to_alarm=1,
        treat_missing_data=MissingData.NOT_BREACHING,
    )
    worker_throttles = MetricAlarmDefinition(
        construct_id=WORKER_THROTTLES,
        label="worker throttles",
        description=(
            f"Lambda throttled more than {settings.alarm_worker_throttles} worker invocations in one period: the "
            "account's concurrency is used up elsewhere. Raise the account quota or reserve concurrency."
        ),
        metrics=(("throttles", metrics.worker_function_metric("Throttles")),),
        expression=None,
        threshold=settings.alarm_worker_throttles,
        comparison=Comparison.GREATER_THAN_THRESHOLD,
        period_seconds=period,
        evaluation_periods=1,
        datapoints_to_alarm=1,
        treat_missing_data=MissingData.NOT_BREACHING,
    )
    sustained_throttling = CompositeAlarmDefinition(
        construct_id=SUSTAINED_THROTTLING,
        description=(
            "Mantle keeps answering 429 or 503 above the rate thresholds while jobs wait longer than "
            f"{settings.alarm_oldest_job_age_seconds} s: backing off is not enough. Ask for a higher quota, move "
            "load to another region or submit less."
        ),
        any_of=(THROTTLED_429_RATE, UNAVAILABLE_503_RATE),
        all_of=(OLDEST_JOB_AGE,),
    )
    return RegionAlarms(
        metric_alarms=(throttled_rate, unavailable_rate, dead_letters, oldest_job_age, worker_errors,
                       worker_throttles),
        composite_alarms=(sustained_throttling,),
    )
