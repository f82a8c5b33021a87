"""scripts/deploy_regions.sh with a stand-in CDK CLI that records its calls and fails on one stack."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
SCRIPT = REPO_ROOT / "scripts" / "deploy_regions.sh"
FAKE_CDK = """#!/usr/bin/env bash
echo "$*" >> "$CDK_CALLS"
[[ " $* " == *" GemmaBatch-${FAIL_REGION:-none} "* ]] && exit 1
exit 0
"""


def _run(tmp_path: Path, *arguments: str, fail_region: str = "none") -> tuple[subprocess.CompletedProcess[str], list[str]]:
    fake_cdk = tmp_path / "cdk"
    fake_cdk.write_text(FAKE_CDK)
    fake_cdk.chmod(0o755)
    calls = tmp_path / "calls.txt"
    environment = {**os.environ, "CDK": str(fake_cdk), "CDK_CALLS": str(calls), "FAIL_REGION": fail_region,
                   "ACCOUNT": "123456789012", "PYTHON": str(REPO_ROOT / ".venv" / "bin" / "python")}
    completed = subprocess.run(["bash", str(SCRIPT), *arguments], capture_output=True, text=True, env=environment,
                               check=False)
    return completed, calls.read_text().splitlines() if calls.exists() else []


def test_deploy_all_follows_cdk_json_order(tmp_path: Path) -> None:
    completed, calls = _run(tmp_path, "deploy-all")
    assert completed.returncode == 0, completed.stderr
    assert calls == [f"deploy GemmaBatch-{region}" for region in ("us-east-1", "us-east-2", "us-west-2", "eu-central-1")]
    assert "deployed: us-east-1 us-east-2 us-west-2 eu-central-1" in completed.stdout


def test_deploy_all_stops_at_first_failure(tmp_path: Path) -> None:
    # WHEN the third region's deploy fails
    completed, calls = _run(tmp_path, "deploy-all", "--", "--require-approval", "never", fail_region="us-west-2")
    # THEN the last region is never deployed, and the error names what was and was not deployed
    assert completed.returncode == 1
    assert calls == [f"deploy GemmaBatch-{region} --require-approval never"
                     for region in ("us-east-1", "us-east-2", "us-west-2")]
    assert "deploying GemmaBatch-us-west-2 failed; stopped before: eu-central-1" in completed.stderr
    assert "deployed: us-east-1 us-east-2" in completed.stderr


def test_bootstrap_each_named_region(tmp_path: Path) -> None:
    completed, calls = _run(tmp_path, "bootstrap", "us-west-2", "eu-central-1")
    assert completed.returncode == 0, completed.stderr
    assert calls == ["bootstrap aws://123456789012/us-west-2", "bootstrap aws://123456789012/eu-central-1"]


@pytest.mark.parametrize("command", ["diff", "deploy"])
def test_one_region_commands(tmp_path: Path, command: str) -> None:
    completed, calls = _run(tmp_path, command, "us-west-2")
    assert completed.returncode == 0, completed.stderr
    assert calls == [f"{command} GemmaBatch-us-west-2"]


def test_diff_without_region_is_rejected(tmp_path: Path) -> None:
    completed, calls = _run(tmp_path, "diff")
    assert completed.returncode == 2
    assert "diff takes exactly one region, e.g. diff us-west-2" in completed.stderr
    assert calls == []
