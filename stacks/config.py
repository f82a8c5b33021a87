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
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Iterable, Mapping

# Gemma 4's launch regions on Amazon Bedrock. Any other region is rejected.
SUPPORTED_REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-central-1")
MODEL_IDS = ("google.gemma-4-31b", "google.gemma-4-26b-a4b", "google.gemma-4-e2b")
MANTLE_BASE_PATHS = ("/openai/v1", "/v1")
SERVICE_TIERS = ("flex", "default", "priority")
# cdk-nag packs that nag_packs can add to the ones that always run (AwsSolutions, Serverless, GemmaBatch).
EXTRA_NAG_PACKS = ("NIST80053R5", "HIPAASecurity")
# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)

# "\Z" ends the match at the end of the string: "$" also matches before a trailing line break, and
# "\d" and "\w" would also match non-ASCII digits and letters, which AWS rejects only at deploy time.
_ACCOUNT_PATTERN = re.compile(r"^[0-9]{12}\Z")
_EMAIL_PATTERN = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+\Z")
_PRINCIPAL_ARN_PATTERN = re.compile(
    r"^arn:aws[a-z-]*:iam::[0-9]{12}:(root|role/[\w+=,.@/-]+|user/[\w+=,.@/-]+)\Z", re.ASCII
)
# Quoted values in messages are cut to this many characters, so a pasted file stays readable.
_QUOTED_VALUE_LIMIT = 80
# Longer digit strings are out of every range here. Python's int() refuses more than 4300 digits
# with a message about sys.set_int_max_str_digits, so they are not converted at all.
_WHOLE_NUMBER_TEXT = re.compile(r"\s*-?\d{1,18}\s*")


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
    reasoning_effort_by_model: tuple[tuple[str, str], ...]
    allow_standard_tier_escalation: bool
    input_bucket_name: str
    max_receive_count: int
    result_retention_days: int
    noncurrent_version_retention_days: int
    log_retention_days: int
    key_rotation_interval_minutes: int
    key_refresh_margin_seconds: int
    long_term_api_key: bool
    long_term_key_rotation_days: int
    alarm_429_rate_percent: float
    alarm_503_rate_percent: float
    alarm_min_requests: int
    alarm_period_seconds: int
    alarm_evaluation_periods: int
    alarm_oldest_job_age_seconds: int
    alarm_dead_letter_messages: int
    alarm_worker_errors: int
    alarm_worker_throttles: int
    ramp_controller_enabled: bool
    ramp_controller_schedule: str
    ramp_hold_minutes: int
    ramp_target_requests_per_minute: int
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
class PipelineSettings:
    """The rollout pipeline: where its source comes from and the waves it deploys, canary first."""

    connection_arn: str
    repository: str
    branch: str
    region: str
    waves: tuple[tuple[str, ...], ...]
    bake_minutes: int
    manual_approval: bool


@dataclass(frozen=True)
class Settings:
    """The whole app's settings."""

    account: str | None
    regions: tuple[str, ...]
    bundling: bool
    by_region: Mapping[str, RegionSettings] = field(repr=False)
    nag_packs: tuple[str, ...] = ()
    pipeline: PipelineSettings | None = None

    def for_region(self, region: str) -> RegionSettings:
        return self.by_region[region]


# ---------------------------------------------------------------------------------------------
# Value parsers: each returns the parsed value or raises ValueError with what is allowed.


def _int_between(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError(f"must be a whole number from {low} to {high}")
        if isinstance(value, str) and _WHOLE_NUMBER_TEXT.fullmatch(value):
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
            value = int(value) if _WHOLE_NUMBER_TEXT.fullmatch(value) else value
        # JSON true equals 1 and 30.0 equals 30 in Python, but neither is a listed value.
        if isinstance(value, (bool, float)) or value not in allowed:
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


def _rate_schedule(value: Any) -> str:
    # EventBridge Scheduler writes one minute as "rate(1 minute)" and more as "rate(N minutes)".
    text = value.strip() if isinstance(value, str) else ""
    match = re.fullmatch(r"rate\((\d+) minutes?\)", text)
    minutes = int(match.group(1)) if match else 0
    singular_unit = text.endswith(" minute)")
    if not 1 <= minutes <= 60 or singular_unit != (minutes == 1):
        raise ValueError("must be a schedule such as rate(1 minute) or rate(5 minutes), from 1 to 60 minutes")
    return text


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


def _nag_packs(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",") if item.strip()]
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"must be a list of extra cdk-nag packs drawn from: {', '.join(EXTRA_NAG_PACKS)}")
    unknown = [item for item in value if item not in EXTRA_NAG_PACKS]
    if unknown:
        raise ValueError(
            f"contains {unknown[0]!r}; the extra packs are {', '.join(EXTRA_NAG_PACKS)} "
            "(AwsSolutions, Serverless and GemmaBatch always run)"
        )
    if len(set(value)) != len(value):
        raise ValueError("lists a pack twice; list each pack once")
    return tuple(value)


