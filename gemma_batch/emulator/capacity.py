"""The emulator's capacity model: a tokens-per-minute quota that rejects requests beyond it with HTTP 429.

bedrock-mantle checks a request's input tokens plus its max_tokens against the model's
input-tokens-per-minute quota when the request arrives, and throttles it with HTTP 429 when
admitting it would exceed the quota ("Quotas for the bedrock-mantle endpoint", Amazon Bedrock
User Guide). This model does the same over a sliding window. A request that gets 429 is not
charged.

NOTE: bedrock-mantle also has a separate output-tokens-per-minute quota. This model keeps one
quota instead, and lowers a finished request's charge to the tokens it used, so a job's
max_tokens only holds quota while the job runs. The guide describes no such settling for mantle.

The window is 60 seconds unless a benchmark scales time down: with ``window_seconds=1`` the
quota applies per second of wall-clock time, so one second stands for one minute.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

MINUTE_SECONDS = 60.0


@dataclass
class Reservation:
    """The tokens charged for one request, from the moment it was admitted."""

    admitted_at: float
    tokens: int
    expired: bool = False


class TokenQuota:
    """A thread-safe tokens-per-window quota. ``clock`` returns seconds, such as ``time.monotonic``."""

    def __init__(self, tokens_per_minute: int, *, window_seconds: float = MINUTE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if isinstance(tokens_per_minute, bool) or not isinstance(tokens_per_minute, int) or tokens_per_minute < 1:
            raise ValueError(f"tokens_per_minute must be a whole number of at least 1, got {tokens_per_minute!r}")
        if not window_seconds > 0:
            raise ValueError(f"window_seconds must be greater than 0, got {window_seconds!r}")
        self.tokens_per_minute = tokens_per_minute
        self.window_seconds = float(window_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self._charges: deque[Reservation] = deque()
        self._total = 0

    def try_reserve(self, tokens: int) -> Reservation | None:
        """Charge ``tokens`` now and return the reservation, or return None when they do not fit."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            if self._total + tokens > self.tokens_per_minute:
                return None
            reservation = Reservation(now, tokens)
            self._charges.append(reservation)
            self._total += tokens
            return reservation

    def settle(self, reservation: Reservation, used_tokens: int) -> None:
        """Lower a reservation to the tokens the request used; a larger number is ignored."""
        with self._lock:
            settled = min(reservation.tokens, max(0, used_tokens))
            if not reservation.expired:
                self._total -= reservation.tokens - settled
            reservation.tokens = settled

    def used_tokens(self) -> int:
        """Return the tokens charged in the current window."""
        with self._lock:
            self._expire(self._clock())
            return self._total

    def snapshot(self) -> dict[str, Any]:
        return {
            "tokens_per_minute": self.tokens_per_minute,
            "window_seconds": self.window_seconds,
            "used_tokens": self.used_tokens(),
        }

    def _expire(self, now: float) -> None:
        while self._charges and self._charges[0].admitted_at <= now - self.window_seconds:
            charge = self._charges.popleft()
            charge.expired = True
            self._total -= charge.tokens


def reserved_tokens(input_tokens: int, max_tokens: int | None) -> int:
    """Return what a request is charged on arrival: its input tokens plus its max_tokens, if it sets one."""
    return input_tokens + (max_tokens or 0)


def used_tokens(body: dict[str, Any]) -> int:
    """Return the tokens a response body's usage reports, for Chat Completions and Responses alike."""
    usage = body.get("usage") or {}
    if isinstance(usage.get("total_tokens"), int):
        return usage["total_tokens"]
    input_tokens = usage.get("prompt_tokens", usage.get("input_tokens", 0)) or 0
    output_tokens = usage.get("completion_tokens", usage.get("output_tokens", 0)) or 0
    return int(input_tokens) + int(output_tokens)


QUOTA_EXCEEDED_MESSAGE = "Too many tokens per minute: the quota for this model is used up. Retry later."
