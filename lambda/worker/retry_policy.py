"""The retry policy: pure functions that decide whether, when and how a failed Mantle request is retried.

Nothing here sleeps or reads a clock. The caller passes the response status and headers, the
attempt number, the remaining invocation time, the current time and a random source, and it
carries out the decision.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Callable, Mapping

# 503 means the service is unavailable for now. The other 5xx statuses and connection errors
# (status None) are transient as well, so they are retried in the same way.
THROTTLED_STATUS = 429
UNAVAILABLE_STATUS = 503

# SQS limits a message's visibility timeout to 12 hours.
SQS_MAX_VISIBILITY_SECONDS = 43200
# Upper bound of the delay before a deferred job is delivered again.
REDELIVERY_MAX_SECONDS = 900
# Time kept free at the end of an invocation for writing results and changing message visibility.
DEFAULT_SAFETY_MARGIN_MS = 5000
# A request is not sent when less than this is left for it before the safety margin.
MIN_REQUEST_SECONDS = 1.0

RandomSource = Callable[[], float]
"""A function that returns a float in [0, 1), such as ``random.Random(seed).random``."""


class Action(enum.Enum):
    RETRY = "retry"
    """Sleep ``delay_seconds`` and send the request again in this delivery."""
    DEFER = "defer"
    """Stop for this delivery and let SQS deliver the message again later."""
    FAIL = "fail"
    """The error is permanent, so the job fails without a retry."""


@dataclass(frozen=True)
class RetryDecision:
    """The policy's decision for one failed request."""

    action: Action
    reason: str
    delay_seconds: float = 0.0
    retry_after_seconds: float | None = None


def is_retryable(status: int | None) -> bool:
    """Return whether a failed request may succeed later. None means a connection error or timeout."""
    return status is None or status == THROTTLED_STATUS or status >= 500


def parse_retry_after(headers: Mapping[str, str], now: datetime) -> float | None:
    """Return the wait in seconds that ``Retry-After`` (or OpenAI's ``retry-after-ms``) requests.

    ``Retry-After`` is either delta-seconds or an HTTP date (RFC 9110, section 10.2.3). A date in the
    past means no wait. Returns None when neither header is present or the value cannot be parsed.
    """
    milliseconds = _header(headers, "retry-after-ms")
    if milliseconds is not None:
        seconds = _parse_seconds(milliseconds)
        if seconds is not None:
            return seconds / 1000

    value = _header(headers, "retry-after")
    if value is None:
        return None
    seconds = _parse_seconds(value)
    if seconds is not None:
        return seconds
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, (moment - now).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by a request budget and the invocation's remaining time."""

    max_attempts: int
    backoff_base_seconds: float
    backoff_max_seconds: float
    safety_margin_ms: int = DEFAULT_SAFETY_MARGIN_MS

    def decide(
        self,
        *,
        status: int | None,
        headers: Mapping[str, str],
        attempt: int,
        remaining_ms: int,
        now: datetime,
        random: RandomSource,
    ) -> RetryDecision:
        """Decide what follows failed request number ``attempt`` (1-based) of this delivery.

        ``status`` is the HTTP status, or None for a connection error or timeout. A server's
        Retry-After is the delay when it is present. When it requests more than
        ``backoff_max_seconds``, the job waits in the queue instead of in the invocation.
        """
        if not is_retryable(status):
            return RetryDecision(Action.FAIL, f"HTTP {status} is not retryable")

        retry_after = parse_retry_after(headers, now)
        if attempt >= self.max_attempts:
            return RetryDecision(
                Action.DEFER,
                f"the retry budget of {self.max_attempts} requests per delivery is used up",
                retry_after_seconds=retry_after,
            )

        if retry_after is not None:
            if retry_after > self.backoff_max_seconds:
                return RetryDecision(
                    Action.DEFER,
                    f"Retry-After of {retry_after:.3f} s exceeds the maximum backoff of {self.backoff_max_seconds} s",
                    retry_after_seconds=retry_after,
                )
            delay = retry_after
        else:
            delay = self.backoff_seconds(attempt, random)

        if delay * 1000 + self.safety_margin_ms + MIN_REQUEST_SECONDS * 1000 > remaining_ms:
            return RetryDecision(
                Action.DEFER,
                f"a {delay:.3f} s backoff does not fit into the {remaining_ms} ms left in this invocation",
                retry_after_seconds=retry_after,
            )
        return RetryDecision(Action.RETRY, "retryable error", delay_seconds=delay, retry_after_seconds=retry_after)

    def backoff_seconds(self, attempt: int, random: RandomSource) -> float:
        """Return a full-jitter delay: uniform in [0, min(max, base * 2 ** (attempt - 1)))."""
        exponent = min(attempt - 1, 62)
        ceiling = min(self.backoff_max_seconds, self.backoff_base_seconds * 2**exponent)
        return random() * ceiling

    def request_timeout_seconds(self, configured_timeout: float, remaining_ms: int) -> float | None:
        """Return the timeout for the next request, or None when too little invocation time is left to send it."""
        available = (remaining_ms - self.safety_margin_ms) / 1000
        if available < MIN_REQUEST_SECONDS:
            return None
        return min(configured_timeout, available)

    def redelivery_delay_seconds(
        self, receive_count: int, retry_after_seconds: float | None, random: RandomSource
    ) -> int:
        """Return the visibility timeout, in whole seconds, for a job deferred to its next delivery.

        The delay continues the in-delivery backoff: its ceiling is base * 2 ** (max_attempts +
        receive_count - 1), capped at REDELIVERY_MAX_SECONDS. The value is drawn from the upper
        half of that range (equal jitter), so a deferred job never comes back at once. A server's
        Retry-After is the lower bound. SQS takes whole seconds, so the delay is rounded to the nearest
        second, which makes delays below half a second 0 (visible again at once).
        """
        ceiling = self._redelivery_ceiling(receive_count)
        delay = ceiling / 2 + random() * ceiling / 2
        if retry_after_seconds is not None:
            delay = max(delay, retry_after_seconds)
        return min(SQS_MAX_VISIBILITY_SECONDS, int(math.floor(delay + 0.5)))


    def earliest_redelivery_seconds(self, receive_count: int, retry_after_seconds: float | None) -> float:
        """Return the shortest delay ``redelivery_delay_seconds`` can return for this delivery, before rounding."""
        earliest = self._redelivery_ceiling(receive_count) / 2
        if retry_after_seconds is not None:
            earliest = max(earliest, retry_after_seconds)
        return min(float(SQS_MAX_VISIBILITY_SECONDS), earliest)

    def _redelivery_ceiling(self, receive_count: int) -> float:
        exponent = min(self.max_attempts + max(receive_count, 1) - 1, 62)
        return min(float(REDELIVERY_MAX_SECONDS), self.backoff_base_seconds * 2**exponent)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value.strip()
    return None


def _parse_seconds(value: str) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds
