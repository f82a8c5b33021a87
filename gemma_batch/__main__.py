"""Command line of gemma_batch. Each subcommand has an ``add_<name>_command`` and a ``run_<name>`` function."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

CommandRunner = Callable[[argparse.Namespace], int]


def add_emulator_command(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "emulator",
        help="run the Mantle emulator, an OpenAI-compatible stand-in for bedrock-mantle",
        description=(
            "Serve the bedrock-mantle API for Gemma 4 on a loopback address until interrupted. "
            "Point MANTLE_BASE_URL at the printed base URL."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8765, help="TCP port to listen on, 0 for any free port (default: 8765)"
    )
    parser.add_argument(
        "--region",
        default="us-east-1",
        help="AWS region that API keys must be signed for (default: us-east-1)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault injection's random source (default: 0)")
    parser.add_argument(
        "--no-echo-service-tier",
        action="store_true",
        help="leave service_tier out of responses, as bedrock-mantle may do",
    )
    parser.set_defaults(run=run_emulator)


def run_emulator(arguments: argparse.Namespace) -> int:
    from gemma_batch.emulator import MantleEmulator

    emulator = MantleEmulator(
        region=arguments.region,
        host=arguments.host,
        port=arguments.port,
        seed=arguments.seed,
        echo_service_tier=not arguments.no_echo_service_tier,
    ).start()
    print(f"Mantle emulator for {arguments.region}: MANTLE_BASE_URL={emulator.base_url}", flush=True)
    print(f"Control endpoints: {emulator.root_url}/_emulator/stats, /_emulator/faults, /_emulator/reset", flush=True)
    try:
        emulator.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def add_local_command(subcommands: argparse._SubParsersAction) -> None:
    from gemma_batch.local.arguments import fraction, port, positive_seconds

    parser = subcommands.add_parser(
        "local",
        help="run jobs end to end on this machine, against moto server and the Mantle emulator",
        description=(
            "Start moto server and the Mantle emulator on 127.0.0.1, create the job queue, its dead-letter queue, "
            "the results bucket and the API key secret there, fill the secret with the rotation function, send the "
            "jobs through SQS into the worker handler and print a summary. Exits with 1 when a job is lost or SQS "
            "rejects a line, and with 2 when an input or a port is unusable."
        ),
    )
    parser.add_argument(
        "--jobs",
        metavar="FILE",
        help="JSON Lines file with one job body per line, sent as it is (default: gemma_batch/local/sample_jobs.jsonl)",
    )
    parser.add_argument(
        "--faults",
        metavar="FILE",
        help=(
            "emulator fault rules to load, in the JSON format of POST /_emulator/faults (default: "
            "gemma_batch/local/sample_faults.json without --jobs, no rules with --jobs)"
        ),
    )
    parser.add_argument(
        "--fault-rate",
        type=fraction,
        default=0.0,
        metavar="FRACTION",
        help="fraction from 0 to 1 of Mantle requests that the emulator fails with 429 or 503, half each (default: 0)",
    )
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="after the summary, leave the servers up and print their URLs and the environment variables to use them",
    )
    parser.add_argument(
        "--moto-port", type=port, default=5000, help="TCP port of moto server, 0 for any free port (default: 5000)"
    )
    parser.add_argument(
        "--emulator-port",
        type=port,
        default=8765,
        help="TCP port of the Mantle emulator, 0 for any free port (default: 8765)",
    )
    parser.add_argument(
        "--output-dir",
        default="local-run",
        metavar="DIR",
        help="folder for the downloaded results, failure records, dead-letter messages and summary "
        "(default: local-run)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=600.0,
        metavar="SECONDS",
        help="seconds to deliver jobs before the run stops and counts unfinished jobs as lost (default: 600)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the emulator's fault injection (default: 0)")
    parser.set_defaults(run=run_local)


def run_local(arguments: argparse.Namespace) -> int:
    from pathlib import Path

    from gemma_batch.local import run as local_run
    from gemma_batch.local.job_files import SAMPLE_FAULTS_FILE, SAMPLE_JOBS_FILE

    if arguments.faults is not None:
        faults_file = Path(arguments.faults)
    else:
        faults_file = SAMPLE_FAULTS_FILE if arguments.jobs is None else None
    options = local_run.LocalRunOptions(
        jobs_file=Path(arguments.jobs) if arguments.jobs is not None else SAMPLE_JOBS_FILE,
        faults_file=faults_file,
        fault_rate=arguments.fault_rate,
        keep_running=arguments.keep_running,
        moto_port=arguments.moto_port,
        emulator_port=arguments.emulator_port,
        output_dir=Path(arguments.output_dir),
        timeout_seconds=arguments.timeout,
        seed=arguments.seed,
    )
    if arguments.log_level != "DEBUG":
        # moto server logs every request it serves at INFO.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    try:
        summary = local_run.run_local(options)
    except local_run.LocalRunError as error:
        print(f"The local run failed: {error}", file=sys.stderr)
        return 2
    return local_run.exit_code(summary)


def add_simulate_ramp_command(subcommands: argparse._SubParsersAction) -> None:
    from gemma_batch.ramp_simulator import add_arguments

    parser = subcommands.add_parser(
        "simulate-ramp",
        help="simulate the ramp controller against the emulator's token quota and 503 episodes",
        description=(
            "Run the ramp controller's decision logic minute by minute against a simulated pool, the Mantle "
            "emulator's tokens-per-minute quota and chosen 503 episodes, and print the concurrency over time."
        ),
    )
    add_arguments(parser)
    parser.set_defaults(run=run_simulate_ramp)


def run_simulate_ramp(arguments: argparse.Namespace) -> int:
    from gemma_batch.ramp_simulator import run_from_arguments

    return run_from_arguments(arguments)


def add_submit_command(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "submit",
        help="send a JSONL file of jobs to a region's queue and write their results to a JSONL file",
        description=(
            "Send each line of --jobs as one job to the region's job queue, wait for the jobs to finish, and write "
            "one output line per job to --out. Jobs that already succeeded are not sent again. The queue, results "
            "bucket and status table come from the stack GemmaBatch-<region>, or from the three options that name "
            "them. Exits 1 if any job failed, was invalid or did not finish."
        ),
    )
    parser.add_argument("--region", required=True, help="AWS region of the stack, such as us-west-2")
    parser.add_argument("--jobs", required=True, type=Path, help="JSONL file with one job per line")
    parser.add_argument("--out", required=True, type=Path, help="JSONL file to write one outcome per job to")
    parser.add_argument("--queue-url", help="job queue URL, instead of the stack output JobQueueUrl")
    parser.add_argument("--results-bucket", help="results bucket name, instead of the stack output ResultsBucketName")
    parser.add_argument("--status-table", help="job state table name, instead of the stack output JobStatusTableName")
    parser.add_argument(
        "--endpoint-url", help="AWS endpoint for every client, such as the local run's moto server (default: AWS)"
    )
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds to wait for the jobs to finish (default: 3600)"
    )
    parser.add_argument(
        "--poll-interval", type=float, default=5.0, help="seconds between status reads (default: 5)"
    )
    parser.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    parser.set_defaults(run=run_submit)


def run_submit(arguments: argparse.Namespace) -> int:
    import boto3

    from gemma_batch.submit import SubmitError, print_summary, resolve_targets, submit_jobs

    session = boto3.session.Session(region_name=arguments.region)

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=arguments.endpoint_url)

    try:
        targets = resolve_targets(
            client("cloudformation"),
            arguments.region,
            queue_url=arguments.queue_url,
            results_bucket=arguments.results_bucket,
            status_table=arguments.status_table,
        )
        summary = submit_jobs(
            sqs_client=client("sqs"),
            dynamodb_client=client("dynamodb"),
            s3_client=client("s3"),
            targets=targets,
            jobs_path=arguments.jobs,
            out_path=arguments.out,
            timeout_seconds=arguments.timeout,
            poll_interval_seconds=arguments.poll_interval,
            progress=not arguments.no_progress,
        )
    except SubmitError as error:
        print(f"submit failed: {error}", file=sys.stderr)
        return 2
    print_summary(summary, arguments.out, sys.stdout)
    return 0 if summary.all_succeeded else 1


# Add a subcommand by writing its add_<name>_command function and listing it here.
COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    add_emulator_command,
    add_local_command,
    add_simulate_ramp_command,
    add_submit_command,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gemma_batch",
        description="Tools for Gemma 4 batch jobs on Amazon Bedrock that run on your machine.",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level of the command (default: INFO)",
    )
    subcommands = parser.add_subparsers(dest="command", required=True)
    for add_command in COMMANDS:
        add_command(subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    logging.basicConfig(level=arguments.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runner: CommandRunner = arguments.run
    return runner(arguments)


if __name__ == "__main__":
    sys.exit(main())
