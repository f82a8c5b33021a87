"""Simulate the ramp controller minute by minute against the emulator's capacity model.

Each simulated minute, the controller's rate maps to a maximum concurrency, and the pool sends
``target_rate * concurrency / pool_size`` requests, or fewer when demand is lower. That is the
inverse of the controller's rate-to-concurrency mapping. Every request is charged against the
emulator's tokens-per-minute quota (``gemma_batch.emulator.capacity.TokenQuota``) on a simulated
clock and gets 429 beyond it. During the chosen 503 episodes the region serves only
``unavailable_capacity`` requests per minute and returns 503 for the rest. The minute's counts go
to the controller's pure ``decide``, as the Lambda function would read them from CloudWatch.

Run it with ``python -m gemma_batch simulate-ramp``; it prints the concurrency over time.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from gemma_batch.emulator.capacity import TokenQuota, reserved_tokens

# The controller's code lives in lambda/ at the repository root, beside this package.
FUNCTION_CODE_DIRECTORY = Path(__file__).resolve().parents[1] / "lambda"
if str(FUNCTION_CODE_DIRECTORY) not in sys.path:
    sys.path.insert(0, str(FUNCTION_CODE_DIRECTORY))

from ramp_controller.policy import (  # noqa: E402 - needs the path above
    RampPolicy,
    WindowCounts,
    concurrency_for_rate,
    decide,
    initial_state,
)

MINUTE = 60.0


@dataclass(frozen=True)
class Scenario:
    """The simulated pool's demand, token quota and 503 episodes. Rates are requests per minute, tokens are per request."""

    minutes: int
    demand_rate: float
    tokens_per_minute: int
    input_tokens: int
    max_tokens: int
    output_tokens: int
    unavailable_minutes: frozenset[int]
    unavailable_capacity: float

    def __post_init__(self) -> None:
        checks = [
            ("--minutes", self.minutes, self.minutes >= 1, "at least 1"),
            ("--demand", self.demand_rate, self.demand_rate >= 0, "0 or more"),
            ("--tokens-per-minute", self.tokens_per_minute, self.tokens_per_minute >= 1, "at least 1"),
            ("--input-tokens", self.input_tokens, self.input_tokens >= 1, "at least 1"),
            ("--max-tokens", self.max_tokens, self.max_tokens >= self.output_tokens, "at least --output-tokens"),
            ("--output-tokens", self.output_tokens, self.output_tokens >= 0, "0 or more"),
            ("--unavailable-capacity", self.unavailable_capacity, self.unavailable_capacity >= 0, "0 or more"),
        ]
        for option, value, valid, allowed in checks:
            if not valid:
                raise ValueError(f"{option} is {value:g}; it must be {allowed}")


@dataclass(frozen=True)
class MinuteResult:
    minute: int
    rate: float
    concurrency: int
    requests: int
    throttled_429: int
    unavailable_503: int
    succeeded_tokens: int
    action: str


def simulate(policy: RampPolicy, scenario: Scenario) -> list[MinuteResult]:
    """Run the scenario and return one result per minute, with the rate and concurrency in force during it."""
    clock = _SimulatedClock()
    quota = TokenQuota(scenario.tokens_per_minute, clock=clock)
    state = initial_state(policy)
    results = []
    for minute in range(scenario.minutes):
        concurrency = concurrency_for_rate(policy, state.rate)
        pool_rate = policy.target_rate * concurrency / policy.pool_size
        count = int(min(scenario.demand_rate, pool_rate))
        served = count
        if minute in scenario.unavailable_minutes:
            served = min(count, int(scenario.unavailable_capacity))
        throttled = unavailable = succeeded_tokens = 0
        for index in range(count):
            clock.now = minute * MINUTE + index * MINUTE / max(count, 1)
            # Spread the 503s evenly over the minute: request i is served while i * served / count
            # crosses a whole number.
            if (index + 1) * served // count == index * served // count:
                unavailable += 1
                continue
            reservation = quota.try_reserve(reserved_tokens(scenario.input_tokens, scenario.max_tokens))
            if reservation is None:
                throttled += 1
                continue
            used = scenario.input_tokens + scenario.output_tokens
            quota.settle(reservation, used)
            succeeded_tokens += used
        decision = decide(policy, state, WindowCounts(MINUTE, count, throttled, unavailable))
        results.append(MinuteResult(minute, state.rate, concurrency, count, throttled, unavailable,
                                    succeeded_tokens, decision.action.value))
        state = decision.state
    return results


