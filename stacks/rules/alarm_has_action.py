"""AlarmHasAction: every CloudWatch alarm, composite alarms included, notifies someone when it fires."""

from __future__ import annotations

from aws_cdk import CfnResource
from aws_cdk import aws_cloudwatch as cloudwatch
from cdk_nag import NagRuleCompliance

from stacks.rules._rule import ProjectRule, RuleResult, as_list, resolve


def alarm_has_action(node: CfnResource) -> RuleResult:
    """Require actions enabled and at least one ALARM-state action.

    NIST.800.53.R5-CloudWatchAlarmAction also accepts an OK or INSUFFICIENT_DATA action alone; an
    alarm that reports only its recovery tells nobody that it fired, so this rule does not.
    """
    if not isinstance(node, (cloudwatch.CfnAlarm, cloudwatch.CfnCompositeAlarm)):
        return NagRuleCompliance.NOT_APPLICABLE
    if resolve(node, node.actions_enabled) is False:
        return NagRuleCompliance.NON_COMPLIANT
    if not as_list(resolve(node, node.alarm_actions)):
        return NagRuleCompliance.NON_COMPLIANT
    return NagRuleCompliance.COMPLIANT


RULE = ProjectRule(
    rule_id="AlarmHasAction",
    info="The alarm has no action for its ALARM state, or its actions are disabled.",
    explanation=(
        "An alarm without an ALARM action changes state silently: nobody is paged and the rollout pipeline's "
        "bake sees it only while it polls. Send it to the region's alarm topic."
    ),
    check=alarm_has_action,
)
