"""Alarms of a region and the encrypted topic they notify.

The alarms themselves are data in ``stacks/alarm_definitions.py``; this construct deploys them.
"""

from __future__ import annotations

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.alarm_definitions import region_alarms
from stacks.cdk_metrics import MetricResources, alarm_metric
from stacks.config import RegionSettings
from stacks.nag import acknowledge


class Alarms(Construct):
    """429 and 503 rates, sustained throttling, the queues and the worker function, all sent to one topic.

    Other constructs can send their alarms to the topic with ``notify``, or use ``topic`` directly.
    """

    def __init__(self, scope: Construct, construct_id: str, *, settings: RegionSettings, topic_key: kms.IKey,
                 job_queue: sqs.IQueue, dead_letter_queue: sqs.IQueue, worker_function: lambda_.IFunction) -> None:
        super().__init__(scope, construct_id)
        self.metric_resources = MetricResources(job_queue, dead_letter_queue, worker_function)

        self.topic = sns.Topic(
            self,
            "Topic",
            display_name="Gemma batch alarms",
            master_key=topic_key,
            enforce_ssl=True,
        )
        if settings.alarm_email:
            subscription = self.topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))
            acknowledge(
                subscription,
                "Serverless-SNSRedrivePolicy",
                "The subscription delivers alarm e-mails to people. SNS retries a failed delivery, and every alarm's "
                "state and history stay in CloudWatch and on the region's dashboard, so a dead-letter queue of "
                "undelivered e-mails would add no way to recover a notification.",
            )
        self._action = cloudwatch_actions.SnsAction(self.topic)
        self.alarms: dict[str, cloudwatch.AlarmBase] = {}

        definitions = region_alarms(settings)
        for definition in definitions.metric_alarms:
            alarm = cloudwatch.Alarm(
                self,
                definition.construct_id,
                alarm_description=definition.description,
                metric=alarm_metric(definition, self.metric_resources),
                threshold=definition.threshold,
                comparison_operator=cloudwatch.ComparisonOperator[definition.comparison.name],
                evaluation_periods=definition.evaluation_periods,
                datapoints_to_alarm=definition.datapoints_to_alarm,
                treat_missing_data=cloudwatch.TreatMissingData[definition.treat_missing_data.name],
            )
            self.notify(definition.construct_id, alarm)

        for composite in definitions.composite_alarms:
            any_of = [cloudwatch.AlarmRule.from_alarm(self.alarms[name], cloudwatch.AlarmState.ALARM)
                      for name in composite.any_of]
            all_of = [cloudwatch.AlarmRule.from_alarm(self.alarms[name], cloudwatch.AlarmState.ALARM)
                      for name in composite.all_of]
            alarm = cloudwatch.CompositeAlarm(
                self,
                composite.construct_id,
                alarm_description=composite.description,
                alarm_rule=cloudwatch.AlarmRule.all_of(cloudwatch.AlarmRule.any_of(*any_of), *all_of),
            )
            self.notify(composite.construct_id, alarm)

    def notify(self, name: str, alarm: cloudwatch.AlarmBase) -> None:
        """Send ``alarm``'s ALARM and OK transitions to the topic and list it under ``name``."""
        if name in self.alarms:
            raise ValueError(f"an alarm named {name!r} is already on the alarm topic")
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms[name] = alarm
