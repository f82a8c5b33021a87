"""The text a local run prints: the summary, and with --keep-running the servers and the environment to use them."""

from __future__ import annotations

from typing import Mapping

from gemma_batch.local.outcomes import DEAD_LETTERS_FOLDER, FAILURES_FOLDER, RESULTS_FOLDER, SUMMARY_FILE, RunSummary


def format_summary(summary: RunSummary) -> str:
    """Return the summary as aligned lines, followed by the lost jobs, if any."""
    by_status = ", ".join(f"{status}: {count}" for status, count in sorted(summary.http_requests_by_status.items()))
    output = summary.output_dir.rstrip("/")
    lines = [
        f"Local run finished in {summary.elapsed_seconds:.1f} s: {summary.jobs} jobs from {summary.jobs_file}",
        f"  done                {summary.done:>6}   results in {output}/{RESULTS_FOLDER}/",
        f"  failed              {summary.failed:>6}   failure records in {output}/{FAILURES_FOLDER}/",
        f"  invalid             {summary.invalid:>6}   failure records in {output}/{FAILURES_FOLDER}/",
        f"  dead-lettered       {summary.dead_lettered:>6}   messages in {output}/{DEAD_LETTERS_FOLDER}/",
        f"  lost                {summary.lost:>6}",
        f"  not sent            {summary.not_sent:>6}   lines that SQS rejected",
        f"  retried deliveries  {summary.retried_deliveries:>6}",
        f"  HTTP requests sent  {summary.http_requests:>6}   by status: {by_status or 'none'}",
        f"  input tokens        {summary.input_tokens:>6}",
        f"  output tokens       {summary.output_tokens:>6}",
        f"Summary with every job's end: {output}/{SUMMARY_FILE}",
    ]
    if summary.lost:
        lines.append("Lost jobs (no result, no failure record, not in the dead-letter queue):")
        for end in summary.lost_jobs:
            lines.append(f"  line {end.line_number}: job {end.job_id or '(no job id)'}, message {end.message_id}")
        if summary.jobs_left_in_queue:
            lines.append("Some of them are still in the job queue because the run stopped at --timeout. Raise it.")
    if summary.not_sent:
        lines.append("Lines that SQS rejected, so they never became messages:")
        for end in summary.unsent_jobs:
            lines.append(f"  line {end.line_number}: job {end.job_id or '(no job id)'}: {end.send_error}")
    return "\n".join(lines)


def format_servers(
    servers: Mapping[str, str], environment: Mapping[str, str], rotation_interval_minutes: int
) -> str:
    """Return the servers' URLs and the export lines of the environment variables that reach them."""
    lines = ["The servers keep running until you press Ctrl-C:"]
    lines += [f"  {name}: {url}" for name, url in servers.items()]
    lines.append("Environment variables for the AWS CLI, boto3 and the worker (export them in your shell):")
    lines += [f"  export {name}={value}" for name, value in environment.items()]
    lines.append(
        f"Nothing consumes the job queue now. The API key secret is rotated every {rotation_interval_minutes} minutes."
    )
    return "\n".join(lines)
