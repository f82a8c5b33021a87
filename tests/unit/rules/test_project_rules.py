"""The GemmaBatch pack's rules on small stacks: each rule's compliant and non-compliant cases."""

from __future__ import annotations

import pytest
from aws_cdk import App, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagRuleCompliance

from stacks.nag import acknowledge
from stacks.rules import alarm_has_action, no_wildcard_actions, queue_visibility_timeout, topic_key_allows_cloudwatch
from stacks.rules.gemma_batch_checks import GemmaBatchChecks

COMPLIANT = NagRuleCompliance.COMPLIANT
NON_COMPLIANT = NagRuleCompliance.NON_COMPLIANT


@pytest.fixture()
def stack() -> Stack:
    return Stack(App(), "RuleTest")


def _function(stack: Stack, timeout_seconds: int) -> lambda_.Function:
    return lambda_.Function(stack, "Function", runtime=lambda_.Runtime.PYTHON_3_13, handler="index.handler",
                            code=lambda_.Code.from_inline("def handler(event, context): pass"),
                            timeout=Duration.seconds(timeout_seconds))


def _mapping(stack: Stack, visibility_seconds: int, timeout_seconds: int) -> lambda_.CfnEventSourceMapping:
    queue = sqs.Queue(stack, "Queue", visibility_timeout=Duration.seconds(visibility_seconds))
    function = _function(stack, timeout_seconds)
    function.add_event_source(event_sources.SqsEventSource(queue))
    (mapping,) = [c for c in stack.node.find_all() if isinstance(c, lambda_.CfnEventSourceMapping)]
    return mapping


@pytest.mark.parametrize(("visibility", "timeout", "expected"), [(600, 100, COMPLIANT), (599, 100, NON_COMPLIANT)])
def test_queue_visibility_timeout_against_six_timeouts(stack: Stack, visibility: int, timeout: int,
                                                         expected: NagRuleCompliance) -> None:
    mapping = _mapping(stack, visibility, timeout)
    assert queue_visibility_timeout.queue_visibility_timeout(mapping) == expected


def test_queue_visibility_timeout_ignores_other_resources(stack: Stack) -> None:
    queue = sqs.Queue(stack, "Queue")
    assert queue_visibility_timeout.queue_visibility_timeout(queue.node.default_child) == NagRuleCompliance.NOT_APPLICABLE


def _alarm(stack: Stack, construct_id: str = "Alarm") -> cloudwatch.Alarm:
    return cloudwatch.Alarm(stack, construct_id, threshold=1, evaluation_periods=1,
                            metric=cloudwatch.Metric(namespace="Test", metric_name="Test"))


def test_alarm_with_alarm_action_complies(stack: Stack) -> None:
    alarm = _alarm(stack)
    alarm.add_alarm_action(cloudwatch_actions.SnsAction(sns.Topic(stack, "Topic")))
    assert alarm_has_action.alarm_has_action(alarm.node.default_child) == COMPLIANT


def test_alarm_with_only_ok_action_fails(stack: Stack) -> None:
    alarm = _alarm(stack)
    alarm.add_ok_action(cloudwatch_actions.SnsAction(sns.Topic(stack, "Topic")))
    assert alarm_has_action.alarm_has_action(alarm.node.default_child) == NON_COMPLIANT


def test_alarm_with_actions_disabled_fails(stack: Stack) -> None:
    alarm = cloudwatch.Alarm(stack, "Alarm", threshold=1, evaluation_periods=1, actions_enabled=False,
                             metric=cloudwatch.Metric(namespace="Test", metric_name="Test"))
    alarm.add_alarm_action(cloudwatch_actions.SnsAction(sns.Topic(stack, "Topic")))
    assert alarm_has_action.alarm_has_action(alarm.node.default_child) == NON_COMPLIANT


def test_composite_alarm_without_action_fails(stack: Stack) -> None:
    composite = cloudwatch.CompositeAlarm(
        stack, "Composite", alarm_rule=cloudwatch.AlarmRule.from_alarm(_alarm(stack), cloudwatch.AlarmState.ALARM)
    )
    assert alarm_has_action.alarm_has_action(composite.node.default_child) == NON_COMPLIANT


def test_topic_key_granting_cloudwatch_complies(stack: Stack) -> None:
    key = kms.Key(stack, "Key")
    key.add_to_resource_policy(iam.PolicyStatement(
        principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
        actions=["kms:Decrypt", "kms:GenerateDataKey*"], resources=["*"],
    ))
    topic = sns.Topic(stack, "Topic", master_key=key)
    assert topic_key_allows_cloudwatch.topic_key_allows_cloudwatch(topic.node.default_child) == COMPLIANT


def test_topic_key_without_cloudwatch_fails(stack: Stack) -> None:
    key = kms.Key(stack, "Key")
    key.add_to_resource_policy(iam.PolicyStatement(
        principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")], actions=["kms:Decrypt"], resources=["*"],
    ))
    topic = sns.Topic(stack, "Topic", master_key=key)
    assert topic_key_allows_cloudwatch.topic_key_allows_cloudwatch(topic.node.default_child) == NON_COMPLIANT


def test_topic_with_aws_managed_key_fails(stack: Stack) -> None:
    topic = sns.Topic(stack, "Topic", master_key=kms.Alias.from_alias_name(stack, "Managed", "alias/aws/sns"))
    assert topic_key_allows_cloudwatch.topic_key_allows_cloudwatch(topic.node.default_child) == NON_COMPLIANT


def test_unencrypted_topic_is_not_checked(stack: Stack) -> None:
    topic = sns.Topic(stack, "Topic")
    result = topic_key_allows_cloudwatch.topic_key_allows_cloudwatch(topic.node.default_child)
    assert result == NagRuleCompliance.NOT_APPLICABLE


def test_wildcard_actions_are_one_finding_each(stack: Stack) -> None:
    policy = iam.Policy(stack, "Policy", statements=[
        iam.PolicyStatement(actions=["s3:GetObject*", "sqs:SendMessage"], resources=["*"]),
        iam.PolicyStatement(not_actions=["iam:*"], resources=["*"]),
        iam.PolicyStatement(effect=iam.Effect.DENY, actions=["s3:*"], resources=["*"]),
    ])
    findings = no_wildcard_actions.no_wildcard_actions(policy.node.default_child)
    assert findings == ["Action::s3:GetObject*", "NotAction::iam:*"]


def test_named_actions_comply(stack: Stack) -> None:
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                    inline_policies={"Named": iam.PolicyDocument(statements=[
                        iam.PolicyStatement(actions=["sqs:SendMessage"], resources=["*"])])})
    assert no_wildcard_actions.no_wildcard_actions(role.node.default_child) == COMPLIANT


def test_pack_reports_rule_ids_and_honours_acknowledgement(stack: Stack) -> None:
    # GIVEN two alarms without actions, one of them acknowledged
    silent = _alarm(stack, "Silent")
    acknowledged = _alarm(stack, "Acknowledged")
    acknowledge(acknowledged, "GemmaBatch-AlarmHasAction", "A test alarm that exists only to check acknowledgement.")
    # WHEN the pack validates the stack
    violations = GemmaBatchChecks().validate_scope(stack).violations
    # THEN only the unacknowledged alarm is a finding, under the pack's rule id
    assert [(violation.rule_name, [resource.construct_path for resource in violation.violating_resources])
            for violation in violations] == [("GemmaBatch-AlarmHasAction", [f"{silent.node.path}/Resource"])]