# Keys of the pipeline object and their defaults; cdk.json carries the same defaults.
PIPELINE_DEFAULTS: dict[str, Any] = {
    "enabled": False,
    "connection_arn": "",
    "repository": "",
    "branch": "main",
    "region": "",
    "waves": [],
    "bake_minutes": 30,
    "manual_approval": True,
}
_CONNECTION_ARN_PATTERN = re.compile(
    r"^arn:aws[a-z-]*:(codeconnections|codestar-connections):[a-z0-9-]+:[0-9]{12}:connection/[A-Za-z0-9-]+\Z"
)
_REPOSITORY_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+\Z")
_AWS_REGION_PATTERN = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]\Z")


def _pipeline(value: Any) -> PipelineSettings | None:
    """Parse the pipeline object; None when it is off. Waves and account are checked in load_settings."""
    if value in (None, ""):
        value = {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError('must be a JSON object such as {"enabled": true, "repository": "owner/name", ...}') from None
    if not isinstance(value, dict):
        raise ValueError('must be an object such as {"enabled": true, "repository": "owner/name", ...}')
    unknown = [key for key in value if key not in PIPELINE_DEFAULTS]
    if unknown:
        close = difflib.get_close_matches(unknown[0], PIPELINE_DEFAULTS, n=1, cutoff=0.7)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(PIPELINE_DEFAULTS)}"
        raise ValueError(f"has unknown key {unknown[0]!r}{hint}")
    merged = {**PIPELINE_DEFAULTS, **value}
    try:
        enabled = _bool(merged["enabled"])
    except ValueError:
        raise ValueError("enabled must be true or false") from None
    if not enabled:
        return None

    problems = []
    connection_arn = merged["connection_arn"]
    if not isinstance(connection_arn, str) or not _CONNECTION_ARN_PATTERN.match(connection_arn):
        problems.append(
            "connection_arn must be the ARN of an AWS CodeConnections connection "
            "(arn:aws:codeconnections:<region>:<account>:connection/<id>); create one in the console first"
        )
    repository = merged["repository"]
    if not isinstance(repository, str) or not _REPOSITORY_PATTERN.match(repository):
        problems.append("repository must name the source repository as owner/name")
    branch = merged["branch"]
    if not isinstance(branch, str) or not branch.strip() or any(character.isspace() for character in branch):
        problems.append("branch must be a branch name without spaces, such as main")
    region = merged["region"]
    if region != "" and (not isinstance(region, str) or not _AWS_REGION_PATTERN.match(region)):
        problems.append("region must be an AWS region such as us-east-1, or empty to use the canary region")
    waves = _pipeline_waves(merged["waves"], problems)
    bake_minutes = manual_approval = None
    try:
        bake_minutes = _int_between(1, 480)(merged["bake_minutes"])
    except ValueError as error:
        problems.append(f"bake_minutes {error}")
    try:
        manual_approval = _bool(merged["manual_approval"])
    except ValueError:
        problems.append("manual_approval must be true or false")
    if problems:
        raise ValueError("; ".join(problems))
    return PipelineSettings(
        connection_arn=connection_arn,
        repository=repository,
        branch=branch,
        region=region,
        waves=waves,
        bake_minutes=bake_minutes,
        manual_approval=manual_approval,
    )


def _pipeline_waves(value: Any, problems: list[str]) -> tuple[tuple[str, ...], ...]:
    # The command-line form separates waves with ";" and regions with ",": "us-east-2;us-east-1,us-west-2".
    if isinstance(value, str):
        value = [[region.strip() for region in wave.split(",") if region.strip()] for wave in value.split(";")]
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(wave, (list, tuple)) and wave and all(isinstance(region, str) for region in wave) for wave in value
    ):
        problems.append('waves must be a list of non-empty region lists, canary first, such as [["us-east-2"], '
                        '["us-east-1", "us-west-2"]], or empty for the canary region then all others')
        return ()
    return tuple(tuple(wave) for wave in value)


