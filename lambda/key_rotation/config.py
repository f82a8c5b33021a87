"""Settings of the rotation function, read from the environment variables that the stack sets."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from enum import Enum
from typing import Mapping

DEFAULT_KEY_SESSION_SECONDS = 3600
DEFAULT_MIN_KEY_VALIDITY_SECONDS = 1800
# STS AssumeRole accepts DurationSeconds from 900 to 43200. Role chaining caps it at 3600,
# and STS rejects a larger value then, so the stack passes 3600.
MIN_SESSION_SECONDS = 900
MAX_SESSION_SECONDS = 43200
DEFAULT_FUNCTION_NAME = "key-rotation"
# The testSecret call to Mantle must finish well inside the function timeout (one minute in the stack).
MANTLE_TIMEOUT_SECONDS = 10.0
# Secrets Manager runs the four steps one after another, each within the one-minute function
# timeout, so an AWSPENDING version this old belongs to a rotation that stopped. The key check
# removes AWSPENDING from it, because RotateSecret refuses to start while it is there.
DEFAULT_STALE_PENDING_SECONDS = 600
# IAM accepts CredentialAgeDays from 1 to 36600 for Bedrock API keys.
MAX_CREDENTIAL_AGE_DAYS = 36600
DEFAULT_CREDENTIAL_AGE_DAYS = 90
# Workers re-read the secret every KEY_CACHE_SECONDS (300 in the stack), so after this long no worker
# has the AWSPREVIOUS long-term key and its credential may be deleted.
DEFAULT_RETIRE_AFTER_SECONDS = 900
# IAM user names: 1 to 64 characters of [\w+=,.@-].
_USER_NAME_PATTERN = re.compile(r"[\w+=,.@-]{1,64}")


class KeyCheckMode(str, Enum):
    """The check testSecret runs on the pending key (environment variable TEST_SECRET_MODE)."""

    # An authenticated GET {MANTLE_BASE_URL}/models with the pending key must return HTTP 200.
    MANTLE = "mantle"
    # Only the stored key document and its remaining validity are checked.
    FORMAT = "format"


class KeyMode(str, Enum):
    """Kind of key the function stores (environment variable KEY_MODE)."""

    # A SigV4 presigned key signed by a key-issuer role session, valid for at most that session.
    SHORT_TERM = "short_term"
    # An IAM service-specific credential of an IAM user, valid for LONG_TERM_KEY_AGE_DAYS.
    LONG_TERM = "long_term"


class RotationConfigError(ValueError):
    """Raised when environment variables are missing or invalid; the message lists each problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"Invalid key rotation settings; fix these environment variables:\n{lines}")


