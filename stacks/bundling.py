"""Lambda code assets bundled on this machine, without Docker.

Each function is a package under ``lambda/`` with its own ``requirements.txt``. The bundler
copies the function's package and the shared packages it names, then installs the
requirements as wheels for the function's architecture and Python version, so one runtime
object decides both the function's runtime and the wheels' ABI. Packages the Lambda Python
runtime already ships (boto3, botocore, s3transfer) are removed from the asset, and no
``.pyc`` file is written.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import jsii
from aws_cdk import BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

LAMBDA_ROOT = Path(__file__).resolve().parent.parent / "lambda"

# Shipped by the Lambda Python runtimes; keeping them out saves about 32 MB per asset.
RUNTIME_PROVIDED_PACKAGES = ("boto3", "botocore", "s3transfer")

_PLATFORMS = {
    "arm64": "manylinux2014_aarch64",
    "x86_64": "manylinux2014_x86_64",
}


class BundlingError(RuntimeError):
    """Raised when a function's dependencies cannot be installed for its runtime."""


def python_version_of(runtime: lambda_.Runtime) -> str:
    """Return the pip ``--python-version`` for a Lambda runtime, e.g. ``3.14`` for python3.14."""
    name = runtime.name
    if not name.startswith("python"):
        raise BundlingError(f"runtime {name!r} is not a Python runtime")
    return name.removeprefix("python")


def _remove_runtime_provided(target: Path) -> None:
    for package in RUNTIME_PROVIDED_PACKAGES:
        shutil.rmtree(target / package, ignore_errors=True)
        for dist_info in target.glob(f"{package}-*.dist-info"):
            shutil.rmtree(dist_info, ignore_errors=True)
    # Console scripts of the dependencies are never run inside Lambda.
    shutil.rmtree(target / "bin", ignore_errors=True)


def _copy_package(source: Path, target: Path) -> None:
    shutil.copytree(
        source,
        target / source.name,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "requirements.txt"),
    )


@jsii.implements(ILocalBundling)
class LocalPythonBundler:
    """Install a function's requirements for its platform with pip, then copy its packages."""

    def __init__(self, function_package: str, shared_packages: tuple[str, ...], runtime: lambda_.Runtime,
                 architecture: lambda_.Architecture) -> None:
        self._function_package = function_package
        self._shared_packages = shared_packages
        self._python_version = python_version_of(runtime)
        self._platform = _PLATFORMS[architecture.name]

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: object) -> bool:
        target = Path(output_dir)
        requirements = LAMBDA_ROOT / self._function_package / "requirements.txt"
        command = [
            sys.executable, "-m", "pip", "install",
            "--requirement", str(requirements),
            "--target", str(target),
            "--platform", self._platform,
            "--implementation", "cp",
            "--python-version", self._python_version,
            "--only-binary=:all:",
            "--no-compile",
            "--disable-pip-version-check",
            "--quiet",
        ]
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            raise BundlingError(
                f"pip could not install {requirements} for Python {self._python_version} on {self._platform}:\n"
                f"{completed.stderr.strip()}\nCheck that every requirement publishes a wheel for that platform."
            )
        _remove_runtime_provided(target)
        for package in (self._function_package, *self._shared_packages):
            _copy_package(LAMBDA_ROOT / package, target)
        return True


def function_code(function_package: str, shared_packages: tuple[str, ...], runtime: lambda_.Runtime,
                  architecture: lambda_.Architecture, bundle: bool) -> lambda_.Code:
    """Return the code asset for ``lambda/<function_package>``.

    With ``bundle`` off (the ``bundling=false`` context, for fast template tests), the asset is
    the source folder alone, without dependencies.
    """
    packages = (function_package, *shared_packages)
    # Only the function's own packages take part in the asset hash, so changing one function
    # does not redeploy the other.
    exclude = [
        entry.name for entry in LAMBDA_ROOT.iterdir() if entry.is_dir() and entry.name not in packages
    ] + ["**/__pycache__", "*.pyc"]
    if not bundle:
        return lambda_.Code.from_asset(str(LAMBDA_ROOT), exclude=exclude)
    return lambda_.Code.from_asset(
        str(LAMBDA_ROOT),
        exclude=exclude,
        bundling=BundlingOptions(
            image=runtime.bundling_image,
            local=LocalPythonBundler(function_package, shared_packages, runtime, architecture),
        ),
    )
