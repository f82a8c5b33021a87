"""The rollout pipeline: waves canary first, each region once under its usual name, checks after each deploy."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.infra.conftest import (
    ALL_NAG_PACKS,
    PIPELINE_ACCOUNT,
    PIPELINE_SETTINGS,
    REGIONS,
    REPO_ROOT,
    run_cdk_synth,
)

pytestmark = pytest.mark.xdist_group("synth")

PIPELINE_STACK = "GemmaBatch-Pipeline"


def _stacks(manifest_path: Path) -> dict[str, dict]:
    manifest = json.loads(manifest_path.read_text())
    return {name: artifact for name, artifact in manifest["artifacts"].items()
            if artifact["type"] == "aws:cloudformation:stack"}


def _pipeline_stages(pipeline_assembly: Path) -> list[dict]:
    template = json.loads((pipeline_assembly / f"{PIPELINE_STACK}.template.json").read_text())
    (pipeline,) = [resource for resource in template["Resources"].values()
                   if resource["Type"] == "AWS::CodePipeline::Pipeline"]
    return pipeline["Properties"]["Stages"]


def _action_names(stage: dict) -> list[str]:
    return [action["Name"] for action in stage["Actions"]]


def test_pipeline_synth_passes_every_pack(pipeline_assembly: Path) -> None:
    report = json.loads((pipeline_assembly / "validation-report.json").read_text())
    assert report["pluginReports"] == []
    packs = json.loads((pipeline_assembly / f"{PIPELINE_STACK}.metadata.json").read_text())
    recorded = [entry["data"] for entries in packs.values() for entry in entries
                if entry["type"] == "gemma-batch:nag-rule-packs"]
    assert recorded == [["AwsSolutions", "Serverless", "GemmaBatch", "NIST.800.53.R5", "HIPAA.Security"]]


def test_app_builds_regions_only_inside_stages(pipeline_assembly: Path) -> None:
    # The top level contains the pipeline and CodePipeline's replication stacks, no regional stack.
    top_level = _stacks(pipeline_assembly / "manifest.json")
    assert PIPELINE_STACK in top_level
    assert not [name for name in top_level if name.startswith("GemmaBatch-") and name != PIPELINE_STACK]

    # Each region's stage assembly contains exactly one stack, named as on the manual path.
    names = []
    for region in REGIONS:
        stage_stacks = _stacks(pipeline_assembly / f"assembly-{PIPELINE_STACK}-Deploy-{region}" / "manifest.json")
        assert len(stage_stacks) == 1
        (artifact,) = stage_stacks.values()
        assert artifact["properties"]["stackName"] == f"GemmaBatch-{region}"
        assert artifact["environment"] == f"aws://{PIPELINE_ACCOUNT}/{region}"
        names.append(artifact["properties"]["stackName"])
    assert len(set(names)) == len(REGIONS)


def test_waves_run_canary_first_and_approval_last(pipeline_assembly: Path) -> None:
    stages = _pipeline_stages(pipeline_assembly)
    names = [stage["Name"] for stage in stages]
    # Source, build, self-mutation and asset publishing come first, then one stage per wave. CDK
    # Pipelines names a wave of one region after that region's stage.
    waves = names[names.index("Assets") + 1:]
    assert waves == ["Deploy-us-east-2", "Wave2-us-east-1-us-west-2", "Deploy-eu-central-1"]

    last_wave = stages[-1]
    first_action = min(last_wave["Actions"], key=lambda action: action["RunOrder"])
    assert first_action["ActionTypeId"]["Category"] == "Approval"
    assert first_action["Name"] == "ApproveLastWave"
    for wave in stages[-3:-1]:
        assert all(action["ActionTypeId"]["Category"] != "Approval" for action in wave["Actions"])


@pytest.mark.parametrize("region", REGIONS)
def test_each_region_deploys_then_smoke_then_bake(pipeline_assembly: Path, region: str) -> None:
    stages = _pipeline_stages(pipeline_assembly)
    (stage,) = [stage for stage in stages if any(region in name for name in _action_names(stage))]
    actions = {action["Name"]: action for action in stage["Actions"] if region in action["Name"]}
    (deploy,) = [action for action in actions.values()
                 if action["Configuration"].get("ActionMode") == "CHANGE_SET_EXECUTE"]
    smoke = next(action for name, action in actions.items() if f"SmokeTest-{region}" in name)
    bake = next(action for name, action in actions.items() if f"AlarmBake-{region}" in name)

    assert deploy["Configuration"]["StackName"] == f"GemmaBatch-{region}"
    # An action without Region runs in the pipeline's own region, the canary's by default.
    assert deploy.get("Region", PIPELINE_SETTINGS["waves"][0][0]) == region
    assert deploy["RunOrder"] < smoke["RunOrder"] < bake["RunOrder"]
    smoke_variables = json.dumps(smoke["Configuration"]["EnvironmentVariables"])
    assert "JOB_QUEUE_URL" in smoke_variables
    assert "RESULTS_BUCKET" in smoke_variables
    assert "BAKE_ALARM_NAMES" in json.dumps(bake["Configuration"]["EnvironmentVariables"])


@pytest.mark.parametrize("region", REGIONS)
def test_rollout_roles_get_exactly_their_actions(pipeline_assembly: Path, region: str) -> None:
    # GIVEN the region's stack inside its stage
    stage_dir = pipeline_assembly / f"assembly-{PIPELINE_STACK}-Deploy-{region}"
    (template_path,) = stage_dir.glob("*.template.json")
    template = json.loads(template_path.read_text())
    policies = {logical_id: resource["Properties"] for logical_id, resource in template["Resources"].items()
                if resource["Type"] == "AWS::IAM::Policy" and logical_id.startswith("RolloutChecks")}

    # THEN the smoke role may submit, find and read smoke jobs only, and the bake role may read three alarms
    smoke = next(policy for logical_id, policy in policies.items() if "Smoke" in logical_id)
    bake = next(policy for logical_id, policy in policies.items() if "Bake" in logical_id)
    assert smoke["Roles"] == [f"GemmaBatch-rollout-smoke-{region}"]
    assert bake["Roles"] == [f"GemmaBatch-rollout-bake-{region}"]
    smoke_actions = {statement["Sid"]: statement["Action"] for statement in smoke["PolicyDocument"]["Statement"]}
    assert smoke_actions == {
        "SubmitSmokeJob": "sqs:SendMessage",
        "ReadSmokeResult": "s3:GetObject",
        "FindSmokeResult": "s3:ListBucket",
        "UseDataKey": ["kms:Decrypt", "kms:GenerateDataKey"],
    }
    assert "rollout-smoke-*" in json.dumps(smoke["PolicyDocument"])
    (bake_statement,) = bake["PolicyDocument"]["Statement"]
    assert bake_statement["Action"] == "cloudwatch:DescribeAlarms"
    assert len(bake_statement["Resource"]) == 3


def test_pipeline_requires_explicit_account(tmp_path: Path) -> None:
    # WHEN the pipeline is on without an account in config
    completed = run_cdk_synth(tmp_path / "out", f"pipeline={json.dumps(PIPELINE_SETTINGS)}", "bundling=false")
    # THEN synth stops with the error that names the fix
    assert completed.returncode != 0
    assert "pipeline.enabled=true needs an explicit account" in completed.stderr


VIOLATING_APP = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {repo_root!r})
    from aws_cdk import App
    from aws_cdk import aws_cloudwatch as cloudwatch
    import stacks.pipeline
    from app import build_app

    # CDK Pipelines synthesizes each stage when the pipeline adds it, so the violation goes in while
    # the stage is built: an alarm that notifies nobody, in us-east-1's regional stack.
    build_rollout_access = stacks.pipeline.RolloutCheckAccess.__init__

    def build_rollout_access_and_violation(self, stack, construct_id):
        build_rollout_access(self, stack, construct_id)
        if stack.region == "us-east-1":
            cloudwatch.Alarm(stack, "DeliberatelySilentAlarm", threshold=1, evaluation_periods=1,
                             metric=cloudwatch.Metric(namespace="GemmaBatchTest", metric_name="Silent"))

    stacks.pipeline.RolloutCheckAccess.__init__ = build_rollout_access_and_violation
    app = App()
    build_app(app)
    app.synth()
    """
)


