"""Which cdk-nag packs and project rules run, and the review with every pack on: zero findings, one report per region."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stacks.rules.gemma_batch_checks import PACK_NAME, PROJECT_RULES
from tests.infra.conftest import REGIONS, REPO_ROOT

pytestmark = pytest.mark.xdist_group("synth")

DEFAULT_PACKS = ["AwsSolutions", "Serverless", "GemmaBatch"]
ALL_PACKS = [*DEFAULT_PACKS, "NIST.800.53.R5", "HIPAA.Security"]
PROJECT_RULE_IDS = ["QueueVisibilityTimeout", "AlarmHasAction", "TopicKeyAllowsCloudWatch", "NoWildcardActions"]


def _packs_recorded(assembly: Path, stack: str) -> list[str]:
    metadata = json.loads((assembly / f"{stack}.metadata.json").read_text())
    recorded = [entry["data"] for entries in metadata.values() for entry in entries
                if entry["type"] == "gemma-batch:nag-rule-packs"]
    assert len(recorded) == 1, f"{stack} records its packs {len(recorded)} times"
    return recorded[0]


def test_default_synth_runs_base_packs(cloud_assembly: Path) -> None:
    for region in REGIONS:
        assert _packs_recorded(cloud_assembly, f"GemmaBatch-{region}") == DEFAULT_PACKS


def test_nag_packs_setting_adds_nist_and_hipaa(all_packs_assembly: Path) -> None:
    for region in REGIONS:
        assert _packs_recorded(all_packs_assembly, f"GemmaBatch-{region}") == ALL_PACKS


def test_project_pack_has_exactly_four_rules() -> None:
    assert PACK_NAME == "GemmaBatch"
    assert [rule.rule_id for rule in PROJECT_RULES] == PROJECT_RULE_IDS


def test_every_pack_leaves_no_finding(all_packs_assembly: Path) -> None:
    report = json.loads((all_packs_assembly / "validation-report.json").read_text())
    assert report["pluginReports"] == []


def test_review_report_per_region_with_every_pack(all_packs_assembly: Path, tmp_path: Path) -> None:
    # GIVEN a copy of the assembly synthesized with every pack on
    assembly = tmp_path / "assembly"
    subprocess.run(["cp", "-r", str(all_packs_assembly), str(assembly)], check=True)
    # WHEN the review report is written
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tools" / "review_summary.py"), str(assembly)],
        capture_output=True, text=True, check=False,
    )
    # THEN each region's report lists all five packs, zero findings and a table per pack
    assert completed.returncode == 0, completed.stderr
    for region in REGIONS:
        report = (assembly / "review" / f"GemmaBatch-{region}.md").read_text()
        assert f"Rule packs that ran: {', '.join(ALL_PACKS)}" in report
        assert "Findings left unacknowledged: 0" in report
        assert "packs that did not run" not in report
        for pack in ALL_PACKS:
            assert f"### {pack} (" in report
        assert "`NIST.800.53.R5-LambdaInsideVPC`" in report
