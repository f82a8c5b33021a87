"""TopicKeyAllowsCloudWatch: the KMS key of an encrypted SNS topic lets CloudWatch publish to the topic.

CloudWatch alarms publish to an encrypted topic only when the key policy allows the
cloudwatch.amazonaws.com service principal kms:Decrypt and kms:GenerateDataKey; otherwise the
alarm action fails and the alarm history records the failure, but nobody is notified. The AWS
managed key alias/aws/sns never allows it, because its policy cannot be changed.
"""

from __future__ import annotations

import json
from fnmatch import fnmatchcase

from aws_cdk import CfnResource
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from cdk_nag import NagRuleCompliance

from stacks.rules._rule import (
    ProjectRule,
    RuleResult,
    UncheckableResourceError,
    as_list,
    find_resource,
    referenced_logical_id,
    resolve,
)

CLOUDWATCH_PRINCIPAL = "cloudwatch.amazonaws.com"
REQUIRED_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
AWS_MANAGED_SNS_KEY = "alias/aws/sns"


def topic_key_allows_cloudwatch(node: CfnResource) -> RuleResult:
    """Check an encrypted topic whose key is defined in the same stack."""
    if not isinstance(node, sns.CfnTopic):
        return NagRuleCompliance.NOT_APPLICABLE
    key_reference = resolve(node, node.kms_master_key_id)
    if key_reference is None:
        return NagRuleCompliance.NOT_APPLICABLE
    # The alias arrives as the string itself or inside an ARN that CDK joins from partition and region.
    if AWS_MANAGED_SNS_KEY in json.dumps(key_reference):
        return NagRuleCompliance.NON_COMPLIANT

    key_id = referenced_logical_id(key_reference)
    key = find_resource(node, key_id, kms.CfnKey) if key_id else None
    if key is None:
        raise UncheckableResourceError(f"the topic key {key_reference} is not defined in this stack; check its policy")
    policy = resolve(node, key.key_policy) or {}
    if any(_allows_cloudwatch(statement) for statement in as_list(policy.get("Statement"))):
        return NagRuleCompliance.COMPLIANT
    return NagRuleCompliance.NON_COMPLIANT


def _allows_cloudwatch(statement: dict) -> bool:
    if statement.get("Effect") != "Allow" or "NotPrincipal" in statement:
        return False
    principal = statement.get("Principal")
    services = as_list(principal.get("Service")) if isinstance(principal, dict) else []
    if CLOUDWATCH_PRINCIPAL not in services:
        return False
    patterns = [action.lower() for action in as_list(statement.get("Action")) if isinstance(action, str)]
    return all(any(fnmatchcase(required.lower(), pattern) for pattern in patterns) for required in REQUIRED_ACTIONS)


RULE = ProjectRule(
    rule_id="TopicKeyAllowsCloudWatch",
    info="The KMS key of this encrypted SNS topic does not let CloudWatch use it, so alarm notifications fail.",
    explanation=(
        "Give cloudwatch.amazonaws.com kms:Decrypt and kms:GenerateDataKey* in the key policy, limited to alarms "
        "of this account, and never use alias/aws/sns for a topic that alarms notify."
    ),
    check=topic_key_allows_cloudwatch,
)
