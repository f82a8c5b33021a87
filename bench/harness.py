"""Shared set-up of the benchmark scripts: loopback services, job resources, worker environment, child processes.

A benchmark script runs as a parent process that hosts moto server and the Mantle emulator on
127.0.0.1, and starts the code it measures in a child process (``python -m bench.<script>
--child ...``), so the worker never shares a GIL with the servers it calls. Children drive the
worker only through ``worker.handler.lambda_handler``, SQS events and environment variables, so
the scripts keep working while the worker's internals change.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
LAMBDA_ROOT = REPOSITORY_ROOT / "lambda"
BUILD_DIR = REPOSITORY_ROOT / "build" / "bench"
CDK_CLI = REPOSITORY_ROOT / "node_modules" / ".bin" / "cdk"
CDK_JSON = REPOSITORY_ROOT / "cdk.json"

REGION = "us-east-1"
ACCESS_KEY_ID = "AKIABENCHKEY00000001"
# Fake credentials for moto server. Every boto3 client of a benchmark points at 127.0.0.1.
FAKE_AWS_ENVIRONMENT = {
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
}
# Variables that could point a client at a real account or endpoint. Children never inherit them.
REMOVED_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "CDK_DEFAULT_ACCOUNT",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
)
CHILD_TIMEOUT_SECONDS = 300


class BenchmarkError(RuntimeError):
    """Raised when a benchmark cannot measure, for example because a child process failed."""


def add_import_paths() -> None:
    """Make the repository root and lambda/ importable, as pytest.ini does for the tests."""
    for path in (REPOSITORY_ROOT, LAMBDA_ROOT):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


def clean_environment() -> dict[str, str]:
    """Return a copy of this process's environment without REMOVED_VARIABLES and per-service AWS endpoints."""
    return {
        name: value
        for name, value in os.environ.items()
        if name not in REMOVED_VARIABLES and not name.startswith("AWS_ENDPOINT_URL_")
    }


def deployed_settings() -> Any:
    """Return the first region's settings from cdk.json: the batch size, memory, model and retry budget of a deploy."""
    add_import_paths()
    from gemma_batch.local.run import load_region_settings

    return load_region_settings(CDK_JSON)


def job_body(job_id: str, prompt_words: int = 50) -> dict[str, Any]:
    """Return a job with a prompt of ``prompt_words`` words (the emulator counts one token per word)."""
    words = " ".join(f"word{index % 97}" for index in range(prompt_words))
    return {"job_id": job_id, "prompt": f"Summarize: {words}"}


class LocalServices:
    """moto server and one Mantle emulator at a time, both on 127.0.0.1, for the lifetime of a ``with`` block."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._clients: dict[str, Any] = {}
        self.moto_endpoint = ""
        self.emulator: Any = None

    def __enter__(self) -> "LocalServices":
        # moto's server logs every request through werkzeug; the figures are the output here.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.moto_endpoint = f"http://{host}:{port}"
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_emulator()
        self._moto.stop()

    def aws_client(self, service_name: str) -> Any:
        if service_name not in self._clients:
            import boto3

            self._clients[service_name] = boto3.client(
                service_name,
                endpoint_url=self.moto_endpoint,
                region_name=REGION,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
        return self._clients[service_name]

    def start_emulator(self, seed: int = 0, latency_seconds: float = 0.0) -> Any:
        """Start a fresh emulator, stopping the previous one, so fault draws start from ``seed``."""
        add_import_paths()
        from gemma_batch.emulator import MantleEmulator

        self.stop_emulator()
        self.emulator = MantleEmulator(region=REGION, host="127.0.0.1", port=0, seed=seed).start()
        self.emulator.faults.set_latency(latency_seconds)
        return self.emulator

    def stop_emulator(self) -> None:
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None

    def create_job_resources(self) -> Any:
        """Create the resources that `make local` creates (queues, bucket, job state table, secret) and store a key.

        Returns the local run's LocalResources. Its job queue moves a message to the dead-letter
        queue after cdk.json's max_receive_count receives.
        """
        add_import_paths()
        from gemma_batch.local.resources import create_resources

        clients = {name: self.aws_client(name) for name in ("sqs", "s3", "dynamodb", "secretsmanager", "sts", "iam")}
        resources = create_resources(clients, deployed_settings().max_receive_count)
        self.aws_client("secretsmanager").put_secret_value(
            SecretId=resources.secret_arn, SecretString=api_key_secret_string()
        )
        return resources

    def queue_message_count(self, queue_url: str) -> int:
        """Return the visible, in-flight and delayed messages of a queue."""
        attributes = self.aws_client("sqs").get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())


def api_key_secret_string(lifetime: timedelta = timedelta(hours=1)) -> str:
    """Return a secret value in the rotation function's format with a freshly minted fake key."""
    add_import_paths()
    from aws_bedrock_token_generator import provide_token
    from botocore.credentials import Credentials

    from bedrock_key import ApiKeySecret

    class _StaticCredentialProvider:
        def load(self) -> Credentials:
            return Credentials(ACCESS_KEY_ID, "fake-secret-access-key", "fake-session-token")

    api_key = provide_token(region=REGION, aws_credentials_provider=_StaticCredentialProvider(), expiry=lifetime)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    return ApiKeySecret(
        api_key=api_key,
        expires_at=now + lifetime,
        issued_at=now,
        issued_by="arn:aws:sts::123456789012:assumed-role/gemma-batch-key-issuer/bench",
    ).to_json()


