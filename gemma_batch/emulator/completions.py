"""Deterministic answers, token counts and OpenAI-shaped response bodies for the Mantle emulator.

A token is a whitespace-separated word. The answer contains a SHA-256 digest of the input text
instead of the text itself, so tests can predict it with ``expected_answer`` and a stored or
logged answer never repeats the prompt.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

GEMMA_MODELS = ("google.gemma-4-31b", "google.gemma-4-26b-a4b", "google.gemma-4-e2b")
SERVICE_TIERS = ("flex", "default", "priority", "auto")


def count_tokens(text: str) -> int:
    return len(text.split())


def chat_input_text(messages: list[Any]) -> str:
    """Join the text of a Chat Completions message list, including text content parts."""
    texts = []
    for message in messages:
        if isinstance(message, dict):
            texts.append(_content_text(message.get("content")))
    return "\n".join(texts)


def responses_input_text(input_value: Any, instructions: Any) -> str:
    """Join the text of a Responses API request: the instructions, then the input string or items."""
    texts = [instructions] if isinstance(instructions, str) else []
    if isinstance(input_value, str):
        texts.append(input_value)
    elif isinstance(input_value, list):
        for item in input_value:
            if isinstance(item, dict):
                texts.append(_content_text(item.get("content")))
    return "\n".join(texts)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def expected_answer(input_text: str, max_tokens: int | None = None) -> tuple[str, str]:
    """Return the emulator's answer to ``input_text`` and its finish reason (``stop`` or ``length``)."""
    digest = hashlib.sha256(input_text.encode("utf-8")).hexdigest()[:16]
    words = ["Emulated", "answer", digest, "for", str(count_tokens(input_text)), "input", "tokens."]
    if max_tokens is not None and max_tokens < len(words):
        return " ".join(words[:max_tokens]), "length"
    return " ".join(words), "stop"


def served_tier(requested: str | None) -> str:
    """Return the tier the emulator reports as served. ``auto`` and no tier are served on ``default``."""
    if requested in (None, "auto"):
        return "default"
    return requested


def chat_completion_body(
    *, model: str, input_text: str, max_tokens: int | None, service_tier: str | None
) -> dict[str, Any]:
    answer, finish_reason = expected_answer(input_text, max_tokens)
    prompt_tokens = count_tokens(input_text)
    completion_tokens = count_tokens(answer)
    body: dict[str, Any] = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    if service_tier is not None:
        body["service_tier"] = service_tier
    return body


def response_body(
    *, model: str, input_text: str, max_output_tokens: int | None, service_tier: str | None
) -> dict[str, Any]:
    answer, finish_reason = expected_answer(input_text, max_output_tokens)
    input_tokens = count_tokens(input_text)
    output_tokens = count_tokens(answer)
    body: dict[str, Any] = {
        "id": f"resp_{uuid.uuid4().hex}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed" if finish_reason == "stop" else "incomplete",
        "incomplete_details": None if finish_reason == "stop" else {"reason": "max_output_tokens"},
        "model": model,
        "output": [
            {
                "type": "message",
                "id": f"msg_{uuid.uuid4().hex}",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": answer, "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
    }
    if service_tier is not None:
        body["service_tier"] = service_tier
    return body


def models_body() -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": model, "object": "model", "created": 0, "owned_by": "google"} for model in GEMMA_MODELS],
    }


def error_body(message: str, *, error_type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}
