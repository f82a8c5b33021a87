"""Read the worker pool's request counts for one window from CloudWatch (GetMetricData)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ramp_controller.policy import WindowCounts

# The worker emits these counts in embedded metric format with one dimension, Service.
REQUESTS = "Requests"
THROTTLED_429 = "Throttled429"
UNAVAILABLE_503 = "Unavailable503"
SERVICE_DIMENSION = "Service"
PERIOD_SECONDS = 60


class PoolMetricsReader:
    def __init__(self, cloudwatch_client: Any, namespace: str, worker_service: str) -> None:
        self._client = cloudwatch_client
        self._namespace = namespace
        self._worker_service = worker_service

    def read(self, start: datetime, end: datetime) -> WindowCounts:
        """Return the sums of the three counts from ``start`` (inclusive) to ``end`` (exclusive).

        Both ends must lie on whole minutes. Minutes without datapoints count as zero.
        """
        queries = [
            {
                "Id": query_id,
                "MetricStat": {
                    "Metric": {
                        "Namespace": self._namespace,
                        "MetricName": metric_name,
                        "Dimensions": [{"Name": SERVICE_DIMENSION, "Value": self._worker_service}],
                    },
                    "Period": PERIOD_SECONDS,
                    "Stat": "Sum",
                },
                "ReturnData": True,
            }
            for query_id, metric_name in (
                ("requests", REQUESTS),
                ("throttled", THROTTLED_429),
                ("unavailable", UNAVAILABLE_503),
            )
        ]
        totals = {"requests": 0.0, "throttled": 0.0, "unavailable": 0.0}
        arguments: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end}
        while True:
            response = self._client.get_metric_data(**arguments)
            for result in response.get("MetricDataResults", []):
                totals[result["Id"]] += sum(result.get("Values", []))
            token = response.get("NextToken")
            if not token:
                break
            arguments["NextToken"] = token
        return WindowCounts(
            seconds=(end - start).total_seconds(),
            requests=round(totals["requests"]),
            throttled_429=round(totals["throttled"]),
            unavailable_503=round(totals["unavailable"]),
        )
