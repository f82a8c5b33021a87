"""The input files of a local run: a JSON Lines file of job bodies and a file of emulator fault rules."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gemma_batch.emulator import FaultRule

SAMPLE_JOBS_FILE = Path(__file__).resolve().parent / "sample_jobs.jsonl"
SAMPLE_FAULTS_FILE = Path(__file__).resolve().parent / "sample_faults.json"


class JobFileError(ValueError):
    """Raised for a jobs or faults file that cannot be used. The message names the file and the fix."""


@dataclass(frozen=True)
class JobLine:
    """One non-blank line of a jobs file, sent as it is as one SQS message body.

    ``job_id`` is the body's ``job_id`` when the line is a JSON object with a string job id, else None.
    """

    line_number: int
    body: str
    job_id: str | None


@dataclass(frozen=True)
class FaultFile:
    """The fault rules and fixed latency that a faults file sets on the emulator."""

    rules: tuple[FaultRule, ...]
    latency_seconds: float | None


def read_job_lines(path: Path) -> list[JobLine]:
    """Read every non-blank line of a jobs file.

    Lines are not validated: an invalid body is sent as it is, and the worker stores a failure
    record for it. Raises JobFileError when the file cannot be read or has no lines.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise JobFileError(
            f"reading jobs file {path} failed: {error}; pass a UTF-8 JSON Lines file with --jobs"
        ) from None

    lines = [
        JobLine(line_number=number, body=line, job_id=_job_id(line))
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]
    if not lines:
        raise JobFileError(f"jobs file {path} has no jobs; write one JSON job body per line")
    return lines


def duplicate_job_ids(lines: list[JobLine]) -> dict[str, list[int]]:
    """Return each job id that more than one line uses, with those line numbers.

    The worker stores one record per job id (``results/{job_id}.json`` or ``failures/{job_id}.json``),
    and it names one message, so the other lines with that id count as lost.
    """
    line_numbers: dict[str, list[int]] = {}
    for line in lines:
        if line.job_id is not None:
            line_numbers.setdefault(line.job_id, []).append(line.line_number)
    return {job_id: numbers for job_id, numbers in line_numbers.items() if len(numbers) > 1}


def read_fault_file(path: Path) -> FaultFile:
    """Read a faults file in the format of the emulator's ``POST /_emulator/faults`` body.

    The format is ``{"rules": [<rule>, ...], "latency_seconds": <number>}``, where each rule has the
    fields of ``FaultRule``. Raises JobFileError naming the file and the rule at fault.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise JobFileError(f"reading faults file {path} failed: {error}") from None
    except ValueError as error:
        raise JobFileError(f"faults file {path} is not valid JSON ({error})") from None
    if not isinstance(document, dict):
        raise JobFileError(f'faults file {path} must contain a JSON object such as {{"rules": [...]}}')

    unknown = sorted(set(document) - {"rules", "latency_seconds"})
    if unknown:
        raise JobFileError(
            f"faults file {path} has the unknown field {unknown[0]!r}; use 'rules' and 'latency_seconds'"
        )
    raw_rules = document.get("rules", [])
    if not isinstance(raw_rules, list):
        raise JobFileError(f"field 'rules' of faults file {path} must be a list of rule objects")

    rules = []
    for index, raw_rule in enumerate(raw_rules):
        if not isinstance(raw_rule, dict):
            raise JobFileError(f"rules[{index}] of faults file {path} must be an object with at least 'kind'")
        try:
            rules.append(FaultRule.from_dict(dict(raw_rule)))
        except (TypeError, ValueError) as error:
            raise JobFileError(f"rules[{index}] of faults file {path} is invalid: {error}") from None

    latency = document.get("latency_seconds")
    if latency is not None and (isinstance(latency, bool) or not isinstance(latency, (int, float)) or latency < 0):
        raise JobFileError(f"field 'latency_seconds' of faults file {path} must be a number of seconds, 0 or more")
    return FaultFile(rules=tuple(rules), latency_seconds=None if latency is None else float(latency))


def _job_id(line: str) -> str | None:
    try:
        document: Any = json.loads(line)
    except ValueError:
        return None
    if isinstance(document, dict) and isinstance(document.get("job_id"), str):
        return document["job_id"]
    return None
