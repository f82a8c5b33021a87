"""The cdk-nag review and cfn-lint: zero unacknowledged findings, and acknowledgements a reviewer can read."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.conftest import REGIONS, REPO_ROOT

pytestmark = pytest.mark.xdist_group("synth")

# One rule id, optionally followed by the one finding it names in brackets.
ACKNOWLEDGEMENT_ID = re.compile(
    r"^Annotation::(AwsSolutions|Serverless|GemmaBatch|NIST\.800\.53\.R5|HIPAA\.Security)-[A-Za-z0-9]+(\[[^\[\]]+\])?$"
)
DEFAULT_PACKS = ("AwsSolutions", "Serverless", "GemmaBatch")


def _acknowledgements(cloud_assembly: Path, region: str) -> dict[str, str]:
    metadata = json.loads((cloud_assembly / f"GemmaBatch-{region}.metadata.json").read_text())
    found = {}
    for path, entries in metadata.items():
        for entry in entries:
            if entry["type"] == "aws:cdk:acknowledged-rules":
                for rule, reason in entry["data"].items():
                    found[f"{path} {rule}"] = reason
    return found


def test_validation_report_has_no_findings(cloud_assembly: Path) -> None:
    report = json.loads((cloud_assembly / "validation-report.json").read_text())
    assert report["pluginReports"] == []


@pytest.mark.parametrize("region", REGIONS)
def test_acknowledgements_name_one_finding_with_reason(cloud_assembly: Path, region: str) -> None:
    acknowledgements = _acknowledgements(cloud_assembly, region)
    assert len(acknowledgements) >= 10
    for key, reason in acknowledgements.items():
        rule = key.split(" ", 1)[1]
        assert ACKNOWLEDGEMENT_ID.match(rule), f"{key} does not name exactly one rule and finding"
        assert len(reason) >= 60, f"{key} needs a reason a security reviewer would accept"


def test_review_summary_lists_packs_and_acknowledgements(cloud_assembly: Path, tmp_path: Path) -> None:
    # GIVEN a copy of the synthesized assembly
    subprocess.run(["cp", "-r", str(cloud_assembly), str(tmp_path / "assembly")], check=True)
    # WHEN the review summary is written
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tools" / "review_summary.py"), str(tmp_path / "assembly")],
        capture_output=True, text=True, check=False,
    )
    # THEN each stack's summary names the packs, zero findings and every acknowledgement
    assert completed.returncode == 0, completed.stderr
    for region in REGIONS:
        summary = (tmp_path / "assembly" / "review" / f"GemmaBatch-{region}.md").read_text()
        assert f"Rule packs that ran: {', '.join(DEFAULT_PACKS)}" in summary
        assert "Findings left unacknowledged: 0" in summary
        for key in _acknowledgements(cloud_assembly, region):
            rule = key.split(" ", 1)[1].removeprefix("Annotation::")
            if rule.split("-", 1)[0] in DEFAULT_PACKS:
                assert f"`{rule}`" in summary


def test_cfn_lint_reports_nothing(cloud_assembly: Path) -> None:
    templates = [str(cloud_assembly / f"GemmaBatch-{region}.template.json") for region in REGIONS]
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--config-file", str(REPO_ROOT / ".cfnlintrc.yaml"), "--", *templates],
        capture_output=True, text=True, check=False, cwd=REPO_ROOT,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout.strip() == ""
