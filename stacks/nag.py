"""cdk-nag wiring: which rule packs run, and a helper to acknowledge one finding with its reason."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable

from aws_cdk import Acknowledgment, App, Stack, Validations
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks, NagPack, NIST80053R5Checks, ServerlessChecks
from constructs import IConstruct

from stacks.rules.gemma_batch_checks import GemmaBatchChecks

# Packs by the name cdk-nag puts before each rule id ("AwsSolutions-SQS3", "NIST.800.53.R5-LambdaDLQ").
BASE_PACKS: dict[str, Callable[[App], NagPack]] = {
    "AwsSolutions": AwsSolutionsChecks,
    "Serverless": ServerlessChecks,
    "GemmaBatch": GemmaBatchChecks,
}
# The nag_packs setting names these packs by their class names, the rule id prefix differs.
EXTRA_PACKS: dict[str, tuple[str, Callable[[App], NagPack]]] = {
    "NIST80053R5": ("NIST.800.53.R5", NIST80053R5Checks),
    "HIPAASecurity": ("HIPAA.Security", HIPAASecurityChecks),
}
# Stack metadata entry that records which packs checked the stack, for the review summary.
RULE_PACKS_METADATA_KEY = "gemma-batch:nag-rule-packs"
# With this context key set to true, acknowledge() records each acknowledgement under
# UNAPPLIED_ACKNOWLEDGEMENT_METADATA_KEY instead of applying it, so cdk-nag reports every finding.
# tools/stale_acknowledgements.py uses it to find acknowledgements that match no finding.
IGNORE_ACKNOWLEDGEMENTS_CONTEXT_KEY = "gemma-batch:ignore-nag-acknowledgements"
UNAPPLIED_ACKNOWLEDGEMENT_METADATA_KEY = "gemma-batch:unapplied-nag-acknowledgement"

# Rules of the NIST 800-53 R5 and HIPAA Security packs that run the same cdk-nag rule function as
# an AwsSolutions or Serverless rule (read from the pack sources of cdk-nag 3.0.2). On the same
# resource they return the same result, so acknowledging one acknowledges the others with the
# same reason.
SAME_CHECK_RULES: dict[str, tuple[str, ...]] = {
    "AwsSolutions-S1": ("NIST.800.53.R5-S3BucketLoggingEnabled", "HIPAA.Security-S3BucketLoggingEnabled"),
    "AwsSolutions-S2": (
        "NIST.800.53.R5-S3BucketLevelPublicAccessProhibited", "HIPAA.Security-S3BucketLevelPublicAccessProhibited",
    ),
    "AwsSolutions-S10": ("NIST.800.53.R5-S3BucketSSLRequestsOnly", "HIPAA.Security-S3BucketSSLRequestsOnly"),
    "AwsSolutions-DDB3": ("NIST.800.53.R5-DynamoDBPITREnabled", "HIPAA.Security-DynamoDBPITREnabled"),
    "AwsSolutions-KMS5": ("NIST.800.53.R5-KMSBackingKeyRotationEnabled",),
    "AwsSolutions-SMG4": ("NIST.800.53.R5-SecretsManagerRotationEnabled", "HIPAA.Security-SecretsManagerRotationEnabled"),
    "Serverless-LambdaDLQ": ("NIST.800.53.R5-LambdaDLQ", "HIPAA.Security-LambdaDLQ"),
    "Serverless-CloudWatchLogGroupRetentionPeriod": (
        "NIST.800.53.R5-CloudWatchLogGroupRetentionPeriod", "HIPAA.Security-CloudWatchLogGroupRetentionPeriod",
    ),
}
SINGLE_ROLE_POLICY_REASON = (
    "CDK writes a role's grants into one AWS::IAM::Policy attached to that role alone, which this rule counts as "
    "inline; a customer managed policy would hold the same statements and be reused by nobody."
)


def rule_packs(extra_packs: tuple[str, ...] = ()) -> dict[str, Callable[[App], NagPack]]:
    """Return the packs to run, by rule id prefix: the base packs, then the extra ones named in nag_packs."""
    packs = dict(BASE_PACKS)
    for name in extra_packs:
        prefix, pack = EXTRA_PACKS[name]
        packs[prefix] = pack
    return packs


def add_rule_packs(app: App, extra_packs: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Register the packs on the app and return their rule id prefixes.

    Each pack walks the whole construct tree from the app, so stacks inside pipeline stages are
    checked too. Registering a pack on a stage as well would report its findings twice.
    """
    packs = rule_packs(extra_packs)
    Validations.of(app).add_plugins(*(pack(app) for pack in packs.values()))
    return tuple(packs)


