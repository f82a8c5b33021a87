"""No log line and no EMF line carries an API key, a prompt or an answer, even with every logger at DEBUG."""

from __future__ import annotations

import base64
import json
import logging
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from gemma_batch.emulator import expected_answer
from worker.metrics import METRIC_NAMES, REQUEST_LATENCY

# The libraries on the request path, plus the project's own loggers.
DEBUG_LOGGERS = (
    "",
    "boto3",
    "botocore",
    "s3transfer",
    "urllib3",
    "openai",
    "httpx",
    "httpx2",
    "httpcore",
    "httpcore2",
    "worker",
    "bedrock_key",
    "gemma_batch",
)
# moto server and its werkzeug front end run in this process only because the test starts them
# here. They stand in for AWS, whose service-side logs are not the worker's, so their records are
# left out of the check.
SERVICE_SIDE_LOGGERS = ("moto", "werkzeug")

PROMPT = "Confidential prompt: the merger with Northwind closes on Friday."
INSTRUCTIONS = "Confidential instructions: reply as the CFO would."
CHAT_TEXT = "Confidential chat message: payroll numbers for March."
INVALID_PROMPT = "Confidential prompt in a job without an id."


def key_fragments(api_key: str) -> list[str]:
    """Return the key, its base64 body and its SigV4 signature: no log line may contain any of them."""
    encoded = api_key.removeprefix("bedrock-api-key-")
    presigned_url = base64.b64decode(encoded).decode()
    signature = parse_qs(urlsplit("https://" + presigned_url).query)["X-Amz-Signature"][0]
    return [api_key, encoded, signature]


def enable_debug_logging(caplog) -> None:
    """Set every listed logger to DEBUG and capture all records. caplog restores the levels afterwards."""
    for name in DEBUG_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
        assert name == "" or logging.getLogger(name).propagate


def test_debug_logs_and_metrics_carry_no_secrets(stack, driver, emulator, mint, caplog, capsys):
    # GIVEN a second key, minted before DEBUG is on because minting logs its signature (botocore.auth)
    old_key = stack.api_key
    new_key = mint("AKIAWORKERKEY0000003")

    # AND jobs with confidential text, invalid jobs carrying a prompt, throttling, and a key
    # rotation that makes the worker read the secret again after a 401
    enable_debug_logging(caplog)
    stack.send(
        {"job_id": "leak-prompt", "prompt": PROMPT, "instructions": INSTRUCTIONS},
        {"job_id": "leak-chat", "messages": [{"role": "user", "content": CHAT_TEXT}]},
        {"prompt": INVALID_PROMPT},
        {"job_id": "leak-unknown-field", "prompt": INVALID_PROMPT, "temperature": 0.2},
        {"job_id": "leak-wrong-field", "prompt": "x", "model": INVALID_PROMPT},
    )
    emulator.faults.fail_next(2, "throttle", retry_after=0)
    emulator.faults.fail_next(1, "unavailable")
    driver.drain()
    stack.rotate_key("AKIAWORKERKEY0000003", api_key=new_key)
    emulator.set_session_expiry("AKIAWORKERKEY0000001", emulator.clock.now() - timedelta(seconds=1))
    stack.send({"job_id": "leak-after-rotation", "prompt": PROMPT})

    # WHEN the jobs run with every logger at DEBUG
    driver.drain()

    # THEN the jobs ran through every path the test meant to exercise
    results = stack.results()
    assert sorted(results) == ["leak-after-rotation", "leak-chat", "leak-prompt"]
    assert len(stack.failures()) == 3
    stats = emulator.stats.snapshot()
    assert stats["by_status"]["429"] == 2
    assert stats["by_status"]["503"] == 1
    assert stats["by_status"]["401"] >= 1

    # AND the DEBUG capture saw the libraries' request logging, so the check below has teeth
    records = [
        record for record in caplog.records if not record.name.startswith(SERVICE_SIDE_LOGGERS)
    ]
    logger_names = {record.name for record in records}
    assert any(name.startswith("botocore") for name in logger_names)
    assert any(name.startswith("urllib3") for name in logger_names)
    assert any(name.startswith("openai") for name in logger_names)
    assert any(name.startswith("httpcore") for name in logger_names)
    assert any(name.startswith("worker") for name in logger_names)

    # AND no captured line, traceback or stdout line contains a key, a prompt or an answer
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    lines = [formatter.format(record) for record in records]
    output = capsys.readouterr()
    lines.extend(output.out.splitlines())
    lines.extend(output.err.splitlines())

    answers = [record["answer"] for record in results.values()]
    assert expected_answer(INSTRUCTIONS + "\n" + PROMPT)[0] in answers
    forbidden = [
        *key_fragments(old_key),
        *key_fragments(new_key),
        *answers,
    ]
    # The first 20 characters of each text catch a value quoted in part, such as in an error message.
    for text in (PROMPT, INSTRUCTIONS, CHAT_TEXT, INVALID_PROMPT):
        forbidden.extend([text, text[:20]])
    leaks = [(fragment[:24], line[:200]) for line in lines for fragment in forbidden if fragment in line]
    assert leaks == []

    # AND the EMF lines are there and carry only counts
    emf_lines = [line for line in output.out.splitlines() if '"_aws"' in line]
    assert emf_lines
    assert all(set(json.loads(line)) <= {"_aws", "Service", *METRIC_NAMES, REQUEST_LATENCY} for line in emf_lines)
