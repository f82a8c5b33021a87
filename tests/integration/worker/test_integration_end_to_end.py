"""The worker end to end: SQS on moto server, the delivery driver, the real handler and the Mantle emulator."""

from __future__ import annotations

import json
import time

from gemma_batch.emulator import count_tokens, expected_answer
from worker import metrics


def emf_documents(captured_stdout: str) -> list[dict]:
    documents = []
    for line in captured_stdout.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            documents.append(json.loads(line))
    return documents


def total(documents: list[dict], name: str) -> int:
    return sum(document[name] for document in documents)


def test_mixed_jobs_end_in_results_or_failures(stack, driver, emulator, capsys):
    # GIVEN valid jobs of each form, a body that is not JSON, one without a prompt and one with a bad job id
    stack.send(
        {"job_id": "prompt-job", "prompt": "Explain photosynthesis in one line."},
        {
            "job_id": "chat-job",
            "instructions": "Answer briefly.",
            "messages": [{"role": "user", "content": "What is SQS?"}],
            "model": "google.gemma-4-e2b",
        },
        {"job_id": "short-job", "prompt": "Write a long story about a fox.", "max_output_tokens": 2},
    )
    (not_json_id,) = stack.send("this is not JSON")
    stack.send({"job_id": "no-prompt-job"})
    (bad_id_message,) = stack.send({"job_id": "bad/id", "prompt": "x"})

    # WHEN the driver delivers the queue to the handler until it is empty
    result = driver.drain(until_empty=True, max_rounds=20)

    # THEN each valid job has a result with the emulator's deterministic answer
    results = stack.results()
    assert sorted(results) == ["chat-job", "prompt-job", "short-job"]

    prompt_result = results["prompt-job"]
    answer, finish_reason = expected_answer("Explain photosynthesis in one line.")
    assert prompt_result["status"] == "succeeded"
    assert prompt_result["answer"] == answer
    assert prompt_result["finish_reason"] == finish_reason
    assert prompt_result["model"] == "google.gemma-4-31b"
    assert prompt_result["service_tier"] == {"requested": "flex", "sent": "flex", "served": "flex", "escalated": False}
    assert prompt_result["usage"] == {
        "input_tokens": 5,
        "cached_input_tokens": 0,
        "output_tokens": count_tokens(answer),
        "reasoning_tokens": 0,
        "total_tokens": 5 + count_tokens(answer),
    }
    assert prompt_result["reasoning"] is None
    assert prompt_result["tool_calls"] == []
    assert prompt_result["error"] is None
    assert prompt_result["attempts"] == 1
    assert prompt_result["receive_count"] == 1
    assert prompt_result["message_id"]
    assert prompt_result["finished_at"].endswith("Z")
    assert prompt_result["latency_ms"] >= 0

    chat_result = results["chat-job"]
    assert chat_result["model"] == "google.gemma-4-e2b"
    assert chat_result["answer"] == expected_answer("Answer briefly.\nWhat is SQS?")[0]

    assert results["short-job"]["finish_reason"] == "length"
    assert results["short-job"]["usage"]["output_tokens"] == 2

    # AND the invalid bodies have failure records with the reason and the original body, and are not retried
    failures = stack.failures()
    assert sorted(failures) == sorted([not_json_id, "no-prompt-job", bad_id_message])
    assert failures[not_json_id]["status"] == "invalid"
    assert failures[not_json_id]["job_id"] is None
    assert "body is not valid JSON" in failures[not_json_id]["reason"]
    assert failures[not_json_id]["body"] == "this is not JSON"
    assert "fields 'prompt' and 'messages' are both missing" in failures["no-prompt-job"]["reason"]
    assert failures["no-prompt-job"]["job_id"] == "no-prompt-job"
    assert "field 'job_id' is 'bad/id'" in failures[bad_id_message]["reason"]

    # AND every message was delivered once and deleted, so nothing is left anywhere
    assert result.deliveries == 6
    assert result.deleted == 6
    assert result.reported_failures == 0
    assert stack.queue_counts() == {"ApproximateNumberOfMessages": 0, "ApproximateNumberOfMessagesNotVisible": 0}
    assert stack.dead_letters() == []

    # AND the worker always sent max_tokens, with the default where the job set none
    jobs = emulator.stats.snapshot()["jobs"]
    assert jobs["prompt-job"]["max_tokens"] == [1024]
    assert jobs["short-job"]["max_tokens"] == [2]

    # AND the EMF output counts the requests, tokens and outcomes
    documents = emf_documents(capsys.readouterr().out)
    assert documents
    assert {document["Service"] for document in documents} == {"gemma-batch-worker-test"}
    assert total(documents, metrics.REQUESTS) == 3
    assert total(documents, metrics.JOBS_SUCCEEDED) == 3
    assert total(documents, metrics.JOBS_FAILED) == 3
    assert total(documents, metrics.INPUT_TOKENS) == sum(r["usage"]["input_tokens"] for r in results.values())
    assert total(documents, metrics.OUTPUT_TOKENS) == sum(r["usage"]["output_tokens"] for r in results.values())


