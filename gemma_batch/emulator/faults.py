"""Fault injection for the Mantle emulator: throttling, unavailability, 400 errors and latency."""

from __future__ import annotations

import math
import random
import threading
from dataclasses import asdict, dataclass, replace
from typing import Any

FAULT_STATUSES = {"throttle": 429, "unavailable": 503, "route": 400, "tier": 400}
RETRY_AFTER_FORMATS = ("seconds", "http-date")


@dataclass(frozen=True)
class FaultRule:
    """A fault for matching requests.

    ``kind`` is ``throttle`` (429), ``unavailable`` (503), ``route`` (400, the model isn't supported
    on this route) or ``tier`` (400, the service tier is invalid). ``count`` limits the rule to the
    next N matching requests, and None means no limit. ``fraction`` is the probability that a
    matching request gets the fault. ``retry_after`` adds a Retry-After header of that many seconds,
    written as delta-seconds or as an HTTP date. ``job_id`` limits the rule to one job's requests,
    and ``service_tier`` to requests for that tier (``flex`` makes Flex fail while other tiers work).
    """

    kind: str
    count: int | None = None
    fraction: float = 1.0
    retry_after: float | None = None
    retry_after_format: str = "seconds"
    job_id: str | None = None
    service_tier: str | None = None

    def __post_init__(self) -> None:
        # Rules also arrive as JSON over the control API, where any field can have any type.
        if self.count is not None and (isinstance(self.count, bool) or not isinstance(self.count, int)):
            raise ValueError(f"fault count must be a whole number, got {self.count!r}")
        for name in ("fraction", "retry_after"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValueError(f"fault {name} must be a number, got {value!r}")
            if value is not None and not math.isfinite(value):
                raise ValueError(f"fault {name} must be a finite number, got {value!r}")
        if self.kind not in FAULT_STATUSES:
            raise ValueError(f"fault kind {self.kind!r} is unknown; use one of {', '.join(FAULT_STATUSES)}")
        if self.count is not None and self.count < 1:
            raise ValueError(f"fault count must be at least 1, got {self.count}")
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError(f"fault fraction must be between 0 and 1, got {self.fraction}")
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError(f"fault retry_after must not be negative, got {self.retry_after}")
        if self.retry_after_format not in RETRY_AFTER_FORMATS:
            raise ValueError(
                f"fault retry_after_format {self.retry_after_format!r} is unknown; use one of "
                f"{', '.join(RETRY_AFTER_FORMATS)}"
            )

    @property
    def status(self) -> int:
        return FAULT_STATUSES[self.kind]

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> "FaultRule":
        """Build a rule from its JSON form, raising ValueError for unknown or invalid fields."""
        known = {"kind", "count", "fraction", "retry_after", "retry_after_format", "job_id", "service_tier"}
        unknown = sorted(set(document) - known)
        if unknown:
            raise ValueError(f"fault field {unknown[0]!r} is unknown; use {', '.join(sorted(known))}")
        if "kind" not in document:
            raise ValueError("fault field 'kind' is missing")
        return cls(**document)


class FaultPlan:
    """Thread-safe list of fault rules and the fixed latency. The random source is seeded so runs repeat."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._seed = seed
        self._random = random.Random(seed)
        self._rules: list[FaultRule] = []
        self._latency_seconds = 0.0

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def fail_next(
        self,
        count: int,
        kind: str = "throttle",
        *,
        retry_after: float | None = None,
        retry_after_format: str = "seconds",
        job_id: str | None = None,
        service_tier: str | None = None,
    ) -> None:
        """Give the next ``count`` matching requests the fault ``kind``."""
        self.add(
            FaultRule(
                kind,
                count=count,
                retry_after=retry_after,
                retry_after_format=retry_after_format,
                job_id=job_id,
                service_tier=service_tier,
            )
        )

    def fail_fraction(
        self,
        fraction: float,
        kind: str = "throttle",
        *,
        retry_after: float | None = None,
        retry_after_format: str = "seconds",
        job_id: str | None = None,
        service_tier: str | None = None,
    ) -> None:
        """Give each matching request the fault ``kind`` with probability ``fraction``, without a limit."""
        self.add(
            FaultRule(
                kind,
                fraction=fraction,
                retry_after=retry_after,
                retry_after_format=retry_after_format,
                job_id=job_id,
                service_tier=service_tier,
            )
        )

    def set_latency(self, seconds: float) -> None:
        """Delay every API response by ``seconds``."""
        # time.sleep raises for NaN and infinity, which would turn every later request into a 500.
        if not math.isfinite(seconds):
            raise ValueError(f"latency must be a finite number of seconds, got {seconds}")
        if seconds < 0:
            raise ValueError(f"latency must not be negative, got {seconds}")
        with self._lock:
            self._latency_seconds = seconds

    @property
    def latency_seconds(self) -> float:
        with self._lock:
            return self._latency_seconds

    def clear(self) -> None:
        """Remove every rule, reset the latency to 0 and reseed the random source."""
        with self._lock:
            self._rules.clear()
            self._latency_seconds = 0.0
            self._random = random.Random(self._seed)

    def draw(self, job_id: str | None, service_tier: str | None = None) -> FaultRule | None:
        """Return the first rule that applies to this request, using up one of its count."""
        with self._lock:
            for index, rule in enumerate(self._rules):
                if rule.job_id is not None and rule.job_id != job_id:
                    continue
                if rule.service_tier is not None and rule.service_tier != service_tier:
                    continue
                if rule.fraction < 1.0 and self._random.random() >= rule.fraction:
                    continue
                if rule.count is not None:
                    if rule.count == 1:
                        del self._rules[index]
                    else:
                        self._rules[index] = replace(rule, count=rule.count - 1)
                return rule
            return None

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "rules": [asdict(rule) for rule in self._rules],
                "latency_seconds": self._latency_seconds,
                "seed": self._seed,
            }
