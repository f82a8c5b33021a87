"""The API key's timing: how long a key lives, when it is replaced, and when workers and alarms react.

Every number is derived from the settings here, in one place, so the README's arithmetic, the
stack and the tests agree. All values are seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from stacks.config import RegionSettings

# Role chaining caps an assumed-role session at one hour, and a short-term key dies with that session.
KEY_SESSION_SECONDS = 3600
# Secrets Manager's own schedule can rotate at most every 4 hours; in short-term mode it is the backstop.
SECRETS_MANAGER_MIN_ROTATION_SECONDS = 4 * 3600
# Secrets Manager advises against adding versions to a secret faster than once every 10 minutes.
MIN_VERSION_INTERVAL_SECONDS = 600
# How often the key check reports the current key's validity and unblocks a stopped rotation.
KEY_CHECK_INTERVAL_SECONDS = 300
# Workers re-read AWSCURRENT at least this often.
WORKER_CACHE_SECONDS = 300
# A workers' rotation request or the validity alarm waits this long past a missed scheduled rotation.
SHORT_TERM_TRIGGER_GRACE_SECONDS = 300
SHORT_TERM_ALARM_GRACE_SECONDS = 600
LONG_TERM_TRIGGER_GRACE_SECONDS = 6 * 3600
LONG_TERM_ALARM_GRACE_SECONDS = 86400
# A long-term credential lives three rotation intervals: current for one, previous for one, one spare.
LONG_TERM_KEY_AGE_INTERVALS = 3
DAY_SECONDS = 86400


@dataclass(frozen=True)
class KeyTiming:
    """The derived timing of one region's key.

    ``key_lifetime``: validity of a fresh key. ``rotation_interval``: time between scheduled
    rotations. ``min_pending_validity``: a pending key with less is abandoned. ``worker_trigger``:
    workers ask for a rotation when AWSCURRENT has less. ``trigger_window``: at most one
    workers' rotation per window. ``alarm_threshold``: the validity alarm fires below it.
    ``backstop_interval``: Secrets Manager's own schedule.
    """

    long_term: bool
    key_lifetime: int
    rotation_interval: int
    min_pending_validity: int
    worker_trigger: int
    trigger_window: int
    alarm_threshold: int
    backstop_interval: int

    @classmethod
    def for_settings(cls, settings: RegionSettings) -> "KeyTiming":
        if settings.long_term_api_key:
            return cls.long_term_mode(settings.long_term_key_rotation_days)
        return cls.short_term_mode(settings.key_rotation_interval_minutes)

    @classmethod
    def short_term_mode(cls, rotation_interval_minutes: int) -> "KeyTiming":
        interval = rotation_interval_minutes * 60
        # The healthy minimum of AWSCURRENT's validity is one session minus one interval.
        healthy_minimum = KEY_SESSION_SECONDS - interval
        return cls(
            long_term=False,
            key_lifetime=KEY_SESSION_SECONDS,
            rotation_interval=interval,
            min_pending_validity=min_key_validity_seconds(rotation_interval_minutes),
            worker_trigger=healthy_minimum - SHORT_TERM_TRIGGER_GRACE_SECONDS,
            trigger_window=max(interval, MIN_VERSION_INTERVAL_SECONDS),
            alarm_threshold=healthy_minimum - SHORT_TERM_ALARM_GRACE_SECONDS,
            backstop_interval=SECRETS_MANAGER_MIN_ROTATION_SECONDS,
        )

    @classmethod
    def long_term_mode(cls, rotation_days: int) -> "KeyTiming":
        interval = rotation_days * DAY_SECONDS
        lifetime = LONG_TERM_KEY_AGE_INTERVALS * interval
        healthy_minimum = lifetime - interval
        return cls(
            long_term=True,
            key_lifetime=lifetime,
            rotation_interval=interval,
            min_pending_validity=healthy_minimum,
            worker_trigger=healthy_minimum - LONG_TERM_TRIGGER_GRACE_SECONDS,
            trigger_window=DAY_SECONDS,
            alarm_threshold=healthy_minimum - LONG_TERM_ALARM_GRACE_SECONDS,
            backstop_interval=interval,
        )

    @property
    def long_term_key_age_days(self) -> int:
        return self.key_lifetime // DAY_SECONDS

    def versions_per_day(self, *, worst_case: bool) -> float:
        """Return the new secret versions per day: the schedules alone, or with a workers' request in every window."""
        scheduled = DAY_SECONDS / self.backstop_interval
        if not self.long_term:
            scheduled += DAY_SECONDS / self.rotation_interval
        return scheduled + (DAY_SECONDS / self.trigger_window if worst_case else 0)


def min_key_validity_seconds(rotation_interval_minutes: int) -> int:
    """Return the validity below which a pending short-term key is abandoned instead of made current.

    Two rotation intervals, so a key made current outlives the next rotation with room to spare,
    but at most the session length minus 15 minutes, so a freshly minted key always passes.
    """
    return min(2 * rotation_interval_minutes * 60, KEY_SESSION_SECONDS - 900)
