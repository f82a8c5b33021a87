"""Worker settings, read once per process from the environment variables that the stack sets."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Mapping

from worker.job import SUPPORTED_MODELS


class SettingsError(RuntimeError):
    """Raised when an environment variable is missing or invalid. The message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Configuration of one worker process."""

    mantle_base_url: str
    model_id: str
    service_tier: str
    api_key_secret_arn: str
    results_bucket: str
    job_queue_url: str
    max_attempts_per_delivery: int
    backoff_base_seconds: float
    backoff_max_seconds: float
    request_timeout_seconds: float
    default_max_output_tokens: int
    key_refresh_margin_seconds: float
    metrics_namespace: str
    metrics_service: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Read the settings, raising SettingsError for the first missing or invalid variable."""
        env = _Environment(os.environ if environ is None else environ)
        settings = cls(
            mantle_base_url=env.text("MANTLE_BASE_URL").rstrip("/"),
            model_id=env.text("MODEL_ID"),
            service_tier=env.text("SERVICE_TIER", default="flex"),
            api_key_secret_arn=env.text("API_KEY_SECRET_ARN"),
            results_bucket=env.text("RESULTS_BUCKET"),
            job_queue_url=env.text("JOB_QUEUE_URL"),
            max_attempts_per_delivery=env.integer("MAX_ATTEMPTS_PER_DELIVERY", default=3, minimum=1),
            backoff_base_seconds=env.number("BACKOFF_BASE_SECONDS", default=1.0, minimum=0.0),
            backoff_max_seconds=env.number("BACKOFF_MAX_SECONDS", default=20.0, minimum=0.0),
            request_timeout_seconds=env.number("REQUEST_TIMEOUT_SECONDS", default=60.0, minimum=0.001),
            default_max_output_tokens=env.integer("DEFAULT_MAX_OUTPUT_TOKENS", default=1024, minimum=1, maximum=32768),
            key_refresh_margin_seconds=env.number("KEY_REFRESH_MARGIN_SECONDS", default=300.0, minimum=0.0),
            metrics_namespace=env.text("METRICS_NAMESPACE"),
            metrics_service=env.text("METRICS_SERVICE"),
        )
        if not settings.mantle_base_url.startswith(("https://", "http://")):
            raise SettingsError(
                f"environment variable MANTLE_BASE_URL is {settings.mantle_base_url!r}; expected a URL such as "
                "https://bedrock-mantle.us-east-1.api.aws/openai/v1"
            )
        if settings.model_id not in SUPPORTED_MODELS:
            raise SettingsError(
                f"environment variable MODEL_ID is {settings.model_id!r}; expected one of {', '.join(SUPPORTED_MODELS)}"
            )
        if settings.backoff_max_seconds < settings.backoff_base_seconds:
            raise SettingsError(
                f"environment variable BACKOFF_MAX_SECONDS ({settings.backoff_max_seconds}) is less than "
                f"BACKOFF_BASE_SECONDS ({settings.backoff_base_seconds}); raise the maximum or lower the base"
            )
        return settings


class _Environment:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str, default: str | None = None) -> str:
        value = self._environ.get(name, "").strip()
        if value:
            return value
        if default is not None:
            return default
        raise SettingsError(f"missing environment variable {name}; the stack sets it on the worker function")

    def integer(self, name: str, default: int, minimum: int, maximum: int | None = None) -> int:
        raw = self._environ.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"environment variable {name} is {raw!r}; expected a whole number") from None
        _check_range(name, value, minimum, maximum)
        return value

    def number(self, name: str, default: float, minimum: float) -> float:
        raw = self._environ.get(name, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"environment variable {name} is {raw!r}; expected a number of seconds") from None
        _check_range(name, value, minimum, None)
        return value


def _check_range(name: str, value: float, minimum: float, maximum: float | None) -> None:
    if not math.isfinite(value) or value < minimum or (maximum is not None and value > maximum):
        bounds = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise SettingsError(f"environment variable {name} is {value}; expected a value {bounds}")
