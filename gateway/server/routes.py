"""The HTTP route table of the gateway port: exact paths first, then prefixes, else 404."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..runtime import Runtime
from .http import LIVENESS, READINESS, Receive, not_found, probe
from .outbox import SendFn

Handler = Callable[[Runtime, dict[str, Any], Receive, SendFn], Awaitable[None]]

EXACT: dict[str, Handler] = {path: probe for path in (*LIVENESS, *READINESS)}
PREFIXES: tuple[tuple[str, Handler], ...] = ()


async def handle_http(rt: Runtime, scope: dict[str, Any], receive: Receive, send: SendFn) -> None:
    path: str = scope["path"]
    handler = EXACT.get(path)
    if handler is None:
        handler = next((h for prefix, h in PREFIXES if path.startswith(prefix)), None)
    if handler is None:
        await not_found(send)
        return
    await handler(rt, scope, receive, send)
