"""OpenAI Chat Completions (``api: "openai-completions"``): ``POST {baseUrl}/chat/completions``.

Streams with ``stream: true``; text arrives in ``choices[0].delta.content``, tool calls in
``choices[0].delta.tool_calls[]`` pieces keyed by ``index`` (id and name first, then the
arguments JSON in fragments), usage in a last chunk (``stream_options.include_usage``), and
the stream ends with ``data: [DONE]``. Works with any server speaking this format (OpenAI,
vLLM, llama.cpp, LM Studio, Ollama's /v1, ...).
"""

from __future__ import annotations

import attrs

from ...config.model import Provider
from .base import (
    Message,
    ModelReply,
    ModelRequest,
    OnDelta,
    TokenUsage,
    ToolCall,
    count,
    reported_error,
)
from .http import parse_json, stream_events
from .sse import SseEvent


def request_body(request: ModelRequest) -> dict[str, object]:
    messages: list[dict[str, object]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    messages.extend(_message(m) for m in request.messages)
    body: dict[str, object] = {
        "model": request.model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                },
            }
            for t in request.tools
        ]
    if request.max_tokens:
        body["max_tokens"] = request.max_tokens
    return body


def _message(m: Message) -> dict[str, object]:
    if m.role == "tool":
        return {"role": "tool", "tool_call_id": m.tool_call_id, "content": m.text}
    if m.role == "assistant" and m.tool_calls:
        return {
            "role": "assistant",
            "content": m.text or None,
            "tool_calls": [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in m.tool_calls
            ],
        }
    if m.images:
        parts: list[dict[str, object]] = [{"type": "text", "text": m.text}] if m.text else []
        parts += [{"type": "image_url", "image_url": {"url": i.data_url}} for i in m.images]
        return {"role": m.role, "content": parts}
    return {"role": m.role, "content": m.text}


@attrs.define
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: str = ""


@attrs.define
class StreamState:
    """Accumulates one streamed completion (pure: chunks in, reply out)."""

    name: str
    on_delta: OnDelta
    text: str = ""
    calls: dict[int, _PartialCall] = attrs.field(factory=dict)
    finish: str = "stop"
    usage: TokenUsage | None = None
    done: bool = False

    def feed(self, event: SseEvent) -> None:
        if event.data.strip() == "[DONE]":
            self.done = True
            return
        chunk = parse_json(self.name, event.data)
        error = chunk.get("error")
        if error is not None:
            raise reported_error(self.name, error)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = TokenUsage(
                count(usage.get("prompt_tokens")), count(usage.get("completion_tokens"))
            )
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return
        choice = choices[0]
        if isinstance(choice.get("finish_reason"), str):
            self.finish = choice["finish_reason"]
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            return
        content = delta.get("content")
        if isinstance(content, str) and content:
            self.text += content
            self.on_delta(content)
        for piece in delta.get("tool_calls") or []:
            if not isinstance(piece, dict):
                continue
            index = count(piece.get("index"))
            call = self.calls.setdefault(index, _PartialCall())
            if isinstance(piece.get("id"), str):
                call.id = piece["id"]
            function = piece.get("function")
            if isinstance(function, dict):
                if isinstance(function.get("name"), str):
                    call.name += function["name"]
                if isinstance(function.get("arguments"), str):
                    call.arguments += function["arguments"]

    def reply(self) -> ModelReply:
        calls = tuple(
            ToolCall(c.id or f"call_{i}", c.name, c.arguments or "{}")
            for i, c in sorted(self.calls.items())
            if c.name
        )
        return ModelReply(self.text, calls, self.finish, self.usage)


def url(provider: Provider) -> str:
    return provider.base_url.rstrip("/") + "/chat/completions"


async def complete(
    name: str, provider: Provider, request: ModelRequest, on_delta: OnDelta
) -> ModelReply:
    state = StreamState(name, on_delta)
    headers = {"authorization": f"Bearer {provider.api_key}"} if provider.api_key else {}
    await stream_events(name, provider, url(provider), headers, request_body(request), state.feed)
    return state.reply()
