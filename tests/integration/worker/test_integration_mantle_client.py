"""The worker's Mantle client against the emulator: one SDK client, key swaps and no SDK retries."""

from __future__ import annotations

import pytest

from worker.job import parse_job
from worker.mantle_client import MantleClient, MantleRequestError


def make_job(job_id: str):
    return parse_job(f'{{"job_id": "{job_id}", "prompt": "Hello there."}}', "google.gemma-4-e2b", 64)


def test_key_swap_keeps_sdk_retries_off(emulator, mint):
    # GIVEN a client that has sent one request with key A
    client = MantleClient(emulator.base_url, "flex", timeout_seconds=5)
    client.complete(make_job("swap-1"), mint("AKIAMANTLECLIENT0001"), timeout_seconds=5, receive_count=1)

    # WHEN the key changes and the next request is throttled
    emulator.faults.fail_next(1, "throttle", retry_after=0)
    with pytest.raises(MantleRequestError) as raised:
        client.complete(make_job("swap-2"), mint("AKIAMANTLECLIENT0002"), timeout_seconds=5, receive_count=1)

    # THEN the request used key B, and the SDK did not retry it on its own
    assert raised.value.status == 429
    assert raised.value.headers["retry-after"] == "0"
    stats = emulator.stats.snapshot()
    assert stats["by_access_key"] == {"AKIAMANTLECLIENT0001": 1, "AKIAMANTLECLIENT0002": 1}
    assert stats["jobs"]["swap-2"]["requests"] == 1


def test_completion_fields(emulator, mint):
    client = MantleClient(emulator.base_url, "priority", timeout_seconds=5)

    completion = client.complete(make_job("fields"), mint("AKIAMANTLECLIENT0001"), timeout_seconds=5, receive_count=3)

    assert completion.model == "google.gemma-4-e2b"
    assert completion.served_service_tier == "priority"
    assert completion.finish_reason == "stop"
    assert completion.input_tokens == 2
    assert completion.total_tokens == completion.input_tokens + completion.output_tokens
    assert emulator.stats.snapshot()["jobs"]["fields"]["by_receive_count"] == {"3": 1}
    assert completion.answer
    assert completion.answer not in repr(completion)
