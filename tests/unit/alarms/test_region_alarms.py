"""Every alarm of a region on zero traffic, missing data, low volume and a real spike: breach or not, as expected.

The alarms are the definitions the stack deploys, with the default thresholds from cdk.json
(5 % rates, a floor of 20 requests, 3 periods, 3600 s job age, 0 dead letters, errors and
throttles). Each scenario gives five periods, oldest first, as CloudWatch retrieves for an alarm
of three evaluation periods. None is a period without a datapoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stacks.alarm_definitions import (
    DEAD_LETTER_QUEUE_NOT_EMPTY,
    OLDEST_JOB_AGE,
    SUSTAINED_THROTTLING,
    THROTTLED_429_RATE,
    UNAVAILABLE_503_RATE,
    WORKER_ERRORS,
    WORKER_THROTTLES,
    RegionAlarms,
    region_alarms,
)
from stacks.alarm_evaluator import AlarmState, alarm_datapoints, composite_state, evaluate_alarm
from stacks.config import load_settings

REPO_ROOT = Path(__file__).resolve().parents[3]
OK = AlarmState.OK
ALARM = AlarmState.ALARM
NONE5 = [None] * 5


@pytest.fixture(scope="module")
def default_context() -> dict:
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"]


@pytest.fixture(scope="module")
def alarms(default_context: dict) -> RegionAlarms:
    return region_alarms(load_settings(default_context).for_region("us-east-1"))


def rate_scenarios(failures_id: str) -> dict[str, tuple[dict, AlarmState]]:
    return {
        "zero traffic, no datapoints": ({"requests": NONE5, failures_id: NONE5}, OK),
        "zero traffic, zeros emitted": ({"requests": [0] * 5, failures_id: [0] * 5}, OK),
        "missing data around one bad period": (
            {"requests": [None, None, 200, None, None], failures_id: [None, None, 100, None, None]},
            OK,
        ),
        "missing data splitting a spike": (
            {"requests": [200, None, 200, None, 200], failures_id: [100, None, 100, None, 100]},
            OK,
        ),
        "low volume, 90 % failures below the floor": ({"requests": [10] * 5, failures_id: [9] * 5}, OK),
        "at the threshold, not above": ({"requests": [100] * 5, failures_id: [5] * 5}, OK),
        "spike for two periods only": ({"requests": [100] * 5, failures_id: [0, 0, 0, 30, 30]}, OK),
        "real spike for three periods": ({"requests": [100] * 5, failures_id: [0, 0, 30, 30, 30]}, ALARM),
        "spike right at the floor": ({"requests": [20] * 5, failures_id: [2] * 5}, ALARM),
    }


SCENARIOS: dict[str, dict[str, tuple[dict, AlarmState]]] = {
    THROTTLED_429_RATE: rate_scenarios("throttled"),
    UNAVAILABLE_503_RATE: rate_scenarios("unavailable"),
    DEAD_LETTER_QUEUE_NOT_EMPTY: {
        "zero traffic, no datapoints": ({"depth": NONE5}, OK),
        "missing data after an empty queue": ({"depth": [0, 0, None, None, None]}, OK),
        "low volume, one dead-lettered job": ({"depth": [0, 0, 0, 0, 1]}, ALARM),
        "real spike": ({"depth": [0, 0, 0, 40, 120]}, ALARM),
        "redriven, empty again": ({"depth": [0, 0, 40, 40, 0]}, OK),
    },
    OLDEST_JOB_AGE: {
        "zero traffic, no datapoints": ({"age": NONE5}, OK),
        "missing data around one old job": ({"age": [None, 4000, None, None, None]}, OK),
        "low volume, young jobs": ({"age": [60, 120, 30, 90, 45]}, OK),
        "old jobs for two periods only": ({"age": [0, 0, 0, 4000, 4300]}, OK),
        "real backlog for three periods": ({"age": [0, 0, 3700, 4000, 4300]}, ALARM),
    },
    WORKER_ERRORS: {
        "zero traffic, no datapoints": ({"errors": NONE5}, OK),
        "missing data around a quiet period": ({"errors": [None, None, 0, None, None]}, OK),
        "errors, then clean invocations": ({"errors": [3, 0, 0, 0, 0]}, OK),
        # With one evaluation period, CloudWatch evaluates the newest datapoint in the range, however old.
        "errors, then no invocations at all": ({"errors": [3, None, None, None, None]}, ALARM),
        "low volume, no errors": ({"errors": [0] * 5}, OK),
        "real errors in the last period": ({"errors": [0, 0, 0, 0, 2]}, ALARM),
    },
    WORKER_THROTTLES: {
        "zero traffic, no datapoints": ({"throttles": NONE5}, OK),
        "missing data around a quiet period": ({"throttles": [None, None, 0, None, None]}, OK),
        "throttles, then clean invocations": ({"throttles": [5, 0, 0, 0, 0]}, OK),
        "throttles, then no invocations at all": ({"throttles": [5, None, None, None, None]}, ALARM),
        "low volume, no throttles": ({"throttles": [0] * 5}, OK),
        "real throttles in the last period": ({"throttles": [0, 0, 0, 0, 7]}, ALARM),
    },
}


def test_every_alarm_has_scenarios(alarms: RegionAlarms) -> None:
    assert {alarm.construct_id for alarm in alarms.metric_alarms} == set(SCENARIOS)


@pytest.mark.parametrize(
    ("construct_id", "scenario"),
    [(construct_id, scenario) for construct_id, scenarios in SCENARIOS.items() for scenario in scenarios],
)
def test_alarm_scenario(alarms: RegionAlarms, construct_id: str, scenario: str) -> None:
    # GIVEN the alarm as the stack deploys it and five periods of datapoints
    alarm = alarms.metric_alarm(construct_id)
    inputs, expected = SCENARIOS[construct_id][scenario]

    # WHEN CloudWatch would evaluate it
    state = evaluate_alarm(alarm, inputs)

    # THEN it breaches or not, as the scenario expects
    assert state is expected, f"{construct_id} on {scenario}: datapoints {alarm_datapoints(alarm, inputs)}"


def test_rate_alarms_fill_quiet_periods(alarms: RegionAlarms) -> None:
    # GIVEN traffic in the first period only
    alarm = alarms.metric_alarm(THROTTLED_429_RATE)
    inputs = {"requests": [100, None, None, None, None], "throttled": [50, None, None, None, None]}

    # THEN FILL makes every later period a 0 % datapoint, so the alarm evaluates real data
    assert alarm_datapoints(alarm, inputs) == [50, 0, 0, 0, 0]


@pytest.mark.parametrize(
    ("children", "expected"),
    [
        ({THROTTLED_429_RATE: ALARM, UNAVAILABLE_503_RATE: OK, OLDEST_JOB_AGE: ALARM}, ALARM),
        ({THROTTLED_429_RATE: OK, UNAVAILABLE_503_RATE: ALARM, OLDEST_JOB_AGE: ALARM}, ALARM),
        ({THROTTLED_429_RATE: ALARM, UNAVAILABLE_503_RATE: ALARM, OLDEST_JOB_AGE: OK}, OK),
        ({THROTTLED_429_RATE: OK, UNAVAILABLE_503_RATE: OK, OLDEST_JOB_AGE: ALARM}, OK),
        ({THROTTLED_429_RATE: OK, UNAVAILABLE_503_RATE: OK, OLDEST_JOB_AGE: OK}, OK),
    ],
)
def test_sustained_throttling_needs_throttling_and_aging_jobs(
    alarms: RegionAlarms, children: dict, expected: AlarmState
) -> None:
    (composite,) = alarms.composite_alarms
    assert composite.construct_id == SUSTAINED_THROTTLING
    assert composite_state(composite, children) is expected


def test_sustained_throttling_from_scenarios(alarms: RegionAlarms) -> None:
    # GIVEN a real 503 spike while the oldest job waits beyond the threshold, and a quiet 429 rate
    children = {
        THROTTLED_429_RATE: evaluate_alarm(alarms.metric_alarm(THROTTLED_429_RATE),
                                           SCENARIOS[THROTTLED_429_RATE]["low volume, 90 % failures below the floor"][0]),
        UNAVAILABLE_503_RATE: evaluate_alarm(alarms.metric_alarm(UNAVAILABLE_503_RATE),
                                             SCENARIOS[UNAVAILABLE_503_RATE]["real spike for three periods"][0]),
        OLDEST_JOB_AGE: evaluate_alarm(alarms.metric_alarm(OLDEST_JOB_AGE),
                                       SCENARIOS[OLDEST_JOB_AGE]["real backlog for three periods"][0]),
    }
    # THEN the composite fires
    (composite,) = alarms.composite_alarms
    assert composite_state(composite, children) is ALARM


def test_thresholds_come_from_config(default_context: dict) -> None:
    # GIVEN a region with its own thresholds
    context = default_context | {
        "region_overrides": {
            "us-west-2": {
                "alarm_429_rate_percent": 2.5,
                "alarm_min_requests": 50,
                "alarm_evaluation_periods": 2,
                "alarm_dead_letter_messages": 10,
                "alarm_worker_errors": 3,
            }
        }
    }
    alarms = region_alarms(load_settings(context).for_region("us-west-2"))

    # THEN the definitions carry them
    throttled = alarms.metric_alarm(THROTTLED_429_RATE)
    assert throttled.threshold == 2.5
    assert throttled.expression == "IF(FILL(requests, 0) >= 50, 100 * FILL(throttled, 0) / FILL(requests, 0), 0)"
    assert (throttled.evaluation_periods, throttled.datapoints_to_alarm) == (2, 2)
    assert alarms.metric_alarm(DEAD_LETTER_QUEUE_NOT_EMPTY).threshold == 10
    assert alarms.metric_alarm(WORKER_ERRORS).threshold == 3
    assert "More than 2.5% of Mantle requests" in throttled.description

    # AND the new floor changes the outcome: 40 requests no longer count
    low = {"requests": [40] * 5, "throttled": [20] * 5}
    assert evaluate_alarm(throttled, low) is OK
