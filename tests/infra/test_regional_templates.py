"""Template tests: every region's stack has the queues, keys, secret rotation, worker, alarms and IAM it needs."""

from __future__ import annotations

import json

import pytest

from tests.infra.conftest import REGIONS, actions_of, ref_id, resources_of_type, role_statements, single_resource

pytestmark = pytest.mark.xdist_group("synth")

DEFAULT_FUNCTION_TIMEOUT = 300
DEFAULT_BATCHING_WINDOW = 1
DEFAULT_POOL_SIZE = 10


@pytest.mark.parametrize("region", REGIONS)
def test_job_queue_redrive_and_visibility(templates: dict, region: str) -> None:
    # GIVEN the synthesized stack of a region
    template = templates[region]
    queue_id, queue = single_resource(template, "AWS::SQS::Queue", "WorkerPoolJobQueue")
    dlq_id, dlq = single_resource(template, "AWS::SQS::Queue", "WorkerPoolDeadLetterQueue")
    key_id, _ = single_resource(template, "AWS::KMS::Key", "EncryptionDataKey")

    # THEN the job queue dead-letters after at least 5 receives and hides a message long enough
    redrive = queue["Properties"]["RedrivePolicy"]
    assert redrive["maxReceiveCount"] >= 5
    assert ref_id(redrive["deadLetterTargetArn"]) == dlq_id
    assert queue["Properties"]["VisibilityTimeout"] >= 6 * DEFAULT_FUNCTION_TIMEOUT + DEFAULT_BATCHING_WINDOW
    # AND both queues are encrypted with the data key
    assert ref_id(queue["Properties"]["KmsMasterKeyId"]) == key_id
    assert ref_id(dlq["Properties"]["KmsMasterKeyId"]) == key_id
    assert dlq["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600


@pytest.mark.parametrize("region", REGIONS)
def test_queues_deny_insecure_transport(templates: dict, region: str) -> None:
    template = templates[region]
    denied_queues = set()
    for policy in resources_of_type(template, "AWS::SQS::QueuePolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}:
                denied_queues.update(ref_id(queue) for queue in policy["Properties"]["Queues"])
    assert denied_queues == set(resources_of_type(template, "AWS::SQS::Queue"))


@pytest.mark.parametrize("region", REGIONS)
def test_event_source_mapping(templates: dict, region: str) -> None:
    template = templates[region]
    _, mapping = single_resource(template, "AWS::Lambda::EventSourceMapping")
    queue_id, _ = single_resource(template, "AWS::SQS::Queue", "WorkerPoolJobQueue")
    function_id, _ = single_resource(template, "AWS::Lambda::Function", "WorkerPoolWorker")
    properties = mapping["Properties"]

    assert ref_id(properties["EventSourceArn"]) == queue_id
    assert ref_id({"Ref": properties["FunctionName"]["Ref"]}) == function_id
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["ScalingConfig"] == {"MaximumConcurrency": DEFAULT_POOL_SIZE}
    assert 1 <= properties["BatchSize"] <= 10
    assert properties["MaximumBatchingWindowInSeconds"] == DEFAULT_BATCHING_WINDOW


@pytest.mark.parametrize("region", REGIONS)
def test_worker_function(templates: dict, region: str) -> None:
    template = templates[region]
    _, function = single_resource(template, "AWS::Lambda::Function", "WorkerPoolWorker")
    properties = function["Properties"]
    environment = properties["Environment"]["Variables"]

    assert properties["Runtime"] == "python3.14"
    assert properties["Architectures"] == ["arm64"]
    assert properties["TracingConfig"] == {"Mode": "Active"}
    assert properties["LoggingConfig"]["LogFormat"] == "JSON"
    assert properties["Timeout"] == DEFAULT_FUNCTION_TIMEOUT
    # The endpoint is derived from the stack's own region.
    assert environment["MANTLE_BASE_URL"] == f"https://bedrock-mantle.{region}.api.aws/openai/v1"
    assert environment["SERVICE_TIER"] == "flex"
    assert environment["MODEL_ID"] == "google.gemma-4-26b-a4b"
    assert environment["METRICS_NAMESPACE"] == "GemmaBatch"

    log_group_id = ref_id({"Ref": properties["LoggingConfig"]["LogGroup"]["Ref"]})
    assert template["Resources"][log_group_id]["Properties"]["RetentionInDays"] == 30


@pytest.mark.parametrize("region", REGIONS)
def test_all_functions_arm64_newest_python(templates: dict, region: str) -> None:
    functions = resources_of_type(templates[region], "AWS::Lambda::Function")
    assert len(functions) == 3  # the worker, the key rotation and the ramp controller
    for function in functions.values():
        assert function["Properties"]["Runtime"] == "python3.14"
        assert function["Properties"]["Architectures"] == ["arm64"]
        assert function["Properties"]["TracingConfig"] == {"Mode": "Active"}


@pytest.mark.parametrize("region", REGIONS)
def test_keys_rotate_and_topic_key_admits_cloudwatch_only(templates: dict, region: str) -> None:
    template = templates[region]
    data_key_id, data_key = single_resource(template, "AWS::KMS::Key", "EncryptionDataKey")
    topic_key_id, topic_key = single_resource(template, "AWS::KMS::Key", "EncryptionAlarmTopicKey")

    assert data_key["Properties"]["EnableKeyRotation"] is True
    assert topic_key["Properties"]["EnableKeyRotation"] is True

    cloudwatch_statements = [
        statement
        for statement in topic_key["Properties"]["KeyPolicy"]["Statement"]
        if statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert len(cloudwatch_statements) == 1
    statement = cloudwatch_statements[0]
    assert actions_of(statement) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    # The data key's policy never names CloudWatch.
    assert "cloudwatch.amazonaws.com" not in json.dumps(data_key["Properties"]["KeyPolicy"])


@pytest.mark.parametrize("region", REGIONS)
def test_secret_encrypted_and_rotated(templates: dict, region: str) -> None:
    template = templates[region]
    secret_id, secret = single_resource(template, "AWS::SecretsManager::Secret")
    data_key_id, _ = single_resource(template, "AWS::KMS::Key", "EncryptionDataKey")
    rotation_function_id, rotation_function = single_resource(template, "AWS::Lambda::Function", "ApiKeyRotation")
    _, backstop = single_resource(template, "AWS::SecretsManager::RotationSchedule")
    _, frequent = single_resource(template, "AWS::Scheduler::Schedule", "ApiKeyFrequentRotation")

    assert ref_id(secret["Properties"]["KmsKeyId"]) == data_key_id
    # Secrets Manager's own schedule is the 4-hour backstop.
    assert backstop["Properties"]["RotationRules"] == {"ScheduleExpression": "rate(4 hours)"}
    assert ref_id(backstop["Properties"]["RotationLambdaARN"]) == rotation_function_id
    assert backstop["Properties"]["RotateImmediatelyOnUpdate"] is True
    # The frequent schedule calls RotateSecret on this secret every 20 minutes.
    assert frequent["Properties"]["ScheduleExpression"] == "rate(20 minutes)"
    target = frequent["Properties"]["Target"]
    assert target["Arn"] == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":scheduler:::aws-sdk:secretsmanager:rotateSecret"]]
    }
    assert target["Input"] == {"Fn::Join": ["", ['{"SecretId":"', {"Ref": secret_id}, '"}']]}
    environment = rotation_function["Properties"]["Environment"]["Variables"]
    assert environment["KEY_SESSION_SECONDS"] == "3600"


