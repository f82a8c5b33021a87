"""One cold start, run by bench/cold_start.py in a fresh process: import a handler, then call it with one SQS record.

    python bench/cold_start_probe.py worker|naive RECORD_FILE OUTPUT_FILE

It imports only the standard library before the handler and writes its timestamps
(``time.monotonic()``, which every process on the machine shares) to OUTPUT_FILE. The parent
takes the moment the first model request reaches the emulator as the end of the cold start.
"""

import time

PROCESS_STARTED = time.monotonic()

import importlib  # noqa: E402 - the start time comes first
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

HANDLER_MODULES = {"worker": "worker.handler", "naive": "bench.naive_handler"}
IMPORT_START_LINE = "bench-probe: handler import starts"
IMPORT_END_LINE = "bench-probe: handler import ended"


class LogTimeline(logging.Handler):
    """Stores when each log record was emitted, by logger name, without formatting or printing it."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.entries: list[tuple[float, str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.entries.append((time.monotonic(), record.name, record.threadName or ""))


class ProbeContext:
    """The Lambda context attributes that the worker and Powertools read."""

    function_name = "gemma-batch-cold-start-probe"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:gemma-batch-cold-start-probe"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/gemma-batch-cold-start-probe"
    log_stream_name = "probe"

    def __init__(self) -> None:
        self._deadline = time.monotonic() + 300

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> int:
    handler_name, record_path, output_path = sys.argv[1:4]
    # The script's own folder comes first on sys.path; the handlers import from PYTHONPATH only.
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]
    with open(record_path, encoding="utf-8") as record_file:
        event = {"Records": [json.load(record_file)]}
    context = ProbeContext()

    # Lambda's Python runtime sets the root logger to the function's log level (INFO here).
    timeline = LogTimeline()
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger().addHandler(timeline)

    print(IMPORT_START_LINE, file=sys.stderr, flush=True)
    import_started = time.monotonic()
    module = importlib.import_module(HANDLER_MODULES[handler_name])
    import_ended = time.monotonic()
    print(IMPORT_END_LINE, file=sys.stderr, flush=True)

    handler_called = time.monotonic()
    response = module.lambda_handler(event, context)
    handler_returned = time.monotonic()

    document = {
        "process_started": PROCESS_STARTED,
        "import_started": import_started,
        "import_ended": import_ended,
        "handler_called": handler_called,
        "handler_returned": handler_returned,
        "response": response,
        "log_timeline": timeline.entries,
        "phase_markers": list(getattr(module, "PHASE_MARKERS", [])),
    }
    with open(output_path, "w", encoding="utf-8") as output_file:
        json.dump(document, output_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
