"""Worker metrics in CloudWatch Embedded Metric Format (EMF), written to stdout once per invocation.

The metric names are fixed because the alarms read exactly these names. Every metric has one
dimension, ``Service``, set to METRICS_SERVICE. Format reference:
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any, TextIO

REQUESTS = "Requests"
"""Every HTTP request sent to Mantle, whatever its outcome."""
THROTTLED_429 = "Throttled429"
UNAVAILABLE_503 = "Unavailable503"
OTHER_ERRORS = "OtherErrors"
"""Failed requests other than 429 and 503: other statuses, connection errors and timeouts."""
INPUT_TOKENS = "InputTokens"
CACHED_INPUT_TOKENS = "CachedInputTokens"
"""Input tokens that Mantle served from its prompt cache, when it reports them."""
OUTPUT_TOKENS = "OutputTokens"
JOBS_SUCCEEDED = "JobsSucceeded"
JOBS_FAILED = "JobsFailed"
"""Jobs that ended for good without a result: invalid bodies and jobs that Mantle rejected."""
TIER_ESCALATIONS = "TierEscalations"
"""Jobs moved from the Flex tier to the standard tier because Flex kept answering 503 close to their deadline."""
REQUEST_LATENCY = "RequestLatency"
"""Milliseconds of each successful Mantle request, emitted as a list so CloudWatch can compute percentiles."""
LATENCY_UNIT = "Milliseconds"
# EMF accepts at most 100 values per metric in one document; a batch of 10 jobs records at most 10.
MAX_LATENCY_VALUES = 100

METRIC_NAMES = (
    REQUESTS,
    THROTTLED_429,
    UNAVAILABLE_503,
    OTHER_ERRORS,
    INPUT_TOKENS,
    CACHED_INPUT_TOKENS,
    OUTPUT_TOKENS,
    JOBS_SUCCEEDED,
    JOBS_FAILED,
    TIER_ESCALATIONS,
)
SERVICE_DIMENSION = "Service"
METRIC_UNIT = "Count"


class MetricsRecorder:
    """Thread-safe counters for one invocation. Every metric is emitted, zeros included, so alarms see data."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(METRIC_NAMES, 0)
        self._latencies_ms: list[int] = []

    def add(self, name: str, value: int = 1) -> None:
        if name not in self._values:
            raise ValueError(f"unknown metric {name!r}; add it to worker.metrics.METRIC_NAMES first")
        with self._lock:
            self._values[name] += value

    def values(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)

    def observe_latency(self, milliseconds: int) -> None:
        """Record one successful request's latency; values beyond MAX_LATENCY_VALUES are dropped."""
        with self._lock:
            if len(self._latencies_ms) < MAX_LATENCY_VALUES:
                self._latencies_ms.append(milliseconds)

    def latencies_ms(self) -> list[int]:
        with self._lock:
            return list(self._latencies_ms)

    def emf_document(self, namespace: str, service: str, timestamp_ms: int) -> dict[str, Any]:
        document: dict[str, Any] = {
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [
                    {
                        "Namespace": namespace,
                        "Dimensions": [[SERVICE_DIMENSION]],
                        "Metrics": [{"Name": name, "Unit": METRIC_UNIT} for name in METRIC_NAMES],
                    }
                ],
            },
            SERVICE_DIMENSION: service,
        }
        document.update(self.values())
        latencies = self.latencies_ms()
        # An empty list is not a valid EMF value, so an invocation without a success leaves the metric out.
        if latencies:
            document["_aws"]["CloudWatchMetrics"][0]["Metrics"].append({"Name": REQUEST_LATENCY, "Unit": LATENCY_UNIT})
            document[REQUEST_LATENCY] = latencies
        return document

    def flush(self, namespace: str, service: str, stream: TextIO | None = None) -> None:
        """Write one EMF document as a single line.

        Lambda sends stdout to CloudWatch Logs, which extracts the metrics from the document.
        """
        document = self.emf_document(namespace, service, int(time.time() * 1000))
        target = stream if stream is not None else sys.stdout
        target.write(json.dumps(document, separators=(",", ":")) + "\n")
        target.flush()
