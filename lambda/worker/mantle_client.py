"""The Mantle client: one OpenAI SDK client per process, calling Chat Completions or Responses on bedrock-mantle."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Mapping

import openai

from worker.request_builder import MantleRequest

# Request headers that identify the job and its delivery. bedrock-mantle ignores them, and the
# project's Mantle emulator counts requests per job and delivery with them.
JOB_ID_HEADER = "X-Job-Id"
RECEIVE_COUNT_HEADER = "X-Job-Receive-Count"


@dataclass(frozen=True)
class ToolCall:
    """A function call the model requested. ``arguments`` is the JSON text the model wrote, unparsed."""

    call_id: str
    name: str
    arguments: str = field(repr=False)


@dataclass(frozen=True)
class Completion:
    """The parts of a Chat Completions or Responses result that the worker stores.

    ``reasoning`` is the model's reasoning output, kept apart from ``answer``. Token counts are None
    when the service returns no usage; ``cached_input_tokens`` and ``reasoning_tokens`` are None
    when it returns no details.
    """

    answer: str | None = field(repr=False)
    finish_reason: str | None
    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None
    served_service_tier: str | None
    model: str
    reasoning: str | None = field(default=None, repr=False)
    tool_calls: tuple[ToolCall, ...] = ()
    cached_input_tokens: int | None = None
    reasoning_tokens: int | None = None


class MantleRequestError(Exception):
    """Raised when one Mantle request fails.

    ``status`` is the HTTP status, or None for a connection error or timeout. ``message`` is the
    service's error message.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
        headers: Mapping[str, str] | None = None,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.headers: Mapping[str, str] = dict(headers or {})
        self.param = param
        self.code = code


class MantleClient:
    """Sends requests with the SDK's retries off, because the worker's retry policy is the only retry layer.

    The SDK client and its connection pool live as long as the process. When the API key changes,
    the client is swapped for a copy with the new key that shares the same connection pool.
    """

    def __init__(self, base_url: str, service_tier: str, timeout_seconds: float) -> None:
        self._base_url = base_url
        self._service_tier = service_tier
        self._timeout_seconds = timeout_seconds
        self._lock = threading.Lock()
        self._client: openai.OpenAI | None = None

    def complete(
        self,
        request: MantleRequest,
        *,
        job_id: str,
        api_key: str,
        timeout_seconds: float,
        receive_count: int,
        service_tier: str | None = None,
    ) -> Completion:
        """Send one request, raising MantleRequestError when it fails.

        ``service_tier`` overrides the configured tier for this request (tier escalation uses it).
        """
        client = self._client_for(api_key)
        options: dict[str, Any] = {
            "service_tier": service_tier or self._service_tier,
            "timeout": timeout_seconds,
            "extra_headers": {JOB_ID_HEADER: job_id, RECEIVE_COUNT_HEADER: str(receive_count)},
        }
        try:
            if request.api == "responses":
                return _from_response(client.responses.create(**request.arguments, **options), request)
            return _from_chat_completion(client.chat.completions.create(**request.arguments, **options), request)
        except openai.APIStatusError as error:
            raise _status_error(error) from None
        except openai.APITimeoutError:
            raise MantleRequestError(f"request timed out after {timeout_seconds:.1f} s", status=None) from None
        except openai.APIConnectionError as error:
            cause = type(error.__cause__).__name__ if error.__cause__ is not None else "unknown cause"
            raise MantleRequestError(f"connection to Mantle failed ({cause})", status=None) from None

    def _client_for(self, api_key: str) -> openai.OpenAI:
        with self._lock:
            if self._client is None:
                self._client = openai.OpenAI(
                    base_url=self._base_url,
                    api_key=api_key,
                    max_retries=0,
                    timeout=self._timeout_seconds,
                )
            elif self._client.api_key != api_key:
                self._client = self._client.with_options(api_key=api_key)
            return self._client


def _status_error(error: openai.APIStatusError) -> MantleRequestError:
    body = error.body
    message = error.message
    param = None
    code = None
    if isinstance(body, dict):
        if isinstance(body.get("message"), str):
            message = body["message"]
        param = body.get("param") if isinstance(body.get("param"), str) else None
        code = str(body["code"]) if body.get("code") is not None else None
    return MantleRequestError(
        message,
        status=error.status_code,
        headers=dict(error.response.headers),
        param=param,
        code=code,
    )


def _from_chat_completion(response: Any, request: MantleRequest) -> Completion:
    if not response.choices:
        raise MantleRequestError("Mantle returned a response without choices", status=200)
    message = response.choices[0].message
    extra = message.model_extra or {}
    # OpenAI-compatible servers return a chat answer's reasoning as reasoning_content or reasoning.
    reasoning = extra.get("reasoning_content") or extra.get("reasoning")
    usage = response.usage
    prompt_details = getattr(usage, "prompt_tokens_details", None) if usage else None
    completion_details = getattr(usage, "completion_tokens_details", None) if usage else None
    return Completion(
        answer=message.content,
        finish_reason=response.choices[0].finish_reason,
        input_tokens=usage.prompt_tokens if usage else None,
        output_tokens=usage.completion_tokens if usage else None,
        total_tokens=usage.total_tokens if usage else None,
        served_service_tier=getattr(response, "service_tier", None),
        model=response.model or request.arguments["model"],
        reasoning=reasoning if isinstance(reasoning, str) else None,
        tool_calls=tuple(
            ToolCall(call.id, call.function.name, call.function.arguments)
            for call in message.tool_calls or []
            if getattr(call, "function", None) is not None
        ),
        cached_input_tokens=getattr(prompt_details, "cached_tokens", None),
        reasoning_tokens=getattr(completion_details, "reasoning_tokens", None),
    )


def _from_response(response: Any, request: MantleRequest) -> Completion:
    answers: list[str] = []
    reasoning: list[str] = []
    tool_calls: list[ToolCall] = []
    for item in response.output or []:
        if item.type == "message":
            answers.extend(part.text for part in item.content or [] if getattr(part, "type", None) == "output_text")
        elif item.type == "reasoning":
            # The full reasoning text when the service returns it, else its summary.
            parts = getattr(item, "content", None) or getattr(item, "summary", None) or []
            reasoning.extend(part.text for part in parts if isinstance(getattr(part, "text", None), str))
        elif item.type == "function_call":
            tool_calls.append(ToolCall(item.call_id, item.name, item.arguments))

    usage = response.usage
    input_details = getattr(usage, "input_tokens_details", None) if usage else None
    output_details = getattr(usage, "output_tokens_details", None) if usage else None
    return Completion(
        answer="".join(answers) if answers else None,
        finish_reason=_responses_finish_reason(response, bool(tool_calls)),
        input_tokens=usage.input_tokens if usage else None,
        output_tokens=usage.output_tokens if usage else None,
        total_tokens=usage.total_tokens if usage else None,
        served_service_tier=getattr(response, "service_tier", None),
        model=response.model or request.arguments["model"],
        reasoning="\n".join(reasoning) if reasoning else None,
        tool_calls=tuple(tool_calls),
        cached_input_tokens=getattr(input_details, "cached_tokens", None),
        reasoning_tokens=getattr(output_details, "reasoning_tokens", None),
    )


def _responses_finish_reason(response: Any, called_tools: bool) -> str | None:
    """Map a response's status to the Chat Completions finish reasons, so results read the same for both APIs."""
    if called_tools:
        return "tool_calls"
    if response.status == "completed":
        return "stop"
    details = getattr(response, "incomplete_details", None)
    if response.status == "incomplete" and getattr(details, "reason", None) == "max_output_tokens":
        return "length"
    return response.status
