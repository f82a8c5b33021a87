"""NoWildcardActions: no Allow statement of an IAM identity policy uses a wildcard action or NotAction.

The rule reads every IAM identity policy in the app: AWS::IAM::Policy, AWS::IAM::ManagedPolicy
and the inline policies of roles, users and groups. Deny statements may use wildcards, because a
broad deny only takes permissions away. Each wildcard is its own finding, ``[Action::<action>]``
or ``[NotAction::<action>]``, so an acknowledgement names the exact action it accepts. Resource
policies (key, bucket, queue and topic policies) are out of its scope.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnResource
from aws_cdk import aws_iam as iam
from cdk_nag import NagRuleCompliance

from stacks.rules._rule import ProjectRule, RuleResult, as_list, resolve


def no_wildcard_actions(node: CfnResource) -> RuleResult:
    """Return one finding per wildcard action in the resource's Allow statements."""
    documents = _policy_documents(node)
    if documents is None:
        return NagRuleCompliance.NOT_APPLICABLE

    findings: list[str] = []
    for document in documents:
        for statement in as_list((document or {}).get("Statement")):
            if statement.get("Effect") != "Allow":
                continue
            for action in as_list(statement.get("Action")):
                if not isinstance(action, str) or "*" in action:
                    findings.append(f"Action::{action}")
            for action in as_list(statement.get("NotAction")):
                findings.append(f"NotAction::{action}")
    if findings:
        return sorted(set(findings))
    return NagRuleCompliance.COMPLIANT


def _policy_documents(node: CfnResource) -> list[Any] | None:
    if isinstance(node, (iam.CfnPolicy, iam.CfnManagedPolicy)):
        return [resolve(node, node.policy_document)]
    if isinstance(node, (iam.CfnRole, iam.CfnUser, iam.CfnGroup)):
        policies = resolve(node, node.policies) or []
        return [policy.get("PolicyDocument") for policy in policies if isinstance(policy, dict)]
    return None


RULE = ProjectRule(
    rule_id="NoWildcardActions",
    info="An Allow statement in this IAM policy uses a wildcard action or NotAction.",
    explanation=(
        "Name every action a principal needs, so a reviewer can read what it may do and a new action AWS adds "
        "to a service is not granted silently. Acknowledge a wildcard only where CDK or AWS writes the policy."
    ),
    check=no_wildcard_actions,
)
