"""A recording WebSocket relay: the reference client talks to it, it talks to our gateway.

It forwards every message both ways unchanged and keeps the first ones of each connection,
which is how the interop session captures a real signed ``connect`` (with the challenge it
answers) without any hook in the gateway. The gateway sees a loopback peer with no
forwarding headers, exactly as if the client had connected directly.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import trio
from trio_websocket import (
    ConnectionClosed,
    WebSocketConnection,
    WebSocketRequest,
    open_websocket_url,
    serve_websocket,
)

KEEP = 4  # messages kept per direction per connection


@attrs.define
class Exchange:
    """What one relayed connection said first: server→client and client→server."""

    to_client: list[dict[str, Any]] = attrs.field(factory=list)
    to_server: list[dict[str, Any]] = attrs.field(factory=list)

    def connect_frame(self) -> dict[str, Any] | None:
        return next((f for f in self.to_server if f.get("method") == "connect"), None)

    def challenge(self) -> dict[str, Any] | None:
        return next((f for f in self.to_client if f.get("event") == "connect.challenge"), None)


@attrs.define
class Relay:
    upstream: str
    exchanges: list[Exchange] = attrs.field(factory=list)
    port: int = 0
    changed: trio.Event = attrs.field(factory=trio.Event)

    def signed_connects(self) -> list[Exchange]:
        return [
            e
            for e in self.exchanges
            if (frame := e.connect_frame()) is not None and "device" in frame.get("params", {})
        ]

    async def wait_for_signed_connect(self) -> Exchange:
        while not self.signed_connects():
            self.changed = trio.Event()
            await self.changed.wait()
        return self.signed_connects()[0]

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen on 127.0.0.1 (a free port, then in ``port``) until cancelled."""
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_websocket, self._handle, "127.0.0.1", 0, None)
            self.port = server.port
            task_status.started()

    async def _handle(self, request: WebSocketRequest) -> None:
        client = await request.accept()
        exchange = Exchange()
        self.exchanges.append(exchange)
        try:
            async with open_websocket_url(self.upstream) as server:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._pump, server, client, exchange.to_client, nursery)
                    nursery.start_soon(self._pump, client, server, exchange.to_server, nursery)
        except (ConnectionClosed, OSError):
            pass
        finally:
            await client.aclose()

    async def _pump(
        self,
        source: WebSocketConnection,
        sink: WebSocketConnection,
        kept: list[dict[str, Any]],
        nursery: trio.Nursery,
    ) -> None:
        try:
            while True:
                message = await source.get_message()
                if len(kept) < KEEP:
                    try:
                        kept.append(json.loads(message))
                    except ValueError:
                        pass
                    self.changed.set()
                await sink.send_message(message)
        except ConnectionClosed as closed:
            reason = closed.reason
            code = reason.code if reason is not None else 1000
            with trio.move_on_after(1):
                await sink.aclose(code, reason.reason if reason is not None else None)
        finally:
            nursery.cancel_scope.cancel()
