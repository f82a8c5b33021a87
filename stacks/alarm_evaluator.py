"""A small evaluator of the alarm definitions over synthetic datapoints, for tests without AWS.

It evaluates the metric math subset that the alarms use (numbers, query ids, + - * /, the
comparison and logical operators, IF and FILL with a number) and CloudWatch's alarm evaluation
with missing data. The behaviour follows the Amazon CloudWatch User Guide, pages "Using metric
math" (using-metric-math.md) and "Using Amazon CloudWatch alarms" (AlarmThatSendsEmail.md) in
github.com/awsdocs/amazon-cloudwatch-user-guide:

- Arithmetic between two time series treats a missing value as 0, and a datapoint whose
  computation divides by zero is dropped.
- Comparison and logical operators between two time series treat a missing value as 0 and
  return 1 (true) or 0 (false).
- IF(condition, a, b) takes a where the condition is non-zero and b where it is 0. A missing
  datapoint of a time series ``a`` becomes 0, a missing datapoint of ``b`` or an omitted ``b``
  drops the output datapoint, and so does a missing condition datapoint.
- FILL(series, value) gives every period without a datapoint the value.
- An alarm evaluates the most recent ``evaluation_periods`` datapoints of its evaluation range.
  When fewer datapoints exist, it adds as few missing datapoints as it needs, each treated as
  TreatMissingData specifies, and goes to ALARM when ``datapoints_to_alarm`` of them breach.

Where the guide does not say, this module chooses, and the choice never matters for the
project's expressions because they FILL every series before any arithmetic: an operation between
a time series and a number keeps the series' missing datapoints missing.
"""

from __future__ import annotations

import enum
import re
from typing import Mapping, Sequence, Union

from stacks.alarm_definitions import CompositeAlarmDefinition, MetricAlarmDefinition, MissingData

Series = dict[int, float]
"""A time series: the index of a period (0 is the oldest of the range) to its value."""
Value = Union[float, Series]


class ExpressionError(ValueError):
    """Raised for an expression outside the supported subset, or one CloudWatch would reject."""


class UnsupportedEvaluation(ValueError):
    """Raised for a case whose outcome the User Guide does not define in a way this module can follow."""


class AlarmState(str, enum.Enum):
    OK = "OK"
    ALARM = "ALARM"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"


# ---------------------------------------------------------------------------------------------
# Metric math


_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(==|!=|<=|>=|&&|\|\||[-+*/()<>,]))")
_COMPARISONS = ("==", "!=", "<=", ">=", "<", ">")


def evaluate_expression(expression: str, inputs: Mapping[str, Series], periods: Sequence[int]) -> Series:
    """Evaluate ``expression`` with the query ids in ``inputs`` over the periods of the range."""
    result = _Parser(expression, inputs, periods).parse()
    if not isinstance(result, dict):
        raise ExpressionError(f"{expression!r} evaluates to a number; an alarm expression must return a time series")
    return result


