"""Responses (OPERATIONS.md A.5) <-> agent runs, pure: request validation, the response
object, and the stream's events in order."""

from __future__ import annotations

import attrs

from ..agent.providers.base import Message
from ..errors import FormatError
from .chat_format import _check_common, content_text

IGNORED_TOOL_CHOICES = (None, "auto", "none")


@attrs.frozen
class ResponsesRequest:
    model: str
    message: str
    prelude: tuple[Message, ...]
    system: str | None
    stream: bool
    user: str | None
    previous_response_id: str | None


def _tool_name(entry: object) -> object:
    """``{type: "function", name}`` (Responses) or ``{function: {name}}`` (Chat's shape)."""
    if not isinstance(entry, dict):
        return None
    function = entry.get("function")
    return entry.get("name") or (function.get("name") if isinstance(function, dict) else None)


def _check_tool_choice(body: dict[str, object]) -> None:
    """OPERATIONS.md A.5's two tool_choice errors, in its words, before our own refusal of
    client-side tools."""
    choice = body.get("tool_choice")
    tools = body.get("tools")
    listed = tools if isinstance(tools, list) else []
    if choice == "required" and not listed:
        raise FormatError("tool_choice=required but no tools were provided")
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = _tool_name(choice)
        if name not in {_tool_name(t) for t in listed}:
            raise FormatError(f"tool_choice requested unknown tool: {name}")


def parse_responses(body: dict[str, object]) -> ResponsesRequest:
    _check_common(body)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise FormatError("model: is required and must be a non-empty string")
    system: list[str] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise FormatError("instructions: expected a string")
        system.append(instructions)
    _check_tool_choice(body)
    if body.get("tool_choice") not in IGNORED_TOOL_CHOICES:
        raise FormatError(
            "tool_choice: only auto/none are supported: the agent runs its own tools, "
            "client-side function tools are not called"
        )
    previous = body.get("previous_response_id")
    if previous is not None and not isinstance(previous, str):
        raise FormatError("previous_response_id: expected a string")
    raw = body.get("input")
    turns: list[Message] = []
    if isinstance(raw, str):
        turns.append(Message("user", raw))
    elif isinstance(raw, list):
        for i, item in enumerate(raw):
            turns.extend(_item(item, f"input[{i}]", system))
    else:
        raise FormatError("input: is required and must be a string or an array of items")
    current = next((k for k in range(len(turns) - 1, -1, -1) if turns[k].role == "user"), None)
    if current is None or not turns[current].text.strip():
        raise FormatError("Missing user message in `input`.")
    user = body.get("user")
    return ResponsesRequest(
        model=model,
        message=turns[current].text,
        prelude=tuple(turns[:current]),
        system="\n\n".join(system) or None,
        stream=body.get("stream") is True,
        user=user if isinstance(user, str) else None,
        previous_response_id=previous,
    )


def _item(item: object, where: str, system: list[str]) -> list[Message]:
    if not isinstance(item, dict):
        raise FormatError(f"{where}: expected an object")
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        text, images = content_text(item.get("content"), f"{where}.content")
        if role in ("system", "developer"):
            system.append(text)
            return []
        if role == "user":
            return [Message("user", text or ("User sent image(s) with no text." if images else ""))]
        if role == "assistant":
            return [Message("assistant", text)] if text else []
        raise FormatError(
            f"{where}.role: expected system, developer, user or assistant, got {role!r}"
        )
    if kind == "function_call_output":
        output = item.get("output")
        return [Message("user", f"Tool result ({item.get('call_id', 'call')}): {output}")]
    if kind in ("reasoning", "item_reference", "function_call"):
        return []
    raise FormatError(f"{where}.type: unsupported input item type {kind!r}")


def response_object(
    response_id: str,
    created: int,
    model: str,
    status: str,
    text: str | None,
    message_id: str,
    tokens: tuple[int, int],
    error: str | None = None,
) -> dict[str, object]:
    output: list[dict[str, object]] = []
    if text is not None:
        output.append(message_item(message_id, text, "completed"))
    body: dict[str, object] = {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "model": model,
        "output": output,
        "usage": {
            "input_tokens": tokens[0],
            "output_tokens": tokens[1],
            "total_tokens": tokens[0] + tokens[1],
        },
        "error": {"code": "api_error", "message": error} if error else None,
    }
    return body


def message_item(message_id: str, text: str, status: str) -> dict[str, object]:
    return {
        "type": "message",
        "id": message_id,
        "role": "assistant",
        "status": status,
        "content": [{"type": "output_text", "text": text, "annotations": []}]
        if status == "completed" or text
        else [],
    }


def text_part(text: str) -> dict[str, object]:
    return {"type": "output_text", "text": text, "annotations": []}
