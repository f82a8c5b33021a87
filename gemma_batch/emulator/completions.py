"""Deterministic answers, token counts and OpenAI-shaped response bodies for the Mantle emulator.

A token is a whitespace-separated word. The answer contains a SHA-256 digest of the input text
instead of the text itself, so tests can predict it with ``expected_answer`` and a stored or
logged answer never repeats the prompt. Reasoning and tool-call arguments are built the same way
(``expected_reasoning``, ``expected_tool_arguments``).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from gemma_batch.emulator.request_features import RequestFeatures, Tool

GEMMA_MODELS = ("google.gemma-4-31b", "google.gemma-4-26b-a4b", "google.gemma-4-e2b")
SERVICE_TIERS = ("flex", "default", "priority", "auto")


def count_tokens(text: str) -> int:
    return len(text.split())


def chat_input_text(messages: list[Any]) -> str:
    """Join the text of a Chat Completions message list, including text content parts, skipping empty messages."""
    texts = []
    for message in messages:
        if isinstance(message, dict):
            texts.append(_content_text(message.get("content")))
    return "\n".join(text for text in texts if text)


def responses_input_text(input_value: Any, instructions: Any) -> str:
    """Join the text of a Responses API request: the instructions, then the input string or items' text and outputs."""
    texts = [instructions] if isinstance(instructions, str) else []
    if isinstance(input_value, str):
        texts.append(input_value)
    elif isinstance(input_value, list):
        for item in input_value:
            if isinstance(item, dict):
                texts.append(_content_text(item.get("content") if "content" in item else item.get("output")))
    return "\n".join(text for text in texts if text)


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


def expected_reasoning(input_text: str, effort: str) -> str:
    """Return the emulator's reasoning text for ``input_text`` at a reasoning effort."""
    digest = hashlib.sha256(input_text.encode("utf-8")).hexdigest()[:16]
    return f"Emulated {effort} effort reasoning about input {digest}."


def expected_tool_arguments(input_text: str, tool: Tool) -> dict[str, Any]:
    """Return the arguments of the emulator's call to ``tool``: one value per property, by its JSON Schema type."""
    digest = hashlib.sha256(input_text.encode("utf-8")).hexdigest()[:8]
    properties = tool.parameters.get("properties")
    if not isinstance(properties, dict):
        return {}
    samples = {"string": digest, "integer": count_tokens(input_text), "number": float(count_tokens(input_text)),
               "boolean": True, "array": [], "object": {}}
    return {
        name: samples.get(schema.get("type") if isinstance(schema, dict) else None)
        for name, schema in properties.items()
    }


@dataclass(frozen=True)
class Generation:
    """What the emulated model produces for one request: reasoning, then either a tool call or an answer."""

    input_tokens: int
    cached_tokens: int
    reasoning: str | None
    tool: Tool | None
    tool_arguments: str | None
    answer: str | None
    finish_reason: str

    @property
    def reasoning_tokens(self) -> int:
        return count_tokens(self.reasoning) if self.reasoning else 0

    @property
    def output_tokens(self) -> int:
        """Answer or tool-call tokens plus reasoning tokens, as OpenAI's usage counts them."""
        visible = count_tokens(self.answer) if self.answer else count_tokens(self.tool_arguments or "")
        return visible + self.reasoning_tokens


def generate(input_text: str, max_tokens: int | None, features: RequestFeatures, cached_tokens: int = 0) -> Generation:
    """Produce the deterministic output of one request. Reasoning does not count against ``max_tokens``."""
    reasoning = expected_reasoning(input_text, features.reasoning_effort) if features.reasoning_effort else None
    tool = features.tool_to_call()
    if tool is not None:
        arguments = json.dumps(expected_tool_arguments(input_text, tool), sort_keys=True)
        return Generation(count_tokens(input_text), cached_tokens, reasoning, tool, arguments, None, "tool_calls")
    answer, finish_reason = expected_answer(input_text, max_tokens)
    return Generation(count_tokens(input_text), cached_tokens, reasoning, None, None, answer, finish_reason)


def chat_completion_body(
    *,
    model: str,
    input_text: str,
    max_tokens: int | None,
    service_tier: str | None,
    features: RequestFeatures | None = None,
    cached_tokens: int = 0,
) -> dict[str, Any]:
    generation = generate(input_text, max_tokens, features or RequestFeatures(), cached_tokens)
    message: dict[str, Any] = {"role": "assistant", "content": generation.answer}
    if generation.reasoning is not None:
        message["reasoning_content"] = generation.reasoning
    if generation.tool is not None:
        message["tool_calls"] = [
            {
                "id": f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {"name": generation.tool.name, "arguments": generation.tool_arguments},
            }
        ]
    body: dict[str, Any] = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": generation.finish_reason, "logprobs": None}],
        "usage": {
            "prompt_tokens": generation.input_tokens,
            "completion_tokens": generation.output_tokens,
            "total_tokens": generation.input_tokens + generation.output_tokens,
            "prompt_tokens_details": {"cached_tokens": generation.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": generation.reasoning_tokens},
        },
    }
    if service_tier is not None:
        body["service_tier"] = service_tier
    return body


def response_body(
    *,
    model: str,
    input_text: str,
    max_output_tokens: int | None,
    service_tier: str | None,
    features: RequestFeatures | None = None,
    cached_tokens: int = 0,
) -> dict[str, Any]:
    generation = generate(input_text, max_output_tokens, features or RequestFeatures(), cached_tokens)
    output: list[dict[str, Any]] = []
    if generation.reasoning is not None:
        output.append(
            {
                "type": "reasoning",
                "id": f"rs_{uuid.uuid4().hex}",
                "summary": [],
                "content": [{"type": "reasoning_text", "text": generation.reasoning}],
            }
        )
    if generation.tool is not None:
        output.append(
            {
                "type": "function_call",
                "id": f"fc_{uuid.uuid4().hex}",
                "call_id": f"call_{uuid.uuid4().hex[:24]}",
                "name": generation.tool.name,
                "arguments": generation.tool_arguments,
                "status": "completed",
            }
        )
    else:
        output.append(
            {
                "type": "message",
                "id": f"msg_{uuid.uuid4().hex}",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": generation.answer, "annotations": []}],
            }
        )
    truncated = generation.finish_reason == "length"
    body: dict[str, Any] = {
        "id": f"resp_{uuid.uuid4().hex}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "incomplete" if truncated else "completed",
        "incomplete_details": {"reason": "max_output_tokens"} if truncated else None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": generation.input_tokens,
            "input_tokens_details": {"cached_tokens": generation.cached_tokens},
            "output_tokens": generation.output_tokens,
            "output_tokens_details": {"reasoning_tokens": generation.reasoning_tokens},
            "total_tokens": generation.input_tokens + generation.output_tokens,
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
