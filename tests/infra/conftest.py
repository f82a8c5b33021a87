"""Fixtures for template tests: the app is synthesized once per test run, with real bundling."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CDK = REPO_ROOT / "node_modules" / ".bin" / "cdk"
REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-central-1")


def shared_temp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a folder shared by all xdist workers of this run and by no other run."""
    base = tmp_path_factory.getbasetemp()
    # Under xdist each worker gets basetemp/popen-gwN, whose parent belongs to this run alone. Without
    # xdist the parent is shared with earlier runs, so the run's own basetemp is used.
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def run_cdk_synth(output_dir: Path, *context: str) -> subprocess.CompletedProcess[str]:
    """Run the real CDK CLI; ``context`` items are ``key=value`` strings passed with ``-c``."""
    command = [str(CDK), "synth", "--quiet", "--output", str(output_dir)]
    for item in context:
        command += ["--context", item]
    environment = {key: value for key, value in os.environ.items() if key != "CDK_DEFAULT_ACCOUNT"}
    return subprocess.run(command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, check=False)


@pytest.fixture(scope="session")
def cloud_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthesize the default configuration once, shared by all xdist workers of this run."""
    shared_dir = shared_temp_dir(tmp_path_factory)
    output_dir = shared_dir / "cdk.out"
    done_marker = shared_dir / "cdk.out.done"
    with open(shared_dir / "cdk.out.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done_marker.exists():
            completed = run_cdk_synth(output_dir)
            if completed.returncode != 0:
                pytest.fail(f"cdk synth failed:\n{completed.stdout}\n{completed.stderr}")
            done_marker.write_text("ok")
    return output_dir


@pytest.fixture(scope="session")
def templates(cloud_assembly: Path) -> dict[str, dict]:
    """The four synthesized templates, keyed by region."""
    return {
        region: json.loads((cloud_assembly / f"GemmaBatch-{region}.template.json").read_text()) for region in REGIONS
    }


LONG_TERM_KEY_REGION = "us-east-1"


@pytest.fixture(scope="session")
def long_term_key_template(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The template of one region with long_term_api_key on, synthesized once per run without bundling."""
    shared_dir = shared_temp_dir(tmp_path_factory)
    output_dir = shared_dir / "cdk.out.long-term-key"
    done_marker = shared_dir / "cdk.out.long-term-key.done"
    with open(shared_dir / "cdk.out.long-term-key.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done_marker.exists():
            completed = run_cdk_synth(
                output_dir, "long_term_api_key=true", f"regions={LONG_TERM_KEY_REGION}", "bundling=false"
            )
            if completed.returncode != 0:
                pytest.fail(f"cdk synth with long_term_api_key=true failed:\n{completed.stdout}\n{completed.stderr}")
            done_marker.write_text("ok")
    return json.loads((output_dir / f"GemmaBatch-{LONG_TERM_KEY_REGION}.template.json").read_text())


def resources_of_type(template: dict, resource_type: str) -> dict[str, dict]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def single_resource(template: dict, resource_type: str, logical_id_prefix: str = "") -> tuple[str, dict]:
    matches = {
        logical_id: resource
        for logical_id, resource in resources_of_type(template, resource_type).items()
        if logical_id.startswith(logical_id_prefix)
    }
    assert len(matches) == 1, f"expected one {resource_type} starting with {logical_id_prefix!r}, found {list(matches)}"
    return next(iter(matches.items()))


# Every cdk-nag pack on, as `make review` synthesizes; bundling off, because nag reads no asset.
ALL_NAG_PACKS = "nag_packs=NIST80053R5,HIPAASecurity"
PIPELINE_ACCOUNT = "123456789012"
PIPELINE_SETTINGS = {
    "enabled": True,
    "connection_arn": f"arn:aws:codeconnections:us-east-2:{PIPELINE_ACCOUNT}:connection/0a1b2c3d-4e5f-6789-abcd-ef0123456789",
    "repository": "example-org/gemma-batch",
    "branch": "main",
    "waves": [["us-east-2"], ["us-east-1", "us-west-2"], ["eu-central-1"]],
    "bake_minutes": 30,
    "manual_approval": True,
}
PIPELINE_CONTEXT = (ALL_NAG_PACKS, f"account={PIPELINE_ACCOUNT}", f"pipeline={json.dumps(PIPELINE_SETTINGS)}")


def synthesize_once(tmp_path_factory: pytest.TempPathFactory, name: str, *context: str) -> Path:
    """Synthesize into a folder named ``name`` once per test run, shared by all xdist workers."""
    shared_dir = shared_temp_dir(tmp_path_factory)
    output_dir = shared_dir / name
    done_marker = shared_dir / f"{name}.done"
    with open(shared_dir / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done_marker.exists():
            completed = run_cdk_synth(output_dir, *context)
            if completed.returncode != 0:
                pytest.fail(f"cdk synth {' '.join(context)} failed:\n{completed.stdout}\n{completed.stderr}")
            done_marker.write_text("ok")
    return output_dir


@pytest.fixture(scope="session")
def all_packs_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default configuration synthesized with every cdk-nag pack on."""
    return synthesize_once(tmp_path_factory, "cdk.out.all-packs", ALL_NAG_PACKS, "bundling=false")


@pytest.fixture(scope="session")
def pipeline_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pipeline configuration (three waves, canary us-east-2) synthesized with every cdk-nag pack on."""
    return synthesize_once(tmp_path_factory, "cdk.out.pipeline", *PIPELINE_CONTEXT, "bundling=false")


JOB_INPUTS_REGION = "us-west-2"
JOB_INPUTS_CONTEXT = (
    f"regions={JOB_INPUTS_REGION}",
    "input_bucket_name=team-job-images",
    "allow_standard_tier_escalation=true",
    'reasoning_effort_by_model={"google.gemma-4-31b": "medium"}',
    "alarm_email=ops@example.com",
    "operator_trusted_principals=arn:aws:iam::111122223333:role/PlatformOps",
    f'region_overrides={{"{JOB_INPUTS_REGION}": {{"worker_pool_size": 50}}}}',
    "bundling=false",
)


@pytest.fixture(scope="session")
def job_inputs_template(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One region with non-default settings (own input bucket, tier escalation, alarm e-mail, operator
    principals, a pool-size override), synthesized once."""
    output_dir = synthesize_once(tmp_path_factory, "cdk.out.job-inputs", *JOB_INPUTS_CONTEXT)
    return json.loads((output_dir / f"GemmaBatch-{JOB_INPUTS_REGION}.template.json").read_text())


def ref_id(value: dict) -> str:
    """Return the logical id behind a Ref or Fn::GetAtt."""
    return value["Ref"] if "Ref" in value else value["Fn::GetAtt"][0]


def actions_of(statement: dict) -> set[str]:
    actions = statement["Action"]
    return {actions} if isinstance(actions, str) else set(actions)


def role_statements(template: dict, role_id: str) -> list[dict]:
    """Return the statements of every AWS::IAM::Policy attached to the role ``role_id``."""
    statements = []
    for policy in resources_of_type(template, "AWS::IAM::Policy").values():
        if any(role.get("Ref") == role_id for role in policy["Properties"]["Roles"]):
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements

