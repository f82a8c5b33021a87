"""Ramp controller settings, read from the environment variables that the stack sets."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Mapping

from ramp_controller.policy import MAX_CONCURRENCY, MIN_CONCURRENCY, RampPolicy


class SettingsError(RuntimeError):
    """Raised when an environment variable is missing or invalid. The message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Configuration of the controller."""

    enabled: bool
    state_table_name: str
    event_source_mapping_uuid: str
    pool_size: int
    target_rate: float
    hold_seconds: float
    metrics_namespace: str
    worker_metrics_service: str
    metrics_service: str
    metric_delay_seconds: int
    max_window_seconds: int

    @property
    def policy(self) -> RampPolicy:
        return RampPolicy(target_rate=self.target_rate, pool_size=self.pool_size, hold_seconds=self.hold_seconds)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Read the settings, raising SettingsError for the first missing or invalid variable."""
        env = _Environment(os.environ if environ is None else environ)
        return cls(
            enabled=env.boolean("RAMP_CONTROLLER_ENABLED"),
            state_table_name=env.text("RAMP_STATE_TABLE"),
            event_source_mapping_uuid=env.text("EVENT_SOURCE_MAPPING_UUID"),
            pool_size=int(env.number("WORKER_POOL_SIZE", MIN_CONCURRENCY, MAX_CONCURRENCY, whole=True)),
            target_rate=env.number("RAMP_TARGET_REQUESTS_PER_MINUTE", 1, 1_000_000),
            hold_seconds=60 * env.number("RAMP_HOLD_MINUTES", 1, 1440),
            metrics_namespace=env.text("METRICS_NAMESPACE"),
            worker_metrics_service=env.text("WORKER_METRICS_SERVICE"),
            metrics_service=env.text("METRICS_SERVICE"),
            metric_delay_seconds=int(env.number("METRIC_DELAY_SECONDS", 0, 900, whole=True, default=60)),
            max_window_seconds=int(env.number("MAX_WINDOW_SECONDS", 60, 86400, whole=True, default=900)),
        )


class _Environment:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str) -> str:
        value = self._environ.get(name, "").strip()
        if not value:
            raise SettingsError(f"missing environment variable {name}; the stack sets it on the ramp controller")
        return value

    def boolean(self, name: str) -> bool:
        value = self.text(name).lower()
        if value not in ("true", "false"):
            raise SettingsError(f"environment variable {name} is {value!r}; expected true or false")
        return value == "true"

    def number(
        self, name: str, minimum: float, maximum: float, *, whole: bool = False, default: float | None = None
    ) -> float:
        raw = self._environ.get(name, "").strip()
        if not raw and default is not None:
            return default
        if not raw:
            raise SettingsError(f"missing environment variable {name}; the stack sets it on the ramp controller")
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"environment variable {name} is {raw!r}; expected a number") from None
        if not math.isfinite(value) or not minimum <= value <= maximum or (whole and not value.is_integer()):
            kind = "a whole number" if whole else "a number"
            raise SettingsError(
                f"environment variable {name} is {raw!r}; expected {kind} from {minimum:g} to {maximum:g}"
            )
        return value
