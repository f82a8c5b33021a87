"""Worker settings, read once per process from the environment variables that the stack sets."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Mapping

from worker.job import REASONING_EFFORTS, SUPPORTED_MODELS, InputLocation


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
    job_state_table: str
    job_state_ttl_seconds: int = 30 * 86400
    input_bucket: str | None = None
    input_prefix: str = ""
    allow_standard_tier_escalation: bool = False
    reasoning_effort_by_model: Mapping[str, str] = field(default_factory=dict)
    max_receive_count: int | None = None

    @property
    def input_location(self) -> InputLocation | None:
        """Where ``s3://`` images may come from, or None when no input bucket is configured."""
        return InputLocation(self.input_bucket, self.input_prefix) if self.input_bucket else None

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
            job_state_table=env.text("JOB_STATE_TABLE"),
            job_state_ttl_seconds=env.integer("JOB_STATE_TTL_DAYS", default=30, minimum=1) * 86400,
            input_bucket=env.optional_text("INPUT_BUCKET"),
            input_prefix=env.optional_text("INPUT_PREFIX") or "",
            allow_standard_tier_escalation=env.boolean("ALLOW_STANDARD_TIER_ESCALATION", default=False),
            reasoning_effort_by_model=env.reasoning_efforts("REASONING_EFFORT_BY_MODEL"),
            max_receive_count=env.optional_integer("MAX_RECEIVE_COUNT", minimum=1),
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

    def optional_text(self, name: str) -> str | None:
        return self._environ.get(name, "").strip() or None

    def boolean(self, name: str, default: bool) -> bool:
        raw = self._environ.get(name, "").strip().lower()
        if not raw:
            return default
        if raw not in ("true", "false"):
            raise SettingsError(f"environment variable {name} is {raw!r}; expected true or false")
        return raw == "true"

    def optional_integer(self, name: str, minimum: int) -> int | None:
        if not self._environ.get(name, "").strip():
            return None
        return self.integer(name, default=minimum, minimum=minimum)

    def reasoning_efforts(self, name: str) -> dict[str, str]:
        """Read a JSON object that maps model ids to reasoning efforts, such as {"google.gemma-4-e2b": "high"}."""
        raw = self._environ.get(name, "").strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if not isinstance(value, dict) or not all(
            model in SUPPORTED_MODELS and effort in REASONING_EFFORTS for model, effort in value.items()
        ):
            raise SettingsError(
                f"environment variable {name} is {raw!r}; expected a JSON object that maps model ids "
                f"({', '.join(SUPPORTED_MODELS)}) to {', '.join(REASONING_EFFORTS)}"
            )
        return dict(value)

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