def _pipeline_problems(pipeline: PipelineSettings, regions: tuple[str, ...], account: str | None) -> list[str]:
    problems = []
    if account is None:
        problems.append(
            "pipeline.enabled=true needs an explicit account: set account to the 12-digit id of the account the "
            "pipeline deploys to (CDK_DEFAULT_ACCOUNT is not used for the pipeline)"
        )
    listed = [region for wave in pipeline.waves for region in wave]
    for region in sorted(set(listed) - set(regions)):
        problems.append(f"pipeline.waves names {region}, which is not in regions; add it to regions or remove it")
    for region in sorted({region for region in listed if listed.count(region) > 1}):
        problems.append(f"pipeline.waves lists {region} more than once; deploy each region in one wave")
    if pipeline.waves:
        for region in [region for region in regions if region not in listed]:
            problems.append(f"pipeline.waves leaves out {region}; add it to a wave or remove it from regions")
    return problems


def _with_default_waves(pipeline: PipelineSettings, regions: tuple[str, ...]) -> PipelineSettings:
    """Fill in the default waves (the first region as canary, then all others) and the pipeline region."""
    waves = pipeline.waves or tuple(wave for wave in ((regions[0],), tuple(regions[1:])) if wave)
    return replace(pipeline, waves=waves, region=pipeline.region or waves[0][0])


def _account(value: Any) -> str | None:
    if value in (None, ""):
        return None
    value = str(value)
    if not _ACCOUNT_PATTERN.match(value):
        raise ValueError("must be a 12-digit AWS account id, or empty to use CDK_DEFAULT_ACCOUNT")
    return value


# S3 bucket naming rules: 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending alphanumeric.
_BUCKET_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
REASONING_EFFORTS = ("low", "medium", "high")


def _optional_bucket_name(value: Any) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or not _BUCKET_NAME_PATTERN.match(value) or ".." in value:
        raise ValueError(
            "must be an S3 bucket name (3 to 63 lowercase letters, digits, dots and hyphens), or empty to read "
            "images from the results bucket's inputs/ prefix"
        )
    return value


def _reasoning_efforts(value: Any) -> tuple[tuple[str, str], ...]:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            value = None
    if not isinstance(value, dict):
        raise ValueError(f'must be an object that maps model ids to {", ".join(REASONING_EFFORTS)}, such as '
                         '{"google.gemma-4-e2b": "high"}')
    for model, effort in value.items():
        if model not in MODEL_IDS:
            raise ValueError(f"names model {model!r}; use model ids from {', '.join(MODEL_IDS)}")
        if effort not in REASONING_EFFORTS:
            raise ValueError(f"sets {model} to {effort!r}; use one of {', '.join(REASONING_EFFORTS)}")
    return tuple(sorted(value.items()))


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
    "reasoning_effort_by_model": (_reasoning_efforts, (("google.gemma-4-e2b", "high"),)),
    "allow_standard_tier_escalation": (_bool, False),
    "input_bucket_name": (_optional_bucket_name, ""),
    "max_receive_count": (_int_between(5, 1000), 5),
    "result_retention_days": (_int_between(1, 3650), 30),
    "noncurrent_version_retention_days": (_int_between(1, 365), 7),
    "log_retention_days": (_one_of(LOG_RETENTION_DAYS), 30),
    "key_rotation_interval_minutes": (_int_between(10, 30), 20),
    "key_refresh_margin_seconds": (_int_between(60, 900), 300),
    "long_term_api_key": (_bool, False),
    "long_term_key_rotation_days": (_int_between(1, 365), 30),
    "alarm_429_rate_percent": (_number_between(0, 100), 5.0),
    "alarm_503_rate_percent": (_number_between(0, 100), 5.0),
    "alarm_min_requests": (_int_between(1, 1_000_000), 20),
    "alarm_period_seconds": (_one_of((60, 300, 900, 3600)), 300),
    "alarm_evaluation_periods": (_int_between(1, 288), 3),
    "alarm_oldest_job_age_seconds": (_int_between(60, 1_209_600), 3600),
    "alarm_dead_letter_messages": (_int_between(0, 1_000_000), 0),
    "alarm_worker_errors": (_int_between(0, 1_000_000), 0),
    "alarm_worker_throttles": (_int_between(0, 1_000_000), 0),
    "ramp_controller_enabled": (_bool, True),
    "ramp_controller_schedule": (_rate_schedule, "rate(1 minute)"),
    "ramp_hold_minutes": (_int_between(1, 1440), 15),
    "ramp_target_requests_per_minute": (_int_between(1, 1_000_000), 300),
    "alarm_email": (_optional_email, None),
    "operator_trusted_principals": (_principal_arns, ()),
}