def test_served_tier_is_null_without_echo(stack, driver, emulator):
    emulator.echo_service_tier = False
    stack.send({"job_id": "no-echo", "prompt": "Hello there."})

    driver.drain()

    assert stack.results()["no-echo"]["service_tier"] == {
        "requested": "flex",
        "sent": "flex",
        "served": None,
        "escalated": False,
    }


def test_throttling_and_unavailability_lose_nothing(stack, driver, emulator, requests_per_delivery, capsys):
    # GIVEN 30 jobs and a Mantle that throttles and fails often, with and without Retry-After
    job_ids = [f"load-{index:02d}" for index in range(30)]
    stack.send(*({"job_id": job_id, "prompt": f"Question number {index}."} for index, job_id in enumerate(job_ids)))
    emulator.faults.fail_next(6, "throttle", retry_after=0, retry_after_format="http-date")
    emulator.faults.fail_fraction(0.25, "throttle", retry_after=0)
    emulator.faults.fail_fraction(0.15, "throttle")
    emulator.faults.fail_fraction(0.15, "unavailable")
    emulator.faults.fail_fraction(0.05, "unavailable", retry_after=0)

    # WHEN the driver delivers until the queue is empty
    driver.drain(until_empty=True, max_rounds=200)

    # THEN every job has a result or is in the dead-letter queue, and none is lost or doubled
    results = stack.results()
    dead_job_ids = [json.loads(message["Body"])["job_id"] for message in stack.dead_letters()]
    assert sorted(list(results) + dead_job_ids) == job_ids
    assert stack.failures() == {}
    assert all(record["status"] == "succeeded" for record in results.values())

    # AND no job sent more than MAX_ATTEMPTS_PER_DELIVERY requests in any delivery
    max_attempts = int(stack.environment["MAX_ATTEMPTS_PER_DELIVERY"])
    counts = requests_per_delivery()
    assert counts
    assert max(counts.values()) <= max_attempts
    # The faults were frequent enough that some jobs used the whole budget and came back.
    assert max(counts.values()) == max_attempts
    assert any(receive_count != "1" for _, receive_count in counts)

    # AND each result's attempts and receive count match what the emulator saw
    for job_id, record in results.items():
        assert counts[(job_id, str(record["receive_count"]))] == record["attempts"]

    # AND the metrics count every request and every 429 and 503 the emulator sent
    stats = emulator.stats.snapshot()
    documents = emf_documents(capsys.readouterr().out)
    assert total(documents, metrics.REQUESTS) == stats["requests_total"]
    assert total(documents, metrics.THROTTLED_429) == stats["by_status"].get("429", 0)
    assert total(documents, metrics.UNAVAILABLE_503) == stats["by_status"].get("503", 0)
    assert total(documents, metrics.JOBS_SUCCEEDED) == len(results)