def format_report(policy: RampPolicy, scenario: Scenario, results: Sequence[MinuteResult], every: int) -> str:
    """Return a table of the minutes where something changed (and every ``every``-th), a chart and totals."""
    width = 40
    lines = [
        f"target {policy.target_rate:g} requests/min, pool {policy.pool_size}, hold {policy.hold_seconds / 60:g} min; "
        f"demand {scenario.demand_rate:g} requests/min; quota {scenario.tokens_per_minute} tokens/min, "
        f"{scenario.input_tokens}+{scenario.max_tokens} tokens charged per request up front, "
        f"{scenario.input_tokens + scenario.output_tokens} used",
        "",
        f"{'minute':>6} {'rate':>8} {'conc':>4} {'requests':>8} {'429':>5} {'503':>5}  {'decision':<8} concurrency",
    ]
    previous: MinuteResult | None = None
    for result in results:
        changed = previous is None or result.concurrency != previous.concurrency or result.action != "hold"
        if changed or result.minute % every == 0:
            bar = "#" * round(width * result.concurrency / policy.pool_size)
            lines.append(
                f"{result.minute:>6} {result.rate:>8.1f} {result.concurrency:>4} {result.requests:>8} "
                f"{result.throttled_429:>5} {result.unavailable_503:>5}  {result.action:<8} {bar}"
            )
        previous = result

    requests = sum(result.requests for result in results)
    throttled = sum(result.throttled_429 for result in results)
    unavailable = sum(result.unavailable_503 for result in results)
    goodput = sum(result.succeeded_tokens for result in results) / max(len(results), 1)
    lines += [
        "",
        f"requests {requests}, 429 share {throttled / max(requests, 1):.1%}, 503 share {unavailable / max(requests, 1):.1%}",
        f"goodput {goodput:.0f} tokens/min = {goodput / scenario.tokens_per_minute:.2f} of the quota",
    ]
    return "\n".join(lines)


def parse_minutes(text: str) -> frozenset[int]:
    """Parse episodes such as ``30-34,90`` into the set of minutes they cover."""
    minutes: set[int] = set()
    for part in filter(None, (item.strip() for item in text.split(","))):
        first, _, last = part.partition("-")
        try:
            start, end = int(first), int(last or first)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"episode {part!r} is not a minute or a range such as 30-34"
            ) from None
        if start < 0 or end < start:
            raise argparse.ArgumentTypeError(f"episode {part!r} must run forward from minute 0 or later")
        minutes.update(range(start, end + 1))
    return frozenset(minutes)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=int, default=240, help="simulated minutes (default: 240)")
    parser.add_argument("--target-rate", type=float, default=2000,
                        help="controller target in requests per minute (default: 2000)")
    parser.add_argument("--pool-size", type=int, default=100,
                        help="worker pool size, the concurrency at the target rate (default: 100)")
    parser.add_argument("--hold-minutes", type=float, default=15,
                        help="stable minutes before each raise (default: 15)")
    parser.add_argument("--throttled-cut", type=float, default=None,
                        help="factor a minute with 429s multiplies the rate by (default: the controller's)")
    parser.add_argument("--demand", type=float, default=3000,
                        help="requests per minute the queue could feed the pool (default: 3000)")
    parser.add_argument("--tokens-per-minute", type=int, default=600_000,
                        help="the emulator's token quota per minute (default: 600000)")
    parser.add_argument("--input-tokens", type=int, default=300, help="input tokens per request (default: 300)")
    parser.add_argument("--max-tokens", type=int, default=200,
                        help="max_tokens per request, charged up front (default: 200)")
    parser.add_argument("--output-tokens", type=int, default=150, help="output tokens per request (default: 150)")
    parser.add_argument("--unavailable", type=parse_minutes, default=parse_minutes("60-64,150-151"),
                        metavar="EPISODES",
                        help="minutes with 503s, such as 60-64,150-151 (default: 60-64,150-151)")
    parser.add_argument("--unavailable-capacity", type=float, default=600,
                        help="requests per minute the region serves during a 503 episode (default: 600)")
    parser.add_argument("--every", type=int, default=15,
                        help="print every N-th minute besides the minutes where something changed (default: 15)")


def run_from_arguments(arguments: argparse.Namespace) -> int:
    try:
        extra = {} if arguments.throttled_cut is None else {"throttled_cut_factor": arguments.throttled_cut}
        policy = RampPolicy(
            target_rate=arguments.target_rate,
            pool_size=arguments.pool_size,
            hold_seconds=arguments.hold_minutes * MINUTE,
            **extra,
        )
        scenario = Scenario(
            minutes=arguments.minutes,
            demand_rate=arguments.demand,
            tokens_per_minute=arguments.tokens_per_minute,
            input_tokens=arguments.input_tokens,
            max_tokens=arguments.max_tokens,
            output_tokens=arguments.output_tokens,
            unavailable_minutes=arguments.unavailable,
            unavailable_capacity=arguments.unavailable_capacity,
        )
    except ValueError as error:
        print(f"simulate-ramp: {error}", file=sys.stderr)
        return 2
    print(format_report(policy, scenario, simulate(policy, scenario), max(arguments.every, 1)))
    return 0


class _SimulatedClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now
