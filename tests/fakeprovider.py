"""A model provider on loopback that speaks the real wire formats, for tests.

A small ASGI app served by hypercorn's trio worker on ``127.0.0.1:0`` inside the test's
nursery. It records every request (path, headers, JSON body) and answers from a script of
replies that tests queue: SSE streams in the OpenAI Chat Completions, OpenAI Responses or
Anthropic Messages format, error statuses (with ``Retry-After``), or a stream that stalls.
The gateway's production code talks to it unchanged; only ``baseUrl`` points here.
"""

from __future__ import annotations

import json
from collections import deque
from functools import partial
from typing import Any

import attrs
import trio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.run import worker_serve


@attrs.frozen
class Reply:
    status: int = 200
    events: tuple[tuple[str | None, str], ...] = ()  # (event name, data)
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    hold_after: int | None = None  # send this many events, then wait for `release`
    release: trio.Event | None = None


@attrs.frozen
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@attrs.define
class FakeProvider:
    base_url: str = ""
    requests: list[Seen] = attrs.field(factory=list)
    script: deque[Reply] = attrs.field(factory=deque)
    streaming: trio.Event = attrs.field(factory=trio.Event)  # set once a held reply is held
    arrived: trio.Event = attrs.field(factory=trio.Event)

    def queue(self, *replies: Reply) -> None:
        self.script.extend(replies)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append(Seen(scope["path"], headers, json.loads(body or b"{}")))
        self.arrived.set()
        reply = (
            self.script.popleft()
            if self.script
            else Reply(500, body=b'{"error":"no reply queued"}')
        )
        content_type = "text/event-stream" if reply.events else "application/json"
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [
                    (b"content-type", content_type.encode()),
                    *((k.encode(), v.encode()) for k, v in reply.headers),
                ],
            }
        )
        if not reply.events:
            await send({"type": "http.response.body", "body": reply.body})
            return
        for i, (name, data) in enumerate(reply.events):
            if reply.hold_after is not None and i == reply.hold_after:
                self.streaming.set()
                await (reply.release if reply.release is not None else trio.Event()).wait()
            if name == ":":  # an SSE comment line (a keep-alive), which clients must ignore
                chunk = f": {data}\n\n".encode()
            else:
                prefix = f"event: {name}\n" if name else ""
                chunk = f"{prefix}data: {data}\n\n".encode()
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if reply.hold_after is not None and reply.hold_after >= len(reply.events):
            self.streaming.set()
            await (reply.release if reply.release is not None else trio.Event()).wait()
        await send({"type": "http.response.body", "body": b""})


async def start_fake_provider(nursery: trio.Nursery, prefix: str = "/v1") -> FakeProvider:
    fake = FakeProvider()
    app: Any = fake  # hypercorn's scope TypedDicts are stricter than this test app needs
    config = HypercornConfig()
    config.bind = ["127.0.0.1:0"]
    config.graceful_timeout = 0.1
    binds: list[str] = await nursery.start(
        partial(worker_serve, ASGIWrapper(app), config, shutdown_trigger=trio.sleep_forever)
    )
    fake.base_url = binds[0] + prefix
    return fake


# -- replies in each wire format ------------------------------------------------------------


def _data(value: object) -> str:
    return json.dumps(value)


def chat_sse(
    *pieces: str,
    tool_calls: tuple[tuple[str, str, str], ...] = (),
    hold_after: int | None = None,
    release: trio.Event | None = None,
) -> Reply:
    """OpenAI Chat Completions stream: text pieces, then optional tool calls (id, name, args)."""
    events: list[tuple[str | None, str]] = []
    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": "fake"}
    events.append(
        (None, _data({**base, "choices": [{"index": 0, "delta": {"role": "assistant"}}]}))
    )
    for piece in pieces:
        delta = {"content": piece}
        events.append((None, _data({**base, "choices": [{"index": 0, "delta": delta}]})))
    for index, (call_id, name, args) in enumerate(tool_calls):
        head = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        events.append(
            (None, _data({**base, "choices": [{"index": 0, "delta": {"tool_calls": [head]}}]}))
        )
        half = len(args) // 2
        for part in (args[:half], args[half:]):
            frag = {"index": index, "function": {"arguments": part}}
            events.append(
                (None, _data({**base, "choices": [{"index": 0, "delta": {"tool_calls": [frag]}}]}))
            )
    finish = "tool_calls" if tool_calls else "stop"
    events.append(
        (None, _data({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}))
    )
    usage = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    events.append((None, _data({**base, "choices": [], "usage": usage})))
    events.append((None, "[DONE]"))
    return Reply(events=tuple(events), hold_after=hold_after, release=release)


def responses_sse(*pieces: str, function_call: tuple[str, str, str] | None = None) -> Reply:
    events: list[tuple[str | None, str]] = []

    def add(kind: str, **data: object) -> None:
        events.append((kind, _data({"type": kind, **data})))

    add("response.created", response={"id": "resp_fake", "status": "in_progress"})
    for piece in pieces:
        add(
            "response.output_text.delta",
            item_id="msg_1",
            output_index=0,
            content_index=0,
            delta=piece,
        )
    if function_call is not None:
        call_id, name, args = function_call
        item = {
            "type": "function_call",
            "id": "fc_1",
            "call_id": call_id,
            "name": name,
            "arguments": args,
        }
        add("response.output_item.done", output_index=1, item=item)
    usage = {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8}
    add("response.completed", response={"id": "resp_fake", "status": "completed", "usage": usage})
    return Reply(events=tuple(events))


def anthropic_sse(*pieces: str, tool_use: tuple[str, str, str] | None = None) -> Reply:
    events: list[tuple[str | None, str]] = []

    def add(kind: str, **data: object) -> None:
        events.append((kind, _data({"type": kind, **data})))

    add(
        "message_start",
        message={"id": "msg_fake", "usage": {"input_tokens": 9, "output_tokens": 1}},
    )
    add("content_block_start", index=0, content_block={"type": "text", "text": ""})
    events.append((":", "keep-alive"))
    for piece in pieces:
        add("content_block_delta", index=0, delta={"type": "text_delta", "text": piece})
    add("content_block_stop", index=0)
    stop = "end_turn"
    if tool_use is not None:
        call_id, name, args = tool_use
        add(
            "content_block_start",
            index=1,
            content_block={"type": "tool_use", "id": call_id, "name": name, "input": {}},
        )
        add(
            "content_block_delta", index=1, delta={"type": "input_json_delta", "partial_json": args}
        )
        add("content_block_stop", index=1)
        stop = "tool_use"
    add("message_delta", delta={"stop_reason": stop}, usage={"output_tokens": 4})
    add("message_stop")
    return Reply(events=tuple(events))


def error_reply(status: int, message: str, *headers: tuple[str, str]) -> Reply:
    return Reply(status, body=json.dumps({"error": {"message": message}}).encode(), headers=headers)
