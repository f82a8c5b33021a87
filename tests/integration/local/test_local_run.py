"""The local run end to end: moto server, the Mantle emulator, the rotation function and the worker, in this process."""

from __future__ import annotations

import json
import socket
from collections import Counter
from pathlib import Path

import pytest
from local_run_support import run_in_process

from gemma_batch.__main__ import build_parser
from gemma_batch.emulator import parse_bearer_token
from gemma_batch.local.job_files import SAMPLE_JOBS_FILE, read_job_lines
from gemma_batch.local.resources import QUEUE_VISIBILITY_TIMEOUT_SECONDS
from gemma_batch.local.run import CDK_JSON, LocalRunError, LocalRunOptions, exit_code, load_region_settings, run_local

# The group keeps the module on one worker process, so the module's sample run happens once.
# NOTE: pytest-xdist 3.8.0 groups by setting item._nodeid, which pytest 9.2 no longer reads, so
# today each of the two workers may run the sample once.
pytestmark = pytest.mark.xdist_group("local_run")

GEMMA_MODELS = {"google.gemma-4-31b", "google.gemma-4-26b-a4b", "google.gemma-4-e2b"}
THROTTLED_JOB = "sample-09-throttled"


def sample_lines():
    return read_job_lines(SAMPLE_JOBS_FILE)


# The sample run -------------------------------------------------------------------------------


def test_sample_jobs_all_accounted_for(sample_run):
    # GIVEN the sample jobs file, WHEN the local run has finished
    summary = sample_run.summary

    # THEN every line of the file ended as a result or a failure record, and none is lost
    assert summary.jobs == len(sample_lines()) == 12
    assert [end.line_number for end in summary.ends] == [line.line_number for line in sample_lines()]
    assert Counter(end.ended for end in summary.ends) == {"succeeded": 10, "invalid": 2}
    assert summary.lost == 0
    assert summary.not_sent == 0
    assert summary.jobs_left_in_queue is False
    assert exit_code(summary) == 0

    # AND each end is the stored object of that job's message
    stored_message_ids = {
        record["message_id"] for record in [*sample_run.stored.results.values(), *sample_run.stored.failures.values()]
    }
    assert {end.message_id for end in summary.ends} == stored_message_ids


def test_summary_counts_match_stored_objects(sample_run):
    summary = sample_run.summary
    stored = sample_run.stored
    results = list(stored.results.values())
    failures = list(stored.failures.values())

    assert summary.done == len(results)
    assert summary.failed == sum(record["status"] == "failed" for record in failures)
    assert summary.invalid == sum(record["status"] == "invalid" for record in failures)
    assert summary.dead_lettered == stored.dead_letter_count == 0
    assert summary.input_tokens == sum(record["usage"]["input_tokens"] for record in results)
    assert summary.output_tokens == sum(record["usage"]["output_tokens"] for record in results)
    assert summary.retried_deliveries == sum(record["receive_count"] - 1 for record in [*results, *failures])


def test_summary_requests_match_emulator(sample_run):
    summary = sample_run.summary
    jobs = sample_run.stored.emulator_stats["jobs"]

    # The worker's EMF request count equals what the emulator received with a job id
    assert summary.http_requests == sum(job["requests"] for job in jobs.values())
    # Each result's attempts are the requests of its last delivery
    for job_id, record in sample_run.stored.results.items():
        assert jobs[job_id]["by_receive_count"][str(record["receive_count"])] == record["attempts"]
    by_status = Counter()
    for job in jobs.values():
        by_status.update(job["by_status"])
    assert summary.http_requests_by_status == dict(by_status)


