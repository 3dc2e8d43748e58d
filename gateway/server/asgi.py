"""The one ASGI app on the gateway port: WebSocket control plane + HTTP, routed by scope."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from ..runtime import Runtime
from .listener import Streams
from .routes import handle_http
from .session import run_session

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class GatewayApp:
    def __init__(self, rt: Runtime, streams: Streams) -> None:
        self.rt = rt
        self.streams = streams

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            client = scope.get("client") or ("", 0)
            key = (str(client[0]), int(client[1]))
            self.streams.websocket(key)
            try:
                await run_session(self.rt, scope, receive, send, partial(self.streams.abort, key))
            finally:
                # The close handshake is over (or abandoned). hypercorn would keep reading
                # until the client drops TCP, and some clients never do; the server closes
                # first, as RFC 6455 section 7.1.1 expects.
                self.streams.close(key)
        elif kind == "http":
            await handle_http(self.rt, scope, receive, send)
