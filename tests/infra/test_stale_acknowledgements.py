"""Every acknowledgement matches a finding, and the audit that proves it reports one that does not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_sqs as sqs
from cdk_nag import AwsSolutionsChecks

from stacks.nag import IGNORE_ACKNOWLEDGEMENTS_CONTEXT_KEY, acknowledge
from tests.infra.conftest import PIPELINE_CONTEXT, REPO_ROOT
from tools.stale_acknowledgements import find_stale_acknowledgements

pytestmark = pytest.mark.xdist_group("synth")


def test_no_acknowledgement_is_stale(tmp_path: Path) -> None:
    # WHEN the audit runs on the pipeline configuration with every pack on, which contains every
    # acknowledgement the app makes: the regional stacks, their rollout access and the pipeline
    result_file = tmp_path / "stale.json"
    command = [sys.executable, str(REPO_ROOT / "tools" / "stale_acknowledgements.py"), "--json", str(result_file)]
    for item in PIPELINE_CONTEXT:
        command += ["-c", item]
    completed = subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPO_ROOT)
    # THEN every acknowledgement of every pack matches a finding
    assert completed.returncode == 0, completed.stdout + completed.stderr
    result = json.loads(result_file.read_text())
    assert result["stale"] == []
    assert result["unchecked_packs"] == []
    assert result["checked"] > 100


def test_audit_reports_acknowledgement_without_finding(tmp_path: Path) -> None:
    # GIVEN an app whose acknowledgements are recorded, not applied, and two queues without a
    # dead-letter queue: one acknowledged for that (a real finding), one for SSL (a finding
    # it does not have, because enforce_ssl is on)
    app = App(context={IGNORE_ACKNOWLEDGEMENTS_CONTEXT_KEY: True}, outdir=str(tmp_path))
    stack = Stack(app, "AuditTest")
    matching = sqs.Queue(stack, "Matching", enforce_ssl=True, encryption=sqs.QueueEncryption.SQS_MANAGED)
    stale = sqs.Queue(stack, "Stale", enforce_ssl=True, encryption=sqs.QueueEncryption.SQS_MANAGED)
    acknowledge(matching, "AwsSolutions-SQS3", "This queue is a test fixture and needs no dead-letter queue at all.")
    acknowledge(stale, "AwsSolutions-SQS4", "This acknowledgement covers a finding the queue does not have.")

    # WHEN the audit compares acknowledgements with the findings of AwsSolutions
    result = find_stale_acknowledgements(app, {"AwsSolutions": AwsSolutionsChecks()})

    # THEN only the acknowledgement without a finding is reported
    assert [(item.construct_path, item.finding_id) for item in result.stale] == [("AuditTest/Stale", "AwsSolutions-SQS4")]
    assert result.checked == 2
