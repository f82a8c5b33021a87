"""The ramp policy: pure functions that turn the pool's recent 503 and 429 counts into a request rate.

The procedure is AWS's operating advice for Gemma 4 on Bedrock, automated:

- A window with 503 responses (the region is out of capacity) halves the rate, and every further
  window with 503s halves it again.
- A window with 429 responses (the tokens-per-minute quota is used up) lowers the rate to 75 %.
  The step is smaller than for 503s because the quota refills every minute, while a region short
  of capacity may stay short. ``python -m gemma_batch simulate-ramp --throttled-cut 0.5`` compares
  the two steps.
- After ``hold_seconds`` of stable traffic, meaning windows with requests and neither status, the
  rate rises by 50 %, up to the target. Each raise starts a new hold.

Nothing here reads a clock or calls AWS. The handler passes the stored state and the counts of one
window, and stores and applies what ``decide`` returns.

The rate maps to the event source mapping's maximum concurrency in proportion to the pool:
``ceil(pool_size * rate / target_rate)``, clamped to [2, pool_size]. The configured pool size is
the concurrency that the target rate needs, so half the target rate gets half the pool.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

# Lambda accepts a MaximumConcurrency from 2 to 1000 for SQS event sources.
MIN_CONCURRENCY = 2
MAX_CONCURRENCY = 1000


class Action(str, enum.Enum):
    CUT = "cut"
    """The rate went down, or stayed at the minimum, because of 503 or 429 responses."""
    RAISE = "raise"
    """The rate went up by the raise factor after a full hold of stable traffic."""
    HOLD = "hold"
    """The rate stayed: the hold is not over, the pool was idle, or the rate is at the target."""


@dataclass(frozen=True)
class RampPolicy:
    """The controller's configuration. Rates are requests per minute."""

    target_rate: float
    pool_size: int
    hold_seconds: float
    unavailable_cut_factor: float = 0.5
    throttled_cut_factor: float = 0.75
    raise_factor: float = 1.5

    def __post_init__(self) -> None:
        if not math.isfinite(self.target_rate) or self.target_rate <= 0:
            raise ValueError(f"target_rate must be a positive number of requests per minute, got {self.target_rate}")
        if not MIN_CONCURRENCY <= self.pool_size <= MAX_CONCURRENCY:
            raise ValueError(
                f"pool_size must be from {MIN_CONCURRENCY} to {MAX_CONCURRENCY}, as Lambda allows for "
                f"MaximumConcurrency, got {self.pool_size}"
            )
        if not math.isfinite(self.hold_seconds) or self.hold_seconds <= 0:
            raise ValueError(f"hold_seconds must be a positive number, got {self.hold_seconds}")
        for name in ("unavailable_cut_factor", "throttled_cut_factor"):
            factor = getattr(self, name)
            if not 0 < factor < 1:
                raise ValueError(f"{name} must be greater than 0 and less than 1, got {factor}")
        if not self.raise_factor > 1:
            raise ValueError(f"raise_factor must be greater than 1, got {self.raise_factor}")

    @property
    def minimum_rate(self) -> float:
        """Return the rate that maps to the minimum concurrency. Cuts stop there.

        A rate below it would change nothing at the event source mapping, but it would make the
        way back up longer by one hold per halving.
        """
        return min(self.target_rate, self.target_rate * MIN_CONCURRENCY / self.pool_size)


@dataclass(frozen=True)
class RampState:
    """The controller's stored state: the rate and how long traffic has been stable at it."""

    rate: float
    stable_seconds: float = 0.0


@dataclass(frozen=True)
class WindowCounts:
    """The worker's request counts over one window of ``seconds``."""

    seconds: float
    requests: int
    throttled_429: int
    unavailable_503: int

    def __post_init__(self) -> None:
        if self.seconds <= 0:
            raise ValueError(f"a window must be longer than 0 seconds, got {self.seconds}")
        for name in ("requests", "throttled_429", "unavailable_503"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")


@dataclass(frozen=True)
class RampDecision:
    """The outcome of one window: the action, why, and the state to store."""

    action: Action
    reason: str
    previous_rate: float
    state: RampState

    @property
    def rate(self) -> float:
        return self.state.rate


def initial_state(policy: RampPolicy) -> RampState:
    """Return the state of a controller without a stored one: the target rate, no stable time."""
    return RampState(rate=policy.target_rate)


def decide(policy: RampPolicy, state: RampState, window: WindowCounts) -> RampDecision:
    """Decide the rate after one window of counts.

    503s win over 429s when both occur, because the 503 cut is the larger one by default and the
    region's capacity limits the quota's use anyway. A rate above the target (after the target was
    lowered in the configuration) is brought down to it.
    """
    rate = min(state.rate, policy.target_rate)
    if window.unavailable_503 > 0:
        cause = f"{window.unavailable_503} 503 responses"
        return _cut(policy, state, rate, policy.unavailable_cut_factor, cause, window)
    if window.throttled_429 > 0:
        cause = f"{window.throttled_429} 429 responses"
        return _cut(policy, state, rate, policy.throttled_cut_factor, cause, window)

    if window.requests == 0:
        # An idle pool shows nothing about the capacity, so the hold neither advances nor restarts.
        return RampDecision(
            Action.HOLD,
            f"no requests in the last {window.seconds:g} s; the hold stays at {state.stable_seconds:g} s",
            state.rate,
            RampState(rate, state.stable_seconds),
        )

    stable_seconds = state.stable_seconds + window.seconds
    if rate >= policy.target_rate:
        return RampDecision(
            Action.HOLD,
            f"stable at the target rate of {policy.target_rate:g} requests per minute",
            state.rate,
            RampState(rate, min(stable_seconds, policy.hold_seconds)),
        )
    if stable_seconds >= policy.hold_seconds:
        raised = min(policy.target_rate, rate * policy.raise_factor)
        return RampDecision(
            Action.RAISE,
            f"stable for {stable_seconds:g} s, the hold of {policy.hold_seconds:g} s is over",
            state.rate,
            RampState(raised, 0.0),
        )
    return RampDecision(
        Action.HOLD,
        f"stable for {stable_seconds:g} s of the {policy.hold_seconds:g} s hold",
        state.rate,
        RampState(rate, stable_seconds),
    )


def concurrency_for_rate(policy: RampPolicy, rate: float) -> int:
    """Map a rate to the event source mapping's maximum concurrency.

    The result is ``ceil(pool_size * rate / target_rate)``, clamped to [MIN_CONCURRENCY, pool_size].
    """
    share = policy.pool_size * rate / policy.target_rate
    # Rounding first keeps a product such as 5.000000000000001 from becoming 6.
    concurrency = math.ceil(round(share, 9))
    return max(MIN_CONCURRENCY, min(policy.pool_size, concurrency))


def _cut(
    policy: RampPolicy, state: RampState, rate: float, factor: float, cause: str, window: WindowCounts
) -> RampDecision:
    cut_rate = max(policy.minimum_rate, rate * factor)
    reason = f"{cause} of {window.requests} requests in {window.seconds:g} s"
    if cut_rate >= rate:
        reason += "; the rate is already at its minimum"
    return RampDecision(Action.CUT, reason, state.rate, RampState(cut_rate, 0.0))
