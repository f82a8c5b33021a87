"""The submit command end to end: moto server, the SQS driver, the real worker and the Mantle emulator.

The first run drives the worker from the command's own wait loop: its ``sleep`` delivers a few
batches instead of sleeping, so the test needs no background timing. The rerun goes through the
command line with the worker in a background thread, as it would run against the local run.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from gemma_batch.__main__ import main
from gemma_batch.submit import SubmitError, Targets, resolve_targets, submit_jobs

MAX_MESSAGE_BYTES = 4096
SUCCEEDING = 184
IMAGE_JOBS = ("img-0", "img-1", "img-2")
ROUTE_FAILURES = ("route-0", "route-1")
DEAD_LETTERED = "always-throttled"


def locally_invalid_lines() -> list[str]:
    """Nine lines the command must reject before sending; the tenth, a repeated job id, is the file's last line."""
    return [
        "{this is not JSON",
        json.dumps({"prompt": "no job id"}),
        json.dumps({"job_id": "bad-model", "prompt": "p", "model": "google.gemma-3-27b"}),
        json.dumps({"job_id": "bad-image", "prompt": "p", "images": ["https://example.com/cat.png"]}),
        json.dumps({"job_id": "unbounded", "prompt": "p", "max_output_tokens": None}),
        json.dumps({"job_id": "bad-effort", "prompt": "p", "reasoning_effort": "extreme"}),
        json.dumps({"job_id": "bad-tools", "prompt": "p", "tools": [{"type": "function", "name": "has space"}]}),
        json.dumps({"job_id": "too-big", "prompt": "word " * 1000}),
        json.dumps({"job_id": "bad-api", "prompt": "p", "api": "completions"}),
    ]


EXPECTED_REJECTIONS = {
    1: "body is not valid JSON",
    2: "field 'job_id' is missing",
    3: "field 'model' is 'google.gemma-3-27b'",
    4: "public https image URL, which Bedrock does not accept",
    5: "field 'max_output_tokens' is null, which would leave the output unbounded",
    6: "field 'reasoning_effort' is 'extreme'",
    7: "field 'tools[0].name' is 'has space'",
    8: f"more than the queue's maximum message size of {MAX_MESSAGE_BYTES} bytes (MaximumMessageSize)",
    9: "field 'api' is 'completions'",
    200: "job_id 'ok-0' is also on line 10",
}


def write_jobs(path: Path, stack) -> None:
    valid = []
    for index in range(SUCCEEDING):
        job = {"job_id": f"ok-{index}", "prompt": f"Question number {index}."}
        if index % 3 == 1:
            job["api"] = "responses"
        if index % 4 == 2:
            job["model"] = "google.gemma-4-e2b"
        valid.append(job)
    valid += [
        {"job_id": job_id, "prompt": "Look.", "images": [f"s3://{stack.bucket}/inputs/{job_id}.png"]}
        for job_id in IMAGE_JOBS
    ]
    valid += [{"job_id": job_id, "prompt": "Routed."} for job_id in ROUTE_FAILURES]
    valid.append({"job_id": DEAD_LETTERED, "prompt": "Never gets through."})
    duplicate = json.dumps({"job_id": "ok-0", "prompt": "a second job with an earlier job id"})
    lines = locally_invalid_lines() + [json.dumps(job) for job in valid] + [duplicate]
    assert len(lines) == 200
    path.write_text("\n".join(lines) + "\n")


