"""Alarms of a region and the encrypted topic they notify."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.config import RegionSettings
from stacks.metrics import WorkerMetrics


class Alarms(Construct):
    """429 and 503 rates, dead-lettered jobs and the age of the oldest job, all sent to one topic."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: RegionSettings, topic_key: kms.IKey,
                 job_queue: sqs.IQueue, dead_letter_queue: sqs.IQueue) -> None:
        super().__init__(scope, construct_id)

        self.topic = sns.Topic(
            self,
            "Topic",
            display_name="Gemma batch alarms",
            master_key=topic_key,
            enforce_ssl=True,
        )
        if settings.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))

        period = Duration.seconds(settings.alarm_period_seconds)
        worker = WorkerMetrics(period=period)

        self.throttled_rate = cloudwatch.Alarm(
            self,
            "Throttled429Rate",
            alarm_description=(
                f"More than {settings.alarm_429_rate_percent:g}% of Mantle requests answered 429 (tokens-per-minute "
                f"quota) over {settings.alarm_evaluation_periods} periods with at least "
                f"{settings.alarm_min_requests} requests. Lower the worker pool size or ask for a higher quota."
            ),
            metric=worker.rate_percent(worker.throttled_429(), "429 rate (%)", settings.alarm_min_requests),
            threshold=settings.alarm_429_rate_percent,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=settings.alarm_evaluation_periods,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.unavailable_rate = cloudwatch.Alarm(
            self,
            "Unavailable503Rate",
            alarm_description=(
                f"More than {settings.alarm_503_rate_percent:g}% of Mantle requests answered 503 (regional capacity) "
                f"over {settings.alarm_evaluation_periods} periods with at least {settings.alarm_min_requests} "
                "requests. Halve the request rate, hold it 15 minutes, then raise it by 50%."
            ),
            metric=worker.rate_percent(worker.unavailable_503(), "503 rate (%)", settings.alarm_min_requests),
            threshold=settings.alarm_503_rate_percent,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=settings.alarm_evaluation_periods,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.dead_letters = cloudwatch.Alarm(
            self,
            "DeadLetterQueueNotEmpty",
            alarm_description="Jobs reached the dead-letter queue. Inspect them, fix the cause, then redrive.",
            metric=dead_letter_queue.metric_approximate_number_of_messages_visible(period=period, statistic="Maximum"),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.oldest_job_age = cloudwatch.Alarm(
            self,
            "OldestJobAge",
            alarm_description=(
                f"A job has waited more than {settings.alarm_oldest_job_age_seconds} s in the queue. The pool is "
                "too small for the load, or the worker keeps failing."
            ),
            metric=job_queue.metric_approximate_age_of_oldest_message(period=period, statistic="Maximum"),
            threshold=settings.alarm_oldest_job_age_seconds,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=settings.alarm_evaluation_periods,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

        action = cloudwatch_actions.SnsAction(self.topic)
        for alarm in (self.throttled_rate, self.unavailable_rate, self.dead_letters, self.oldest_job_age):
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