def test_sample_covers_models_forms_and_faults(sample_run):
    results = sample_run.stored.results
    failures = sample_run.stored.failures

    # Every Gemma 4 model returned results, served on the flex tier
    assert {record["model"] for record in results.values()} == GEMMA_MODELS
    assert {record["service_tier"]["served"] for record in results.values()} == {"flex"}
    # A job with a small max_output_tokens was cut off
    assert results["sample-03-prompt-e2b-short"]["finish_reason"] == "length"

    # The throttled job got 429s and 503s, used its whole budget in delivery 1 and finished in delivery 2.
    # The sample faults are four failures in a row, sized for the default budget of 3 requests per delivery.
    throttled = sample_run.stored.emulator_stats["jobs"][THROTTLED_JOB]
    assert throttled["by_status"] == {"200": 1, "429": 2, "503": 2}
    assert throttled["by_receive_count"] == {"1": 3, "2": 2}
    assert results[THROTTLED_JOB]["receive_count"] == 2
    assert sample_run.summary.retried_deliveries == 1

    # The broken JSON line and the job without a prompt have failure records with their bodies
    broken_line = sample_lines()[10]
    broken_end = next(end for end in sample_run.summary.ends if end.line_number == broken_line.line_number)
    broken_message = broken_end.message_id
    assert "body is not valid JSON" in failures[broken_message]["reason"]
    assert failures[broken_message]["body"] == broken_line.body
    assert failures["sample-12-no-prompt"]["status"] == "invalid"
    assert "'prompt'" in failures["sample-12-no-prompt"]["reason"]


def test_downloads_equal_bucket_objects(sample_run):
    # GIVEN the objects in the bucket, WHEN compared with the run's output folder
    downloaded = {
        str(path.relative_to(sample_run.output_dir)): path.read_bytes()
        for folder in ("results", "failures")
        for path in (sample_run.output_dir / folder).glob("*.json")
    }

    # THEN the folder contains exactly those objects, byte for byte
    assert downloaded == sample_run.stored.raw_objects
    summary_file = json.loads((sample_run.output_dir / "summary.json").read_text())
    assert summary_file["done"] == sample_run.summary.done
    assert len(summary_file["ends"]) == 12
    assert (sample_run.output_dir / "metrics.jsonl").read_text().count('"_aws"') >= 1


def test_queue_has_redrive_policy(sample_run):
    attributes = sample_run.stored.queue_attributes

    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == 5
    assert json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"].endswith(
        sample_run.stored.environment["DEAD_LETTER_QUEUE_URL"].rsplit("/", 1)[1]
    )
    assert int(attributes["VisibilityTimeout"]) == QUEUE_VISIBILITY_TIMEOUT_SECONDS
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_rotation_filled_secret(sample_run):
    document = sample_run.stored.secret_document
    key = parse_bearer_token(document["api_key"])

    assert ":assumed-role/gemma-batch-key-issuer-" in document["issued_by"]
    assert key.region == "us-east-1"
    # The key came from an STS session: moto's AssumeRole issues ASIA access key ids
    assert key.access_key_id.startswith("ASIA")
    # The rotation's testSecret checked the key against the emulator with GET /models
    assert sample_run.stored.emulator_stats["by_path"]["/openai/v1/models"] == 1


def test_keep_running_prints_servers_and_exports(sample_run):
    exports = sample_run.stored.environment

    assert exports["MANTLE_BASE_URL"].startswith("http://127.0.0.1:")
    assert exports["AWS_ENDPOINT_URL"] in sample_run.output
    assert {"JOB_QUEUE_URL", "RESULTS_BUCKET", "API_KEY_SECRET_ARN", "DEAD_LETTER_QUEUE_URL"} <= set(exports)
    assert "/_emulator/stats" in sample_run.output
    assert sample_run.stored.secret_document["api_key"] not in sample_run.output


def test_logs_carry_no_key_or_prompt(sample_run):
    # GIVEN every logger at DEBUG during the run, and the prompts of the sample jobs
    logs = "\n".join(sample_run.log_messages)
    api_key = sample_run.stored.secret_document["api_key"]
    prompts = []
    for line in sample_lines():
        try:
            document = json.loads(line.body)
        except ValueError:
            continue
        if isinstance(document.get("prompt"), str):
            prompts.append(document["prompt"])
        for message in document.get("messages", []):
            if isinstance(message["content"], str):
                prompts.append(message["content"])

    # THEN the logs are there, but contain neither the key (or its base64 body) nor any prompt
    assert len(sample_run.log_messages) > 100
    assert api_key not in logs
    assert api_key.removeprefix("bedrock-api-key-") not in logs
    assert prompts
    for prompt in prompts:
        assert prompt not in logs


# Other runs -----------------------------------------------------------------------------------