def read_output(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture()
def small_queue(stack):
    stack.clients["sqs"].set_queue_attributes(
        QueueUrl=stack.queue_url, Attributes={"MaximumMessageSize": str(MAX_MESSAGE_BYTES)}
    )
    return stack


def test_submit_200_jobs_accounts_for_every_job(small_queue, driver, emulator, moto_endpoint, tmp_path, capsys):
    stack = small_queue
    # GIVEN 200 lines: 10 invalid, 3 whose image is missing, 2 that Mantle rejects, 1 always throttled,
    # and a Mantle that returns 503 for a quarter of all requests
    jobs_path = tmp_path / "jobs.jsonl"
    out_path = tmp_path / "results.jsonl"
    write_jobs(jobs_path, stack)
    emulator.faults.fail_fraction(1.0, "throttle", job_id=DEAD_LETTERED)
    for job_id in ROUTE_FAILURES:
        emulator.faults.fail_next(1, "route", job_id=job_id)
    emulator.faults.fail_fraction(0.25, "unavailable")
    targets = Targets(stack.queue_url, stack.bucket, stack.job_state_table, f"s3://{stack.bucket}/inputs/")
    virtual_time = [0.0]

    def deliver_instead_of_sleeping(seconds: float) -> None:
        virtual_time[0] += seconds
        for _ in range(3):
            if driver.deliver_once() is None:
                return

    # WHEN the command submits the file and waits
    summary = submit_jobs(
        sqs_client=stack.clients["sqs"],
        dynamodb_client=stack.clients["dynamodb"],
        s3_client=stack.clients["s3"],
        targets=targets,
        jobs_path=jobs_path,
        out_path=out_path,
        timeout_seconds=600,
        poll_interval_seconds=1,
        sleep=deliver_instead_of_sleeping,
        clock=lambda: virtual_time[0],
        progress=False,
    )

    # THEN every line has one output line with a final status, and the summary adds up
    outputs = read_output(out_path)
    assert [output["line"] for output in outputs] == list(range(1, 201))
    by_status: dict[str, list[dict]] = {}
    for output in outputs:
        by_status.setdefault(output["status"], []).append(output)
    assert sorted(by_status) == ["failed", "invalid", "succeeded"]
    assert len(by_status["succeeded"]) == SUCCEEDING == summary.succeeded
    assert len(by_status["invalid"]) == 13 == summary.invalid
    assert len(by_status["failed"]) == 3 == summary.failed
    assert (summary.total, summary.sent, summary.rejected, summary.skipped) == (200, 190, 10, 0)
    assert (summary.unfinished, summary.not_sent) == (0, 0)
    assert not summary.all_succeeded

    # AND each rejected line gives its reason, with the size limit read from the queue
    for line, expected in EXPECTED_REJECTIONS.items():
        assert expected in outputs[line - 1]["error"], line
        assert outputs[line - 1]["record"] is None

    # AND the worker's outcomes carry their records: results, invalid images, rejections, the dead-lettered job
    succeeded = {output["job_id"]: output for output in by_status["succeeded"]}
    assert succeeded["ok-1"]["record"]["api"] == "responses"
    assert all(output["record"]["status"] == "succeeded" for output in succeeded.values())
    failed = {output["job_id"]: output for output in by_status["failed"]}
    assert sorted(failed) == sorted([*ROUTE_FAILURES, DEAD_LETTERED])
    assert "mantle_base_path" in failed["route-0"]["error"]
    assert "dead-letter queue" in failed[DEAD_LETTERED]["error"]
    worker_invalid = {output["job_id"]: output for output in by_status["invalid"] if output["job_id"] in IMAGE_JOBS}
    assert sorted(worker_invalid) == list(IMAGE_JOBS)
    assert "which does not exist" in worker_invalid["img-0"]["record"]["reason"]

    # AND the injected 503s hit some jobs, and no job was called after it had succeeded
    stats = emulator.stats.snapshot()
    assert stats["by_status"]["503"] > 0
    assert all(job["by_status"].get("200", 0) <= 1 for job in stats["jobs"].values())

    # WHEN the missing images are uploaded, the faults are gone, and the command runs again from the command line
    for job_id in IMAGE_JOBS:
        stack.put_input(f"{job_id}.png", b"\x89PNG\r\n\x1a\nimage")
    emulator.reset()
    capsys.readouterr()
    stop = threading.Event()

    def run_worker() -> None:
        while not stop.is_set():
            driver.deliver_once()

    worker = threading.Thread(target=run_worker)
    worker.start()
    try:
        exit_code = main(
            [
                "submit", "--region", "us-east-1", "--jobs", str(jobs_path), "--out", str(out_path),
                "--queue-url", stack.queue_url, "--results-bucket", stack.bucket,
                "--status-table", stack.job_state_table, "--endpoint-url", moto_endpoint,
                "--poll-interval", "0.2", "--timeout", "120", "--no-progress",
            ]
        )
    finally:
        stop.set()
        worker.join()

    # THEN only the jobs that had not succeeded were sent, and now they succeed
    assert exit_code == 1
    printed = capsys.readouterr().out
    assert "succeeded: 190 (already succeeded before this run, not sent again: 184)" in printed
    assert "invalid: 10 (rejected before sending: 10)" in printed
    assert "failed: 0" in printed
    assert "sent in this run: 6" in printed
    rerun = read_output(out_path)
    assert sum(output["skipped"] for output in rerun) == SUCCEEDING
    assert {output["job_id"] for output in rerun if output["status"] == "succeeded" and not output["skipped"]} == {
        *IMAGE_JOBS, *ROUTE_FAILURES, DEAD_LETTERED
    }
    assert sorted(emulator.stats.snapshot()["jobs"]) == sorted([*IMAGE_JOBS, *ROUTE_FAILURES, DEAD_LETTERED])


def test_all_succeeded_exits_zero(stack, worker_environment, moto_endpoint, tmp_path, capsys):
    # GIVEN a file whose only job already succeeded in an earlier run
    stack.clients["dynamodb"].put_item(
        TableName=stack.job_state_table,
        Item={"job_id": {"S": "done"}, "status": {"S": "succeeded"}, "record_key": {"S": "results/done.json"}},
    )
    stack.clients["s3"].put_object(Bucket=stack.bucket, Key="results/done.json", Body=b'{"status": "succeeded"}')
    jobs_path = tmp_path / "jobs.jsonl"
    jobs_path.write_text(json.dumps({"job_id": "done", "prompt": "p"}) + "\n")

    exit_code = main(
        [
            "submit", "--region", "us-east-1", "--jobs", str(jobs_path), "--out", str(tmp_path / "out.jsonl"),
            "--queue-url", stack.queue_url, "--results-bucket", stack.bucket, "--status-table",
            stack.job_state_table, "--endpoint-url", moto_endpoint, "--no-progress",
        ]
    )

    assert exit_code == 0
    assert "sent in this run: 0" in capsys.readouterr().out
    (output,) = read_output(tmp_path / "out.jsonl")
    assert output == {"line": 1, "job_id": "done", "status": "succeeded", "skipped": True, "error": None,
                      "record": {"status": "succeeded"}}


def test_targets_from_stack_outputs(aws_clients, moto_endpoint):
    # GIVEN a stack named as the app names it, with the outputs the command reads
    import boto3

    cloudformation = boto3.client(
        "cloudformation", endpoint_url=moto_endpoint, region_name="us-west-2",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {
            "JobQueueUrl": {"Value": {"Ref": "Queue"}},
            "ResultsBucketName": {"Value": "results-bucket"},
            "JobStatusTableName": {"Value": "job-state"},
            "InputLocation": {"Value": "s3://results-bucket/inputs/"},
        },
    }
    cloudformation.create_stack(StackName="GemmaBatch-us-west-2", TemplateBody=json.dumps(template))

    targets = resolve_targets(cloudformation, "us-west-2")

    sqs = boto3.client(
        "sqs", endpoint_url=moto_endpoint, region_name="us-west-2",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )
    assert "QueueArn" in sqs.get_queue_attributes(QueueUrl=targets.queue_url, AttributeNames=["QueueArn"])["Attributes"]
    assert (targets.results_bucket, targets.status_table) == ("results-bucket", "job-state")
    assert targets.input_location == "s3://results-bucket/inputs/"


def test_missing_stack_names_the_fix(moto_endpoint):
    import boto3

    cloudformation = boto3.client(
        "cloudformation", endpoint_url=moto_endpoint, region_name="eu-central-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )

    with pytest.raises(SubmitError) as raised:
        resolve_targets(cloudformation, "eu-central-1")

    assert "reading the outputs of stack GemmaBatch-eu-central-1 failed" in str(raised.value)
    assert "pass --queue-url, --results-bucket and --status-table" in str(raised.value)


def test_partial_options_are_rejected():
    with pytest.raises(SubmitError, match="give all three of --queue-url, --results-bucket and --status-table"):
        resolve_targets(None, "us-east-1", queue_url="https://example.invalid/queue")