def test_always_throttled_job_goes_to_dlq(stack, driver, emulator, requests_per_delivery):
    # GIVEN one job that Mantle always throttles and one healthy job
    emulator.faults.fail_fraction(1.0, "throttle", job_id="doomed")
    (doomed_message,) = stack.send({"job_id": "doomed", "prompt": "This never gets through."})
    stack.send({"job_id": "healthy", "prompt": "This works."})

    # WHEN the driver delivers until the queue is empty
    driver.drain(until_empty=True, max_rounds=50)

    # THEN the healthy job succeeded, and the doomed one reached the DLQ after maxReceiveCount deliveries
    assert list(stack.results()) == ["healthy"]
    (dead_letter,) = stack.dead_letters()
    assert dead_letter["MessageId"] == doomed_message
    assert json.loads(dead_letter["Body"])["job_id"] == "doomed"
    max_attempts = int(stack.environment["MAX_ATTEMPTS_PER_DELIVERY"])
    counts = requests_per_delivery()
    assert {receive: counts[("doomed", receive)] for receive in "12345"} == dict.fromkeys("12345", max_attempts)
    assert ("doomed", "6") not in counts


def test_long_retry_after_defers_to_next_delivery(stack, driver, emulator, requests_per_delivery):
    # GIVEN a 429 whose Retry-After (1 s) is longer than BACKOFF_MAX_SECONDS (0.02 s)
    emulator.faults.fail_next(1, "throttle", retry_after=1, job_id="patient")
    stack.send({"job_id": "patient", "prompt": "Wait for me."})

    # WHEN the driver delivers until the queue is empty
    started = time.monotonic()
    driver.drain(until_empty=True, max_rounds=20)
    elapsed = time.monotonic() - started

    # THEN the job waited in the queue for at least Retry-After and succeeded on its second delivery
    record = stack.results()["patient"]
    assert record["receive_count"] == 2
    assert record["attempts"] == 1
    assert requests_per_delivery() == {("patient", "1"): 1, ("patient", "2"): 1}
    assert elapsed >= 1.0


def test_wrong_base_path_fails_naming_mantle_base_path(stack, driver, emulator, worker_environment):
    # GIVEN a worker configured with the /v1 base path, where Mantle does not serve Gemma 4
    worker_environment(MANTLE_BASE_URL=emulator.root_url + "/v1")
    stack.send({"job_id": "routed", "prompt": "Hello."})

    # WHEN the job runs
    result = driver.drain()

    # THEN it fails for good, once, with an error that names the config key
    failure = stack.failures()["routed"]
    assert failure["status"] == "failed"
    assert failure["http_status"] == 400
    assert "mantle_base_path" in failure["error"]
    assert "isn't supported on this route" in failure["error"]
    assert failure["body"] == json.dumps({"job_id": "routed", "prompt": "Hello."})
    assert result.reported_failures == 0
    assert emulator.stats.snapshot()["jobs"]["routed"]["requests"] == 1
    assert stack.results() == {}


def test_unknown_service_tier_fails_naming_service_tier(stack, driver, emulator, worker_environment, capsys):
    worker_environment(SERVICE_TIER="turbo")
    stack.send({"job_id": "tiered", "prompt": "Hello."})

    driver.drain()

    failure = stack.failures()["tiered"]
    assert failure["status"] == "failed"
    assert "config key service_tier" in failure["error"]
    assert "'turbo'" in failure["error"]
    assert total(emf_documents(capsys.readouterr().out), metrics.JOBS_FAILED) == 1


def test_injected_route_error_is_not_retried(stack, driver, emulator):
    emulator.faults.fail_next(1, "route", job_id="once")
    stack.send({"job_id": "once", "prompt": "Hello."})

    driver.drain()

    assert "mantle_base_path" in stack.failures()["once"]["error"]
    assert emulator.stats.snapshot()["jobs"]["once"]["requests"] == 1


