"""cdk-nag wiring: which rule packs run, and a helper to acknowledge one finding with its reason."""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Validations
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from constructs import IConstruct

# Names as cdk-nag reports them in its findings' rule ids (for example "AwsSolutions-SQS3").
RULE_PACKS = ("AwsSolutions", "Serverless")
# Stack metadata entry that records which packs checked the stack, for the review summary.
RULE_PACKS_METADATA_KEY = "gemma-batch:nag-rule-packs"


def add_rule_packs(app: App) -> tuple[str, ...]:
    """Register the cdk-nag packs on the app, so every synth, stages included, runs them."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    return RULE_PACKS


def acknowledge(construct: IConstruct, finding_id: str, reason: str) -> None:
    """Acknowledge exactly one finding (rule id plus its [finding] part) on ``construct``."""
    Validations.of(construct).acknowledge(Acknowledgment(id=finding_id, reason=reason))
