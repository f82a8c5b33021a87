"""The baseline of the cold-start and retry benchmarks: an SQS job handler written the usual way.

It imports boto3, the OpenAI SDK and Powertools (Logger, Metrics, Tracer) at the top, builds
its clients on every call, keeps the OpenAI SDK's default retries (2) and wraps each request in
one application retry. It reads the worker's environment variables and secret format, so both
run against the same loopback services. This is a benchmark baseline, never deployed.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import boto3
import openai
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(service="naive-gemma-worker")
metrics = Metrics(namespace="NaiveGemmaWorker", service="naive-gemma-worker")
tracer = Tracer(service="naive-gemma-worker")

APPLICATION_ATTEMPTS = 2
# (label, time.monotonic()) of the last call's phase ends; bench/cold_start_probe.py reads them.
PHASE_MARKERS: list[tuple[str, float]] = []


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    PHASE_MARKERS.clear()
    secrets_client = boto3.client("secretsmanager")
    s3_client = boto3.client("s3")
    PHASE_MARKERS.append(("clients", time.monotonic()))

    failures = []
    for record in event.get("Records", []):
        try:
            job = parse_job(record["body"])
            PHASE_MARKERS.append(("job parsed", time.monotonic()))
            api_key = read_api_key(secrets_client)
            client = openai.OpenAI(base_url=os.environ["MANTLE_BASE_URL"], api_key=api_key)
            answer = complete_with_application_retry(client, job)
            s3_client.put_object(
                Bucket=os.environ["RESULTS_BUCKET"],
                Key=f"results/{job['job_id']}.json",
                Body=json.dumps({"job_id": job["job_id"], "answer": answer}).encode("utf-8"),
            )
            metrics.add_metric(name="JobsSucceeded", unit=MetricUnit.Count, value=1)
        except Exception:
            logger.exception("job in message %s failed", record.get("messageId"))
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def parse_job(body: str) -> dict[str, Any]:
    job = json.loads(body)
    if not isinstance(job, dict) or not isinstance(job.get("job_id"), str) or not isinstance(job.get("prompt"), str):
        raise ValueError("a job is a JSON object with the strings job_id and prompt")
    return job


def read_api_key(secrets_client: Any) -> str:
    response = secrets_client.get_secret_value(SecretId=os.environ["API_KEY_SECRET_ARN"], VersionStage="AWSCURRENT")
    return json.loads(response["SecretString"])["api_key"]


def complete_with_application_retry(client: openai.OpenAI, job: dict[str, Any]) -> str | None:
    """Send the job's request, retrying once on top of the SDK's own retries."""
    for attempt in range(1, APPLICATION_ATTEMPTS + 1):
        try:
            response = client.chat.completions.create(
                model=os.environ["MODEL_ID"],
                messages=[{"role": "user", "content": job["prompt"]}],
                max_tokens=int(os.environ.get("DEFAULT_MAX_OUTPUT_TOKENS", "1024")),
                service_tier=os.environ.get("SERVICE_TIER", "flex"),  # type: ignore[arg-type]
                extra_headers={"X-Job-Id": job["job_id"]},
            )
            return response.choices[0].message.content
        except openai.APIStatusError:
            if attempt == APPLICATION_ATTEMPTS:
                raise
    return None
