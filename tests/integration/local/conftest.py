"""Fixtures of the local run's tests. Each run starts its own moto server and emulator on free loopback ports."""

from __future__ import annotations

import logging
from typing import Iterator

import pytest
from local_run_support import CompletedRun, run_in_process

from gemma_batch.local.run import LocalRunOptions


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CompletedRun]:
    """The sample jobs and faults, run once for the module on free ports, with --keep-running and every logger at DEBUG."""
    output_dir = tmp_path_factory.mktemp("local-run")
    options = LocalRunOptions(moto_port=0, emulator_port=0, output_dir=output_dir, keep_running=True)
    yield run_in_process(options, log_level=logging.DEBUG)
