"""The Mantle client: one OpenAI SDK client per process, calling Chat Completions on bedrock-mantle."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Mapping

import openai

from worker.job import Job

# Request headers that identify the job and its delivery. bedrock-mantle ignores them, and the
# project's Mantle emulator counts requests per job and delivery with them.
JOB_ID_HEADER = "X-Job-Id"
RECEIVE_COUNT_HEADER = "X-Job-Receive-Count"


@dataclass(frozen=True)
class Completion:
    """The parts of a Chat Completions response that the worker stores."""

    answer: str | None = field(repr=False)
    finish_reason: str | None
    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None
    served_service_tier: str | None
    model: str


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
    """Sends chat completions with the SDK's retries off, because the worker's retry policy is the only retry layer.

    The SDK client and its connection pool live as long as the process. When the API key changes,
    the client is swapped for a copy with the new key that shares the same connection pool.
    """

    def __init__(self, base_url: str, service_tier: str, timeout_seconds: float) -> None:
        self._base_url = base_url
        self._service_tier = service_tier
        self._timeout_seconds = timeout_seconds
        self._lock = threading.Lock()
        self._client: openai.OpenAI | None = None

    def complete(self, job: Job, api_key: str, timeout_seconds: float, receive_count: int) -> Completion:
        """Send one Chat Completions request for ``job``, raising MantleRequestError when it fails."""
        client = self._client_for(api_key)
        try:
            response = client.chat.completions.create(
                model=job.model,
                messages=job.chat_messages,  # type: ignore[arg-type]
                max_tokens=job.max_output_tokens,
                service_tier=self._service_tier,  # type: ignore[arg-type]
                timeout=timeout_seconds,
                extra_headers={JOB_ID_HEADER: job.job_id, RECEIVE_COUNT_HEADER: str(receive_count)},
            )
        except openai.APIStatusError as error:
            raise _status_error(error) from None
        except openai.APITimeoutError:
            raise MantleRequestError(f"request timed out after {timeout_seconds:.1f} s", status=None) from None
        except openai.APIConnectionError as error:
            cause = type(error.__cause__).__name__ if error.__cause__ is not None else "unknown cause"
            raise MantleRequestError(f"connection to Mantle failed ({cause})", status=None) from None

        if not response.choices:
            raise MantleRequestError("Mantle returned a response without choices", status=200)
        choice = response.choices[0]
        usage = response.usage
        return Completion(
            answer=choice.message.content,
            finish_reason=choice.finish_reason,
            input_tokens=usage.prompt_tokens if usage else None,
            output_tokens=usage.completion_tokens if usage else None,
            total_tokens=usage.total_tokens if usage else None,
            served_service_tier=getattr(response, "service_tier", None),
            model=response.model or job.model,
        )

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
