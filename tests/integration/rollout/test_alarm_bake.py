"""The alarm-gated bake against CloudWatch on moto server, with a clock that moves only when the bake sleeps."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

import alarm_bake
from tests.integration.rollout.conftest import FakeClock


def _alarms(cloudwatch: Any, count: int = 3) -> tuple[str, ...]:
    names = tuple(f"GemmaBatch-test-{uuid.uuid4().hex[:8]}-{index}" for index in range(count))
    for name in names:
        cloudwatch.put_metric_alarm(
            AlarmName=name, Namespace="GemmaBatchTest", MetricName="Throttled429", Statistic="Sum", Period=60,
            EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
        )
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="test start")
    return names


def test_bake_passes_when_alarms_stay_ok(cloudwatch: Any, clock: FakeClock) -> None:
    names = _alarms(cloudwatch)
    result = alarm_bake.bake(cloudwatch, names, minutes=1, poll_seconds=30, clock=clock, sleep=clock.sleep)
    # Polls at 0, 30 and 60 s: the bake ends at its deadline, not before.
    assert result.polls == 3
    assert clock.sleeps == [30, 30]
    assert result.last_states == {name: "OK" for name in names}


def test_bake_fails_when_alarm_fires_midway(cloudwatch: Any, clock: FakeClock) -> None:
    # GIVEN the 503 alarm enters ALARM after the first poll
    names = _alarms(cloudwatch)

    def fire_after_first_poll(seconds: float) -> None:
        clock.sleep(seconds)
        cloudwatch.set_alarm_state(AlarmName=names[1], StateValue="ALARM", StateReason="503 rate 12% > 5%")

    # WHEN the bake runs for 30 minutes
    with pytest.raises(alarm_bake.BakeFailed) as raised:
        alarm_bake.bake(cloudwatch, names, minutes=30, clock=clock, sleep=fire_after_first_poll)

    # THEN it fails at the second poll, naming the alarm and its reason
    assert clock.sleeps == [30]
    assert f"{names[1]}: 503 rate 12% > 5%" in str(raised.value)
    assert "1 alarm(s) entered ALARM during the bake" in str(raised.value)


def test_bake_fails_on_missing_alarm(cloudwatch: Any, clock: FakeClock) -> None:
    names = (*_alarms(cloudwatch, 1), "GemmaBatch-no-such-alarm")
    with pytest.raises(alarm_bake.BakeFailed) as raised:
        alarm_bake.bake(cloudwatch, names, minutes=1, clock=clock, sleep=clock.sleep)
    assert "alarm(s) not found: GemmaBatch-no-such-alarm" in str(raised.value)


def test_poll_longer_than_alarm_period_rejected(cloudwatch: Any, clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="poll_seconds must be above 0 and at most 30"):
        alarm_bake.bake(cloudwatch, ("any",), minutes=1, poll_seconds=60, clock=clock, sleep=clock.sleep)


@pytest.mark.parametrize(("state", "exit_status"), [("OK", 0), ("ALARM", 1)])
def test_cli_exit_status(cloudwatch: Any, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch,
                         state: str, exit_status: int) -> None:
    # GIVEN alarms in the given state and credentials for moto server
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    names = _alarms(cloudwatch)
    cloudwatch.set_alarm_state(AlarmName=names[0], StateValue=state, StateReason="set by the test")
    # WHEN the command bakes for 0 minutes (one poll, no sleep)
    status = alarm_bake.main(["--region", "us-east-1", "--alarm-names", ",".join(names), "--minutes", "0",
                              "--endpoint-url", moto_endpoint])
    # THEN it exits 0 only when no alarm is in ALARM
    assert status == exit_status
