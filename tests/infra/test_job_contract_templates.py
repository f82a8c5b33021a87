"""Templates of the job contract: the job state table, the worker's and producers' access to it, and input images."""

from __future__ import annotations

import json

import pytest

from gemma_batch.local import job_state_table as local_table
from stacks import job_state as stack_table
from tests.infra.conftest import REGIONS, resources_of_type, single_resource
from worker import job_state as worker_table


def statements(policy_document: dict) -> dict[str, dict]:
    return {statement["Sid"]: statement for statement in policy_document["Statement"] if "Sid" in statement}


def worker_environment(template: dict) -> dict:
    functions = {
        logical_id: resource
        for logical_id, resource in resources_of_type(template, "AWS::Lambda::Function").items()
        if logical_id.startswith("WorkerPoolWorker")
    }
    (function,) = functions.values()
    return function["Properties"]["Environment"]["Variables"]


def worker_statements(template: dict) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for logical_id, resource in resources_of_type(template, "AWS::IAM::Policy").items():
        if logical_id.startswith("WorkerPoolWorkerRole"):
            found.update(statements(resource["Properties"]["PolicyDocument"]))
    return found


def producer_statements(template: dict) -> dict[str, dict]:
    _, policy = single_resource(template, "AWS::IAM::ManagedPolicy", "Producers")
    return statements(policy["Properties"]["PolicyDocument"])


def table_logical_id(template: dict) -> str:
    logical_id, _ = single_resource(template, "AWS::DynamoDB::Table", "JobState")
    return logical_id


def test_key_and_ttl_names_agree():
    assert stack_table.PARTITION_KEY == worker_table.PARTITION_KEY == local_table.PARTITION_KEY == "job_id"
    assert stack_table.TTL_ATTRIBUTE == worker_table.TTL_ATTRIBUTE == local_table.TTL_ATTRIBUTE == "expires_at"


@pytest.mark.parametrize("region", REGIONS)
def test_job_state_table(templates, region):
    _, table = single_resource(templates[region], "AWS::DynamoDB::Table", "JobState")
    properties = table["Properties"]

    assert properties["KeySchema"] == [{"AttributeName": "job_id", "KeyType": "HASH"}]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert properties["SSESpecification"]["SSEType"] == "KMS"
    data_key, _ = single_resource(templates[region], "AWS::KMS::Key", "EncryptionDataKey")
    assert properties["SSESpecification"]["KMSMasterKeyId"] == {"Fn::GetAtt": [data_key, "Arn"]}
    assert table["DeletionPolicy"] == "Retain"


def test_worker_may_only_update_job_state(templates):
    template = templates["us-east-1"]
    granted = worker_statements(template)

    assert granted["TrackJobState"]["Action"] == "dynamodb:UpdateItem"
    assert granted["TrackJobState"]["Resource"] == {"Fn::GetAtt": [table_logical_id(template), "Arn"]}
    every_action = [
        action
        for statement in granted.values()
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    ]
    assert [action for action in every_action if action.startswith("dynamodb:")] == ["dynamodb:UpdateItem"]


def test_worker_reads_inputs_prefix_only(templates):
    template = templates["us-east-1"]
    bucket, _ = single_resource(template, "AWS::S3::Bucket", "ResultsStoreResults")

    read = worker_statements(template)["ReadJobInputs"]

    assert read["Action"] == "s3:GetObject"
    assert read["Resource"] == {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/inputs/*"]]}


def test_worker_environment_carries_job_contract(templates):
    template = templates["us-east-2"]
    bucket, _ = single_resource(template, "AWS::S3::Bucket", "ResultsStoreResults")

    environment = worker_environment(template)

    assert environment["JOB_STATE_TABLE"] == {"Ref": table_logical_id(template)}
    assert environment["JOB_STATE_TTL_DAYS"] == "30"
    assert environment["INPUT_BUCKET"] == {"Ref": bucket}
    assert environment["INPUT_PREFIX"] == "inputs/"
    assert environment["ALLOW_STANDARD_TIER_ESCALATION"] == "false"
    assert json.loads(environment["REASONING_EFFORT_BY_MODEL"]) == {"google.gemma-4-e2b": "high"}
    assert environment["MAX_RECEIVE_COUNT"] == "5"


def test_producers_read_status_and_upload_inputs(templates):
    template = templates["eu-central-1"]
    bucket, _ = single_resource(template, "AWS::S3::Bucket", "ResultsStoreResults")

    granted = producer_statements(template)

    assert sorted(granted["ReadJobStatus"]["Action"]) == ["dynamodb:BatchGetItem", "dynamodb:GetItem"]
    assert granted["ReadJobStatus"]["Resource"] == {"Fn::GetAtt": [table_logical_id(template), "Arn"]}
    assert granted["FindStackOutputs"]["Action"] == "cloudformation:DescribeStacks"
    assert "stack/GemmaBatch-eu-central-1/*" in json.dumps(granted["FindStackOutputs"]["Resource"])
    assert granted["UploadInputs"]["Action"] == "s3:PutObject"
    assert granted["UploadInputs"]["Resource"] == {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/inputs/*"]]}


@pytest.mark.parametrize("region", REGIONS)
def test_outputs_name_table_and_input_location(templates, region):
    outputs = templates[region]["Outputs"]

    assert outputs["JobStatusTableName"]["Value"] == {"Ref": table_logical_id(templates[region])}
    assert "/inputs/" in json.dumps(outputs["InputLocation"]["Value"])


def test_own_input_bucket_is_read_only(job_inputs_template):
    # GIVEN input_bucket_name=team-job-images
    read = worker_statements(job_inputs_template)["ReadJobInputs"]

    # THEN the worker reads that bucket's objects, and producers get no upload right from this stack
    assert read["Action"] == "s3:GetObject"
    assert json.dumps(read["Resource"]).endswith(':s3:::team-job-images/*"]]}')
    assert "UploadInputs" not in producer_statements(job_inputs_template)
    environment = worker_environment(job_inputs_template)
    assert environment["INPUT_BUCKET"] == "team-job-images"
    assert environment["INPUT_PREFIX"] == ""
    assert environment["ALLOW_STANDARD_TIER_ESCALATION"] == "true"
    assert json.loads(environment["REASONING_EFFORT_BY_MODEL"]) == {"google.gemma-4-31b": "medium"}
    assert job_inputs_template["Outputs"]["InputLocation"]["Value"] == "s3://team-job-images/"
