"""``POST /v1/responses`` (OPERATIONS.md A.5): off unless ``...endpoints.responses.enabled``.

Streaming events, in order: ``response.created``, ``response.in_progress``,
``response.output_item.added``, ``response.content_part.added``, ``response.output_text.delta``
(one per piece of text), ``response.output_text.done``, ``response.content_part.done``,
``response.output_item.done``, then ``response.completed`` (or ``response.failed``), and
``data: [DONE]``. ``previous_response_id`` continues that response's session.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

from ..agent.dedupe import IdempotencyCache
from ..agent.run import Run
from ..errors import GatewayError, GatewayFault, HttpError
from ..openai import responses_format as fmt
from ..openai.select import Target
from ..runtime import Runtime
from .agent_http import follow, read_agent_request, start_run
from .http import Receive, SendFn, not_found
from .httpapi import (
    end_sse,
    send_error,
    send_json,
    sse,
    sse_comment,
    start_sse,
)
from .openai_chat import NO_RETRY

# response id -> session, so previous_response_id continues a conversation (bounded, 5 min
# like every idempotency cache here). One per process: ids are random, gateways don't share.
SESSIONS: IdempotencyCache[Target] = IdempotencyCache(ttl_ms=3_600_000)


async def responses(rt: Runtime, scope: dict[str, Any], receive: Receive, send: SendFn) -> None:
    endpoint = rt.settings.config.gateway.http.endpoints.responses
    if not endpoint.enabled:
        await not_found(send)
        return
    try:
        request, target = await read_agent_request(
            rt, scope, receive, endpoint, fmt.parse_responses, "openresponses"
        )
        if request.previous_response_id:
            previous = SESSIONS.get(request.previous_response_id, rt.now_ms())
            if previous is None:
                raise HttpError(
                    404, f"previous_response_id: no response '{request.previous_response_id}'"
                )
            target = previous
        run = start_run(rt, "resp", target, request.message, request.system, request.prelude)
    except GatewayError as error:
        await send_error(send, error)
        return
    SESSIONS.put(run.run_id, target, rt.now_ms())
    created = int(time.time())
    message_id = f"msg_{uuid.uuid4()}"

    def resource(status: str, text: str | None, error: str | None = None) -> dict[str, object]:
        tokens = (run.usage.input, run.usage.output)
        return fmt.response_object(
            run.run_id, created, request.model, status, text, message_id, tokens, error
        )

    if not request.stream:
        await follow(rt, run, receive, None)
        if run.status != "ok":
            await send_error(
                send,
                GatewayFault(
                    run.summary,
                    headers=NO_RETRY,
                    body=resource("failed", None, run.summary),
                ),
            )
            return
        await send_json(send, 200, resource("completed", run.reply_text))
        return
    await _stream(rt, run, receive, send, resource, message_id)


async def _stream(
    rt: Runtime,
    run: Run,
    receive: Receive,
    send: SendFn,
    resource: Callable[..., dict[str, object]],
    message_id: str,
) -> None:
    seq = 0

    async def event(kind: str, data: dict[str, object]) -> None:
        nonlocal seq
        seq += 1
        await sse(send, {"type": kind, "sequence_number": seq, **data}, event=kind)

    where = {"item_id": message_id, "output_index": 0, "content_index": 0}
    await start_sse(send)
    await event("response.created", {"response": resource("in_progress", None)})
    await event("response.in_progress", {"response": resource("in_progress", None)})
    await event(
        "response.output_item.added",
        {"output_index": 0, "item": fmt.message_item(message_id, "", "in_progress")},
    )
    await event("response.content_part.added", {**where, "part": fmt.text_part("")})

    async def on_text(piece: str) -> None:
        await event("response.output_text.delta", {**where, "delta": piece, "logprobs": []})

    await follow(rt, run, receive, on_text, partial(sse_comment, send))
    try:
        if run.status != "ok":
            await event("response.failed", {"response": resource("failed", None, run.summary)})
        else:
            text = run.text or run.reply_text
            await event("response.output_text.done", {**where, "text": text, "logprobs": []})
            await event("response.content_part.done", {**where, "part": fmt.text_part(text)})
            await event(
                "response.output_item.done",
                {"output_index": 0, "item": fmt.message_item(message_id, text, "completed")},
            )
            await event("response.completed", {"response": resource("completed", text)})
        await sse(send, "[DONE]")
        await end_sse(send)
    except Exception:
        return  # the client went away after the run ended