def worker_environment(services: LocalServices, resources: Any, **overrides: str) -> dict[str, str]:
    """Return a child's environment: this process's without real-AWS settings, plus the worker's variables.

    The worker's variables are the ones `make local` sets (gemma_batch.local.run), which follow
    what the stack sets, so a variable that the worker starts to require reaches the benchmarks
    too. The backoff is short so runs stay fast. It changes how long a retry waits, never how
    many requests are sent.
    """
    add_import_paths()
    from gemma_batch.local.run import LocalRunOptions, build_worker_environment

    settings = deployed_settings()
    environment = clean_environment()
    environment.update(FAKE_AWS_ENVIRONMENT)
    environment.update(
        build_worker_environment(
            settings,
            resources,
            services.emulator.root_url + settings.mantle_base_path,
            LocalRunOptions(backoff_base_seconds=0.001, backoff_max_seconds=0.02),
        )
    )
    environment.update(
        {
            "AWS_ENDPOINT_URL": services.moto_endpoint,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "PYTHONPATH": os.pathsep.join([str(REPOSITORY_ROOT), str(LAMBDA_ROOT)]),
        }
    )
    environment.update(overrides)
    return environment


def run_child(module: str, arguments: list[str], environment: dict[str, str]) -> dict[str, Any]:
    """Run ``python -m <module> --child <arguments>`` and return the JSON document it wrote.

    The child's stdout (EMF metrics and logs) is discarded. Raises BenchmarkError with the end of
    its stderr when it fails.
    """
    with tempfile.TemporaryDirectory(prefix="bench-child-") as folder:
        output_path = Path(folder) / "result.json"
        command = [sys.executable, "-m", module, "--child", "--child-output", str(output_path), *arguments]
        try:
            completed = subprocess.run(
                command,
                cwd=REPOSITORY_ROOT,
                env=environment,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                timeout=CHILD_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise BenchmarkError(f"{module} child timed out after {CHILD_TIMEOUT_SECONDS} s") from None
        if completed.returncode != 0 or not output_path.exists():
            raise BenchmarkError(
                f"{module} child failed with exit code {completed.returncode}:\n{_tail(completed.stderr)}"
            )
        return json.loads(output_path.read_text(encoding="utf-8"))


def write_child_output(path: str, document: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(document), encoding="utf-8")


# Child side: everything below imports the worker, so only child processes call it. ----------------------------


class InvocationTimer:
    """Wraps a Lambda handler and records each invocation's wall time and the process's CPU time, in seconds.

    The CPU time is that of every thread of the process, so it includes the worker's job threads.
    """

    def __init__(self, handler: Callable[[dict[str, Any], Any], Any]) -> None:
        self._handler = handler
        self.durations: list[float] = []
        self.cpu_times: list[float] = []

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        started = time.perf_counter()
        cpu_started = time.process_time()
        try:
            return self._handler(event, context)
        finally:
            self.durations.append(time.perf_counter() - started)
            self.cpu_times.append(time.process_time() - cpu_started)


class RecordNotFinishedError(Exception):
    """Raised by the one-at-a-time handler when the worker returned a record to the queue."""


def one_message_at_a_time(handler: Callable[[dict[str, Any], Any], Any]) -> Callable[[dict[str, Any], Any], Any]:
    """Return a handler that runs each record of a batch through ``handler`` alone, one after the other.

    This is the loop of Powertools' BatchProcessor with process_partial_response: the record
    handler does the worker's full work for one message, and a failed record is reported in
    ``batchItemFailures`` as the worker would report it.
    """
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    processor = BatchProcessor(event_type=EventType.SQS)

    def record_handler(record: SQSRecord, lambda_context: Any) -> None:
        response = handler({"Records": [record.raw_event]}, lambda_context)
        if (response or {}).get("batchItemFailures"):
            raise RecordNotFinishedError(f"the worker returned message {record.message_id} to the queue")

    def batch_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )

    return batch_handler


