"""The HTTP route table of the gateway port: exact paths first, then prefixes, else 404."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..runtime import Runtime
from .http import LIVENESS, READINESS, Receive, not_found, probe
from .openai_chat import MODELS_PREFIX, chat_completions, model_detail, models
from .openai_responses import responses
from .outbox import SendFn
from .tools_http import tools_invoke

Handler = Callable[[Runtime, dict[str, Any], Receive, SendFn], Awaitable[None]]

EXACT: dict[str, Handler] = {
    **{path: probe for path in (*LIVENESS, *READINESS)},
    "/tools/invoke": tools_invoke,
    "/v1/responses": responses,
    "/v1/chat/completions": chat_completions,
    "/v1/models": models,
}
PREFIXES: tuple[tuple[str, Handler], ...] = ((MODELS_PREFIX, model_detail),)


async def handle_http(rt: Runtime, scope: dict[str, Any], receive: Receive, send: SendFn) -> None:
    path: str = scope["path"]
    handler = EXACT.get(path)
    if handler is None:
        handler = next((h for prefix, h in PREFIXES if path.startswith(prefix)), None)
    if handler is None:
        await not_found(send)
        return
    await handler(rt, scope, receive, send)
