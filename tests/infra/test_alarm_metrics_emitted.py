"""Cross-check: every metric the deployed alarms and dashboard read is one the worker or the ramp controller emits.

The worker runs its success, 429 and 503 paths for real: the SQS driver on moto server, the real
handler and the OpenAI SDK against the Mantle emulator. It uses the namespace and Service values
that the synthesized template gives the worker function. The ramp controller runs once against moto
server with its template values. Their EMF output is compared with the template's alarms and
dashboard by namespace, metric name and dimension set, exactly.
"""

from __future__ import annotations

import io
import json
from typing import Any, Callable

import pytest

from ramp_controller import pool_metrics
from ramp_controller.controller import build_controller
from ramp_controller.settings import Settings
from tests.infra.cloudwatch_template import MetricKey, alarm_metrics, alarms_with_prefix, dashboard_body, dashboard_metrics
from tests.infra.conftest import REGIONS, single_resource
from tests.integration.worker.conftest import (  # noqa: F401 - fixtures used by name
    aws_clients,
    driver,
    emulator,
    moto_endpoint,
    running_emulator,
    stack,
    worker_environment,
)
from tests.unit.ramp_controller.moto_pool import aws_clients as ramp_clients
from tests.unit.ramp_controller.moto_pool import create_pool

pytestmark = pytest.mark.xdist_group("synth")

TEMPLATE_REGION = REGIONS[0]


def emitted_metrics(output: str) -> set[MetricKey]:
    """Return every (namespace, name, dimension set) that the EMF documents in ``output`` declare."""
    found = set()
    for line in output.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dimensions = frozenset((name, document[name]) for name in dimension_set)
                for metric in directive["Metrics"]:
                    assert metric["Name"] in document, f"EMF document declares {metric['Name']} without a value"
                    found.add(MetricKey(directive["Namespace"], metric["Name"], dimensions))
    return found


def emf_totals(output: str, name: str) -> float:
    total = 0.0
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            value = json.loads(line).get(name, 0)
            total += sum(value) if isinstance(value, list) else value
    return total


def environment_of(template: dict, logical_id_prefix: str) -> dict[str, Any]:
    _, function = single_resource(template, "AWS::Lambda::Function", logical_id_prefix)
    return function["Properties"]["Environment"]["Variables"]


def read_metrics(template: dict) -> set[MetricKey]:
    """Return every metric of the Alarms construct's alarms and of the dashboard's graphs."""
    keys = set()
    for alarm in alarms_with_prefix(template, "Alarms").values():
        keys.update(alarm_metrics(alarm))
    keys.update(dashboard_metrics(dashboard_body(template)))
    return keys


@pytest.fixture()
def worker_output(templates: dict, stack, driver, emulator, worker_environment: Callable[..., None],
                  capsys: pytest.CaptureFixture[str]) -> str:
    """Run the worker's success, 429 and 503 paths with the template's metric settings; return its stdout."""
    template_environment = environment_of(templates[TEMPLATE_REGION], "WorkerPoolWorker")
    worker_environment(
        METRICS_NAMESPACE=template_environment["METRICS_NAMESPACE"],
        METRICS_SERVICE=template_environment["METRICS_SERVICE"],
    )
    emulator.faults.fail_next(1, "throttle", job_id="throttled-job")
    emulator.faults.fail_next(1, "unavailable", job_id="unavailable-job")
    stack.send(
        {"job_id": "plain-job", "prompt": "Say hello."},
        {"job_id": "throttled-job", "prompt": "Say hello after a 429."},
        {"job_id": "unavailable-job", "prompt": "Say hello after a 503."},
    )
    capsys.readouterr()
    driver.drain(until_empty=True, max_rounds=20)
    assert sorted(stack.results()) == ["plain-job", "throttled-job", "unavailable-job"]
    return capsys.readouterr().out