class _Parser:
    """A recursive-descent parser that evaluates while it parses. Precedence, lowest first:
    OR, AND, comparisons, + and -, * and /, unary minus."""

    def __init__(self, expression: str, inputs: Mapping[str, Series], periods: Sequence[int]) -> None:
        self._expression = expression
        self._inputs = inputs
        self._periods = list(periods)
        self._tokens = _tokenize(expression)
        self._position = 0

    def parse(self) -> Value:
        value = self._or()
        if self._position != len(self._tokens):
            raise ExpressionError(f"unexpected {self._tokens[self._position]!r} in {self._expression!r}")
        return value

    def _peek(self) -> str | None:
        return self._tokens[self._position] if self._position < len(self._tokens) else None

    def _take(self, expected: str | None = None) -> str:
        token = self._peek()
        if token is None or (expected is not None and token != expected):
            raise ExpressionError(f"expected {expected or 'more'} at the end of {self._expression!r}")
        self._position += 1
        return token

    def _or(self) -> Value:
        value = self._and()
        while self._peek() in ("OR", "||"):
            self._take()
            value = _combine(value, self._and(), lambda a, b: float(bool(a) or bool(b)), series_default=0.0)
        return value

    def _and(self) -> Value:
        value = self._comparison()
        while self._peek() in ("AND", "&&"):
            self._take()
            value = _combine(value, self._comparison(), lambda a, b: float(bool(a) and bool(b)), series_default=0.0)
        return value

    def _comparison(self) -> Value:
        value = self._sum()
        if self._peek() in _COMPARISONS:
            operator = self._take()
            value = _combine(value, self._sum(), _COMPARE[operator], series_default=0.0)
        return value

    def _sum(self) -> Value:
        value = self._product()
        while self._peek() in ("+", "-"):
            operator = self._take()
            value = _combine(value, self._product(), _ARITHMETIC[operator], series_default=0.0)
        return value

    def _product(self) -> Value:
        value = self._unary()
        while self._peek() in ("*", "/"):
            operator = self._take()
            value = _combine(value, self._unary(), _ARITHMETIC[operator], series_default=0.0)
        return value

    def _unary(self) -> Value:
        if self._peek() == "-":
            self._take()
            return _combine(-1.0, self._unary(), _ARITHMETIC["*"], series_default=0.0)
        return self._primary()

    def _primary(self) -> Value:
        token = self._take()
        if token == "(":
            value = self._or()
            self._take(")")
            return value
        if re.fullmatch(r"\d+(?:\.\d+)?", token):
            return float(token)
        if token == "IF":
            return self._if()
        if token == "FILL":
            return self._fill()
        if token in self._inputs:
            return dict(self._inputs[token])
        if token[0].isupper():
            raise ExpressionError(f"function {token} is not supported by this evaluator (in {self._expression!r})")
        raise ExpressionError(f"unknown query id {token!r} in {self._expression!r}; known: {sorted(self._inputs)}")

    def _arguments(self) -> list[Value]:
        self._take("(")
        arguments = [self._or()]
        while self._peek() == ",":
            self._take()
            if self._peek() in ("REPEAT", "LINEAR"):
                raise ExpressionError(f"FILL with {self._peek()} is not supported by this evaluator")
            arguments.append(self._or())
        self._take(")")
        return arguments

    def _if(self) -> Value:
        arguments = self._arguments()
        if len(arguments) not in (2, 3):
            raise ExpressionError(f"IF takes 2 or 3 arguments, got {len(arguments)} in {self._expression!r}")
        condition, when_true = arguments[0], arguments[1]
        when_false = arguments[2] if len(arguments) == 3 else None

        if not isinstance(condition, dict):
            # The only form with a number as the condition is IF(S, TS, TS), with the last one optional.
            if not isinstance(when_true, dict) or (when_false is not None and not isinstance(when_false, dict)):
                raise ExpressionError(f"IF with a number as condition needs time series values in {self._expression!r}")
            chosen = when_true if condition else when_false
            return dict(chosen) if chosen is not None else {}

        output: Series = {}
        for period, flag in condition.items():
            if flag:
                output[period] = when_true if not isinstance(when_true, dict) else when_true.get(period, 0.0)
            elif when_false is None:
                continue
            elif not isinstance(when_false, dict):
                output[period] = when_false
            elif period in when_false:
                output[period] = when_false[period]
        return output

    def _fill(self) -> Value:
        arguments = self._arguments()
        if len(arguments) != 2 or not isinstance(arguments[0], dict):
            raise ExpressionError(f"FILL takes a time series and a filler in {self._expression!r}")
        series, filler = arguments
        # NOTE: the guide does not say whether FILL adds datapoints to a series that has none in
        # the whole range. This evaluator assumes it does not; the alarms treat the resulting
        # missing data as not breaching, so either behaviour leaves them in OK.
        if not series:
            return {}
        filled: Series = {}
        for period in self._periods:
            if period in series:
                filled[period] = series[period]
            elif not isinstance(filler, dict):
                filled[period] = filler
            elif period in filler:
                filled[period] = filler[period]
        return filled


def _tokenize(expression: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    text = expression.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ExpressionError(f"cannot read {text[position:]!r} in {expression!r}")
        tokens.append(next(group for group in match.groups() if group is not None))
        position = match.end()
    return tokens


def _divide(a: float, b: float) -> float | None:
    return None if b == 0 else a / b


_ARITHMETIC = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _divide,
}
_COMPARE = {
    "==": lambda a, b: float(a == b),
    "!=": lambda a, b: float(a != b),
    "<=": lambda a, b: float(a <= b),
    ">=": lambda a, b: float(a >= b),
    "<": lambda a, b: float(a < b),
    ">": lambda a, b: float(a > b),
}


