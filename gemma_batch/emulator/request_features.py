"""The parts of a Chat Completions or Responses request besides its text that the Mantle emulator reads.

The emulator answers with reasoning when a request sets a reasoning effort, with a tool call when
it offers tools, and reports cached input tokens when it has seen a request's static prefix
before. It also counts what tests check: reasoning items sent back in the input, image parts and
whether they come before the text.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

REASONING_EFFORTS = ("low", "medium", "high")
_DATA_URL = re.compile(r"data:image/[a-z0-9.+-]+;base64,(?P<data>.*)", re.DOTALL)


class RequestError(ValueError):
    """Raised for a request the emulator rejects with HTTP 400. ``param`` names the request field at fault."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Tool:
    name: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class RequestFeatures:
    """The parts of a request that shape the emulator's answer and its accounting.

    ``static_prefix`` is the instructions or leading system messages, the part that repeats across
    requests and that the emulator's prompt cache keys on. ``ends_with_user_turn`` is False when the
    last input is a tool result, so the model answers instead of calling a tool again.
    """

    reasoning_effort: str | None = None
    tools: tuple[Tool, ...] = ()
    tool_choice: str | None = None
    ends_with_user_turn: bool = True
    image_parts: int = 0
    images_before_text: bool = True
    reasoning_items_in_input: int = 0
    input_item_types: tuple[str, ...] = ()
    static_prefix: str = field(default="", repr=False)

    def tool_to_call(self) -> Tool | None:
        """Return the tool the emulated model calls, or None when it answers with text."""
        if not self.tools or self.tool_choice == "none":
            return None
        if self.tool_choice not in (None, "auto", "required"):
            return next((tool for tool in self.tools if tool.name == self.tool_choice), None)
        if self.tool_choice == "required" or self.ends_with_user_turn:
            return self.tools[0]
        return None


def read_chat_features(request: dict[str, Any]) -> RequestFeatures:
    """Read a Chat Completions request, raising RequestError for a field Mantle would reject."""
    messages = [message for message in request.get("messages") or [] if isinstance(message, dict)]
    image_parts, images_first = _count_images(message.get("content") for message in messages)
    static = [
        _text_of(message.get("content"))
        for message in _leading(messages, lambda message: message.get("role") in ("system", "developer"))
    ]
    last_role = messages[-1].get("role") if messages else None
    return RequestFeatures(
        reasoning_effort=_reasoning_effort(request.get("reasoning_effort"), "reasoning_effort"),
        tools=_tools(request.get("tools"), chat_form=True),
        tool_choice=_tool_choice(request.get("tool_choice")),
        ends_with_user_turn=last_role == "user",
        image_parts=image_parts,
        images_before_text=images_first,
        reasoning_items_in_input=sum(
            1 for message in messages if any(key in message for key in ("reasoning_content", "reasoning"))
        ),
        input_item_types=tuple(str(message.get("role")) for message in messages),
        static_prefix="\n".join(static),
    )


def read_responses_features(request: dict[str, Any]) -> RequestFeatures:
    """Read a Responses request, raising RequestError for a field Mantle would reject."""
    reasoning = request.get("reasoning")
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    input_value = request.get("input")
    items = [item for item in input_value if isinstance(item, dict)] if isinstance(input_value, list) else []
    image_parts, images_first = _count_images(item.get("content") for item in items)
    last = items[-1] if items else None
    instructions = request.get("instructions")
    return RequestFeatures(
        reasoning_effort=_reasoning_effort(effort, "reasoning.effort"),
        tools=_tools(request.get("tools"), chat_form=False),
        tool_choice=_tool_choice(request.get("tool_choice")),
        ends_with_user_turn=last is None or (last.get("type", "message") == "message" and last.get("role") == "user"),
        image_parts=image_parts,
        images_before_text=images_first,
        reasoning_items_in_input=sum(1 for item in items if item.get("type") == "reasoning"),
        input_item_types=tuple(str(item.get("type", "message")) for item in items),
        static_prefix=instructions if isinstance(instructions, str) else "",
    )


def _reasoning_effort(value: Any, param: str) -> str | None:
    if value is None:
        return None
    if value not in REASONING_EFFORTS:
        raise RequestError(
            f"Invalid value for '{param}': '{value}'. Supported values are: {', '.join(REASONING_EFFORTS)}.", param
        )
    return str(value)


def _tools(value: Any, *, chat_form: bool) -> tuple[Tool, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RequestError("Invalid 'tools': expected an array.", "tools")
    tools = []
    for index, tool in enumerate(value):
        definition = tool.get("function") if chat_form and isinstance(tool, dict) else tool
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(definition, dict):
            raise RequestError(f"Invalid 'tools[{index}]': expected a function tool.", f"tools[{index}]")
        name = definition.get("name")
        if not isinstance(name, str) or not name:
            raise RequestError(f"Missing required parameter: 'tools[{index}].name'.", f"tools[{index}].name")
        parameters = definition.get("parameters")
        tools.append(Tool(name=name, parameters=parameters if isinstance(parameters, dict) else {}))
    return tuple(tools)


def _tool_choice(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):
        function = value.get("function")
        name = function.get("name") if isinstance(function, dict) else value.get("name")
        if isinstance(name, str):
            return name
    raise RequestError("Invalid 'tool_choice'.", "tool_choice")


def _count_images(contents: Any) -> tuple[int, bool]:
    """Count image parts and check that in every message they come before the first text part."""
    total = 0
    images_first = True
    for content in contents:
        if not isinstance(content, list):
            continue
        seen_text = False
        for part in content:
            if not isinstance(part, dict):
                continue
            part_type = part.get("type")
            if part_type in ("text", "input_text"):
                seen_text = True
            elif part_type in ("image_url", "input_image"):
                image_url = part.get("image_url")
                url = image_url.get("url") if isinstance(image_url, dict) else image_url
                _check_image_url(url)
                total += 1
                images_first = images_first and not seen_text
    return total, images_first


def _check_image_url(url: Any) -> None:
    if isinstance(url, str) and url.lower().startswith(("http://", "https://")):
        raise RequestError("Image URLs are not supported. Send the image as base64 data in a data URL.", "image_url")
    match = _DATA_URL.fullmatch(url) if isinstance(url, str) else None
    if match is None:
        raise RequestError("Invalid image: expected a data URL such as data:image/png;base64,<data>.", "image_url")
    try:
        base64.b64decode(match["data"], validate=True)
    except binascii.Error:
        raise RequestError("Invalid image: the data URL is not valid base64.", "image_url") from None


def _leading(items: list[dict[str, Any]], predicate: Any) -> list[dict[str, Any]]:
    leading = []
    for item in items:
        if not predicate(item):
            break
        leading.append(item)
    return leading


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""
