"""The controller's decision metrics in CloudWatch embedded metric format, one document per run.

The names are fixed because the dashboard reads exactly these names. Every metric has one
dimension, ``Service``, set to METRICS_SERVICE. Format reference:
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any, TextIO

RAMP_RATE = "RampRate"
"""The rate after the decision, in requests per minute."""
RAMP_CONCURRENCY = "RampConcurrency"
"""The maximum concurrency the event source mapping has after the run."""
RAMP_CUTS = "RampCuts"
RAMP_RAISES = "RampRaises"
RAMP_HOLDS = "RampHolds"
RAMP_REAPPLIED = "RampReapplied"
"""1 when the run found the mapping changed behind its back, for example reset by a deployment."""

METRIC_UNITS = {
    RAMP_RATE: "None",
    RAMP_CONCURRENCY: "Count",
    RAMP_CUTS: "Count",
    RAMP_RAISES: "Count",
    RAMP_HOLDS: "Count",
    RAMP_REAPPLIED: "Count",
}
METRIC_NAMES = tuple(METRIC_UNITS)
SERVICE_DIMENSION = "Service"


@dataclass(frozen=True)
class DecisionRecord:
    """One run's outcome, as it is logged and emitted. ``action`` is cut, raise, hold or disabled."""

    action: str
    reason: str
    previous_rate: float
    rate: float
    previous_concurrency: int | None
    concurrency: int
    reapplied: bool

    def metric_values(self) -> dict[str, float]:
        return {
            RAMP_RATE: self.rate,
            RAMP_CONCURRENCY: self.concurrency,
            RAMP_CUTS: int(self.action == "cut"),
            RAMP_RAISES: int(self.action == "raise"),
            RAMP_HOLDS: int(self.action == "hold"),
            RAMP_REAPPLIED: int(self.reapplied),
        }


def emf_document(record: DecisionRecord, namespace: str, service: str, timestamp_ms: int) -> dict[str, Any]:
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [[SERVICE_DIMENSION]],
                    "Metrics": [{"Name": name, "Unit": METRIC_UNITS[name]} for name in METRIC_NAMES],
                }
            ],
        },
        SERVICE_DIMENSION: service,
        # Not metrics: properties that CloudWatch Logs Insights can query.
        "Decision": record.action,
        "Reason": record.reason,
    }
    document.update(record.metric_values())
    return document


def write_emf(record: DecisionRecord, namespace: str, service: str, timestamp_ms: int,
              stream: TextIO | None = None) -> None:
    """Write one EMF document as a single line to stdout, which Lambda sends to CloudWatch Logs."""
    target = stream if stream is not None else sys.stdout
    target.write(json.dumps(emf_document(record, namespace, service, timestamp_ms), separators=(",", ":")) + "\n")
    target.flush()
