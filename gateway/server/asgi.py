"""The one ASGI app on the gateway port: WebSocket control plane + HTTP, routed by scope."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from ..protocol.upgrade import Upgrade
from ..runtime import Runtime
from .admission import upgrade_refusal
from .listener import PeerKey, Streams
from .routes import handle_http
from .session import Disconnected, run_session

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@attrs.define(eq=False)
class AsgiWebSocket:
    """A WebSocket as hypercorn hands it to an ASGI app, in the driver's terms."""

    upgrade: Upgrade
    _receive: Receive
    _send: Send
    _streams: Streams
    _key: PeerKey

    async def receive(self) -> str | None:
        message = await self._receive()
        if message["type"] == "websocket.disconnect":
            raise Disconnected(message.get("code"))
        text = message.get("text")
        if text is not None:
            return str(text)
        try:
            return bytes(message.get("bytes") or b"").decode()
        except UnicodeDecodeError:
            return None

    async def send_text(self, text: str) -> None:
        await self._send({"type": "websocket.send", "text": text})

    async def send_close(self, code: int, reason: str) -> None:
        await self._send({"type": "websocket.close", "code": code, "reason": reason})

    def abort(self) -> None:
        self._streams.abort(self._key)


def upgrade_of(scope: dict[str, Any]) -> Upgrade:
    path = str(scope.get("raw_path", b"").decode("latin-1") or scope.get("path", "/"))
    query = scope.get("query_string", b"")
    if query and "?" not in path:
        path += "?" + bytes(query).decode("latin-1")
    headers = [(bytes(k).lower(), bytes(v)) for k, v in scope.get("headers", [])]
    client = scope.get("client")
    server = scope.get("server")
    return Upgrade(
        path,
        headers,
        (str(client[0]), int(client[1])) if client else None,
        (str(server[0]), int(server[1])) if server else None,
    )


class GatewayApp:
    def __init__(self, rt: Runtime, streams: Streams) -> None:
        self.rt = rt
        self.streams = streams

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            upgrade = upgrade_of(scope)
            key = upgrade.client or ("", 0)
            if (await receive())["type"] != "websocket.connect":
                return
            refusal = upgrade_refusal(self.rt, upgrade)
            if refusal is not None:  # plain HTTP with the refusal's status, never a 101
                body = refusal.message.encode()
                headers = [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                ]
                status = refusal.http_status
                await send(
                    {"type": "websocket.http.response.start", "status": status, "headers": headers}
                )
                await send({"type": "websocket.http.response.body", "body": body})
                return
            await send({"type": "websocket.accept"})
            self.streams.websocket(key)
            try:
                await run_session(self.rt, AsgiWebSocket(upgrade, receive, send, self.streams, key))
            finally:
                # The close handshake is over (or abandoned). hypercorn would keep reading
                # until the client drops TCP, and some clients never do; the server closes
                # first, as RFC 6455 section 7.1.1 expects.
                self.streams.close(key)
        elif kind == "http":
            await handle_http(self.rt, scope, receive, send)