def _combine(left: Value, right: Value, operation, series_default: float) -> Value:
    """Apply ``operation`` pointwise. A result of None (division by zero) drops the datapoint."""
    if not isinstance(left, dict) and not isinstance(right, dict):
        result = operation(left, right)
        if result is None:
            raise ExpressionError("division by zero between two numbers")
        return result

    output: Series = {}
    if isinstance(left, dict) and isinstance(right, dict):
        for period in sorted(set(left) | set(right)):
            result = operation(left.get(period, series_default), right.get(period, series_default))
            if result is not None:
                output[period] = result
        return output

    series = left if isinstance(left, dict) else right
    for period, value in series.items():
        result = operation(value, right) if isinstance(left, dict) else operation(left, value)
        if result is not None:
            output[period] = result
    return output


# ---------------------------------------------------------------------------------------------
# Alarm evaluation


def alarm_datapoints(alarm: MetricAlarmDefinition, inputs: Mapping[str, Sequence[float | None]]) -> list[float | None]:
    """Return the alarm's datapoints over the evaluation range, oldest first; None is a missing datapoint.

    ``inputs`` gives each query id its statistic per period, over the same range.
    """
    query_ids = [query_id for query_id, _ in alarm.metrics]
    missing = sorted(set(query_ids) - set(inputs))
    if missing:
        raise ValueError(f"alarm {alarm.construct_id} needs datapoints for {missing}")
    lengths = {len(inputs[query_id]) for query_id in query_ids}
    if len(lengths) != 1:
        raise ValueError(f"alarm {alarm.construct_id}: every query needs the same number of periods, got {lengths}")
    (length,) = lengths
    periods = list(range(length))
    series = {
        query_id: {period: float(value) for period, value in enumerate(inputs[query_id]) if value is not None}
        for query_id in query_ids
    }
    if alarm.expression is None:
        result = series[query_ids[0]]
    else:
        result = evaluate_expression(alarm.expression, series, periods)
    return [result.get(period) for period in periods]


def alarm_state(
    alarm: MetricAlarmDefinition, datapoints: Sequence[float | None], current: AlarmState = AlarmState.OK
) -> AlarmState:
    """Return the state that CloudWatch sets after evaluating ``datapoints`` (the evaluation range, oldest first).

    ``current`` is the state that ``ignore`` keeps when every datapoint is missing.
    """
    needed = alarm.evaluation_periods
    present = [value for value in datapoints if value is not None]

    if len(present) >= needed:
        breaching = sum(alarm.comparison.breaches(value, alarm.threshold) for value in present[-needed:])
        return AlarmState.ALARM if breaching >= alarm.datapoints_to_alarm else AlarmState.OK

    treatment = alarm.treat_missing_data
    if not present and treatment is MissingData.MISSING:
        return AlarmState.INSUFFICIENT_DATA
    if not present and treatment is MissingData.IGNORE:
        return current
    if treatment not in (MissingData.NOT_BREACHING, MissingData.BREACHING):
        raise UnsupportedEvaluation(
            f"alarm {alarm.construct_id}: with some datapoints missing, the guide gives examples but no rule for "
            f"TreatMissingData {treatment.value!r}"
        )

    breaching = sum(alarm.comparison.breaches(value, alarm.threshold) for value in present)
    if treatment is MissingData.BREACHING:
        breaching += needed - len(present)
    return AlarmState.ALARM if breaching >= alarm.datapoints_to_alarm else AlarmState.OK


def evaluate_alarm(alarm: MetricAlarmDefinition, inputs: Mapping[str, Sequence[float | None]]) -> AlarmState:
    """Return the alarm's state after the evaluation range in ``inputs``."""
    return alarm_state(alarm, alarm_datapoints(alarm, inputs))


def composite_state(alarm: CompositeAlarmDefinition, child_states: Mapping[str, AlarmState]) -> AlarmState:
    """Return the composite alarm's state from its children's states."""
    missing = sorted(set(alarm.any_of + alarm.all_of) - set(child_states))
    if missing:
        raise ValueError(f"composite alarm {alarm.construct_id} needs the states of {missing}")
    any_in_alarm = not alarm.any_of or any(child_states[name] is AlarmState.ALARM for name in alarm.any_of)
    all_in_alarm = all(child_states[name] is AlarmState.ALARM for name in alarm.all_of)
    return AlarmState.ALARM if any_in_alarm and all_in_alarm else AlarmState.OK
