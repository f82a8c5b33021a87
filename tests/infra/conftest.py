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
    shared_dir = tmp_path_factory.getbasetemp().parent
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
