"""The bundled function assets: built for arm64 and the function's Python, without boto3 or bytecode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.infra.conftest import resources_of_type

pytestmark = pytest.mark.xdist_group("synth")

RUNTIME_ABI_TAG = "cpython-314-aarch64-linux-gnu"
MAX_WORKER_ASSET_BYTES = 40 * 1024 * 1024


def _asset_dir(cloud_assembly: Path, template: dict, logical_id_prefix: str) -> Path:
    functions = {k: v for k, v in resources_of_type(template, "AWS::Lambda::Function").items() if k.startswith(logical_id_prefix)}
    (function,) = functions.values()
    object_key = function["Properties"]["Code"]["S3Key"]
    return cloud_assembly / f"asset.{object_key.removesuffix('.zip')}"


@pytest.fixture(scope="module")
def asset_dirs(cloud_assembly: Path) -> dict[str, Path]:
    template = json.loads((cloud_assembly / "GemmaBatch-us-east-1.template.json").read_text())
    return {
        "worker": _asset_dir(cloud_assembly, template, "WorkerPoolWorker"),
        "key_rotation": _asset_dir(cloud_assembly, template, "ApiKeyRotation"),
    }


@pytest.mark.parametrize("package", ["worker", "key_rotation"])
def test_asset_built_for_runtime_abi(asset_dirs: dict[str, Path], package: str) -> None:
    asset = asset_dirs[package]
    assert (asset / package / "handler.py").is_file()
    assert (asset / "bedrock_key" / "secret_value.py").is_file()
    extensions = list(asset.rglob("*.so"))
    for extension in extensions:
        assert RUNTIME_ABI_TAG in extension.name, f"{extension} is not built for {RUNTIME_ABI_TAG}"


def test_worker_asset_has_compiled_dependencies(asset_dirs: dict[str, Path]) -> None:
    # openai depends on pydantic-core, so the worker asset carries at least one extension to check.
    assert list(asset_dirs["worker"].rglob(f"_pydantic_core.{RUNTIME_ABI_TAG}.so"))


@pytest.mark.parametrize("package", ["worker", "key_rotation"])
def test_asset_has_no_runtime_packages_or_bytecode(asset_dirs: dict[str, Path], package: str) -> None:
    asset = asset_dirs[package]
    for provided in ("boto3", "botocore", "s3transfer"):
        assert not (asset / provided).exists(), f"{provided}/ is shipped by the runtime and must not be bundled"
    assert list(asset.rglob("*.pyc")) == []
    assert list(asset.rglob("__pycache__")) == []
    assert not (asset / "requirements.txt").exists()


def test_worker_asset_holds_only_its_packages(asset_dirs: dict[str, Path]) -> None:
    asset = asset_dirs["worker"]
    assert not (asset / "key_rotation").exists()
    size = sum(path.stat().st_size for path in asset.rglob("*") if path.is_file())
    assert size < MAX_WORKER_ASSET_BYTES
