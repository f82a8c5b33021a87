"""A region synthesized with non-default settings: each setting reaches the template."""

from __future__ import annotations

import pytest

from tests.infra.conftest import single_resource

pytestmark = pytest.mark.xdist_group("synth")


def test_alarm_email_subscribed(job_inputs_template: dict) -> None:
    topic_id, _ = single_resource(job_inputs_template, "AWS::SNS::Topic")
    _, subscription = single_resource(job_inputs_template, "AWS::SNS::Subscription")
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == "ops@example.com"
    assert subscription["Properties"]["TopicArn"] == {"Ref": topic_id}


def test_operator_role_trusts_configured_principal(job_inputs_template: dict) -> None:
    _, role = single_resource(job_inputs_template, "AWS::IAM::Role", "OperatorsOperatorRole")
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"AWS": "arn:aws:iam::111122223333:role/PlatformOps"}


def test_region_override_sets_pool_size(job_inputs_template: dict) -> None:
    _, mapping = single_resource(job_inputs_template, "AWS::Lambda::EventSourceMapping")
    assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 50}