def acknowledge(construct: IConstruct, finding_id: str, reason: str) -> None:
    """Acknowledge exactly one finding (rule id plus its [finding] part) on ``construct`` and its children.

    The rules in SAME_CHECK_RULES that run the same check are acknowledged with it.
    """
    for acknowledged_id in (finding_id, *SAME_CHECK_RULES.get(finding_id, ())):
        _acknowledge_one(construct, acknowledged_id, reason)


def record_rule_packs(stack: Stack, extra_packs: tuple[str, ...] = ()) -> None:
    """Record on ``stack`` the packs that check it, for the review summary."""
    stack.node.add_metadata(RULE_PACKS_METADATA_KEY, list(rule_packs(extra_packs)))


def acknowledge_single_role_policies(stack: Stack) -> None:
    """Acknowledge the inline-policy rules on each AWS::IAM::Policy of ``stack`` attached to one role only.

    Call it after every construct of the stack exists; a policy with users, groups or several
    roles stays a finding. Stacks nested in ``stack``'s stages are left to their own call.
    """
    for construct in stack.node.find_all():
        if not isinstance(construct, iam.CfnPolicy) or Stack.of(construct) is not stack:
            continue
        roles = stack.resolve(construct.roles) or []
        if len(roles) != 1 or stack.resolve(construct.users) or stack.resolve(construct.groups):
            continue
        for pack in ("NIST.800.53.R5", "HIPAA.Security"):
            _acknowledge_one(construct, f"{pack}-IAMNoInlinePolicy", SINGLE_ROLE_POLICY_REASON)


@dataclass(frozen=True)
class GeneratedFindingReason:
    """The reason a finding on a construct that a library generates is acceptable, and which findings it covers.

    ``finding`` must match the whole finding id and ``path`` must occur in the construct path.
    """

    finding: re.Pattern[str]
    reason: str
    path: re.Pattern[str] = re.compile("")


def acknowledge_generated_findings(stack: Stack, packs: Iterable[Callable[[], NagPack]],
                                   reasons: Iterable[GeneratedFindingReason]) -> None:
    """Acknowledge the findings of ``packs`` on resources of ``stack`` that match one of ``reasons``.

    For constructs such as CDK Pipelines, whose generated policy resources carry hashed names
    that an acknowledgement written by hand would have to repeat. Each finding is acknowledged on
    its own resource with the first matching reason; a finding no reason matches stays a finding.
    """
    reasons = tuple(reasons)
    constructs = {construct.node.path: construct for construct in stack.node.find_all()}
    for pack in packs:
        for violation in pack().validate_scope(stack).violations:
            for resource in violation.violating_resources:
                construct = constructs.get(resource.construct_path)
                if construct is None or Stack.of(construct) is not stack:
                    continue
                reason = next(
                    (item.reason for item in reasons
                     if item.finding.fullmatch(violation.rule_name) and item.path.search(resource.construct_path)),
                    None,
                )
                if reason is not None:
                    _acknowledge_one(construct, violation.rule_name, reason)


def _acknowledge_one(construct: IConstruct, finding_id: str, reason: str) -> None:
    if construct.node.try_get_context(IGNORE_ACKNOWLEDGEMENTS_CONTEXT_KEY) in (True, "true"):
        construct.node.add_metadata(UNAPPLIED_ACKNOWLEDGEMENT_METADATA_KEY, {"id": finding_id, "reason": reason})
        return
    Validations.of(construct).acknowledge(Acknowledgment(id=finding_id, reason=reason))
