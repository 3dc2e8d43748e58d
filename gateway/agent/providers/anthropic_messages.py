"""Anthropic Messages (``api: "anthropic-messages"``): ``POST {baseUrl}/v1/messages``.

Auth is ``x-api-key`` plus ``anthropic-version``. The stream is named SSE events:
``message_start`` (input usage), ``content_block_start`` (a ``text`` or ``tool_use`` block
with id and name), ``content_block_delta`` (``text_delta`` text or ``input_json_delta``
argument fragments), ``message_delta`` (stop reason, output usage), ``message_stop``, and
``error``. The API wants strictly alternating user/assistant turns, and tool results as
``tool_result`` blocks inside a user turn, so consecutive turns of one role are merged.
"""

from __future__ import annotations

import json

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

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096


def request_body(request: ModelRequest) -> dict[str, object]:
    turns: list[dict[str, object]] = []
    for m in request.messages:
        role = "assistant" if m.role == "assistant" else "user"
        blocks = _blocks(m)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            previous = turns[-1]["content"]
            assert isinstance(previous, list)
            previous.extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    body: dict[str, object] = {
        "model": request.model,
        "messages": turns,
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
        "stream": True,
    }
    if request.system:
        body["system"] = request.system
    if request.tools:
        body["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters}
            for t in request.tools
        ]
    return body


def _blocks(m: Message) -> list[dict[str, object]]:
    if m.role == "tool":
        block: dict[str, object] = {
            "type": "tool_result",
            "tool_use_id": m.tool_call_id,
            "content": m.text,
        }
        if m.is_error:
            block["is_error"] = True
        return [block]
    blocks: list[dict[str, object]] = [
        {"type": "image", "source": {"type": "base64", "media_type": i.mime_type, "data": i.data}}
        for i in m.images
    ]
    if m.text:
        blocks.append({"type": "text", "text": m.text})
    for call in m.tool_calls:
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError:
            arguments = {}
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": arguments})
    return blocks


@attrs.define
class _Block:
    kind: str
    id: str = ""
    name: str = ""
    json: str = ""


@attrs.define
class StreamState:
    name: str
    on_delta: OnDelta
    text: str = ""
    blocks: dict[int, _Block] = attrs.field(factory=dict)
    stop: str = "end_turn"
    input_tokens: int = 0
    output_tokens: int = 0

    def feed(self, event: SseEvent) -> None:
        data = parse_json(self.name, event.data)
        kind = data.get("type", event.event)
        if kind == "message_start":
            message = data.get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
            if isinstance(usage, dict):
                self.input_tokens = count(usage.get("input_tokens"))
        elif kind == "content_block_start":
            block = data.get("content_block")
            if isinstance(block, dict):
                self.blocks[count(data.get("index"))] = _Block(
                    str(block.get("type")), str(block.get("id") or ""), str(block.get("name") or "")
                )
        elif kind == "content_block_delta":
            self._delta(count(data.get("index")), data.get("delta"))
        elif kind == "message_delta":
            delta = data.get("delta")
            if isinstance(delta, dict) and isinstance(delta.get("stop_reason"), str):
                self.stop = delta["stop_reason"]
            usage = data.get("usage")
            if isinstance(usage, dict):
                self.output_tokens = count(usage.get("output_tokens"))
        elif kind == "error":
            error = data.get("error")
            raise reported_error(self.name, error)

    def _delta(self, index: int, delta: object) -> None:
        if not isinstance(delta, dict):
            return
        if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
            self.text += delta["text"]
            self.on_delta(delta["text"])
        elif delta.get("type") == "input_json_delta":
            block = self.blocks.setdefault(index, _Block("tool_use"))
            block.json += str(delta.get("partial_json") or "")

    def reply(self) -> ModelReply:
        calls = tuple(
            ToolCall(b.id or f"toolu_{i}", b.name, b.json or "{}")
            for i, b in sorted(self.blocks.items())
            if b.kind == "tool_use"
        )
        usage = TokenUsage(self.input_tokens, self.output_tokens)
        return ModelReply(self.text, calls, self.stop, usage)


def url(provider: Provider) -> str:
    base = provider.base_url.rstrip("/")
    return base + ("/messages" if base.endswith("/v1") else "/v1/messages")


async def complete(
    name: str, provider: Provider, request: ModelRequest, on_delta: OnDelta
) -> ModelReply:
    state = StreamState(name, on_delta)
    headers = {"anthropic-version": API_VERSION}
    if provider.api_key:
        headers["x-api-key"] = provider.api_key
    await stream_events(name, provider, url(provider), headers, request_body(request), state.feed)
    return state.reply()
