"""Watch a region's alarms for the bake time and fail if any of them enters ALARM: the rollout gate.

The bake polls DescribeAlarms every ``--poll-seconds`` (at most 30). CloudWatch evaluates an
alarm at most once a minute and its shortest period here is 60 s, so an ALARM state lasts at
least that long and a poll every 30 s sees it. An alarm that is missing, or a DescribeAlarms
call that keeps failing after botocore's retries, fails the bake too: the gate fails closed.

Usage (the rollout pipeline passes the stack output):
    python tools/alarm_bake.py --region us-east-1 --alarm-names NAME1,NAME2,NAME3 --minutes 30

Exit status: 0 when no alarm fired, 1 when one did or the alarms could not be read, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import boto3
from botocore.exceptions import BotoCoreError, ClientError

logger = logging.getLogger("alarm_bake")

MAX_POLL_SECONDS = 30.0
ALARM = "ALARM"


class BakeFailed(RuntimeError):
    """Raised when a watched alarm entered ALARM, or the alarms could not be read, during the bake."""


@dataclass(frozen=True)
class BakeResult:
    """A bake that passed: the alarms watched, how many polls ran and the states seen last."""

    alarm_names: tuple[str, ...]
    polls: int
    last_states: dict[str, str]


def bake(
    cloudwatch: Any,
    alarm_names: tuple[str, ...],
    *,
    minutes: float,
    poll_seconds: float = MAX_POLL_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> BakeResult:
    """Poll the alarms until ``minutes`` have passed; raises BakeFailed at the first ALARM seen."""
    if not alarm_names:
        raise ValueError("no alarm names given; pass the stack's BakeAlarmNames output")
    if not 0 < poll_seconds <= MAX_POLL_SECONDS:
        raise ValueError(f"poll_seconds must be above 0 and at most {MAX_POLL_SECONDS:g}, got {poll_seconds:g}")

    deadline = clock() + minutes * 60
    polls = 0
    while True:
        states = _alarm_states(cloudwatch, alarm_names)
        polls += 1
        firing = sorted(name for name, state in states.items() if state["StateValue"] == ALARM)
        if firing:
            details = "; ".join(f"{name}: {states[name].get('StateReason', 'no reason given')}" for name in firing)
            raise BakeFailed(f"{len(firing)} alarm(s) entered ALARM during the bake: {details}")
        if clock() >= deadline:
            return BakeResult(alarm_names, polls, {name: state["StateValue"] for name, state in states.items()})
        sleep(min(poll_seconds, max(deadline - clock(), 0.0)))


def _alarm_states(cloudwatch: Any, alarm_names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    try:
        response = cloudwatch.describe_alarms(AlarmNames=list(alarm_names), AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    except (ClientError, BotoCoreError) as error:
        raise BakeFailed(f"could not read the alarms ({error}); the bake fails rather than pass unwatched") from error
    states = {alarm["AlarmName"]: alarm for alarm in [*response.get("MetricAlarms", []), *response.get("CompositeAlarms", [])]}
    missing = [name for name in alarm_names if name not in states]
    if missing:
        raise BakeFailed(f"alarm(s) not found: {', '.join(missing)}; check the stack's BakeAlarmNames output")
    return states


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Fail if any of a region's alarms enters ALARM during the bake.")
    parser.add_argument("--region", required=True, help="AWS region of the alarms, such as us-east-1")
    parser.add_argument("--alarm-names", required=True, help="comma-separated alarm names (the BakeAlarmNames output)")
    parser.add_argument("--minutes", type=float, required=True, help="bake time in minutes")
    parser.add_argument("--poll-seconds", type=float, default=MAX_POLL_SECONDS,
                        help=f"seconds between polls, at most {MAX_POLL_SECONDS:g} (default {MAX_POLL_SECONDS:g})")
    parser.add_argument("--endpoint-url", help="send every AWS request here instead (tests and local runs)")
    arguments = parser.parse_args(argv)
    arguments.alarm_names = tuple(name.strip() for name in arguments.alarm_names.split(",") if name.strip())
    if not arguments.alarm_names:
        parser.error("--alarm-names is empty; pass the stack's BakeAlarmNames output")
    if arguments.minutes < 0:
        parser.error(f"--minutes must be 0 or more, got {arguments.minutes:g}")
    if not 0 < arguments.poll_seconds <= MAX_POLL_SECONDS:
        parser.error(f"--poll-seconds must be above 0 and at most {MAX_POLL_SECONDS:g}, got {arguments.poll_seconds:g}")
    return arguments


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    arguments = parse_arguments(argv)
    cloudwatch = boto3.session.Session(region_name=arguments.region).client(
        "cloudwatch", endpoint_url=arguments.endpoint_url
    )
    logger.info("baking %s for %g minutes, watching %s", arguments.region, arguments.minutes,
                ", ".join(arguments.alarm_names))
    try:
        result = bake(cloudwatch, arguments.alarm_names, minutes=arguments.minutes, poll_seconds=arguments.poll_seconds)
    except BakeFailed as error:
        logger.error("bake failed in %s: %s", arguments.region, error)
        return 1
    logger.info("bake passed in %s after %d polls; last states: %s", arguments.region, result.polls,
                ", ".join(f"{name}={state}" for name, state in sorted(result.last_states.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
