"""OpenAI Responses (``api: "openai-responses"``): ``POST {baseUrl}/responses``.

Streamed as named SSE events: ``response.output_text.delta`` carries text,
``response.output_item.done`` a finished ``function_call`` item (``call_id``, ``name``,
``arguments``), ``response.completed`` the usage, and ``response.failed`` / ``error`` a
failure. Tool results go back as ``function_call_output`` input items.
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
    items: list[dict[str, object]] = []
    for m in request.messages:
        items.extend(_items(m))
    body: dict[str, object] = {
        "model": request.model,
        "input": items,
        "stream": True,
        "store": False,
    }
    if request.system:
        body["instructions"] = request.system
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters,
            }
            for t in request.tools
        ]
    if request.max_tokens:
        body["max_output_tokens"] = request.max_tokens
    return body


def _items(m: Message) -> list[dict[str, object]]:
    if m.role == "tool":
        return [{"type": "function_call_output", "call_id": m.tool_call_id, "output": m.text}]
    if m.role == "user":
        content: list[dict[str, object]] = [{"type": "input_text", "text": m.text}]
        content += [{"type": "input_image", "image_url": i.data_url} for i in m.images]
        return [{"role": "user", "content": content}]
    items: list[dict[str, object]] = []
    if m.text:
        items.append({"role": "assistant", "content": [{"type": "output_text", "text": m.text}]})
    items.extend(
        {"type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.arguments}
        for c in m.tool_calls
    )
    return items


@attrs.define
class StreamState:
    name: str
    on_delta: OnDelta
    text: str = ""
    calls: list[ToolCall] = attrs.field(factory=list)
    usage: TokenUsage | None = None
    status: str = "completed"

    def feed(self, event: SseEvent) -> None:
        if event.data.strip() == "[DONE]":
            return
        data = parse_json(self.name, event.data)
        kind = data.get("type", event.event)
        if kind == "response.output_text.delta":
            delta = data.get("delta")
            if isinstance(delta, str) and delta:
                self.text += delta
                self.on_delta(delta)
        elif kind == "response.output_item.done":
            item = data.get("item")
            if isinstance(item, dict) and item.get("type") == "function_call":
                self.calls.append(
                    ToolCall(
                        str(item.get("call_id") or item.get("id") or f"call_{len(self.calls)}"),
                        str(item.get("name") or ""),
                        str(item.get("arguments") or "{}"),
                    )
                )
        elif kind in ("response.completed", "response.incomplete"):
            response = data.get("response")
            if isinstance(response, dict):
                self.status = str(response.get("status") or "completed")
                usage = response.get("usage")
                if isinstance(usage, dict):
                    self.usage = TokenUsage(
                        count(usage.get("input_tokens")), count(usage.get("output_tokens"))
                    )
        elif kind in ("response.failed", "error"):
            raise reported_error(self.name, _failure(data))

    def reply(self) -> ModelReply:
        stop = "tool_calls" if self.calls else ("length" if self.status == "incomplete" else "stop")
        return ModelReply(self.text, tuple(self.calls), stop, self.usage)


def _failure(data: dict[str, object]) -> str:
    response = data.get("response")
    error = response.get("error") if isinstance(response, dict) else data.get("error", data)
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(data.get("message"), str):
        return str(data["message"])
    return "unknown error"


def url(provider: Provider) -> str:
    return provider.base_url.rstrip("/") + "/responses"


async def complete(
    name: str, provider: Provider, request: ModelRequest, on_delta: OnDelta
) -> ModelReply:
    state = StreamState(name, on_delta)
    headers = {"authorization": f"Bearer {provider.api_key}"} if provider.api_key else {}
    await stream_events(name, provider, url(provider), headers, request_body(request), state.feed)
    return state.reply()