@dataclass(frozen=True)
class RotationConfig:
    """Settings of one function instance.

    ``key_issuer_role_arn`` is empty in long-term mode, and ``long_term_user_name`` in short-term mode.
    ``metrics_namespace`` is None when no metrics are written (local runs and tests).
    """

    key_issuer_role_arn: str
    mantle_base_url: str | None
    key_session_seconds: int
    min_key_validity_seconds: int
    key_check_mode: KeyCheckMode
    function_name: str
    mantle_timeout_seconds: float = MANTLE_TIMEOUT_SECONDS
    key_mode: KeyMode = KeyMode.SHORT_TERM
    long_term_user_name: str = ""
    long_term_key_age_days: int = DEFAULT_CREDENTIAL_AGE_DAYS
    stale_pending_seconds: int = DEFAULT_STALE_PENDING_SECONDS
    retire_after_seconds: int = DEFAULT_RETIRE_AFTER_SECONDS
    metrics_namespace: str | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> "RotationConfig":
        """Parse the settings, raising RotationConfigError that names every bad variable."""
        environ = os.environ if environ is None else environ
        problems: list[str] = []

        key_mode_text = environ.get("KEY_MODE", KeyMode.SHORT_TERM.value).strip().lower()
        try:
            key_mode = KeyMode(key_mode_text)
        except ValueError:
            allowed = ", ".join(repr(member.value) for member in KeyMode)
            problems.append(f"KEY_MODE is {key_mode_text!r}; expected one of {allowed}")
            key_mode = None

        role_arn = environ.get("KEY_ISSUER_ROLE_ARN", "").strip()
        if key_mode is KeyMode.SHORT_TERM and (not role_arn.startswith("arn:") or ":role/" not in role_arn):
            problems.append(
                f"KEY_ISSUER_ROLE_ARN is {role_arn!r}; set it to the ARN of the key-issuer IAM role "
                "(arn:aws:iam::<account>:role/<name>)"
            )
        user_name = environ.get("LONG_TERM_KEY_USER_NAME", "").strip()
        if key_mode is KeyMode.LONG_TERM and not _USER_NAME_PATTERN.fullmatch(user_name):
            problems.append(
                f"LONG_TERM_KEY_USER_NAME is {user_name!r}; set it to the name of the IAM user that owns the "
                "long-term keys (1 to 64 characters of letters, digits and _+=,.@-)"
            )
        age_days = _parse_int(
            environ, "LONG_TERM_KEY_AGE_DAYS", DEFAULT_CREDENTIAL_AGE_DAYS, 1, MAX_CREDENTIAL_AGE_DAYS, problems,
            unit="days",
        )
        retire_after = _parse_int(
            environ, "LONG_TERM_KEY_RETIRE_AFTER_SECONDS", DEFAULT_RETIRE_AFTER_SECONDS, 0, 86400, problems
        )
        stale_pending = _parse_int(
            environ, "STALE_PENDING_SECONDS", DEFAULT_STALE_PENDING_SECONDS, 60, MAX_SESSION_SECONDS, problems
        )

        session_seconds = _parse_int(
            environ, "KEY_SESSION_SECONDS", DEFAULT_KEY_SESSION_SECONDS, MIN_SESSION_SECONDS, MAX_SESSION_SECONDS, problems
        )
        min_validity = _parse_int(
            environ,
            "MIN_KEY_VALIDITY_SECONDS",
            DEFAULT_MIN_KEY_VALIDITY_SECONDS,
            0,
            MAX_CREDENTIAL_AGE_DAYS * 86400,
            problems,
        )
        if (
            key_mode is KeyMode.SHORT_TERM
            and session_seconds is not None
            and min_validity is not None
            and min_validity >= session_seconds
        ):
            problems.append(
                f"MIN_KEY_VALIDITY_SECONDS ({min_validity}) must be less than KEY_SESSION_SECONDS ({session_seconds}), "
                "because a new key never has more validity than its signing session and every key would be abandoned"
            )
        if (
            key_mode is KeyMode.LONG_TERM
            and age_days is not None
            and min_validity is not None
            and min_validity >= age_days * 86400
        ):
            problems.append(
                f"MIN_KEY_VALIDITY_SECONDS ({min_validity}) must be less than LONG_TERM_KEY_AGE_DAYS ({age_days}) "
                "in seconds, because a new credential never lives longer than that and every key would be abandoned"
            )

        mode_text = environ.get("TEST_SECRET_MODE", KeyCheckMode.MANTLE.value).strip().lower()
        try:
            mode = KeyCheckMode(mode_text)
        except ValueError:
            allowed = ", ".join(repr(member.value) for member in KeyCheckMode)
            problems.append(f"TEST_SECRET_MODE is {mode_text!r}; expected one of {allowed}")
            mode = None

        base_url = environ.get("MANTLE_BASE_URL", "").strip().rstrip("/") or None
        if base_url is not None and not base_url.startswith(("https://", "http://")):
            problems.append(
                f"MANTLE_BASE_URL is {base_url!r}; expected a full URL including the base path, "
                "for example https://bedrock-mantle.us-east-1.api.aws/openai/v1"
            )
        elif base_url is None and mode is KeyCheckMode.MANTLE:
            problems.append("MANTLE_BASE_URL is missing; TEST_SECRET_MODE=mantle needs it to test the pending key")

        if problems:
            raise RotationConfigError(problems)
        return cls(
            key_issuer_role_arn=role_arn,
            mantle_base_url=base_url,
            key_session_seconds=session_seconds,
            min_key_validity_seconds=min_validity,
            key_check_mode=mode,
            function_name=environ.get("AWS_LAMBDA_FUNCTION_NAME", "").strip() or DEFAULT_FUNCTION_NAME,
            key_mode=key_mode,
            long_term_user_name=user_name,
            long_term_key_age_days=age_days,
            stale_pending_seconds=stale_pending,
            retire_after_seconds=retire_after,
            metrics_namespace=environ.get("METRICS_NAMESPACE", "").strip() or None,
        )


def _parse_int(
    environ: Mapping[str, str],
    name: str,
    default: int,
    minimum: int,
    maximum: int,
    problems: list[str],
    unit: str = "seconds",
) -> int | None:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        problems.append(f"{name} is {text!r}; expected an integer number of {unit} from {minimum} to {maximum}")
        return None
    if not minimum <= value <= maximum:
        problems.append(f"{name} is {value}; expected {unit} from {minimum} to {maximum}")
        return None
    return value
