"""Alarm evaluation with missing datapoints, against the CloudWatch User Guide's tables.

The rows come from "How alarm state is evaluated when data is missing" in AlarmThatSendsEmail.md
(github.com/awsdocs/amazon-cloudwatch-user-guide). CloudWatch retrieves five datapoints for an
alarm of three evaluation periods. In a row, 0 is a datapoint within the threshold, X one that
breaches, and - a missing one, oldest first.
"""

from __future__ import annotations

import pytest

from stacks.alarm_definitions import Comparison, MetricAlarmDefinition, MissingData
from stacks.alarm_evaluator import AlarmState, UnsupportedEvaluation, alarm_state
from stacks.metrics import worker_metric

OK = AlarmState.OK
ALARM = AlarmState.ALARM
INSUFFICIENT = AlarmState.INSUFFICIENT_DATA


def alarm(treatment: MissingData, datapoints_to_alarm: int) -> MetricAlarmDefinition:
    return MetricAlarmDefinition(
        construct_id="Example",
        label="example",
        description="An alarm with threshold 3, like the guide's figure.",
        metrics=(("m1", worker_metric("Requests")),),
        expression=None,
        threshold=3,
        comparison=Comparison.GREATER_THAN_THRESHOLD,
        period_seconds=300,
        evaluation_periods=3,
        datapoints_to_alarm=datapoints_to_alarm,
        treat_missing_data=treatment,
    )


def datapoints(row: str) -> list[float | None]:
    values = {"0": 0.0, "X": 10.0, "-": None}
    return [values[symbol] for symbol in row.split()]


# (row, state when missing data is treated as breaching, state when it is treated as not breaching)
THREE_OF_THREE = [
    ("0 - X - X", OK, OK),
    ("0 - - - -", OK, OK),
    ("- - - - -", ALARM, OK),
    ("0 X X - X", ALARM, ALARM),
    ("- - - - X", ALARM, OK),
    ("X - - - -", ALARM, OK),
]
TWO_OF_THREE = [
    ("0 - X - X", ALARM, ALARM),
    ("0 0 X 0 X", ALARM, ALARM),
    ("0 - X - -", ALARM, OK),
    ("- - - - 0", ALARM, OK),
    ("- - - - X", ALARM, OK),
]


@pytest.mark.parametrize(("row", "breaching", "not_breaching"), THREE_OF_THREE)
def test_three_of_three_table(row: str, breaching: AlarmState, not_breaching: AlarmState) -> None:
    assert alarm_state(alarm(MissingData.BREACHING, 3), datapoints(row)) is breaching
    assert alarm_state(alarm(MissingData.NOT_BREACHING, 3), datapoints(row)) is not_breaching


@pytest.mark.parametrize(("row", "breaching", "not_breaching"), TWO_OF_THREE)
def test_two_of_three_table(row: str, breaching: AlarmState, not_breaching: AlarmState) -> None:
    assert alarm_state(alarm(MissingData.BREACHING, 2), datapoints(row)) is breaching
    assert alarm_state(alarm(MissingData.NOT_BREACHING, 2), datapoints(row)) is not_breaching


@pytest.mark.parametrize("treatment", list(MissingData))
def test_enough_datapoints_ignore_the_treatment(treatment: MissingData) -> None:
    # The guide: with at least Evaluation Periods datapoints present, the setting "is not needed and is ignored".
    assert alarm_state(alarm(treatment, 3), datapoints("0 X X - X")) is ALARM
    assert alarm_state(alarm(treatment, 3), datapoints("0 - X - X")) is OK


def test_all_missing_with_missing_is_insufficient_data() -> None:
    assert alarm_state(alarm(MissingData.MISSING, 3), datapoints("- - - - -")) is INSUFFICIENT


def test_all_missing_with_ignore_keeps_the_state() -> None:
    assert alarm_state(alarm(MissingData.IGNORE, 3), datapoints("- - - - -"), current=ALARM) is ALARM
    assert alarm_state(alarm(MissingData.IGNORE, 3), datapoints("- - - - -"), current=OK) is OK


@pytest.mark.parametrize("treatment", [MissingData.MISSING, MissingData.IGNORE])
def test_partial_data_unsupported_treatments(treatment: MissingData) -> None:
    with pytest.raises(UnsupportedEvaluation, match="no rule for TreatMissingData"):
        alarm_state(alarm(treatment, 3), datapoints("X - - - -"))


def test_definition_rejects_more_datapoints_than_periods() -> None:
    with pytest.raises(ValueError, match="datapoints_to_alarm \\(4\\) must be from 1 to evaluation_periods \\(3\\)"):
        alarm(MissingData.NOT_BREACHING, 4)
