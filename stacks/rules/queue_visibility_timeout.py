"""QueueVisibilityTimeout: an SQS queue that feeds a function hides a message for at least 6 × its timeout.

AWS advises a visibility timeout of at least six times the function timeout for SQS event
sources, so a batch that Lambda retries after throttling is not delivered a second time while the
first delivery still runs (Lambda developer guide, "Using Lambda with Amazon SQS").
"""

from __future__ import annotations

from aws_cdk import CfnResource
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagRuleCompliance

from stacks.rules._rule import (
    ProjectRule,
    RuleResult,
    UncheckableResourceError,
    find_resource,
    referenced_logical_id,
    resolve,
)

# CloudFormation defaults when the property is not set.
DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 30
DEFAULT_FUNCTION_TIMEOUT_SECONDS = 3
TIMEOUT_MULTIPLE = 6


def queue_visibility_timeout(node: CfnResource) -> RuleResult:
    """Check an event source mapping whose source is an SQS queue of the same stack."""
    if not isinstance(node, lambda_.CfnEventSourceMapping):
        return NagRuleCompliance.NOT_APPLICABLE

    source = resolve(node, node.event_source_arn)
    queue_id = referenced_logical_id(source)
    queue = find_resource(node, queue_id, sqs.CfnQueue) if queue_id else None
    if queue is None:
        if isinstance(source, str) and ":sqs:" in source:
            raise UncheckableResourceError(f"the queue {source} is not defined in this stack, so its timeout is unknown")
        return NagRuleCompliance.NOT_APPLICABLE

    function_id = referenced_logical_id(resolve(node, node.function_name))
    function = find_resource(node, function_id, lambda_.CfnFunction) if function_id else None
    if function is None:
        raise UncheckableResourceError("the function of this event source mapping is not defined in this stack")

    visibility_timeout = resolve(node, queue.visibility_timeout)
    function_timeout = resolve(node, function.timeout)
    visibility_timeout = DEFAULT_VISIBILITY_TIMEOUT_SECONDS if visibility_timeout is None else visibility_timeout
    function_timeout = DEFAULT_FUNCTION_TIMEOUT_SECONDS if function_timeout is None else function_timeout
    if not isinstance(visibility_timeout, int) or not isinstance(function_timeout, int):
        raise UncheckableResourceError("the visibility timeout or the function timeout is not a number at synth time")
    if visibility_timeout < TIMEOUT_MULTIPLE * function_timeout:
        return NagRuleCompliance.NON_COMPLIANT
    return NagRuleCompliance.COMPLIANT


RULE = ProjectRule(
    rule_id="QueueVisibilityTimeout",
    info="The SQS queue of this event source mapping has a visibility timeout below 6 times the function timeout.",
    explanation=(
        "Lambda may retry a batch after throttling; a visibility timeout shorter than six function timeouts lets "
        "SQS deliver the same jobs again while the first delivery still runs, which doubles model calls."
    ),
    check=queue_visibility_timeout,
)
