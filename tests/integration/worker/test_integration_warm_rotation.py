"""Warm invocations of one worker process across a key rotation."""

from __future__ import annotations

from datetime import timedelta

SECOND_ACCESS_KEY_ID = "AKIAWORKERKEY0000002"


def send_batch(stack, prefix: str, count: int = 3) -> list[str]:
    job_ids = [f"{prefix}-{index}" for index in range(count)]
    stack.send(*({"job_id": job_id, "prompt": f"Prompt {job_id}."} for job_id in job_ids))
    return job_ids


def test_warm_handler_switches_to_rotated_key(stack, driver, emulator):
    first_access_key_id = stack.access_key_id

    # GIVEN a warm worker that ran one batch with key A
    first_jobs = send_batch(stack, "first")
    driver.drain()
    assert sorted(stack.results()) == first_jobs
    assert emulator.stats.snapshot()["by_access_key"] == {first_access_key_id: 3}

    # WHEN a rotation stores key B while key A is still valid
    stack.rotate_key(SECOND_ACCESS_KEY_ID)
    second_jobs = send_batch(stack, "second")
    driver.drain()

    # THEN the warm worker keeps using its cached key A, which is still far from its refresh point
    assert emulator.stats.snapshot()["by_access_key"] == {first_access_key_id: 6}
    assert all(stack.results()[job_id]["attempts"] == 1 for job_id in second_jobs)

    # WHEN key A's signing session ends, as it does when the issuer role's session expires
    emulator.set_session_expiry(first_access_key_id, emulator.clock.now() - timedelta(seconds=1))
    third_jobs = send_batch(stack, "third")
    driver.drain()

    # THEN the next batch in the same process gets 401 for key A, re-reads the secret and succeeds with key B
    results = stack.results()
    assert sorted(results) == sorted(first_jobs + second_jobs + third_jobs)
    stats = emulator.stats.snapshot()
    rejected_with_key_a = stats["by_access_key"][first_access_key_id] - 6
    assert 1 <= rejected_with_key_a <= 3
    assert stats["by_status"]["401"] == rejected_with_key_a
    assert stats["by_access_key"][SECOND_ACCESS_KEY_ID] == 3
    assert all(results[job_id]["receive_count"] == 1 for job_id in third_jobs)
    assert sum(results[job_id]["attempts"] for job_id in third_jobs) == 3 + rejected_with_key_a

    # AND a fourth batch uses key B from the first request on
    fourth_jobs = send_batch(stack, "fourth")
    driver.drain()
    assert all(stack.results()[job_id]["attempts"] == 1 for job_id in fourth_jobs)
    assert emulator.stats.snapshot()["by_access_key"][SECOND_ACCESS_KEY_ID] == 6


def test_rejected_key_without_rotation_returns_messages(stack, driver, emulator, requests_per_delivery):
    # GIVEN key A's session ended and no rotation has stored a new key
    emulator.set_session_expiry(stack.access_key_id, emulator.clock.now() - timedelta(seconds=1))
    stack.send({"job_id": "stuck", "prompt": "Hello."})

    # WHEN one batch is delivered
    result = driver.drain(until_empty=False, max_rounds=1)

    # THEN the worker re-read the secret once, got the same key rejected again and returned the message
    assert result.reported_failures == 1
    assert requests_per_delivery() == {("stuck", "1"): 2}
    assert stack.results() == {}
    assert stack.failures() == {}
