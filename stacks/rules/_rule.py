"""The base of the project rules, and the CloudFormation lookups they share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Union

from aws_cdk import CfnResource, Stack
from cdk_nag import NagMessageLevel, NagRuleCompliance

# A rule returns a compliance value, or the list of findings on one resource (each reported as
# <RuleId>[<finding>] and acknowledged one by one).
RuleResult = Union[NagRuleCompliance, list[str]]


@dataclass(frozen=True)
class ProjectRule:
    """One rule of the GemmaBatch pack; cdk-nag reports it as ``GemmaBatch-<rule_id>``."""

    rule_id: str
    info: str
    explanation: str
    check: Callable[[CfnResource], RuleResult]
    level: NagMessageLevel = NagMessageLevel.ERROR


class UncheckableResourceError(ValueError):
    """Raised when a rule cannot inspect what a resource refers to; cdk-nag reports it as a finding."""


def resolve(node: CfnResource, value: Any) -> Any:
    """Resolve tokens in ``value`` to their CloudFormation form, such as ``{"Ref": "LogicalId"}``."""
    return Stack.of(node).resolve(value)


def referenced_logical_id(reference: Any) -> str | None:
    """Return the logical id behind a resolved Ref or Fn::GetAtt, or None for anything else."""
    if isinstance(reference, dict) and "Ref" in reference and isinstance(reference["Ref"], str):
        return reference["Ref"]
    if isinstance(reference, dict) and "Fn::GetAtt" in reference:
        target = reference["Fn::GetAtt"]
        if isinstance(target, list) and target and isinstance(target[0], str):
            return target[0]
    return None


def find_resource(node: CfnResource, logical_id: str, resource_type: type) -> Any | None:
    """Return the ``resource_type`` resource with ``logical_id`` in the stack of ``node``, if there is one."""
    stack = Stack.of(node)
    for construct in stack.node.find_all():
        if isinstance(construct, resource_type) and Stack.of(construct) is stack:
            if stack.resolve(construct.logical_id) == logical_id:
                return construct
    return None


def as_list(value: Any) -> list[Any]:
    """Return a policy field (one value or a list) as a list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