@pytest.mark.parametrize("region", REGIONS)
def test_only_secrets_manager_of_this_account_invokes_rotation(templates: dict, region: str) -> None:
    template = templates[region]
    rotation_function_id, _ = single_resource(template, "AWS::Lambda::Function", "ApiKeyRotation")
    secret_id, _ = single_resource(template, "AWS::SecretsManager::Secret")
    permissions = [
        permission["Properties"]
        for permission in resources_of_type(template, "AWS::Lambda::Permission").values()
        if ref_id(permission["Properties"]["FunctionName"]) == rotation_function_id
    ]
    assert permissions == [
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Fn::GetAtt": [rotation_function_id, "Arn"]},
            "Principal": "secretsmanager.amazonaws.com",
            "SourceAccount": {"Ref": "AWS::AccountId"},
            "SourceArn": {"Ref": secret_id},
        }
    ]


@pytest.mark.parametrize("region", REGIONS)
def test_key_issuer_role(templates: dict, region: str) -> None:
    template = templates[region]
    role_id, role = single_resource(template, "AWS::IAM::Role", "ApiKeyKeyIssuerRole")
    rotation_role_id, _ = single_resource(template, "AWS::IAM::Role", "ApiKeyRotationFunctionRole")

    assert json.dumps(role["Properties"]["ManagedPolicyArns"]).count("policy/AmazonBedrockMantleInferenceAccess") == 1
    assert len(role["Properties"]["ManagedPolicyArns"]) == 1
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert len(trust) == 1
    assert trust[0]["Principal"] == {"AWS": {"Fn::GetAtt": [rotation_role_id, "Arn"]}}
    assert "Policies" not in role["Properties"]
    assert role_statements(template, role_id) == []

    assume = [s for s in role_statements(template, rotation_role_id) if "sts:AssumeRole" in actions_of(s)]
    assert [ref_id(s["Resource"]) for s in assume] == [role_id]


