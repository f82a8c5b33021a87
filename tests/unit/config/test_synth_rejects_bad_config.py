"""A bad configuration value stops the real `cdk synth` with the error that names it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
CDK = REPO_ROOT / "node_modules" / ".bin" / "cdk"


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ("regions=us-east-1,ap-northeast-1", "regions=\"us-east-1,ap-northeast-1\" is invalid: contains ap-northeast-1"),
        ("worker_pool_size=1", "worker_pool_size=\"1\" is invalid: must be a whole number from 2 to 1000"),
        ("model_id=google.gemma-4-9b", "model_id=\"google.gemma-4-9b\" is invalid: must be one of: google.gemma-4-31b"),
    ],
)
def test_synth_stops_on_bad_value(tmp_path: Path, context: str, expected: str) -> None:
    # WHEN the real CDK CLI synthesizes with one bad value
    completed = subprocess.run(
        [str(CDK), "synth", "--quiet", "--output", str(tmp_path / "out"), "--context", context,
         "--context", "bundling=false"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )
    # THEN synth fails, writes no template, and the error names the key, the value and what is allowed
    assert completed.returncode != 0
    assert expected in completed.stderr
    assert not list((tmp_path / "out").glob("*.template.json"))