def child_sqs_client() -> Any:
    """Create a child process's boto3 SQS client. It reaches moto server through AWS_ENDPOINT_URL."""
    import boto3

    return boto3.client("sqs", region_name=REGION)


def send_jobs(sqs_client: Any, queue_url: str, bodies: list[dict[str, Any]]) -> None:
    """Send job bodies in batches of 10, the SendMessageBatch limit."""
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        response = sqs_client.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(index), "MessageBody": json.dumps(body)} for index, body in enumerate(chunk)],
        )
        if response.get("Failed"):
            raise BenchmarkError(f"sending jobs to {queue_url} failed: {response['Failed']}")


def run_cdk_synth(output_dir: Path, app_command: str | None = None) -> float:
    """Run ``cdk synth --quiet`` into ``output_dir`` and return its wall time in seconds.

    ``app_command`` replaces cdk.json's app. Raises BenchmarkError with the CLI's output when
    synth fails.
    """
    if not CDK_CLI.exists():
        raise BenchmarkError(f"{CDK_CLI} not found; run `make install` first")
    command = [str(CDK_CLI), "synth", "--quiet", "--output", str(output_dir)]
    if app_command is not None:
        command += ["--app", app_command]
    environment = clean_environment()
    started = time.perf_counter()
    completed = subprocess.run(
        command, cwd=REPOSITORY_ROOT, env=environment, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise BenchmarkError(f"cdk synth into {output_dir} failed:\n{_tail(completed.stdout + completed.stderr)}")
    return elapsed


def find_worker_asset(assembly_dir: Path) -> Path:
    """Return the staged asset folder of the worker function in a synthesized assembly.

    It is the asset folder, among those that the assembly's templates reference as function
    code, that contains worker/handler.py. Folders left from earlier synths into the same
    assembly are ignored.
    """
    referenced = set()
    for template_path in assembly_dir.glob("*.template.json"):
        resources = json.loads(template_path.read_text(encoding="utf-8")).get("Resources", {})
        for resource in resources.values():
            if resource.get("Type") != "AWS::Lambda::Function":
                continue
            object_key = resource.get("Properties", {}).get("Code", {}).get("S3Key")
            if isinstance(object_key, str):
                referenced.add(assembly_dir / f"asset.{object_key.removesuffix('.zip')}")
    matches = sorted(folder for folder in referenced if (folder / "worker" / "handler.py").is_file())
    if len(matches) != 1:
        raise BenchmarkError(
            f"expected one worker asset (a function's asset folder with worker/handler.py) in {assembly_dir}, "
            f"found {len(matches)}; synthesize with bundling on (the default) first"
        )
    return matches[0]


def directory_size_bytes(path: Path) -> int:
    """Return the total size of the files under ``path``, as they would be unzipped."""
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file() and not item.is_symlink())


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
