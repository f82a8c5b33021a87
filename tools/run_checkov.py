"""Run checkov on a cloud assembly's templates with the settings and skips in .checkov.yaml.

checkov is installed in its own virtualenv (``.venv-review``, from requirements-review.txt),
because its pinned dependencies conflict with the project's. The runner sets checkov's
environment switches that stop it from contacting Prisma Cloud or PyPI, so the review stays
offline. It reads each skip's reason from the comment lines above it in .checkov.yaml and fails
when a skip has none.

Usage: python tools/run_checkov.py CDK_OUT [--json FILE] [--checkov PATH]
Exit status: 0 with no failed check, 1 with failed checks or a skip without a reason, 2 when
checkov is missing or does not run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = REPO_ROOT / ".checkov.yaml"
DEFAULT_CHECKOV = REPO_ROOT / ".venv-review" / "bin" / "checkov"
# checkov's switches for no guideline download (BC_SKIP_MAPPING) and no version check on PyPI.
OFFLINE_ENVIRONMENT = {"BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}
CHECK_ID = re.compile(r"^\s*-\s*(CKV2?_[A-Z0-9_]+)\s*$")
COMMENT = re.compile(r"^\s*#\s?(.*)$")


@dataclass
class CheckovReport:
    """checkov's totals over all templates, its failed checks, and the skips with their reasons."""

    passed: int = 0
    failed: list[dict] = field(default_factory=list)
    skips: dict[str, str] = field(default_factory=dict)
    resource_count: int = 0


def skip_reasons(config_text: str) -> dict[str, str]:
    """Return each skipped check id with the comment lines right above it, joined; '' when there are none."""
    reasons: dict[str, str] = {}
    comment: list[str] = []
    in_skips = False
    for line in config_text.splitlines():
        if line.startswith("skip-check:"):
            in_skips = True
            comment = []
            continue
        if in_skips and line and not line.startswith((" ", "\t")):
            in_skips = False
        if not in_skips:
            continue
        comment_match = COMMENT.match(line)
        check_match = CHECK_ID.match(line)
        if comment_match:
            comment.append(comment_match.group(1).strip())
        elif check_match:
            reasons[check_match.group(1)] = " ".join(comment).strip()
            comment = []
    return reasons


def run_checkov(cdk_out: Path, checkov: Path = DEFAULT_CHECKOV) -> CheckovReport:
    """Run checkov over every template under ``cdk_out`` and collect the results."""
    if not checkov.exists():
        raise FileNotFoundError(f"checkov is not installed at {checkov}; run `make review`, which installs it")
    command = [str(checkov), "--config-file", str(CONFIG_FILE), "--directory", str(cdk_out), "--output", "json"]
    environment = {**os.environ, **OFFLINE_ENVIRONMENT}
    completed = subprocess.run(command, capture_output=True, text=True, check=False, env=environment)
    # checkov exits 1 when a check fails; anything else without JSON output means it did not run.
    try:
        documents = json.loads(completed.stdout)
    except ValueError:
        raise RuntimeError(f"checkov did not run (exit {completed.returncode}):\n{completed.stderr[-2000:]}") from None
    report = CheckovReport(skips=skip_reasons(CONFIG_FILE.read_text()))
    for document in documents if isinstance(documents, list) else [documents]:
        if not isinstance(document, dict) or "results" not in document:
            continue  # checkov prints a bare summary for a framework that found nothing to check
        report.passed += document["summary"]["passed"]
        report.resource_count += document["summary"]["resource_count"]
        for check in document["results"]["failed_checks"]:
            report.failed.append({
                "check_id": check["check_id"],
                "check_name": check["check_name"],
                "resource": check["resource"],
                "file": str(Path(check["file_path"]).relative_to("/")) if check["file_path"].startswith("/")
                else check["file_path"],
            })
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Run checkov on the templates of a cloud assembly.")
    parser.add_argument("cdk_out", type=Path, help="cloud assembly folder, such as cdk.out")
    parser.add_argument("--json", type=Path, help="also write the result to this JSON file")
    parser.add_argument("--checkov", type=Path, default=DEFAULT_CHECKOV, help="checkov executable")
    arguments = parser.parse_args(argv)
    try:
        report = run_checkov(arguments.cdk_out, arguments.checkov)
    except (FileNotFoundError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    if arguments.json:
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        arguments.json.write_text(json.dumps(asdict(report), indent=2))
    print(f"checkov: {report.passed} passed, {len(report.failed)} failed, {len(report.skips)} checks skipped "
          f"({report.resource_count} resources)")
    for check in report.failed:
        print(f"failed: {check['check_id']} {check['check_name']} on {check['resource']} in {check['file']}")
    unexplained = [check_id for check_id, reason in report.skips.items() if not reason]
    for check_id in unexplained:
        print(f"error: .checkov.yaml skips {check_id} without a reason; add the reason as a comment above it")
    return 1 if report.failed or unexplained else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
