"""How the benchmarks find the worker's asset in a synthesized assembly and size it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.harness import BenchmarkError, directory_size_bytes, find_worker_asset


def write_assembly(root: Path, functions: dict[str, str]) -> None:
    """Write a template whose functions (logical id -> asset hash) reference their code by S3 key."""
    resources = {
        logical_id: {"Type": "AWS::Lambda::Function", "Properties": {"Code": {"S3Key": f"{asset_hash}.zip"}}}
        for logical_id, asset_hash in functions.items()
    }
    resources["Queue"] = {"Type": "AWS::SQS::Queue", "Properties": {}}
    (root / "GemmaBatch-us-east-1.template.json").write_text(json.dumps({"Resources": resources}))


def write_asset(root: Path, asset_hash: str, package: str, size: int) -> Path:
    folder = root / f"asset.{asset_hash}" / package
    folder.mkdir(parents=True)
    (folder / "handler.py").write_bytes(b"x" * size)
    return folder.parent


def test_worker_asset_is_the_referenced_one(tmp_path):
    # GIVEN an assembly whose template references a worker and a rotation asset, plus a stale worker asset
    write_assembly(tmp_path, {"WorkerPoolWorker": "aaa", "ApiKeyRotation": "bbb"})
    worker = write_asset(tmp_path, "aaa", "worker", size=300)
    write_asset(tmp_path, "bbb", "key_rotation", size=200)
    write_asset(tmp_path, "old", "worker", size=100)

    # WHEN the worker asset is looked up
    found = find_worker_asset(tmp_path)

    # THEN it is the referenced folder with worker/handler.py, and its size counts its files
    assert found == worker
    assert directory_size_bytes(found) == 300


def test_missing_worker_asset_names_fix(tmp_path):
    # GIVEN an assembly synthesized without bundling, whose worker folder is not staged
    write_assembly(tmp_path, {"WorkerPoolWorker": "aaa"})

    # WHEN the worker asset is looked up
    # THEN the error names what was expected and how to get it
    with pytest.raises(BenchmarkError, match="found 0; synthesize with bundling on"):
        find_worker_asset(tmp_path)
