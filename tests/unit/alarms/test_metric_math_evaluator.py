"""The metric math evaluator against the CloudWatch User Guide's own examples.

The expected values come from "Using metric math" (using-metric-math.md in
github.com/awsdocs/amazon-cloudwatch-user-guide): the tables of the comparison operators and of
IF, and the rules on missing values and division by zero. None marks a missing datapoint.
"""

from __future__ import annotations

import pytest

from stacks.alarm_definitions import failure_rate_expression
from stacks.alarm_evaluator import ExpressionError, Series, evaluate_expression


def series(*values: float | None) -> Series:
    return {period: float(value) for period, value in enumerate(values) if value is not None}


def evaluate(expression: str, length: int, **inputs: Series) -> list[float | None]:
    result = evaluate_expression(expression, inputs, range(length))
    return [result.get(period) for period in range(length)]


# The guide's comparison example: metric1 = [30, 20, 0, 0], metric2 = [20, -, 20, -].
METRIC1 = series(30, 20, 0, 0)
METRIC2 = series(20, None, 20, None)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("metric1 < metric2", [0, 0, 1, 0]),
        ("metric1 >= 30", [1, 0, 0, 0]),
        ("metric1 > 15 AND metric2 > 15", [1, 0, 0, 0]),
    ],
)
def test_comparison_table_of_the_guide(expression: str, expected: list[float]) -> None:
    assert evaluate(expression, 4, metric1=METRIC1, metric2=METRIC2) == expected


# The guide's IF examples over five periods.
IF_METRIC1 = series(1, 1, 0, 0, None)
IF_METRIC2 = series(30, None, 0, 0, 30)
IF_METRIC3 = series(0, 0, 20, None, 20)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("IF(metric1, metric2, metric3)", [30, 0, 20, None, None]),
        ("IF(metric1, 5, metric3)", [5, 5, 20, None, None]),
        ("IF(metric1, metric2, 5)", [30, 0, 5, 5, None]),
    ],
)
def test_if_tables_of_the_guide(expression: str, expected: list[float | None]) -> None:
    result = evaluate(expression, 5, metric1=IF_METRIC1, metric2=IF_METRIC2, metric3=IF_METRIC3)
    assert result == expected


def test_if_without_false_value_drops_false_datapoints() -> None:
    # The guide: the output "is dropped" where the condition is FALSE and the false value is omitted.
    assert evaluate("IF(metric1 < 25, metric1)", 4, metric1=METRIC1) == [None, 20, 0, 0]


def test_if_with_number_condition_picks_a_series() -> None:
    assert evaluate("IF(1, metric1, metric2)", 4, metric1=METRIC1, metric2=METRIC2) == [30, 20, 0, 0]
    assert evaluate("IF(0, metric1)", 4, metric1=METRIC1) == [None] * 4


def test_arithmetic_treats_missing_values_as_zero() -> None:
    # "Missing values in a time series are treated as 0."
    assert evaluate("metric1 + metric2", 4, metric1=METRIC1, metric2=METRIC2) == [50, 20, 20, 0]


def test_division_by_zero_drops_the_datapoint() -> None:
    # "If the value of a data point causes a function to attempt to divide by zero, the data point is dropped."
    numerator = series(10, 10, 10)
    denominator = series(2, 0, 5)
    assert evaluate("numerator / denominator", 3, numerator=numerator, denominator=denominator) == [5, None, 2]


def test_fill_gives_missing_periods_the_value() -> None:
    assert evaluate("FILL(metric2, 0)", 4, metric2=METRIC2) == [20, 0, 20, 0]


def test_fill_of_a_series_without_datapoints_stays_empty() -> None:
    # The guide is silent here; the evaluator chooses "no datapoints", the stricter case for the alarms.
    assert evaluate("FILL(empty, 0)", 3, empty={}) == [None, None, None]


def test_precedence_of_operators() -> None:
    values = series(2, 4)
    assert evaluate("1 + values * 3", 2, values=values) == [7, 13]
    assert evaluate("(1 + values) * 3", 2, values=values) == [9, 15]
    assert evaluate("-values + 10", 2, values=values) == [8, 6]
    assert evaluate("values > 1 AND values < 3 OR values == 4", 2, values=values) == [1, 1]


class TestFailureRateExpression:
    """The rate alarms' expression: 100 * failures / requests, 0 below the request floor."""

    EXPRESSION = failure_rate_expression("failures", 20)

    def rate(self, requests: list[float | None], failures: list[float | None]) -> list[float | None]:
        return evaluate(self.EXPRESSION, len(requests), requests=series(*requests), failures=series(*failures))

    def test_zero_requests_is_zero_not_dropped(self) -> None:
        # The division never gets zero requests, so the datapoint stays and is 0.
        assert self.rate([0, 0, 0], [0, 0, 0]) == [0, 0, 0]

    def test_missing_periods_between_datapoints_are_zero(self) -> None:
        assert self.rate([100, None, 100], [50, None, 10]) == [50, 0, 10]

    def test_below_floor_is_zero(self) -> None:
        assert self.rate([19, 20, 5], [19, 1, 5]) == [0, 5, 0]

    def test_missing_failures_count_as_zero(self) -> None:
        assert self.rate([40, 40], [None, 4]) == [0, 10]

    def test_no_datapoints_at_all_is_missing(self) -> None:
        assert self.rate([None, None], [None, None]) == [None, None]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("FILL(metric1, REPEAT)", "FILL with REPEAT is not supported"),
        ("ANOMALY_DETECTION_BAND(metric1)", "function ANOMALY_DETECTION_BAND is not supported"),
        ("unknown + 1", "unknown query id 'unknown'"),
        ("1 + 2", "evaluates to a number"),
        ("metric1 +", "expected more"),
        ("metric1 $ 2", "cannot read"),
        ("IF(metric1)", "IF takes 2 or 3 arguments"),
        ("IF(1, 2, 3)", "IF with a number as condition needs time series values"),
    ],
)
def test_unsupported_or_invalid_expressions_raise(expression: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        evaluate_expression(expression, {"metric1": METRIC1}, range(4))
