"""Template tests of traffic safety: the alarms are the definitions, the dashboard, and the ramp controller's resources."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from stacks.alarm_definitions import region_alarms
from stacks.config import load_settings
from stacks.metrics import Resource
from tests.infra.cloudwatch_template import (
    MetricKey,
    alarm_metrics,
    alarms_with_prefix,
    dashboard_body,
    dashboard_metrics,
    token_text,
)
from tests.infra.conftest import REGIONS, REPO_ROOT, resources_of_type, single_resource

pytestmark = pytest.mark.xdist_group("synth")


@pytest.fixture(scope="module")
def default_settings():
    context = json.loads((Path(REPO_ROOT) / "cdk.json").read_text())["context"]
    return load_settings(context)


def resource_names(template: dict) -> dict[Resource, str]:
    """Return how each Resource placeholder appears in the template's dimensions."""
    job_queue_id, _ = single_resource(template, "AWS::SQS::Queue", "WorkerPoolJobQueue")
    dead_letter_id, _ = single_resource(template, "AWS::SQS::Queue", "WorkerPoolDeadLetterQueue")
    worker_id, _ = single_resource(template, "AWS::Lambda::Function", "WorkerPoolWorker")
    return {
        Resource.JOB_QUEUE: "${" + job_queue_id + ".QueueName}",
        Resource.DEAD_LETTER_QUEUE: "${" + dead_letter_id + ".QueueName}",
        Resource.WORKER_FUNCTION: "${" + worker_id + "}",
    }


@pytest.mark.parametrize("region", REGIONS)
def test_alarms_are_the_definitions(templates: dict, default_settings, region: str) -> None:
    # GIVEN the region's template and the definitions the evaluator tests
    template = templates[region]
    topic_id, _ = single_resource(template, "AWS::SNS::Topic")
    names = resource_names(template)
    definitions = region_alarms(default_settings.for_region(region))

    for definition in definitions.metric_alarms:
        _, alarm = single_resource(template, "AWS::CloudWatch::Alarm", f"Alarms{definition.construct_id}")
        properties = alarm["Properties"]

        # THEN the deployed alarm has the definition's threshold, comparison, periods and missing-data handling
        assert properties["Threshold"] == definition.threshold
        assert properties["ComparisonOperator"] == definition.comparison.value
        assert properties["EvaluationPeriods"] == definition.evaluation_periods
        assert properties["DatapointsToAlarm"] == definition.datapoints_to_alarm
        assert properties["TreatMissingData"] == definition.treat_missing_data.value
        assert properties["AlarmDescription"] == definition.description
        assert properties["AlarmActions"] == [{"Ref": topic_id}]
        assert properties["OKActions"] == [{"Ref": topic_id}]

        # AND it reads the definition's metrics, with the same expression and query ids
        expected = {
            MetricKey(
                spec.namespace,
                spec.metric_name,
                frozenset((name, names[value] if isinstance(value, Resource) else value) for name, value in spec.dimensions),
            )
            for _, spec in definition.metrics
        }
        assert set(alarm_metrics(alarm)) == expected
        if definition.expression is None:
            ((_, spec),) = definition.metrics
            assert properties["Statistic"] == spec.statistic
            assert properties["Period"] == definition.period_seconds
        else:
            queries = properties["Metrics"]
            by_id = {query["Id"]: query for query in queries}
            (expression,) = [query for query in queries if "Expression" in query]
            assert expression["Expression"] == definition.expression
            assert expression["Label"] == definition.label
            assert expression["ReturnData"] is True
            for query_id, spec in definition.metrics:
                assert by_id[query_id]["MetricStat"]["Stat"] == spec.statistic
                assert by_id[query_id]["MetricStat"]["Period"] == definition.period_seconds
                assert by_id[query_id]["ReturnData"] is False


