"""Tier escalation: a pure decision whether a job leaves the Flex tier for the standard tier.

Flex is cheaper but returns 503 when capacity is short. A job with a deadline may move to the
standard tier (``default``) when all of these hold:

- the configuration (``allow_standard_tier_escalation``) and the job both allow it;
- the job is on the Flex tier and Flex answered 503 at least ``MIN_CONSECUTIVE_UNAVAILABLE``
  times in a row in this delivery (or on every request, when the retry budget is smaller);
- the next Flex try would come too late: the wait before it plus one request timeout reaches
  past the deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

FLEX_TIER = "flex"
STANDARD_TIER = "default"
UNAVAILABLE_STATUS = 503
MIN_CONSECUTIVE_UNAVAILABLE = 2


@dataclass(frozen=True)
class EscalationInput:
    """The inputs of the decision. ``next_flex_try_in_seconds`` is the backoff or redelivery delay before the next Flex try."""

    config_allows: bool
    job_allows: bool
    current_tier: str
    status: int | None
    consecutive_unavailable: int
    max_attempts: int
    deadline: datetime | None
    now: datetime
    next_flex_try_in_seconds: float
    request_timeout_seconds: float


def escalation_due(decision_input: EscalationInput) -> bool:
    """Return whether the next request goes to the standard tier instead of Flex."""
    if not (decision_input.config_allows and decision_input.job_allows):
        return False
    if decision_input.current_tier != FLEX_TIER or decision_input.status != UNAVAILABLE_STATUS:
        return False
    if decision_input.deadline is None:
        return False
    needed = min(MIN_CONSECUTIVE_UNAVAILABLE, decision_input.max_attempts)
    if decision_input.consecutive_unavailable < needed:
        return False
    next_answer_at = decision_input.now + timedelta(
        seconds=decision_input.next_flex_try_in_seconds + decision_input.request_timeout_seconds
    )
    return next_answer_at >= decision_input.deadline