def test_always_failing_jobs_reach_dlq(tmp_path):
    # GIVEN two jobs and an emulator that fails every request with 429 or 503
    jobs_file = tmp_path / "jobs.jsonl"
    jobs_file.write_text(
        '{"job_id": "doomed-1", "prompt": "One."}\n\n{"job_id": "doomed-2", "prompt": "Two."}\n', encoding="utf-8"
    )
    options = LocalRunOptions(
        jobs_file=jobs_file,
        faults_file=None,
        fault_rate=1.0,
        moto_port=0,
        emulator_port=0,
        output_dir=tmp_path / "out",
        backoff_base_seconds=0.001,
        backoff_max_seconds=0.01,
    )

    # WHEN the local run runs them
    run = run_in_process(options)

    # THEN both reached the dead-letter queue after max_receive_count deliveries, so none is lost
    settings = load_region_settings(CDK_JSON)
    summary = run.summary
    assert [(end.line_number, end.ended) for end in summary.ends] == [(1, "dead-lettered"), (3, "dead-lettered")]
    assert summary.dead_lettered == 2
    assert summary.retried_deliveries == 2 * (settings.max_receive_count - 1)
    assert summary.done == 0
    assert exit_code(summary) == 0
    # AND each delivery used the whole retry budget, and every request failed with 429 or 503
    assert summary.http_requests == 2 * settings.max_receive_count * settings.max_attempts_per_delivery
    assert set(summary.http_requests_by_status) <= {"429", "503"}
    # AND the dead-letter messages were downloaded with their bodies
    dead_letters = [json.loads(path.read_text()) for path in (tmp_path / "out" / "dead-letters").glob("*.json")]
    assert sorted(json.loads(message["body"])["job_id"] for message in dead_letters) == ["doomed-1", "doomed-2"]


def test_unfinished_jobs_count_as_lost(tmp_path):
    # GIVEN a run that may not deliver at all
    options = LocalRunOptions(moto_port=0, emulator_port=0, output_dir=tmp_path, timeout_seconds=0)

    # WHEN it runs the sample jobs
    run = run_in_process(options)

    # THEN every job counts as lost, still in the queue, and the exit code is 1
    assert run.summary.lost == 12
    assert run.summary.jobs_left_in_queue is True
    assert exit_code(run.summary) == 1
    assert "line 12: job sample-12-no-prompt" in run.output
    assert "the run stopped at --timeout" in run.output


def test_missing_jobs_file_is_rejected(tmp_path):
    missing = tmp_path / "nothing.jsonl"

    with pytest.raises(LocalRunError) as raised:
        run_local(LocalRunOptions(jobs_file=missing, output_dir=tmp_path))

    assert str(missing) in str(raised.value)
    assert "--jobs" in str(raised.value)


def test_port_in_use_is_rejected(tmp_path):
    # GIVEN a port on 127.0.0.1 with a listener
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        taken_port = listener.getsockname()[1]

        # WHEN the run is asked to start moto server there, THEN it fails naming the option
        with pytest.raises(LocalRunError) as raised:
            run_local(LocalRunOptions(moto_port=taken_port, emulator_port=0, output_dir=tmp_path))

    assert f"port {taken_port}" in str(raised.value)
    assert "--moto-port" in str(raised.value)


def test_invalid_faults_file_is_rejected(tmp_path):
    faults_file = tmp_path / "faults.json"
    faults_file.write_text('{"rules": [{"kind": "explode"}]}', encoding="utf-8")

    with pytest.raises(LocalRunError) as raised:
        run_local(LocalRunOptions(faults_file=faults_file, output_dir=tmp_path))

    assert "rules[0]" in str(raised.value)
    assert "'explode'" in str(raised.value)


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        (["--fault-rate", "1.5"], "pass a fraction from 0 to 1"),
        (["--moto-port", "70000"], "is not a TCP port"),
        (["--timeout", "0"], "positive, finite number of seconds"),
    ],
)
def test_local_command_rejects_bad_options(argument, expected, capsys):
    with pytest.raises(SystemExit) as raised:
        build_parser().parse_args(["local", *argument])

    assert raised.value.code == 2
    assert expected in capsys.readouterr().err


def test_local_command_defaults():
    arguments = build_parser().parse_args(["local"])

    assert (arguments.moto_port, arguments.emulator_port) == (5000, 8765)
    assert arguments.jobs is None
    assert arguments.fault_rate == 0.0
    assert Path(arguments.output_dir) == Path("local-run")
