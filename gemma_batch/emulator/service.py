"""Request handling of the Mantle emulator, independent of the HTTP server.

Gemma 4 is served under ``/openai/v1`` only. The same endpoints under ``/v1`` reject the Gemma
models with HTTP 400, as bedrock-mantle does, so a wrong base path shows up in tests.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from gemma_batch.emulator import completions
from gemma_batch.emulator.auth import TokenError, parse_bearer_token, validate_bearer_token
from gemma_batch.emulator.capacity import QUOTA_EXCEEDED_MESSAGE, TokenQuota, reserved_tokens, used_tokens
from gemma_batch.emulator.faults import FaultPlan, FaultRule
from gemma_batch.emulator.request_features import (
    RequestError,
    RequestFeatures,
    read_chat_features,
    read_responses_features,
)
from gemma_batch.emulator.stats import RequestStats

logger = logging.getLogger(__name__)

SERVED_PREFIX = "/openai/v1"
UNSUPPORTED_PREFIX = "/v1"
ENDPOINTS = {("GET", "models"), ("POST", "chat/completions"), ("POST", "responses")}
JOB_ID_HEADER = "x-job-id"
RECEIVE_COUNT_HEADER = "x-job-receive-count"


@dataclass
class Reply:
    """An HTTP response of the emulator."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class EmulatorClock:
    """The emulator's time source. Tests freeze or shift it to check key expiry without sleeping."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frozen: datetime | None = None
        self._offset = timedelta(0)

    def now(self) -> datetime:
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return datetime.now(timezone.utc) + self._offset

    def set(self, moment: datetime) -> None:
        """Freeze the clock at ``moment`` (timezone-aware)."""
        if moment.tzinfo is None:
            raise ValueError("the emulator clock needs a timezone-aware datetime")
        with self._lock:
            self._frozen = moment.astimezone(timezone.utc)

    def advance(self, seconds: float) -> None:
        """Move the clock forward, frozen or not."""
        with self._lock:
            if self._frozen is not None:
                self._frozen += timedelta(seconds=seconds)
            else:
                self._offset += timedelta(seconds=seconds)

    def use_real_time(self) -> None:
        with self._lock:
            self._frozen = None
            self._offset = timedelta(0)


class MantleService:
    """The emulated OpenAI-compatible API of bedrock-mantle in one region, plus the control endpoints."""

    def __init__(self, region: str, *, seed: int = 0, echo_service_tier: bool = True) -> None:
        self.region = region
        self.clock = EmulatorClock()
        self.faults = FaultPlan(seed=seed)
        self.stats = RequestStats()
        self.echo_service_tier = echo_service_tier
        self.token_quota: TokenQuota | None = None
        self._session_lock = threading.Lock()
        self._session_expiries: dict[str, datetime] = {}
        self._cache_lock = threading.Lock()
        self._cached_prefixes: set[tuple[str, str]] = set()

    def set_session_expiry(self, access_key_id: str, moment: datetime) -> None:
        """Make every key signed by ``access_key_id`` invalid from ``moment`` on, as when its STS session ends."""
        if moment.tzinfo is None:
            raise ValueError("a session expiry needs a timezone-aware datetime")
        with self._session_lock:
            self._session_expiries[access_key_id] = moment.astimezone(timezone.utc)

    def clear_session_expiries(self) -> None:
        with self._session_lock:
            self._session_expiries.clear()

    def set_token_quota(self, tokens_per_minute: int | None, window_seconds: float = 60.0) -> None:
        """Reject requests beyond ``tokens_per_minute`` with HTTP 429 (see capacity.py). None removes the quota."""
        self.token_quota = None if tokens_per_minute is None else TokenQuota(
            tokens_per_minute, window_seconds=window_seconds
        )

    def reset(self) -> None:
        """Clear the faults, the request counters, the prompt cache and the token quota."""
        self.faults.clear()
        self.stats.reset()
        self.token_quota = None
        with self._cache_lock:
            self._cached_prefixes.clear()

    def cached_tokens(self, model: str, static_prefix: str) -> int:
        """Return the input tokens served from the prompt cache, and remember the prefix for later requests.

        A request's static prefix (its instructions or leading system messages) counts as cached
        when an earlier request to the same model had the same prefix.
        """
        if not static_prefix.strip():
            return 0
        key = (model, static_prefix)
        with self._cache_lock:
            seen = key in self._cached_prefixes
            self._cached_prefixes.add(key)
        return completions.count_tokens(static_prefix) if seen else 0

    # The API ---------------------------------------------------------------------------------

    def handle_api(self, method: str, path: str, headers: Mapping[str, str], raw_body: bytes) -> Reply:
        """Handle one API request and count it. ``headers`` must have lower-case names."""
        job_id = headers.get(JOB_ID_HEADER)
        context: dict[str, Any] = {"access_key_id": None, "max_tokens": None, "details": {}}
        self.stats.started()
        try:
            reply = self._route(method, path, headers, raw_body, job_id, context)
        finally:
            self.stats.finished()
        self.stats.record(
            path=path,
            status=reply.status,
            job_id=job_id,
            receive_count=headers.get(RECEIVE_COUNT_HEADER),
            access_key_id=context["access_key_id"],
            max_tokens=context["max_tokens"],
            details=_request_details(context["details"], reply),
        )
        logger.info("%s %s -> %d (job %s)", method, path, reply.status, job_id)
        return reply

    def _route(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        raw_body: bytes,
        job_id: str | None,
        context: dict[str, Any],
    ) -> Reply:
        prefix, endpoint = _split_path(path)
        if prefix is None or (method, endpoint) not in ENDPOINTS:
            return _error(404, f"Unknown route {method} {path}", "invalid_request_error", code="unknown_route")

        latency = self.faults.latency_seconds
        if latency > 0:
            time.sleep(latency)

        rejection = self._authenticate(headers, context)
        if rejection is not None:
            return rejection

        if endpoint == "models":
            return Reply(200, completions.models_body())

        parsed = _parse_generation_request(prefix, endpoint, raw_body)
        if isinstance(parsed, Reply):
            return parsed
        context["max_tokens"] = parsed.max_tokens
        context["details"] = {"model": parsed.model, "service_tier": parsed.service_tier, "features": parsed.features}

        fault = self.faults.draw(job_id, parsed.service_tier)
        if fault is not None:
            return self._fault_reply(fault, parsed.model, parsed.service_tier)

        quota = self.token_quota
        reservation = None
        if quota is not None:
            charge = reserved_tokens(completions.count_tokens(parsed.input_text), parsed.max_tokens)
            reservation = quota.try_reserve(charge)
            if reservation is None:
                return _error(429, QUOTA_EXCEEDED_MESSAGE, "rate_limit_error", code="rate_limit_exceeded")

        served = completions.served_tier(parsed.service_tier) if self.echo_service_tier else None
        cached = self.cached_tokens(parsed.model, parsed.features.static_prefix)
        if endpoint == "chat/completions":
            body = completions.chat_completion_body(
                model=parsed.model,
                input_text=parsed.input_text,
                max_tokens=parsed.max_tokens,
                service_tier=served,
                features=parsed.features,
                cached_tokens=cached,
            )
        else:
            body = completions.response_body(
                model=parsed.model,
                input_text=parsed.input_text,
                max_output_tokens=parsed.max_tokens,
                service_tier=served,
                features=parsed.features,
                cached_tokens=cached,
            )
        if quota is not None and reservation is not None:
            quota.settle(reservation, used_tokens(body))
        return Reply(200, body)

    def _authenticate(self, headers: Mapping[str, str], context: dict[str, Any]) -> Reply | None:
        """Return a 401 reply for a missing, invalid or expired key, or None when the key is valid."""
        try:
            api_key = _bearer(headers)
            # Requests are counted by access key id even when the key is rejected later, e.g. as expired.
            context["access_key_id"] = _access_key_id(api_key)
            validate_bearer_token(
                api_key,
                region=self.region,
                now=self.clock.now(),
                session_expiries=self._session_expiries_copy(),
            )
        except TokenError as error:
            return _error(401, f"Invalid API key: {error}.", "authentication_error", code="invalid_api_key")
        return None

    def _fault_reply(self, fault: FaultRule, model: str, tier: str | None) -> Reply:
        if fault.kind == "route":
            return _route_error(model)
        if fault.kind == "tier":
            return _tier_error(tier if tier is not None else "default")

        if fault.kind == "throttle":
            reply = _error(
                429,
                "Too many requests: the tokens-per-minute quota for this model is used up. Retry later.",
                "rate_limit_error",
                code="rate_limit_exceeded",
            )
        else:
            reply = _error(503, "The service is temporarily unavailable. Retry later.", "service_unavailable")
        if fault.retry_after is not None:
            reply.headers["Retry-After"] = self._retry_after_value(fault)
        return reply

    def _retry_after_value(self, fault: FaultRule) -> str:
        assert fault.retry_after is not None
        if fault.retry_after_format == "seconds":
            seconds = fault.retry_after
            return str(int(seconds)) if float(seconds).is_integer() else str(seconds)
        # An HTTP date has whole seconds, so round up to keep the wait at least retry_after.
        moment = self.clock.now() + timedelta(seconds=fault.retry_after)
        whole_second = datetime.fromtimestamp(math.ceil(moment.timestamp()), tz=timezone.utc)
        return email.utils.format_datetime(whole_second, usegmt=True)

    def _session_expiries_copy(self) -> dict[str, datetime]:
        with self._session_lock:
            return dict(self._session_expiries)

    # The control endpoints ---------------------------------------------------------------------

    def handle_control(self, method: str, path: str, raw_body: bytes) -> Reply:
        """Handle a request under /_emulator/. These requests need no key and are not counted."""
        try:
            document = json.loads(raw_body) if raw_body.strip() else {}
        except ValueError:
            return _error(400, "The request body is not valid JSON.", "invalid_request_error")
        if not isinstance(document, dict):
            return _error(400, "The request body must be a JSON object.", "invalid_request_error")

        if (method, path) == ("GET", "/_emulator/stats"):
            return Reply(200, self.stats.snapshot())
        if (method, path) == ("GET", "/_emulator/faults"):
            return Reply(200, self.faults.snapshot())
        if (method, path) == ("POST", "/_emulator/faults"):
            return self._configure_faults(document)
        if (method, path) == ("POST", "/_emulator/reset"):
            self.reset()
            return Reply(200, {"reset": True})
        if (method, path) == ("POST", "/_emulator/config"):
            return self._configure(document)
        return _error(404, f"Unknown route {method} {path}", "invalid_request_error", code="unknown_route")

    def _configure_faults(self, document: dict[str, Any]) -> Reply:
        """Add fault rules from ``{"rules": [...], "latency_seconds": x}`` or from one rule object."""
        try:
            latency = document.pop("latency_seconds", None)
            if "rules" in document:
                if set(document) != {"rules"} or not isinstance(document["rules"], list):
                    raise ValueError("send 'rules' as a list, next to 'latency_seconds' only")
                rules = [FaultRule.from_dict(dict(rule)) for rule in document["rules"]]
            elif document:
                rules = [FaultRule.from_dict(document)]
            else:
                rules = []
            if latency is not None:
                self.faults.set_latency(float(latency))
        except (TypeError, ValueError) as error:
            return _error(400, f"Invalid fault configuration: {error}", "invalid_request_error")
        for rule in rules:
            self.faults.add(rule)
        return Reply(200, self.faults.snapshot())

    def _configure(self, document: dict[str, Any]) -> Reply:
        """Set ``echo_service_tier``, ``session_expiries`` (access key id -> ISO 8601 time) and the token quota.

        ``tokens_per_minute`` sets the quota (null removes it) and ``quota_window_seconds`` its window.
        """
        try:
            if "echo_service_tier" in document:
                if not isinstance(document["echo_service_tier"], bool):
                    raise ValueError("'echo_service_tier' must be true or false")
                self.echo_service_tier = document["echo_service_tier"]
            for access_key_id, value in dict(document.get("session_expiries", {})).items():
                self.set_session_expiry(access_key_id, datetime.fromisoformat(str(value).replace("Z", "+00:00")))
            if "tokens_per_minute" in document:
                self.set_token_quota(document["tokens_per_minute"], float(document.get("quota_window_seconds", 60.0)))
        except (TypeError, ValueError) as error:
            return _error(400, f"Invalid configuration: {error}", "invalid_request_error")
        return Reply(200, {"echo_service_tier": self.echo_service_tier})


@dataclass(frozen=True)
class _GenerationRequest:
    model: str
    service_tier: str | None
    max_tokens: int | None
    input_text: str
    features: RequestFeatures


def _parse_generation_request(prefix: str, endpoint: str, raw_body: bytes) -> _GenerationRequest | Reply:
    """Validate a chat completions or responses request body, returning a 4xx reply for the first problem."""
    try:
        request = json.loads(raw_body or b"null")
    except ValueError:
        return _error(400, "The request body is not valid JSON.", "invalid_request_error")
    if not isinstance(request, dict):
        return _error(400, "The request body must be a JSON object.", "invalid_request_error")

    model = request.get("model")
    if not isinstance(model, str) or not model:
        return _error(400, "Missing required parameter: 'model'.", "invalid_request_error", param="model")
    if model not in completions.GEMMA_MODELS:
        return _error(
            404,
            f"The model '{model}' does not exist or you do not have access to it.",
            "invalid_request_error",
            param="model",
            code="model_not_found",
        )
    if prefix == UNSUPPORTED_PREFIX:
        return _route_error(model)

    tier = request.get("service_tier")
    if tier is not None and tier not in completions.SERVICE_TIERS:
        return _tier_error(tier)

    if endpoint == "chat/completions":
        max_tokens_field = "max_tokens" if request.get("max_tokens") is not None else "max_completion_tokens"
    else:
        max_tokens_field = "max_output_tokens"
    max_tokens = request.get(max_tokens_field)
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        return _error(
            400,
            f"Invalid '{max_tokens_field}': expected a positive integer.",
            "invalid_request_error",
            param=max_tokens_field,
        )

    try:
        if endpoint == "chat/completions":
            messages = request.get("messages")
            if not isinstance(messages, list) or not messages:
                return _error(400, "Missing required parameter: 'messages'.", "invalid_request_error", param="messages")
            input_text = completions.chat_input_text(messages)
            features = read_chat_features(request)
        else:
            if request.get("input") is None:
                return _error(400, "Missing required parameter: 'input'.", "invalid_request_error", param="input")
            input_text = completions.responses_input_text(request.get("input"), request.get("instructions"))
            features = read_responses_features(request)
    except RequestError as error:
        return _error(400, str(error), "invalid_request_error", param=error.param)

    return _GenerationRequest(
        model=model, service_tier=tier, max_tokens=max_tokens, input_text=input_text, features=features
    )


def _request_details(details: dict[str, Any], reply: Reply) -> dict[str, Any]:
    """Describe one generation request for the per-request accounting, without any of its text."""
    features: RequestFeatures | None = details.get("features")
    if features is None:
        return {}
    usage = reply.body.get("usage") if reply.status == 200 else None
    return {
        "model": details.get("model"),
        "service_tier": details.get("service_tier"),
        "served_tier": reply.body.get("service_tier") if reply.status == 200 else None,
        "reasoning_effort": features.reasoning_effort,
        "reasoning_items_in_input": features.reasoning_items_in_input,
        "input_item_types": list(features.input_item_types),
        "image_parts": features.image_parts,
        "images_before_text": features.images_before_text,
        "tools": [tool.name for tool in features.tools],
        "tool_choice": features.tool_choice,
        "usage": usage,
    }


def _split_path(path: str) -> tuple[str | None, str]:
    for prefix in (SERVED_PREFIX, UNSUPPORTED_PREFIX):
        if path.startswith(prefix + "/"):
            return prefix, path[len(prefix) + 1 :].rstrip("/")
    return None, ""


def _bearer(headers: Mapping[str, str]) -> str:
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError("the Authorization header is missing or is not 'Bearer <API key>'")
    return token.strip()


def _access_key_id(api_key: str) -> str | None:
    try:
        return parse_bearer_token(api_key).access_key_id
    except TokenError:
        return None


def _route_error(model: str) -> Reply:
    return _error(
        400,
        f"The model '{model}' isn't supported on this route. Use the /openai/v1 base path for this model.",
        "invalid_request_error",
        param="model",
        code="model_not_supported",
    )


def _tier_error(tier: Any) -> Reply:
    return _error(
        400,
        f"Invalid service_tier '{tier}'. Supported values are: {', '.join(completions.SERVICE_TIERS)}.",
        "invalid_request_error",
        param="service_tier",
        code="invalid_service_tier",
    )


def _error(status: int, message: str, error_type: str, *, param: str | None = None, code: str | None = None) -> Reply:
    return Reply(status, completions.error_body(message, error_type=error_type, param=param, code=code))
