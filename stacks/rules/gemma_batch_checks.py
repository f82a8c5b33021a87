"""The GemmaBatch NagPack: the project's own rules, run on every synth beside the cdk-nag packs."""

from __future__ import annotations

import jsii
from aws_cdk import CfnResource
from cdk_nag import IApplyRule, NagMessageLevel, NagPack
from constructs import IConstruct

from stacks.rules import alarm_has_action, no_wildcard_actions, queue_visibility_timeout, topic_key_allows_cloudwatch
from stacks.rules._rule import ProjectRule, RuleResult

PACK_NAME = "GemmaBatch"
PROJECT_RULES: tuple[ProjectRule, ...] = (
    queue_visibility_timeout.RULE,
    alarm_has_action.RULE,
    topic_key_allows_cloudwatch.RULE,
    no_wildcard_actions.RULE,
)


@jsii.implements(IApplyRule)
class _RuleApplication:
    """One rule applied to one resource, in the shape cdk-nag's applyRule reads through jsii."""

    def __init__(self, rule: ProjectRule, node: CfnResource) -> None:
        self._rule = rule
        self._node = node

    # cdk-nag builds the rule id from ruleSuffixOverride; a Python function has no name it can read.
    @property
    def rule_suffix_override(self) -> str:
        return self._rule.rule_id

    @property
    def info(self) -> str:
        return self._rule.info

    @property
    def explanation(self) -> str:
        return self._rule.explanation

    @property
    def level(self) -> NagMessageLevel:
        return self._rule.level

    @property
    def node(self) -> CfnResource:
        return self._node

    def rule(self, node: CfnResource) -> RuleResult:
        return self._rule.check(node)


class GemmaBatchChecks(NagPack):
    """Reports each finding as ``GemmaBatch-<RuleId>``, acknowledged like any cdk-nag finding."""

    def __init__(self, scope: IConstruct | None = None) -> None:
        super().__init__(scope)
        self._pack_name = PACK_NAME

    @property
    def name(self) -> str:
        return PACK_NAME

    def _check_resource(self, node: CfnResource) -> None:
        for rule in PROJECT_RULES:
            self._apply_rule(_RuleApplication(rule, node))
