"""Settings of the app: parsed once from CDK context into frozen dataclasses and validated.

Every key has a default in ``cdk.json`` and can be overridden with ``cdk synth -c key=value``.
Values given on the command line arrive as strings, so each parser also accepts the string
form (``-c regions=us-east-1,eu-central-1``, ``-c worker_pool_size=50``,
``-c region_overrides='{"us-west-2": {"worker_pool_size": 50}}'``).

All problems are collected and raised together in one ``ConfigError`` so a user fixes a
configuration in one pass. Each message names the key, the value and what is allowed.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping

# Gemma 4's launch regions on Amazon Bedrock. Any other region is rejected.
SUPPORTED_REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-central-1")
MODEL_IDS = ("google.gemma-4-31b", "google.gemma-4-26b-a4b", "google.gemma-4-e2b")
MANTLE_BASE_PATHS = ("/openai/v1", "/v1")
SERVICE_TIERS = ("flex", "default", "priority")
# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)

_ACCOUNT_PATTERN = re.compile(r"^\d{12}$")
_EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PRINCIPAL_ARN_PATTERN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(root|role/[\w+=,.@/-]+|user/[\w+=,.@/-]+)$")


class ConfigError(ValueError):
    """Raised when one or more configuration values are invalid; the message lists each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(
            f"Invalid configuration ({len(problems)} problem{'s' if len(problems) != 1 else ''}); "
            f"fix these in cdk.json or the -c options:\n{lines}"
        )


@dataclass(frozen=True)
class RegionSettings:
    """Settings of one regional stack, after per-region overrides."""

    region: str
    model_id: str
    mantle_base_path: str
    service_tier: str
    worker_pool_size: int
    batch_size: int
    max_batching_window_seconds: int
    function_timeout_seconds: int
    function_memory_mb: int
    max_attempts_per_delivery: int
    default_max_output_tokens: int
    max_receive_count: int
    result_retention_days: int
    noncurrent_version_retention_days: int
    log_retention_days: int
    key_rotation_interval_minutes: int
    key_refresh_margin_seconds: int
    alarm_429_rate_percent: float
    alarm_503_rate_percent: float
    alarm_min_requests: int
    alarm_period_seconds: int
    alarm_evaluation_periods: int
    alarm_oldest_job_age_seconds: int
    alarm_email: str | None
    operator_trusted_principals: tuple[str, ...]

    @property
    def mantle_base_url(self) -> str:
        """The region's bedrock-mantle OpenAI-compatible endpoint, derived from the region."""
        return f"https://bedrock-mantle.{self.region}.api.aws{self.mantle_base_path}"

    @property
    def queue_visibility_timeout_seconds(self) -> int:
        """Six times the function timeout plus the batching window, as AWS advises for SQS event sources."""
        return 6 * self.function_timeout_seconds + self.max_batching_window_seconds


@dataclass(frozen=True)
class Settings:
    """The whole app's settings."""

    account: str | None
    regions: tuple[str, ...]
    bundling: bool
    by_region: Mapping[str, RegionSettings] = field(repr=False)

    def for_region(self, region: str) -> RegionSettings:
        return self.by_region[region]


# ---------------------------------------------------------------------------------------------
# Value parsers: each returns the parsed value or raises ValueError with what is allowed.


def _int_between(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError(f"must be a whole number from {low} to {high}")
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            value = int(value)
        if not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"must be a whole number from {low} to {high}")
        return value

    return parse


def _number_between(low: float, high: float) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError(f"must be a number greater than {low} and at most {high}")
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if not isinstance(value, (int, float)) or not low < value <= high:
            raise ValueError(f"must be a number greater than {low} and at most {high}")
        return float(value)

    return parse


def _one_of(allowed: tuple[Any, ...]) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if isinstance(value, str) and all(isinstance(option, int) for option in allowed):
            value = int(value) if value.strip().isdigit() else value
        if value not in allowed:
            raise ValueError(f"must be one of: {', '.join(str(option) for option in allowed)}")
        return value

    return parse


