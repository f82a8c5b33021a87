"""Template tests of the API key in both key modes: rotation permissions, schedules, the worker's grants and the key alarms."""

from __future__ import annotations

import json

import pytest

from stacks.key_alarms import KEY_METRICS
from stacks.key_timing import KeyTiming
from stacks.long_term_key import SERVICE_SPECIFIC_CREDENTIAL_ACTIONS
from tests.infra.conftest import REGIONS, actions_of, ref_id, resources_of_type, role_statements, single_resource

pytestmark = pytest.mark.xdist_group("synth")

DEFAULT_TIMING = KeyTiming.short_term_mode(20)
LONG_TERM_TIMING = KeyTiming.long_term_mode(30)


def statements_with(template: dict, role_id: str, action: str) -> list[dict]:
    return [statement for statement in role_statements(template, role_id) if action in actions_of(statement)]


def environment_of(template: dict, function_prefix: str) -> dict:
    _, function = single_resource(template, "AWS::Lambda::Function", function_prefix)
    return function["Properties"]["Environment"]["Variables"]


def schedule_role_id(template: dict, schedule_prefix: str) -> str:
    _, schedule = single_resource(template, "AWS::Scheduler::Schedule", schedule_prefix)
    return ref_id(schedule["Properties"]["Target"]["RoleArn"])


@pytest.mark.parametrize("region", REGIONS)
def test_rotate_secret_callers_scoped(templates: dict, region: str) -> None:
    # GIVEN the default template: the frequent schedule and the worker call RotateSecret
    template = templates[region]
    secret_id, _ = single_resource(template, "AWS::SecretsManager::Secret")
    function_id, _ = single_resource(template, "AWS::Lambda::Function", "ApiKeyRotation")
    worker_role_id, _ = single_resource(template, "AWS::IAM::Role", "WorkerPoolWorkerRole")
    callers = {"schedule": schedule_role_id(template, "ApiKeyFrequentRotation"), "worker": worker_role_id}

    for caller, role_id in callers.items():
        # THEN each may call RotateSecret on this secret only
        rotate = statements_with(template, role_id, "secretsmanager:RotateSecret")
        assert [ref_id(statement["Resource"]) for statement in rotate] == [secret_id], caller
        # AND may invoke exactly the rotation function, which RotateSecret requires of its caller
        invoke = statements_with(template, role_id, "lambda:InvokeFunction")
        assert [statement["Resource"] for statement in invoke] == [{"Fn::GetAtt": [function_id, "Arn"]}], caller


@pytest.mark.parametrize("region", REGIONS)
def test_key_check_schedule_invokes_rotation_function(templates: dict, region: str) -> None:
    template = templates[region]
    secret_id, _ = single_resource(template, "AWS::SecretsManager::Secret")
    function_id, _ = single_resource(template, "AWS::Lambda::Function", "ApiKeyRotation")
    _, check = single_resource(template, "AWS::Scheduler::Schedule", "ApiKeyKeyCheck")
    _, role = single_resource(template, "AWS::IAM::Role", "ApiKeyKeyCheckRole")

    # THEN the check runs every 5 minutes with the check event of this secret
    assert check["Properties"]["ScheduleExpression"] == "rate(5 minutes)"
    assert check["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert check["Properties"]["Target"]["Input"] == {
        "Fn::Join": ["", ['{"Action":"CheckKey","SecretId":"', {"Ref": secret_id}, '"}']]
    }
    # AND only EventBridge Scheduler of this account may assume its role
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
        }
    ]


@pytest.mark.parametrize("region", REGIONS)
def test_worker_gets_key_cache_settings(templates: dict, region: str) -> None:
    environment = environment_of(templates[region], "WorkerPoolWorker")
    assert environment["KEY_CACHE_SECONDS"] == "300"
    assert environment["KEY_ROTATION_TRIGGER_SECONDS"] == str(DEFAULT_TIMING.worker_trigger) == "2100"
    assert environment["KEY_ROTATION_MIN_INTERVAL_SECONDS"] == str(DEFAULT_TIMING.trigger_window) == "1200"


@pytest.mark.parametrize("region", REGIONS)
def test_short_term_mode_template(templates: dict, region: str) -> None:
    template = templates[region]
    environment = environment_of(template, "ApiKeyRotation")
    # THEN the function signs short-term keys with the key-issuer role, and no IAM user exists
    assert environment["KEY_MODE"] == "short_term"
    assert environment["MIN_KEY_VALIDITY_SECONDS"] == "2400"
    assert environment["METRICS_NAMESPACE"] == "GemmaBatch"
    assert resources_of_type(template, "AWS::IAM::User") == {}
    role_id, _ = single_resource(template, "AWS::IAM::Role", "ApiKeyRotationFunctionRole")
    for action in SERVICE_SPECIFIC_CREDENTIAL_ACTIONS:
        assert statements_with(template, role_id, action) == []


