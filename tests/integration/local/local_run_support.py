"""Helpers of the local run's tests: the whole run in this process, on free loopback ports.

A run uses --keep-running with a callback in place of Ctrl-C. While the servers are still up,
the callback reads the stored objects, the queues, the secret and the emulator's counters through
the environment variables that the run printed. So the tests compare the summary with the objects
themselves, not only with the run's downloads.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

REPOSITORY_ROOT = Path(__file__).resolve().parents[3]
for path in (REPOSITORY_ROOT, REPOSITORY_ROOT / "lambda"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from gemma_batch.local.outcomes import RunSummary  # noqa: E402 - needs the path above
from gemma_batch.local.run import LocalRunOptions, run_local  # noqa: E402
from key_rotation.log_redaction import remove_key_material_filter  # noqa: E402


@dataclass
class StoredState:
    """What the servers contained after the run, read through the printed environment variables."""

    environment: dict[str, str]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, dict[str, Any]] = field(default_factory=dict)
    raw_objects: dict[str, bytes] = field(default_factory=dict)
    dead_letter_count: int = 0
    queue_attributes: dict[str, str] = field(default_factory=dict)
    secret_document: dict[str, Any] = field(default_factory=dict)
    emulator_stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class CompletedRun:
    """A finished local run: its summary, its printed output, its output folder and the log records."""

    summary: RunSummary
    output: str
    output_dir: Path
    stored: StoredState
    log_messages: list[str]


class _RecordingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(self.format(record))


def parse_exports(output: str) -> dict[str, str]:
    """Return the variables of the printed ``export NAME=value`` lines."""
    exports = {}
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("export "):
            name, _, value = line[len("export ") :].partition("=")
            exports[name] = value
    return exports


def read_stored_state(output: str) -> StoredState:
    """Read the servers' state with clients built only from the printed environment variables."""
    environment = parse_exports(output)
    assert environment["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    clients = {
        service: boto3.client(
            service,
            endpoint_url=environment["AWS_ENDPOINT_URL"],
            region_name=environment["AWS_REGION"],
            aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
        )
        for service in ("s3", "sqs", "secretsmanager")
    }
    state = StoredState(environment=environment)
    bucket = environment["RESULTS_BUCKET"]
    for page in clients["s3"].get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            body = clients["s3"].get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            state.raw_objects[item["Key"]] = body
            folder, name = item["Key"].split("/", 1)
            target = state.results if folder == "results" else state.failures
            target[name.removesuffix(".json")] = json.loads(body)

    state.dead_letter_count = int(
        clients["sqs"].get_queue_attributes(
            QueueUrl=environment["DEAD_LETTER_QUEUE_URL"], AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
    )
    state.queue_attributes = clients["sqs"].get_queue_attributes(
        QueueUrl=environment["JOB_QUEUE_URL"], AttributeNames=["All"]
    )["Attributes"]
    state.secret_document = json.loads(
        clients["secretsmanager"].get_secret_value(
            SecretId=environment["API_KEY_SECRET_ARN"], VersionStage="AWSCURRENT"
        )["SecretString"]
    )
    control_url = environment["MANTLE_BASE_URL"].removesuffix("/openai/v1") + "/_emulator/stats"
    assert control_url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(control_url, timeout=10) as response:
        state.emulator_stats = json.loads(response.read())
    return state


def run_in_process(options: LocalRunOptions, log_level: int = logging.INFO) -> CompletedRun:
    """Run the local run at ``log_level``, reading the stored state before the servers stop."""
    out = io.StringIO()
    states: list[StoredState] = []
    handler = _RecordingHandler()
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(log_level)
    try:
        summary = run_local(
            options, out=out, wait_while_running=lambda: states.append(read_stored_state(out.getvalue()))
        )
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
        remove_key_material_filter()
    stored = states[0] if states else StoredState({})
    return CompletedRun(summary, out.getvalue(), options.output_dir, stored, handler.messages)