def _optional_email(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not _EMAIL_PATTERN.match(value):
        raise ValueError("must be an e-mail address such as ops@example.com, or empty for no subscription")
    return value


def _principal_arns(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",") if item.strip()]
    if not isinstance(value, (list, tuple)):
        raise ValueError("must be a list of IAM ARNs (arn:aws:iam::<account>:root, :role/<name> or :user/<name>)")
    bad = [item for item in value if not isinstance(item, str) or not _PRINCIPAL_ARN_PATTERN.match(item)]
    if bad:
        raise ValueError(
            f"contains {bad[0]!r}, which is not an IAM principal ARN; "
            "use arn:aws:iam::<12-digit account>:root, :role/<name> or :user/<name>"
        )
    return tuple(value)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError("must be true or false")


def _regions(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",") if item.strip()]
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"must be a non-empty list drawn from the supported regions: {', '.join(SUPPORTED_REGIONS)}")
    unsupported = [region for region in value if region not in SUPPORTED_REGIONS]
    if unsupported:
        raise ValueError(
            f"contains {', '.join(map(str, unsupported))}, where Gemma 4 is not offered; "
            f"supported regions: {', '.join(SUPPORTED_REGIONS)}"
        )
    if len(set(value)) != len(value):
        raise ValueError("lists a region twice; list each region once")
    return tuple(value)


def _account(value: Any) -> str | None:
    if value in (None, ""):
        return None
    value = str(value)
    if not _ACCOUNT_PATTERN.match(value):
        raise ValueError("must be a 12-digit AWS account id, or empty to use CDK_DEFAULT_ACCOUNT")
    return value


# Keys that can differ per region, with their parsers. Defaults live in cdk.json; the values
# here are used only when a key is missing from the context entirely (for example in tests).
REGION_KEYS: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "model_id": (_one_of(MODEL_IDS), "google.gemma-4-26b-a4b"),
    "mantle_base_path": (_one_of(MANTLE_BASE_PATHS), "/openai/v1"),
    "service_tier": (_one_of(SERVICE_TIERS), "flex"),
    "worker_pool_size": (_int_between(2, 1000), 10),
    "batch_size": (_int_between(1, 10), 5),
    "max_batching_window_seconds": (_int_between(0, 300), 1),
    "function_timeout_seconds": (_int_between(30, 900), 300),
    "function_memory_mb": (_int_between(128, 10240), 512),
    "max_attempts_per_delivery": (_int_between(1, 10), 3),
    "default_max_output_tokens": (_int_between(1, 32768), 1024),
    "max_receive_count": (_int_between(5, 1000), 5),
    "result_retention_days": (_int_between(1, 3650), 30),
    "noncurrent_version_retention_days": (_int_between(1, 365), 7),
    "log_retention_days": (_one_of(LOG_RETENTION_DAYS), 30),
    "key_rotation_interval_minutes": (_int_between(10, 30), 20),
    "key_refresh_margin_seconds": (_int_between(60, 900), 300),
    "alarm_429_rate_percent": (_number_between(0, 100), 5.0),
    "alarm_503_rate_percent": (_number_between(0, 100), 5.0),
    "alarm_min_requests": (_int_between(1, 1_000_000), 20),
    "alarm_period_seconds": (_one_of((60, 300, 900, 3600)), 300),
    "alarm_evaluation_periods": (_int_between(1, 288), 3),
    "alarm_oldest_job_age_seconds": (_int_between(60, 1_209_600), 3600),
    "alarm_email": (_optional_email, None),
    "operator_trusted_principals": (_principal_arns, ()),
}

APP_KEYS: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "account": (_account, None),
    "regions": (_regions, SUPPORTED_REGIONS),
    "bundling": (_bool, True),
}

OVERRIDES_KEY = "region_overrides"
KNOWN_KEYS = (*APP_KEYS, *REGION_KEYS, OVERRIDES_KEY)


