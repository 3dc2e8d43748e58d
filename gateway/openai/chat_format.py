"""Chat Completions <-> agent runs (OPERATIONS.md A.2), pure.

The request's ``system``/``developer`` messages become extra system prompt; the last
``user`` (or ``tool``) message is the turn the agent answers; earlier user/assistant/tool
messages are the conversation so far and replace the session's stored history for this run
(stateless clients send the whole conversation every time). Client-side ``tools`` are not
run by the gateway: the agent uses its own tools.
"""

from __future__ import annotations

import attrs

from ..agent.providers.base import Message
from ..errors import FormatError

FALLBACK_TEXT = "No response from Smart Agent Neo."
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0, 2),
    "top_p": (0, 1),
    "presence_penalty": (-2, 2),
    "frequency_penalty": (-2, 2),
}


@attrs.frozen
class ChatRequest:
    model: str
    message: str
    prelude: tuple[Message, ...]
    system: str | None
    stream: bool
    include_usage: bool
    user: str | None


def content_text(content: object, where: str) -> tuple[str, int]:
    """(text, image count) of a message ``content``: string, null, or list of parts."""
    if content is None:
        return "", 0
    if isinstance(content, str):
        return content, 0
    if not isinstance(content, list):
        raise FormatError(f"{where}: expected a string or an array of content parts")
    texts: list[str] = []
    images = 0
    for i, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise FormatError(f"{where}[{i}]: expected an object with a string type")
        kind = part["type"]
        if kind in ("text", "input_text", "output_text"):
            if not isinstance(part.get("text"), str):
                raise FormatError(f"{where}[{i}].text: expected a string")
            texts.append(part["text"])
        elif kind in ("image_url", "input_image"):
            images += 1
    return "\n".join(texts), images


def _number(body: dict[str, object], key: str) -> None:
    value = body.get(key)
    if value is None:
        return
    low, high = RANGES[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise FormatError(f"{key}: expected a number from {low:g} to {high:g}, got {value!r}")


def _check_common(body: dict[str, object]) -> None:
    for key in RANGES:
        _number(body, key)
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise FormatError(f"{key}: expected a positive integer, got {value!r}")
    if body.get("stream") is not None and not isinstance(body.get("stream"), bool):
        raise FormatError("stream: expected true or false")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise FormatError("user: expected a string")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise FormatError("model: expected a string")


def parse_chat(body: dict[str, object]) -> ChatRequest:
    _check_common(body)
    raw = body.get("messages")
    if raw is None:
        raw = []  # an empty body is {} (A.0): no user message, said as A.2 says it
    if not isinstance(raw, list):
        raise FormatError("messages: is required and must be an array")
    system: list[str] = []
    turns: list[Message] = []
    images_in_last_user = 0
    for i, m in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise FormatError(f"{where}: expected an object")
        role = m.get("role")
        if role not in ROLES:
            raise FormatError(f"{where}.role: expected one of {', '.join(ROLES)}, got {role!r}")
        text, images = content_text(m.get("content"), f"{where}.content")
        if role in ("system", "developer"):
            if text:
                system.append(text)
        elif role == "user":
            turns.append(Message("user", text))
            images_in_last_user = images
        elif role == "assistant":
            if text:
                turns.append(Message("assistant", text))
        else:
            name = m.get("name") if isinstance(m.get("name"), str) else "tool"
            turns.append(Message("user", f"Tool result ({name}): {text}"))
            images_in_last_user = 0
    current = next((k for k in range(len(turns) - 1, -1, -1) if turns[k].role == "user"), None)
    if current is None:
        raise FormatError("Missing user message in `messages`.")
    message = turns[current].text
    if not message.strip():
        if not images_in_last_user:
            raise FormatError("Missing user message in `messages`.")
        message = "User sent image(s) with no text."
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    return ChatRequest(
        model=str(body.get("model") or "smart-agent-neo"),
        message=message,
        prelude=tuple(turns[:current]),
        system="\n\n".join(system) or None,
        stream=body.get("stream") is True,
        include_usage=include_usage,
        user=body.get("user") if isinstance(body.get("user"), str) else None,  # type: ignore[arg-type]
    )


def usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


def completion(
    run_id: str, created: int, model: str, text: str, tokens: tuple[int, int]
) -> dict[str, object]:
    return {
        "id": run_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text or FALLBACK_TEXT},
                "finish_reason": "stop",
            }
        ],
        "usage": usage(*tokens),
    }


def chunk(
    run_id: str,
    created: int,
    model: str,
    delta: dict[str, object],
    finish_reason: str | None = None,
) -> dict[str, object]:
    return {
        "id": run_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def usage_chunk(
    run_id: str, created: int, model: str, tokens: tuple[int, int]
) -> dict[str, object]:
    return {
        "id": run_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage(*tokens),
    }
