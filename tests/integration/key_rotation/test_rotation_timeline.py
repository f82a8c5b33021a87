"""48 hours of key rotation on a frozen clock: the real rotation handler, driven by the real triggers, on moto server.

time-machine moves the clock of the whole test process, so moto's STS session expiries, the
SigV4 signing dates of the keys, the function's clock and the worker's clock all agree. Each
simulated minute runs what is due then, in this order: Secrets Manager's backstop rotation
(every 4 hours), the frequent schedule's RotateSecret (every 20 minutes), the key check (every 5
minutes) and one job's key lookup in a worker. The worker's rotation trigger is routed to the
rotation harness. After each minute the AWSCURRENT key must stay valid for at least the worker's
refresh margin.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import time_machine
from rotation_support import REGION, make_client

from bedrock_key import ApiKeySecret
from gemma_batch.emulator.auth import validate_bearer_token, parse_bearer_token
from gemma_batch.local.rotation_harness import (
    RotationInProgressError,
    RotationStepError,
    rotate,
    route_rotate_secret,
    run_step,
    start_rotation,
)
from stacks.key_timing import KEY_CHECK_INTERVAL_SECONDS, WORKER_CACHE_SECONDS, KeyTiming
from worker.key_cache import ApiKeyCache, KeyCacheOptions

pytestmark = pytest.mark.xdist_group("key_rotation_moto")

START = datetime(2027, 1, 4, tzinfo=timezone.utc)
SIMULATED_MINUTES = 48 * 60
ROTATION_INTERVAL_MINUTES = 20
REFRESH_MARGIN_SECONDS = 300
BACKSTOP_MINUTES = 4 * 60
# Failure episodes, in minutes from the start.
SCHEDULE_OUTAGE = range(6 * 60, 9 * 60)
CRASH_AFTER_CREATE_SECRET_AT = 20 * 60
STS_OUTAGE = range(30 * 60 + 15, 30 * 60 + 25)


@dataclass
class Timeline:
    """What happened during the simulation, for the checks at the end."""

    lowest_validity_seconds: float = float("inf")
    lowest_validity_at: datetime | None = None
    scheduled: dict[str, int] = field(default_factory=lambda: {"finished": 0, "failed": 0, "refused": 0})
    abandoned_by_key_check: list[str] = field(default_factory=list)
    keys_served_to_jobs: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _StubResponse:
    status_code: int
    headers: dict = field(default_factory=dict)


def fail_assume_role_during(sts_client: Any, minutes: range) -> None:
    """Fail AssumeRole with a 503 while the simulated minute is in ``minutes``, as an STS outage would."""

    def answer(**_: Any) -> tuple[_StubResponse, dict[str, Any]] | None:
        minute = int((datetime.now(timezone.utc) - START).total_seconds() // 60)
        if minute not in minutes:
            return None
        return _StubResponse(503), {
            "Error": {"Code": "ServiceUnavailable", "Message": "simulated STS outage"},
            "ResponseMetadata": {"HTTPStatusCode": 503},
        }

    sts_client.meta.events.register("before-call.sts.AssumeRole", answer)


def run_schedule(secretsmanager, secret_arn: str, handler, outcome: dict[str, int]) -> None:
    """Call RotateSecret as a schedule does; the call fails while a rotation is unfinished."""
    try:
        rotate(secretsmanager, secret_arn, handler=handler)
    except RotationInProgressError:
        outcome["refused"] += 1
    except RotationStepError:
        outcome["failed"] += 1
    else:
        outcome["finished"] += 1


def current_key(secretsmanager, secret_arn: str) -> ApiKeySecret:
    value = secretsmanager.get_secret_value(SecretId=secret_arn, VersionStage="AWSCURRENT")["SecretString"]
    return ApiKeySecret.from_json(value)


def test_key_stays_valid_for_48_hours(secretsmanager, secret_arn, make_handler, sts, moto_endpoint, caplog):
    # moto server logs every request; about 4,000 records would only slow the run down.
    caplog.set_level(logging.WARNING, logger="werkzeug")
    timing = KeyTiming.short_term_mode(ROTATION_INTERVAL_MINUTES)
    handler = make_handler(MIN_KEY_VALIDITY_SECONDS=str(timing.min_pending_validity))
    fail_assume_role_during(sts.client, STS_OUTAGE)
    worker_secretsmanager = make_client("secretsmanager", moto_endpoint)
    worker_requests = route_rotate_secret(worker_secretsmanager, secretsmanager, handler)
    timeline = Timeline()

    with time_machine.travel(START, tick=False) as traveller:
        # GIVEN a deployed secret, whose first rotation runs when the rotation schedule is created
        rotate(secretsmanager, secret_arn, handler=handler)
        cache = ApiKeyCache(
            worker_secretsmanager,
            secret_arn,
            REFRESH_MARGIN_SECONDS,
            options=KeyCacheOptions(
                cache_seconds=WORKER_CACHE_SECONDS,
                rotation_trigger_seconds=timing.worker_trigger,
                rotation_min_interval_seconds=timing.trigger_window,
            ),
        )
        current = current_key(secretsmanager, secret_arn)

        # WHEN 48 hours pass, with a 3-hour outage of the frequent schedule, a rotation that crashes after
        # createSecret, and a 10-minute STS outage
        for minute in range(SIMULATED_MINUTES):
            now = START + timedelta(minutes=minute)
            traveller.move_to(now)
            rotations_before = len(worker_requests.finished)

            if minute % BACKSTOP_MINUTES == 0 and minute > 0:
                run_schedule(secretsmanager, secret_arn, handler, timeline.scheduled)
            if minute % ROTATION_INTERVAL_MINUTES == 0 and minute not in SCHEDULE_OUTAGE:
                if minute == CRASH_AFTER_CREATE_SECRET_AT:
                    # The function stops after createSecret, for example at its timeout, and cleans nothing up.
                    run_step(handler, start_rotation(secretsmanager, secret_arn), "createSecret")
                else:
                    run_schedule(secretsmanager, secret_arn, handler, timeline.scheduled)
            if minute % (KEY_CHECK_INTERVAL_SECONDS // 60) == 0:
                result = handler({"Action": "CheckKey", "SecretId": secret_arn}, None)
                timeline.abandoned_by_key_check.extend(result.abandoned_versions)

            served = cache.get()
            timeline.keys_served_to_jobs.add(served.api_key)
            # THEN the key a job gets is valid for at least the refresh margin
            assert served.seconds_left(now) >= REFRESH_MARGIN_SECONDS, now

            if minute % ROTATION_INTERVAL_MINUTES == 0 or len(worker_requests.finished) != rotations_before:
                current = current_key(secretsmanager, secret_arn)
            # AND the AWSCURRENT key is valid for at least the margin, by its stored expiry and by its own
            # signature date, lifetime and signing session, as Mantle judges a key
            validity = current.seconds_left(now)
            if validity < timeline.lowest_validity_seconds:
                timeline.lowest_validity_seconds, timeline.lowest_validity_at = validity, now
            assert validity >= REFRESH_MARGIN_SECONDS, now
            validate_bearer_token(
                current.api_key,
                region=REGION,
                now=now + timedelta(seconds=REFRESH_MARGIN_SECONDS),
                session_expiries=session_expiries(sts),
            )

    # AND every failure episode happened and was recovered from by the trigger meant for it
    assert timeline.scheduled["failed"] >= 1, "the STS outage failed no scheduled rotation"
    assert worker_requests.finished, "the worker trigger never rotated during the schedule outage"
    assert any(
        SCHEDULE_OUTAGE.start <= minute_of(token_time) < SCHEDULE_OUTAGE.stop
        for token_time in rotation_times(secretsmanager, secret_arn, worker_requests.finished)
    )
    assert len(timeline.abandoned_by_key_check) == 1, "the key check did not abandon the crashed rotation"
    # AND the schedule and the workers stayed within about one new version per 10 minutes
    created_versions = len(secretsmanager.list_secret_version_ids(SecretId=secret_arn)["Versions"])
    assert created_versions <= timing.versions_per_day(worst_case=True) * 2
    # AND the healthy floor of a 60-minute key rotated every 20 minutes held outside the failure episodes
    assert timeline.lowest_validity_seconds >= REFRESH_MARGIN_SECONDS


def session_expiries(sts) -> dict[str, datetime]:
    return {
        call.response["Credentials"]["AccessKeyId"]: call.response["Credentials"]["Expiration"]
        for call in sts.calls
        if call.response is not None and "Credentials" in call.response
    }


def rotation_times(secretsmanager, secret_arn: str, tokens: list[str]) -> list[datetime]:
    """Return the issued_at of the keys stored by the given rotations."""
    times = []
    for token in tokens:
        value = secretsmanager.get_secret_value(SecretId=secret_arn, VersionId=token)["SecretString"]
        times.append(ApiKeySecret.from_json(value).issued_at)
    return times


def minute_of(moment: datetime) -> int:
    return int((moment - START).total_seconds() // 60)
