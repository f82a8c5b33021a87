"""Read the metrics that a synthesized template's alarms and dashboard use, for the template and cross-check tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tests.infra.conftest import resources_of_type


@dataclass(frozen=True)
class MetricKey:
    """A metric as CloudWatch identifies it. Dimension values that are tokens appear as ``${...}`` text."""

    namespace: str
    metric_name: str
    dimensions: frozenset[tuple[str, str]]


def token_text(value: Any) -> str:
    """Return a string for a template value, writing a Ref as ``${Id}`` and a GetAtt as ``${Id.Attribute}``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        return "${" + value["Ref"] + "}"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        return "${" + f"{logical_id}.{attribute}" + "}"
    raise AssertionError(f"unexpected template value {value!r}")


def alarm_metrics(alarm: dict) -> list[MetricKey]:
    """Return the metrics one AWS::CloudWatch::Alarm reads, from its MetricStat queries or its single metric."""
    properties = alarm["Properties"]
    if "Metrics" in properties:
        found = []
        for query in properties["Metrics"]:
            if "MetricStat" in query:
                metric = query["MetricStat"]["Metric"]
                found.append(_key(metric["Namespace"], metric["MetricName"], metric.get("Dimensions", [])))
        return found
    return [_key(properties["Namespace"], properties["MetricName"], properties.get("Dimensions", []))]


def alarms_with_prefix(template: dict, prefix: str) -> dict[str, dict]:
    return {
        logical_id: alarm
        for logical_id, alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").items()
        if logical_id.startswith(prefix)
    }


def dashboard_body(template: dict) -> dict:
    """Return the only dashboard's body as JSON, with tokens written as ``${...}`` text."""
    (dashboard,) = resources_of_type(template, "AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    if isinstance(body, str):
        return json.loads(body)
    separator, parts = body["Fn::Join"]
    return json.loads(separator.join(token_text(part) for part in parts))


def dashboard_metrics(body: dict) -> list[MetricKey]:
    """Return every metric the dashboard's graphs read; math expressions are skipped, their inputs are listed."""
    found = []
    for widget in body["widgets"]:
        for row in widget.get("properties", {}).get("metrics", []):
            values = [item for item in row if not isinstance(item, dict)]
            if not values:
                continue  # a math expression, whose inputs are rows of their own
            namespace, metric_name, *pairs = values
            dimensions = [{"Name": pairs[index], "Value": pairs[index + 1]} for index in range(0, len(pairs), 2)]
            found.append(_key(namespace, metric_name, dimensions))
    return found


def _key(namespace: str, metric_name: str, dimensions: list[dict]) -> MetricKey:
    return MetricKey(
        namespace,
        metric_name,
        frozenset((dimension["Name"], token_text(dimension["Value"])) for dimension in dimensions),
    )