APP_KEYS: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "account": (_account, None),
    "regions": (_regions, SUPPORTED_REGIONS),
    "bundling": (_bool, True),
    "nag_packs": (_nag_packs, ()),
    "pipeline": (_pipeline, None),
}

OVERRIDES_KEY = "region_overrides"
KNOWN_KEYS = (*APP_KEYS, *REGION_KEYS, OVERRIDES_KEY)


def _parse_key(key: str, raw: Any, parser: Callable[[Any], Any], problems: list[str], where: str = "") -> Any:
    try:
        return parser(raw)
    except ValueError as error:
        problems.append(f"{where}{key}={_quote(raw)} is invalid: {error}")
        return None
    except RecursionError:
        # json.loads of a string form raises it for arrays or objects nested about 1000 deep.
        problems.append(f"{where}{key}={_quote(raw)} is invalid: it nests JSON too deeply to parse")
        return None


def _quote(value: Any) -> str:
    """Return ``value`` as JSON, cut to _QUOTED_VALUE_LIMIT characters."""
    try:
        # ensure_ascii (the default) writes look-alikes such as full-width digits as \uXXXX escapes.
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        try:
            text = repr(value)
        except ValueError:
            # repr, like json.dumps, refuses ints of more than 4300 digits.
            text = f"<{type(value).__name__} too long to quote>"
    if len(text) > _QUOTED_VALUE_LIMIT:
        return text[: _QUOTED_VALUE_LIMIT - 3] + "..."
    return text


def _parse_overrides(raw: Any, problems: list[str]) -> dict[str, dict[str, Any]]:
    if raw in (None, ""):
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):
            problems.append(
                f"{OVERRIDES_KEY}={_quote(raw)} is invalid: must be a JSON object such as "
                '{"us-west-2": {"worker_pool_size": 50}}'
            )
            return {}
    if not isinstance(raw, dict):
        problems.append(f"{OVERRIDES_KEY}={_quote(raw)} is invalid: must be an object keyed by region")
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
    problems.extend(_alarm_window_problems(by_region.values()))
    # Overrides of regions left out of this synth are checked too, so that an invalid value is
    # reported now and not on the day its region is synthesized.
    # NOTE: each value is checked on its own here. _alarm_window_problems checks the synthesized regions only.
    for region, region_overrides in overrides.items():
        if region not in regions:
            for key, raw in region_overrides.items():
                _parse_key(key, raw, REGION_KEYS[key][0], problems, where=f"{OVERRIDES_KEY}.{region}.")

    pipeline = app_values["pipeline"]
    if pipeline is not None and regions:
        problems.extend(_pipeline_problems(pipeline, regions, app_values["account"]))
        pipeline = _with_default_waves(pipeline, regions)

    if problems:
        raise ConfigError(problems)

    return Settings(
        account=app_values["account"] or _account_or_none(default_account),
        regions=regions,
        bundling=app_values["bundling"],
        nag_packs=app_values["nag_packs"] or (),
        pipeline=pipeline,
        by_region=by_region,
    )


def _alarm_window_problems(region_settings: Iterable[RegionSettings]) -> list[str]:
    """Report alarm windows that PutMetricAlarm rejects at deploy time, one problem per combination.

    The CloudWatch API reference (PutMetricAlarm, Period) caps Period x EvaluationPeriods at one
    day for periods under an hour and at seven days otherwise.
    """
    regions_by_window: dict[tuple[int, int], list[str]] = {}
    for settings in region_settings:
        window = (settings.alarm_period_seconds, settings.alarm_evaluation_periods)
        regions_by_window.setdefault(window, []).append(settings.region)

    problems = []
    for (period, periods), regions in regions_by_window.items():
        limit = 86_400 if period < 3600 else 604_800
        if period * periods > limit:
            fix = f"set alarm_evaluation_periods to at most {limit // period}"
            if period < 3600:
                fix += " or choose a longer alarm_period_seconds"
            problems.append(
                f"alarm_evaluation_periods={periods} with alarm_period_seconds={period} (in {', '.join(regions)}) "
                f"is invalid: CloudWatch allows at most {limit} s of periods in one alarm; {fix}"
            )
    return problems


def _account_or_none(value: str | None) -> str | None:
    return value if value and _ACCOUNT_PATTERN.match(value) else None


def region_setting_names() -> list[str]:
    """Return the names of the settings that can differ per region, in declaration order."""
    return [item.name for item in fields(RegionSettings) if item.name != "region"]
