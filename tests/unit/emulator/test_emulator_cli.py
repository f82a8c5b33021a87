"""The ``python -m gemma_batch emulator`` command, run as a user runs it."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import openai

REPOSITORY_ROOT = Path(__file__).resolve().parents[3]


def test_emulator_command_serves_models(mint):
    # GIVEN the emulator command on a free loopback port
    process = subprocess.Popen(
        [sys.executable, "-m", "gemma_batch", "emulator", "--host", "127.0.0.1", "--port", "0", "--region", "us-east-1"],
        cwd=REPOSITORY_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # WHEN it prints its base URL
        first_line = process.stdout.readline().strip()
        assert first_line.startswith("Mantle emulator for us-east-1: MANTLE_BASE_URL=http://127.0.0.1:"), first_line
        base_url = first_line.split("MANTLE_BASE_URL=", 1)[1]

        # THEN the SDK can list the Gemma 4 models there
        client = openai.OpenAI(base_url=base_url, api_key=mint(), max_retries=0, timeout=10)
        assert base_url.endswith("/openai/v1")
        assert len(client.models.list().data) == 3
    finally:
        process.send_signal(signal.SIGINT)
        return_code = process.wait(timeout=10)
        process.stdout.close()
        process.stderr.close()

    # AND an interrupt stops it cleanly
    assert return_code == 0


def test_command_without_subcommand_fails():
    result = subprocess.run(
        [sys.executable, "-m", "gemma_batch"], cwd=REPOSITORY_ROOT, capture_output=True, text=True, timeout=30
    )

    assert result.returncode == 2
    assert "emulator" in result.stderr
