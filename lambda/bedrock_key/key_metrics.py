"""Names and output of the API key metrics: the one place that defines them.

The rotation function writes these metrics in CloudWatch Embedded Metric Format (EMF) to stdout,
and ``stacks/key_alarms.py`` loads this file to build the key alarms on the same names. The module
imports only the standard library, so the CDK app can load it without the function's dependencies.
Format reference:
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
"""

from __future__ import annotations

import json
import sys
import time
from typing import Mapping, TextIO

SERVICE_DIMENSION = "Service"
ROTATION_SERVICE = "gemma-batch-key-rotation"

ROTATION_FAILURES = "KeyRotationFailures"
"""Rotation steps that raised, counted once per failed invocation. A succeeding step writes 0."""
ROTATIONS_COMPLETED = "KeyRotationsCompleted"
"""finishSecret invocations that moved AWSCURRENT to a new key."""
KEY_VALIDITY_SECONDS = "ApiKeyValiditySeconds"
"""Seconds until the AWSCURRENT key stops working, written by every key check; 0 when no valid key is stored."""

COUNT = "Count"
SECONDS = "Seconds"
UNITS = {ROTATION_FAILURES: COUNT, ROTATIONS_COMPLETED: COUNT, KEY_VALIDITY_SECONDS: SECONDS}


def emf_document(namespace: str, values: Mapping[str, float], timestamp_ms: int) -> dict:
    """Build one EMF document with ``values`` under the rotation function's ``Service`` dimension."""
    unknown = sorted(set(values) - set(UNITS))
    if unknown:
        raise ValueError(f"unknown key metric {unknown[0]!r}; define it in bedrock_key.key_metrics.UNITS first")
    document: dict = {
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [[SERVICE_DIMENSION]],
                    "Metrics": [{"Name": name, "Unit": UNITS[name]} for name in values],
                }
            ],
        },
        SERVICE_DIMENSION: ROTATION_SERVICE,
    }
    document.update(values)
    return document


def write_metrics(namespace: str, values: Mapping[str, float], stream: TextIO | None = None) -> None:
    """Write one EMF document as a single line; Lambda sends stdout to CloudWatch Logs, which extracts the metrics."""
    document = emf_document(namespace, values, int(time.time() * 1000))
    target = stream if stream is not None else sys.stdout
    target.write(json.dumps(document, separators=(",", ":")) + "\n")
    target.flush()