def _parse_key(key: str, raw: Any, parser: Callable[[Any], Any], problems: list[str], where: str = "") -> Any:
    try:
        return parser(raw)
    except ValueError as error:
        problems.append(f"{where}{key}={json.dumps(raw)} is invalid: {error}")
        return None


def _parse_overrides(raw: Any, problems: list[str]) -> dict[str, dict[str, Any]]:
    if raw in (None, ""):
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            problems.append(
                f"{OVERRIDES_KEY}={raw!r} is invalid: must be a JSON object such as "
                '{"us-west-2": {"worker_pool_size": 50}}'
            )
            return {}
    if not isinstance(raw, dict):
        problems.append(f"{OVERRIDES_KEY}={json.dumps(raw)} is invalid: must be an object keyed by region")
        return {}
    overrides: dict[str, dict[str, Any]] = {}
    for region, values in raw.items():
        if region not in SUPPORTED_REGIONS:
            problems.append(
                f"{OVERRIDES_KEY} names region {region!r}, where Gemma 4 is not offered; "
                f"supported regions: {', '.join(SUPPORTED_REGIONS)}"
            )
            continue
        if not isinstance(values, dict):
            problems.append(f"{OVERRIDES_KEY}.{region} is invalid: must be an object of setting names to values")
            continue
        for key in values:
            if key not in REGION_KEYS:
                problems.append(
                    f"{OVERRIDES_KEY}.{region} sets unknown key {key!r}; keys that can differ per region: "
                    f"{', '.join(REGION_KEYS)}"
                )
        overrides[region] = {key: value for key, value in values.items() if key in REGION_KEYS}
    return overrides


def _check_for_misspelled_keys(context: Mapping[str, Any], problems: list[str]) -> None:
    # CDK's own context keys (feature flags, lookups) share the namespace, so only keys that look
    # like a misspelling of one of ours are reported.
    for key in context:
        if key in KNOWN_KEYS or key.startswith("@") or ":" in key:
            continue
        close = difflib.get_close_matches(key, KNOWN_KEYS, n=1, cutoff=0.8)
        if close:
            problems.append(f"unknown key {key!r}; did you mean {close[0]!r}?")


def load_settings(context: Mapping[str, Any], default_account: str | None = None) -> Settings:
    """Parse and validate the app's settings from a CDK context mapping.

    ``default_account`` is ``CDK_DEFAULT_ACCOUNT``; it is used only when ``account`` is not set.
    Raises ConfigError listing every invalid value.
    """
    problems: list[str] = []
    _check_for_misspelled_keys(context, problems)

    app_values = {
        key: _parse_key(key, context.get(key, default), parser, problems) for key, (parser, default) in APP_KEYS.items()
    }
    shared = {
        key: _parse_key(key, context.get(key, default), parser, problems)
        for key, (parser, default) in REGION_KEYS.items()
    }
    overrides = _parse_overrides(context.get(OVERRIDES_KEY), problems)

    regions = app_values["regions"] or ()
    by_region: dict[str, RegionSettings] = {}
    for region in regions:
        values = dict(shared)
        for key, raw in overrides.get(region, {}).items():
            parser = REGION_KEYS[key][0]
            values[key] = _parse_key(key, raw, parser, problems, where=f"{OVERRIDES_KEY}.{region}.")
        if any(value is None and key != "alarm_email" for key, value in values.items()):
            continue  # the invalid value is already reported
        by_region[region] = RegionSettings(region=region, **values)

    if problems:
        raise ConfigError(problems)

    return Settings(
        account=app_values["account"] or _account_or_none(default_account),
        regions=regions,
        bundling=app_values["bundling"],
        by_region=by_region,
    )


def _account_or_none(value: str | None) -> str | None:
    return value if value and _ACCOUNT_PATTERN.match(value) else None


def region_setting_names() -> list[str]:
    """Return the names of the settings that can differ per region, in declaration order."""
    return [item.name for item in fields(RegionSettings) if item.name != "region"]