@pytest.mark.parametrize("region", REGIONS)
def test_operator_role_trusts_this_account(templates: dict, region: str) -> None:
    _, role = single_resource(templates[region], "AWS::IAM::Role", "OperatorsOperatorRole")
    assert "policy/AmazonBedrockMantleFullAccess" in json.dumps(role["Properties"]["ManagedPolicyArns"])
    principal = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["AWS"]
    assert ":root" in json.dumps(principal)
    assert "AWS::AccountId" in json.dumps(principal)


@pytest.mark.parametrize("region", REGIONS)
def test_worker_role_has_exactly_what_worker_uses(templates: dict, region: str) -> None:
    template = templates[region]
    role_id, _ = single_resource(template, "AWS::IAM::Role", "WorkerPoolWorkerRole")
    actions = set()
    for statement in role_statements(template, role_id):
        assert statement["Effect"] == "Allow"
        actions |= actions_of(statement)
    assert actions == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "secretsmanager:GetSecretValue",
        "secretsmanager:RotateSecret",
        "lambda:InvokeFunction",
        "s3:PutObject",
        "s3:GetObject",
        "dynamodb:UpdateItem",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
    }


@pytest.mark.parametrize("region", REGIONS)
def test_producer_policy(templates: dict, region: str) -> None:
    template = templates[region]
    _, policy = single_resource(template, "AWS::IAM::ManagedPolicy", "ProducersPolicy")
    queue_id, _ = single_resource(template, "AWS::SQS::Queue", "WorkerPoolJobQueue")
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}

    assert actions_of(statements["SubmitJobs"]) >= {"sqs:SendMessage"}
    assert ref_id(statements["SubmitJobs"]["Resource"]) == queue_id
    assert actions_of(statements["ReadResults"]) == {"s3:GetObject"}
    assert actions_of(statements["UseDataKey"]) == {"kms:GenerateDataKey", "kms:Decrypt"}


@pytest.mark.parametrize("region", REGIONS)
def test_results_bucket(templates: dict, region: str) -> None:
    template = templates[region]
    bucket_id, bucket = single_resource(template, "AWS::S3::Bucket", "ResultsStoreResults")
    data_key_id, _ = single_resource(template, "AWS::KMS::Key", "EncryptionDataKey")
    properties = bucket["Properties"]

    encryption = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["BucketKeyEnabled"] is True
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert ref_id(encryption["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]) == data_key_id
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    rule = properties["LifecycleConfiguration"]["Rules"][0]
    assert rule["ExpirationInDays"] == 30
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 7}

    bucket_policies = [
        p for p in resources_of_type(template, "AWS::S3::BucketPolicy").values() if ref_id(p["Properties"]["Bucket"]) == bucket_id
    ]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for p in bucket_policies
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    )


@pytest.mark.parametrize("region", REGIONS)
def test_alarm_topic_encrypted_and_tls_only(templates: dict, region: str) -> None:
    template = templates[region]
    topic_id, topic = single_resource(template, "AWS::SNS::Topic")
    topic_key_id, _ = single_resource(template, "AWS::KMS::Key", "EncryptionAlarmTopicKey")
    assert ref_id(topic["Properties"]["KmsMasterKeyId"]) == topic_key_id
    _, topic_policy = single_resource(template, "AWS::SNS::TopicPolicy")
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in topic_policy["Properties"]["PolicyDocument"]["Statement"]
    )
    # No e-mail address is configured by default, so there is no subscription.
    assert resources_of_type(template, "AWS::SNS::Subscription") == {}