def test_worker_emits_every_metric_alarms_and_dashboard_read(templates: dict, worker_output: str) -> None:
    # GIVEN the template's worker settings and what the worker emitted on its three paths
    template = templates[TEMPLATE_REGION]
    worker_environment = environment_of(template, "WorkerPoolWorker")
    namespace = worker_environment["METRICS_NAMESPACE"]
    worker_dimensions = frozenset({("Service", worker_environment["METRICS_SERVICE"])})
    emitted = emitted_metrics(worker_output)

    # THEN the paths ran: one request got 429, one got 503, and three jobs succeeded
    assert emf_totals(worker_output, "Throttled429") == 1
    assert emf_totals(worker_output, "Unavailable503") == 1
    assert emf_totals(worker_output, "Requests") == 5
    assert emf_totals(worker_output, "JobsSucceeded") == 3

    # AND every worker metric that an alarm or a dashboard graph reads is emitted, with the same dimensions
    read = {key for key in read_metrics(template) if key.dimensions == worker_dimensions}
    assert {key.metric_name for key in read} >= {
        "Requests", "Throttled429", "Unavailable503", "InputTokens", "OutputTokens", "CachedInputTokens",
        "RequestLatency", "JobsSucceeded", "JobsFailed", "OtherErrors",
    }
    assert read - emitted == set()
    assert all(key.namespace == namespace for key in read)

    # AND the ramp controller reads the worker's counts by the names and Service value the worker emits
    controller_environment = environment_of(template, "RampController")
    assert controller_environment["METRICS_NAMESPACE"] == namespace
    assert controller_environment["WORKER_METRICS_SERVICE"] == worker_environment["METRICS_SERVICE"]
    for name in (pool_metrics.REQUESTS, pool_metrics.THROTTLED_429, pool_metrics.UNAVAILABLE_503):
        assert MetricKey(namespace, name, worker_dimensions) in emitted


def test_controller_emits_every_metric_dashboard_reads(templates: dict, moto_endpoint: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a worker pool on moto server and the controller's settings from the template
    import boto3

    template = templates[TEMPLATE_REGION]
    template_environment = environment_of(template, "RampController")
    pool = create_pool(ramp_clients(moto_endpoint))
    settings = Settings.from_environ(pool.environment(
        METRICS_NAMESPACE=template_environment["METRICS_NAMESPACE"],
        METRICS_SERVICE=template_environment["METRICS_SERVICE"],
    ))
    for name, value in {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    output = io.StringIO()

    # WHEN it runs once
    build_controller(settings, boto3.session.Session(), emf_stream=output).run()

    # THEN every controller metric on the dashboard is one it emitted
    controller_dimensions = frozenset({("Service", template_environment["METRICS_SERVICE"])})
    read = {key for key in read_metrics(template) if key.dimensions == controller_dimensions}
    assert {key.metric_name for key in read} == {"RampRate", "RampConcurrency", "RampCuts", "RampRaises",
                                                "RampReapplied"}
    assert read - emitted_metrics(output.getvalue()) == set()


@pytest.mark.parametrize("region", REGIONS)
def test_every_project_metric_belongs_to_worker_or_controller(templates: dict, region: str) -> None:
    # GIVEN the metrics that the region's alarms and dashboard read
    template = templates[region]
    services = {
        environment_of(template, "WorkerPoolWorker")["METRICS_SERVICE"],
        environment_of(template, "RampController")["METRICS_SERVICE"],
    }
    keys = read_metrics(template)

    # THEN each metric in the project's namespace has exactly the Service dimension of one of the two emitters
    for key in keys:
        if key.namespace.startswith("AWS/"):
            continue
        assert len(key.dimensions) == 1, key
        ((name, value),) = key.dimensions
        assert name == "Service", key
        assert value in services, key

    # AND each AWS metric names one of the stack's own queues or the worker function
    job_queue_id, _ = single_resource(template, "AWS::SQS::Queue", "WorkerPoolJobQueue")
    dead_letter_id, _ = single_resource(template, "AWS::SQS::Queue", "WorkerPoolDeadLetterQueue")
    worker_id, _ = single_resource(template, "AWS::Lambda::Function", "WorkerPoolWorker")
    allowed = {
        ("QueueName", "${" + job_queue_id + ".QueueName}"),
        ("QueueName", "${" + dead_letter_id + ".QueueName}"),
        ("FunctionName", "${" + worker_id + "}"),
    }
    for key in keys:
        if key.namespace.startswith("AWS/"):
            assert key.dimensions and key.dimensions <= allowed, key