@pytest.mark.parametrize("region", REGIONS)
def test_composite_alarm_rule(templates: dict, region: str) -> None:
    template = templates[region]
    topic_id, _ = single_resource(template, "AWS::SNS::Topic")
    _, composite = single_resource(template, "AWS::CloudWatch::CompositeAlarm", "AlarmsSustainedThrottling")
    ids = {name: single_resource(template, "AWS::CloudWatch::Alarm", f"Alarms{name}")[0]
           for name in ("Throttled429Rate", "Unavailable503Rate", "OldestJobAge")}

    separator, parts = composite["Properties"]["AlarmRule"]["Fn::Join"]
    rule = separator.join(token_text(part) for part in parts)

    assert rule == (
        f'((ALARM("${{{ids["Throttled429Rate"]}.Arn}}") OR ALARM("${{{ids["Unavailable503Rate"]}.Arn}}")) '
        f'AND ALARM("${{{ids["OldestJobAge"]}.Arn}}"))'
    )
    assert composite["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
    assert composite["Properties"]["OKActions"] == [{"Ref": topic_id}]


@pytest.mark.parametrize("region", REGIONS)
def test_dashboard_widgets_and_metrics(templates: dict, region: str) -> None:
    template = templates[region]
    (dashboard,) = resources_of_type(template, "AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == f"GemmaBatch-{region}"
    body = dashboard_body(template)

    titles = [widget["properties"]["title"] for widget in body["widgets"]]
    assert titles == [
        "Mantle requests",
        "429 and 503 rates (%), 0 below the alarms' request floor",
        "Tokens",
        "Mantle request latency (ms)",
        "Queues",
        "Pool concurrency",
        "Ramp controller decisions",
        "Alarms",
    ]
    names = {(key.namespace, key.metric_name) for key in dashboard_metrics(body)}
    assert {
        ("GemmaBatch", "Requests"),
        ("GemmaBatch", "Throttled429"),
        ("GemmaBatch", "Unavailable503"),
        ("GemmaBatch", "InputTokens"),
        ("GemmaBatch", "OutputTokens"),
        ("GemmaBatch", "CachedInputTokens"),
        ("GemmaBatch", "RequestLatency"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
        ("AWS/Lambda", "ConcurrentExecutions"),
        ("GemmaBatch", "RampConcurrency"),
        ("GemmaBatch", "RampRate"),
        ("GemmaBatch", "RampCuts"),
        ("GemmaBatch", "RampRaises"),
    } <= names

    # The latency graph shows percentiles, and the rate graph the alarms' own expressions.
    latency = body["widgets"][3]["properties"]["metrics"]
    assert [row[-1]["stat"] for row in latency] == ["p50", "p90", "p99"]
    expressions = [row[0]["expression"] for row in body["widgets"][1]["properties"]["metrics"] if "expression" in row[0]]
    assert expressions == [
        "IF(FILL(requests, 0) >= 20, 100 * FILL(throttled, 0) / FILL(requests, 0), 0)",
        "IF(FILL(requests, 0) >= 20, 100 * FILL(unavailable, 0) / FILL(requests, 0), 0)",
    ]

    # The alarm widget lists every alarm of the stack, composite and key alarms included.
    every_alarm = set(resources_of_type(template, "AWS::CloudWatch::Alarm")) | set(
        resources_of_type(template, "AWS::CloudWatch::CompositeAlarm")
    )
    listed = {re.fullmatch(r"\$\{(\w+)\.Arn\}", arn).group(1) for arn in body["widgets"][7]["properties"]["alarms"]}
    assert listed == every_alarm


@pytest.mark.parametrize("region", REGIONS)
def test_ramp_controller_function_and_schedule(templates: dict, region: str) -> None:
    template = templates[region]
    function_id, function = single_resource(template, "AWS::Lambda::Function", "RampController")
    mapping_id, _ = single_resource(template, "AWS::Lambda::EventSourceMapping")
    table_id, _ = single_resource(template, "AWS::DynamoDB::Table", "RampControllerStateTable")
    _, schedule = single_resource(template, "AWS::Scheduler::Schedule", "RampControllerSchedule")
    properties = function["Properties"]

    # The controller gets the mapping's UUID and the pool size, and reads the worker's Service dimension.
    assert properties["Environment"]["Variables"] == {
        "RAMP_CONTROLLER_ENABLED": "true",
        "RAMP_STATE_TABLE": {"Ref": table_id},
        "EVENT_SOURCE_MAPPING_UUID": {"Ref": mapping_id},
        "WORKER_POOL_SIZE": "10",
        "RAMP_TARGET_REQUESTS_PER_MINUTE": "300",
        "RAMP_HOLD_MINUTES": "15",
        "METRICS_NAMESPACE": "GemmaBatch",
        "WORKER_METRICS_SERVICE": "gemma-batch-worker",
        "METRICS_SERVICE": "gemma-batch-ramp-controller",
    }
    assert properties["Handler"] == "ramp_controller.handler.lambda_handler"
    assert properties["ReservedConcurrentExecutions"] == 1

    # It runs every minute, and a failed run is not retried.
    assert schedule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    assert schedule["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert schedule["Properties"]["Target"]["RetryPolicy"] == {"MaximumEventAgeInSeconds": 60, "MaximumRetryAttempts": 0}


@pytest.mark.parametrize("region", REGIONS)
def test_ramp_controller_role_has_exactly_what_it_uses(templates: dict, region: str) -> None:
    template = templates[region]
    role_id, _ = single_resource(template, "AWS::IAM::Role", "RampControllerControllerRole")
    mapping_id, _ = single_resource(template, "AWS::Lambda::EventSourceMapping")
    table_id, _ = single_resource(template, "AWS::DynamoDB::Table", "RampControllerStateTable")

    statements = [
        statement
        for policy in resources_of_type(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    by_action = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            by_action[action] = statement

    assert set(by_action) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "lambda:GetEventSourceMapping",
        "lambda:UpdateEventSourceMapping",
        "cloudwatch:GetMetricData",
    }
    assert by_action["dynamodb:PutItem"]["Resource"] == {"Fn::GetAtt": [table_id, "Arn"]}
    assert by_action["kms:Decrypt"]["Condition"] == {"StringEquals": {"kms:ViaService": f"dynamodb.{region}.amazonaws.com"}}
    # Only the worker's mapping, by its ARN.
    mapping_arn = json.dumps(by_action["lambda:UpdateEventSourceMapping"]["Resource"])
    assert f'{{"Ref": "{mapping_id}"}}' in mapping_arn
    assert ":event-source-mapping:" in mapping_arn


@pytest.mark.parametrize("region", REGIONS)
def test_ramp_state_table_encrypted_and_recoverable(templates: dict, region: str) -> None:
    template = templates[region]
    _, table = single_resource(template, "AWS::DynamoDB::Table", "RampControllerStateTable")
    data_key_id, _ = single_resource(template, "AWS::KMS::Key", "EncryptionDataKey")
    properties = table["Properties"]
    assert properties["SSESpecification"] == {
        "KMSMasterKeyId": {"Fn::GetAtt": [data_key_id, "Arn"]},
        "SSEEnabled": True,
        "SSEType": "KMS",
    }
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["KeySchema"] == [{"AttributeName": "controller_id", "KeyType": "HASH"}]