def test_violation_inside_stage_fails_synth(tmp_path: Path) -> None:
    # GIVEN the pipeline app with an alarm without actions added to one stage's stack
    app_file = tmp_path / "violating_app.py"
    app_file.write_text(VIOLATING_APP.format(repo_root=str(REPO_ROOT)))
    command = [str(REPO_ROOT / "node_modules" / ".bin" / "cdk"), "synth", "--quiet", "--app",
               f"{sys.executable} {app_file}", "--output", str(tmp_path / "out")]
    # One region in one wave keeps this third synth of the pipeline short.
    one_region_pipeline = PIPELINE_SETTINGS | {"waves": [["us-east-1"]], "manual_approval": False}
    context = (ALL_NAG_PACKS, f"account={PIPELINE_ACCOUNT}", f"pipeline={json.dumps(one_region_pipeline)}",
               "regions=us-east-1", "bundling=false")
    for item in context:
        command += ["--context", item]
    # WHEN the real CDK CLI synthesizes it
    completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    # THEN synth fails on the project rule, at the construct inside the stage
    output = completed.stdout + completed.stderr
    assert completed.returncode != 0
    assert "GemmaBatch-AlarmHasAction" in output
    assert "Deploy-us-east-1/GemmaBatch-us-east-1/DeliberatelySilentAlarm" in output