@pytest.mark.parametrize("region", REGIONS)
def test_alarms(templates: dict, region: str) -> None:
    template = templates[region]
    topic_id, _ = single_resource(template, "AWS::SNS::Topic")
    alarms = {
        logical_id: alarm
        for logical_id, alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").items()
        if logical_id.startswith("Alarms")
    }
    assert len(alarms) == 6

    for alarm in alarms.values():
        properties = alarm["Properties"]
        assert properties["TreatMissingData"] == "notBreaching"
        assert properties["AlarmActions"] == [{"Ref": topic_id}]
        assert properties["OKActions"] == [{"Ref": topic_id}]

    for prefix, metric_name, failures_id in (
        ("AlarmsThrottled429Rate", "Throttled429", "throttled"),
        ("AlarmsUnavailable503Rate", "Unavailable503", "unavailable"),
    ):
        _, alarm = single_resource(template, "AWS::CloudWatch::Alarm", prefix)
        queries = {query["Id"]: query for query in alarm["Properties"]["Metrics"]}
        expression = next(query["Expression"] for query in queries.values() if "Expression" in query)
        # Guarded against zero traffic: missing counts become 0 and the rate is 0 below the volume floor.
        assert expression == (
            f"IF(FILL(requests, 0) >= 20, 100 * FILL({failures_id}, 0) / FILL(requests, 0), 0)"
        )
        assert queries[failures_id]["MetricStat"]["Metric"]["MetricName"] == metric_name
        assert queries["requests"]["MetricStat"]["Metric"]["MetricName"] == "Requests"
        for query_id in (failures_id, "requests"):
            metric = queries[query_id]["MetricStat"]["Metric"]
            assert metric["Namespace"] == "GemmaBatch"
            assert metric["Dimensions"] == [{"Name": "Service", "Value": "gemma-batch-worker"}]
        assert alarm["Properties"]["Threshold"] == 5

    _, dlq_alarm = single_resource(template, "AWS::CloudWatch::Alarm", "AlarmsDeadLetterQueueNotEmpty")
    assert dlq_alarm["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert dlq_alarm["Properties"]["Threshold"] == 0
    _, age_alarm = single_resource(template, "AWS::CloudWatch::Alarm", "AlarmsOldestJobAge")
    assert age_alarm["Properties"]["MetricName"] == "ApproximateAgeOfOldestMessage"


@pytest.mark.parametrize("region", REGIONS)
def test_stack_is_pinned_to_its_region(cloud_assembly, templates: dict, region: str) -> None:
    manifest = json.loads((cloud_assembly / "manifest.json").read_text())
    artifact = manifest["artifacts"][f"GemmaBatch-{region}"]
    # Region-only environment: no placeholder account when none is configured.
    assert artifact["environment"] == f"aws://unknown-account/{region}"
    # No other region appears anywhere in the template, so there is no cross-region reference.
    text = json.dumps(templates[region])
    for other in REGIONS:
        if other != region:
            assert other not in text
    assert "Fn::ImportValue" not in text


@pytest.mark.parametrize("region", REGIONS)
def test_rotation_role_touches_only_its_secret_and_key(templates: dict, region: str) -> None:
    template = templates[region]
    role_id, _ = single_resource(template, "AWS::IAM::Role", "ApiKeyRotationFunctionRole")
    secret_id, _ = single_resource(template, "AWS::SecretsManager::Secret")
    data_key_id, _ = single_resource(template, "AWS::KMS::Key", "EncryptionDataKey")
    statements = role_statements(template, role_id)

    secret_statements = [s for s in statements if any(a.startswith("secretsmanager:") for a in actions_of(s))]
    assert len(secret_statements) == 1
    assert actions_of(secret_statements[0]) == {
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:ListSecretVersionIds",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
    }
    assert secret_statements[0]["Resource"] == {"Ref": secret_id}

    key_statements = [s for s in statements if any(a.startswith("kms:") for a in actions_of(s))]
    assert len(key_statements) == 1
    assert actions_of(key_statements[0]) == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert ref_id(key_statements[0]["Resource"]) == data_key_id
    assert key_statements[0]["Condition"] == {
        "StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}
    }

    other_actions = set().union(*(actions_of(s) for s in statements)) - actions_of(secret_statements[0]) - actions_of(key_statements[0])
    assert other_actions == {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords", "sts:AssumeRole"}