def test_long_term_mode_template(long_term_key_template: dict) -> None:
    # GIVEN the template with long_term_api_key on
    template = long_term_key_template
    user_id, user = single_resource(template, "AWS::IAM::User")
    role_id, _ = single_resource(template, "AWS::IAM::Role", "ApiKeyRotationFunctionRole")
    environment = environment_of(template, "ApiKeyRotation")

    # THEN one IAM user has the inference-only policy and nothing else: no password, no access key, no inline policy
    assert json.dumps(user["Properties"]["ManagedPolicyArns"]).count("policy/AmazonBedrockMantleInferenceAccess") == 1
    assert len(user["Properties"]["ManagedPolicyArns"]) == 1
    assert "LoginProfile" not in user["Properties"]
    assert "Policies" not in user["Properties"]
    assert resources_of_type(template, "AWS::IAM::AccessKey") == {}
    # AND the user has no fixed name, so the stack that creates it is the only one that owns it
    assert "UserName" not in user["Properties"]

    # AND the rotation function manages that user's service-specific credentials and nothing else in IAM
    credential_statements = [
        statement
        for statement in role_statements(template, role_id)
        if any(action.startswith("iam:") for action in actions_of(statement))
    ]
    assert len(credential_statements) == 1
    assert actions_of(credential_statements[0]) == set(SERVICE_SPECIFIC_CREDENTIAL_ACTIONS)
    assert credential_statements[0]["Resource"] == {"Fn::GetAtt": [user_id, "Arn"]}
    assert statements_with(template, role_id, "sts:AssumeRole") == []
    assert [role_id_ for role_id_ in resources_of_type(template, "AWS::IAM::Role") if "KeyIssuer" in role_id_] == []

    # AND the function runs in long-term mode for that user
    assert environment["KEY_MODE"] == "long_term"
    assert environment["LONG_TERM_KEY_USER_NAME"] == {"Ref": user_id}
    assert environment["LONG_TERM_KEY_AGE_DAYS"] == "90"
    assert environment["MIN_KEY_VALIDITY_SECONDS"] == str(LONG_TERM_TIMING.min_pending_validity)
    assert "KEY_ISSUER_ROLE_ARN" not in environment

    # AND Secrets Manager's schedule rotates every 30 days, with no frequent schedule
    _, backstop = single_resource(template, "AWS::SecretsManager::RotationSchedule")
    assert backstop["Properties"]["RotationRules"] == {"ScheduleExpression": "rate(30 days)"}
    schedules = resources_of_type(template, "AWS::Scheduler::Schedule")
    assert [logical_id for logical_id in schedules if logical_id.startswith("ApiKey")] == [
        next(logical_id for logical_id in schedules if logical_id.startswith("ApiKeyKeyCheck"))
    ]
    assert environment_of(template, "WorkerPoolWorker")["KEY_ROTATION_TRIGGER_SECONDS"] == str(
        LONG_TERM_TIMING.worker_trigger
    )


@pytest.mark.parametrize("region", REGIONS)
def test_key_alarms_read_rotation_metrics(templates: dict, region: str) -> None:
    template = templates[region]
    topic_id, _ = single_resource(template, "AWS::SNS::Topic", "AlarmsTopic")
    _, failed = single_resource(template, "AWS::CloudWatch::Alarm", "KeyAlarmsRotationFailed")
    _, validity = single_resource(template, "AWS::CloudWatch::Alarm", "KeyAlarmsKeyValidityLow")
    _, group = single_resource(template, "AWS::Scheduler::ScheduleGroup")

    # THEN the failure alarm adds the function's failed steps and the schedules' failed calls
    expressions = [query["Expression"] for query in failed["Properties"]["Metrics"] if "Expression" in query]
    assert expressions == ["FILL(failures, 0) + FILL(schedulerErrors, 0)"]
    metric_names = {
        query["MetricStat"]["Metric"]["MetricName"]: query["MetricStat"]["Metric"]
        for query in failed["Properties"]["Metrics"]
        if "MetricStat" in query
    }
    assert set(metric_names) == {KEY_METRICS.ROTATION_FAILURES, "TargetErrorCount"}
    assert metric_names[KEY_METRICS.ROTATION_FAILURES]["Namespace"] == "GemmaBatch"
    assert metric_names[KEY_METRICS.ROTATION_FAILURES]["Dimensions"] == [
        {"Name": "Service", "Value": KEY_METRICS.ROTATION_SERVICE}
    ]
    assert metric_names["TargetErrorCount"]["Dimensions"] == [
        {"Name": "ScheduleGroup", "Value": group["Properties"]["Name"]}
    ]
    assert failed["Properties"]["Threshold"] == 0
    assert failed["Properties"]["ComparisonOperator"] == "GreaterThanThreshold"

    # AND the validity alarm fires below the derived threshold, counting missing key checks as breaching
    assert validity["Properties"]["MetricName"] == KEY_METRICS.KEY_VALIDITY_SECONDS
    assert validity["Properties"]["Statistic"] == "Minimum"
    assert validity["Properties"]["Threshold"] == DEFAULT_TIMING.alarm_threshold == 1800
    assert validity["Properties"]["ComparisonOperator"] == "LessThanThreshold"
    assert validity["Properties"]["TreatMissingData"] == "breaching"

    # AND both notify the alarm topic when they fire and when they recover
    for alarm in (failed, validity):
        assert [ref_id(action) for action in alarm["Properties"]["AlarmActions"]] == [topic_id]
        assert [ref_id(action) for action in alarm["Properties"]["OKActions"]] == [topic_id]
