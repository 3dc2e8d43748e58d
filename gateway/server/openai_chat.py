"""``POST /v1/chat/completions``, ``GET /v1/models`` and ``GET /v1/models/{id}``.

Off unless ``gateway.http.endpoints.chatCompletions.enabled`` (a disabled endpoint is a
plain 404, as if it did not exist). The models routes are on when either OpenAI endpoint is.
"""

from __future__ import annotations

import re
import time
from functools import partial
from typing import Any
from urllib.parse import unquote_to_bytes

from ..errors import GatewayError, GatewayFault, HttpError
from ..openai import chat_format as fmt
from ..openai.select import agent_from_model, model_ids, model_object
from ..runtime import Runtime
from .agent_http import agent_ids, follow, read_agent_request, start_run
from .http import Receive, SendFn, not_found
from .httpapi import (
    authorize,
    check_method,
    end_sse,
    send_error,
    send_json,
    sse,
    sse_comment,
    start_sse,
)

MODELS_PREFIX = "/v1/models/"
NO_RETRY = [(b"x-should-retry", b"false")]  # the OpenAI SDKs retry 5xx unless told not to


def models_enabled(rt: Runtime) -> bool:
    endpoints = rt.settings.config.gateway.http.endpoints
    return endpoints.chat_completions.enabled or endpoints.responses.enabled


async def chat_completions(
    rt: Runtime, scope: dict[str, Any], receive: Receive, send: SendFn
) -> None:
    endpoint = rt.settings.config.gateway.http.endpoints.chat_completions
    if not endpoint.enabled:
        await not_found(send)
        return
    try:
        request, target = await read_agent_request(
            rt, scope, receive, endpoint, fmt.parse_chat, "openai"
        )
        run = start_run(rt, "chatcmpl", target, request.message, request.system, request.prelude)
    except GatewayError as error:
        await send_error(send, error)
        return
    created = int(time.time())
    if not request.stream:
        await follow(rt, run, receive, None)
        if run.status != "ok":
            await send_error(send, GatewayFault(run.summary, headers=NO_RETRY))
            return
        tokens = (run.usage.input, run.usage.output)
        await send_json(
            send, 200, fmt.completion(run.run_id, created, request.model, run.reply_text, tokens)
        )
        return

    def chunk(delta: dict[str, object], finish: str | None = None) -> dict[str, object]:
        return fmt.chunk(run.run_id, created, request.model, delta, finish)

    async def on_text(piece: str) -> None:
        await sse(send, chunk({"content": piece}))

    await start_sse(send)
    await sse(send, chunk({"role": "assistant"}))
    await follow(rt, run, receive, on_text, partial(sse_comment, send))
    try:
        if run.status != "ok":
            await sse(send, chunk({"content": f"Error: {run.summary}"}, "stop"))
        else:
            if not run.text:
                await sse(send, chunk({"content": run.reply_text or fmt.FALLBACK_TEXT}))
            await sse(send, chunk({}, "stop"))
            if request.include_usage:
                tokens = (run.usage.input, run.usage.output)
                await sse(send, fmt.usage_chunk(run.run_id, created, request.model, tokens))
        await sse(send, "[DONE]")
        await end_sse(send)
    except Exception:
        return  # the client went away after the run ended; nothing left to tell it


async def models(rt: Runtime, scope: dict[str, Any], receive: Receive, send: SendFn) -> None:
    if not models_enabled(rt):
        await not_found(send)
        return
    try:
        check_method(scope, ("GET",))
        authorize(rt, scope)
    except GatewayError as error:
        await send_error(send, error)
        return
    known, default = agent_ids(rt)
    data = [model_object(m) for m in model_ids(known, default)]
    await send_json(send, 200, {"object": "list", "data": data})


_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def _model_id(scope: dict[str, Any]) -> str:
    """The id after ``/v1/models/``, percent-decoded strictly (A.3): a broken escape or
    bytes that are not UTF-8 are ``Invalid model id encoding.``, not a mangled id."""
    raw = scope.get("raw_path")
    if not isinstance(raw, bytes):
        return str(scope["path"])[len(MODELS_PREFIX) :]
    encoded = raw.split(b"?", 1)[0][len(MODELS_PREFIX) :]
    try:
        if _BAD_ESCAPE.search(encoded):
            raise ValueError("broken percent escape")
        return unquote_to_bytes(encoded).decode("utf-8")
    except ValueError:  # UnicodeDecodeError included
        raise HttpError(400, "Invalid model id encoding.") from None


async def model_detail(rt: Runtime, scope: dict[str, Any], receive: Receive, send: SendFn) -> None:
    if not models_enabled(rt):
        await not_found(send)
        return
    try:
        check_method(scope, ("GET",))
        authorize(rt, scope)
        model_id = _model_id(scope)
        if not model_id:
            raise HttpError(400, "Missing model id.")
        agent = agent_from_model(model_id)
        if agent is None:
            raise HttpError(400, "Invalid model id.")
        known, default = agent_ids(rt)
        if (agent or default) not in known:
            raise HttpError(404, f"Model '{model_id}' not found.")
    except GatewayError as error:
        await send_error(send, error)
        return
    await send_json(send, 200, model_object(model_id))