def test_missing_secret_returns_messages_until_fixed(stack, driver, aws_clients, emulator):
    # GIVEN a secret that contains the deployment placeholder instead of a key
    valid_value = aws_clients["secretsmanager"].get_secret_value(SecretId=stack.secret_arn)["SecretString"]
    aws_clients["secretsmanager"].put_secret_value(SecretId=stack.secret_arn, SecretString="placeholder")
    message_ids = stack.send({"job_id": "k1", "prompt": "One."}, {"job_id": "k2", "prompt": "Two."})

    # WHEN one batch is delivered
    first = driver.drain(until_empty=False, max_rounds=1)

    # THEN both messages are reported, nothing is stored and Mantle was never called
    assert first.reported_failures == 2
    assert first.deleted == 0
    assert stack.results() == {}
    assert stack.failures() == {}
    assert emulator.stats.snapshot()["requests_total"] == 0
    assert sum(stack.queue_counts().values()) == 2

    # WHEN a rotation stores a key again, THEN the returned messages complete
    aws_clients["secretsmanager"].put_secret_value(SecretId=stack.secret_arn, SecretString=valid_value)
    driver.drain(until_empty=True, max_rounds=20)
    results = stack.results()
    assert sorted(results) == ["k1", "k2"]
    assert sorted(record["message_id"] for record in results.values()) == sorted(message_ids)
    assert all(record["receive_count"] == 2 for record in results.values())


def test_result_write_failure_returns_message(stack, driver, aws_clients):
    # GIVEN a results bucket that no longer exists
    aws_clients["s3"].delete_bucket(Bucket=stack.bucket)
    stack.send({"job_id": "unstored", "prompt": "Hello."})

    # WHEN one batch is delivered
    result = driver.drain(until_empty=False, max_rounds=1)

    # THEN the message is reported and stays in the queue, so the job is not lost
    assert result.reported_failures == 1
    assert result.deleted == 0
    # In flight or, after the 2 s visibility timeout on a slow machine, visible again: still queued either way.
    assert sum(stack.queue_counts().values()) == 1


def test_batch_jobs_run_concurrently(stack, driver, emulator):
    # GIVEN ten jobs and a Mantle that takes 0.4 s per request
    emulator.faults.set_latency(0.4)
    stack.send(*({"job_id": f"parallel-{index}", "prompt": "Hi."} for index in range(10)))

    # WHEN the batch is delivered once
    result = driver.drain(until_empty=False, max_rounds=1)

    # THEN all ten ran in one invocation, with their Mantle requests overlapping
    assert result.batches == 1
    assert result.deleted == 10
    assert len(stack.results()) == 10
    assert emulator.stats.snapshot()["max_in_flight"] >= 5


def test_connection_errors_are_retried_then_deferred(stack, driver, worker_environment, capsys):
    # GIVEN a Mantle URL on a loopback port where nothing listens
    worker_environment(MANTLE_BASE_URL="http://127.0.0.1:1/openai/v1")
    stack.send({"job_id": "unreachable", "prompt": "Hello."})

    # WHEN one batch is delivered
    result = driver.drain(until_empty=False, max_rounds=1)

    # THEN the worker used its whole budget of requests, then returned the message to the queue
    assert result.reported_failures == 1
    documents = emf_documents(capsys.readouterr().out)
    max_attempts = int(stack.environment["MAX_ATTEMPTS_PER_DELIVERY"])
    assert total(documents, metrics.REQUESTS) == max_attempts
    assert total(documents, metrics.OTHER_ERRORS) == max_attempts
    assert stack.results() == {}
    assert stack.failures() == {}


def test_missing_setting_fails_batch_naming_variable(stack, driver, monkeypatch):
    # GIVEN a worker environment without RESULTS_BUCKET
    monkeypatch.delenv("RESULTS_BUCKET")
    stack.send({"job_id": "unconfigured", "prompt": "Hello."})

    # WHEN one batch is delivered
    batch = driver.deliver_once()

    # THEN the invocation fails with an error that names the variable, and the message stays
    assert batch.handler_error is not None
    assert "missing environment variable RESULTS_BUCKET" in batch.handler_error
    assert batch.deleted == ()
