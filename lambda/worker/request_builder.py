"""Build the keyword arguments of one Chat Completions or Responses call from a validated job.

Requests put the static content first and the varying part last, so the service's prompt cache
can reuse the shared start of many jobs: the instructions (system prompt, shared documents)
come first, then the earlier turns, then the last user turn, whose images come before its text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from worker.job import FunctionTool, Job


@dataclass(frozen=True)
class MantleRequest:
    """One API call: ``api`` is ``chat`` or ``responses``, ``arguments`` the SDK keyword arguments without the service tier."""

    api: str
    arguments: dict[str, Any] = field(repr=False)


def build_request(job: Job, image_urls: list[str]) -> MantleRequest:
    """Return the request for ``job``; ``image_urls`` are the job's images as data URLs, in the job's order."""
    if job.api == "responses":
        return MantleRequest("responses", _responses_arguments(job, image_urls))
    return MantleRequest("chat", _chat_arguments(job, image_urls))


def _chat_arguments(job: Job, image_urls: list[str]) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if job.instructions:
        messages.append({"role": "system", "content": job.instructions})
    image_parts = [{"type": "image_url", "image_url": {"url": url}} for url in image_urls]
    if job.prompt is not None:
        content: Any = [*image_parts, {"type": "text", "text": job.prompt}] if image_parts else job.prompt
        messages.append({"role": "user", "content": content})
    else:
        messages.extend(_with_images(list(job.messages), image_parts, text_type="text"))

    arguments: dict[str, Any] = {
        "model": job.model,
        "messages": messages,
        # Always sent: Mantle counts input + max tokens against the quota before it admits a request.
        "max_tokens": job.max_output_tokens,
    }
    if job.reasoning_effort is not None:
        arguments["reasoning_effort"] = job.reasoning_effort
    if job.tools:
        arguments["tools"] = [_chat_tool(tool) for tool in job.tools]
    if job.tool_choice is not None:
        arguments["tool_choice"] = (
            job.tool_choice
            if job.tool_choice in ("auto", "none", "required")
            else {"type": "function", "function": {"name": job.tool_choice}}
        )
    return arguments


def _responses_arguments(job: Job, image_urls: list[str]) -> dict[str, Any]:
    image_parts = [{"type": "input_image", "image_url": url, "detail": "auto"} for url in image_urls]
    if job.prompt is not None:
        input_value: Any = (
            [{"role": "user", "content": [*image_parts, {"type": "input_text", "text": job.prompt}]}]
            if image_parts
            else job.prompt
        )
    else:
        input_value = _with_images(list(job.messages), image_parts, text_type="input_text")

    arguments: dict[str, Any] = {"model": job.model, "input": input_value, "max_output_tokens": job.max_output_tokens}
    if job.instructions:
        arguments["instructions"] = job.instructions
    if job.reasoning_effort is not None:
        arguments["reasoning"] = {"effort": job.reasoning_effort}
    if job.tools:
        arguments["tools"] = [_responses_tool(tool) for tool in job.tools]
    if job.tool_choice is not None:
        arguments["tool_choice"] = (
            job.tool_choice
            if job.tool_choice in ("auto", "none", "required")
            else {"type": "function", "name": job.tool_choice}
        )
    return arguments


def _with_images(messages: list[dict[str, Any]], image_parts: list[dict[str, Any]], text_type: str) -> list[dict[str, Any]]:
    """Put the image parts at the start of the last user message's content."""
    if not image_parts:
        return messages
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.get("role") == "user" and message.get("type", "message") == "message":
            content = message["content"]
            parts = [{"type": text_type, "text": content}] if isinstance(content, str) else list(content)
            messages[index] = {**message, "content": [*image_parts, *parts]}
            return messages
    # The job schema rejects images without a user message, so this is not reached.
    raise ValueError("the job has images but no user message to attach them to")


def _chat_tool(tool: FunctionTool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters}
    if tool.description is not None:
        function["description"] = tool.description
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def _responses_tool(tool: FunctionTool) -> dict[str, Any]:
    definition: dict[str, Any] = {"type": "function", "name": tool.name, "parameters": tool.parameters}
    if tool.description is not None:
        definition["description"] = tool.description
    if tool.strict is not None:
        definition["strict"] = tool.strict
    return definition
