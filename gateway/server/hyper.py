"""hypercorn's HTTP/1.1 protocol over one of our sockets: the HTTP APIs' path.

Everything that is not a WebSocket or a probe (``server/front.py``) is served by
hypercorn's h11 protocol object and the ASGI app (``/v1/*``, ``/tools/invoke``,
``/metrics``, the Control UI, 404s and malformed requests). We do what hypercorn's trio
``TCPServer`` would do -- move bytes between the socket and the protocol -- with our own
socket I/O (``server/sockio.py``): its writes are never cut by a cancellation, its idle
wait is the keep-alive deadline, and the connection can be aborted from outside.
"""

from __future__ import annotations

import logging
from typing import Any

from hypercorn.config import Config as HypercornConfig
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.trio.task_group import TaskGroup
from hypercorn.typing import ConnectionState

from .http11 import Http11Protocol
from .sockio import SocketIO
from .status_line import with_reason

log = logging.getLogger("gateway.http")

CLOSE_FRAME_START = b"\x88"  # FIN + opcode 0x8: hypercorn writes each frame as one RawData


def hypercorn_config(max_message_size: int) -> HypercornConfig:
    config = HypercornConfig()
    config.websocket_max_message_size = max_message_size
    # Pings are ours (app.keepalive_loop): hypercorn's would ping every connection the
    # moment it opens, from one more task per connection, and never notice a missing pong.
    config.websocket_ping_interval = None
    config.include_server_header = False  # no "server: hypercorn-h11": not our name to give out
    config.errorlog = log
    config.accesslog = None
    config.keep_alive_timeout = 5
    return config


class HypercornBridge:
    """One socket served by hypercorn's HTTP/1.1 protocol (no h2c: ``server/http11.py``)."""

    def __init__(self, io: SocketIO, config: HypercornConfig) -> None:
        self.io = io
        self.config = config
        self.protocol: Http11Protocol | None = None

    async def serve(self, app: Any, handed: bytes) -> None:
        """Until the connection ends; ``handed``: the bytes the front door already read."""
        io = self.io
        server = io.server_address() or ("", 0)
        async with TaskGroup() as task_group:
            self.protocol = Http11Protocol(
                app,
                self.config,
                io.context,
                task_group,
                ConnectionState({}),  # no lifespan state
                False,  # not TLS
                io.key,
                server,
                self._protocol_send,
            )
            io.on_broken = self._broken
            await self.protocol.initiate()
            if handed:
                await self.protocol.handle(RawData(handed))
            await self._read()

    async def _read(self) -> None:
        assert self.protocol is not None
        io = self.io
        while not io.closed:
            data = await io.recv_idle()
            if data is None:
                break  # the keep-alive time ran out, or the gateway is stopping
            await self.protocol.handle(RawData(data))
            if not data:
                break  # EOF: the protocol has seen it as empty data
        await self.protocol.handle(Closed())

    async def _broken(self) -> None:
        if self.protocol is not None:
            await self.protocol.handle(Closed())

    async def _protocol_send(self, event: Event) -> None:
        io = self.io
        if isinstance(event, RawData):
            data = event.data if io.websocket else with_reason(event.data)
            if io.websocket and data[:1] == CLOSE_FRAME_START:
                io.websocket = False  # closing: no more pings (RFC 6455 5.5.1)
            await io.write(data)
        elif isinstance(event, Closed):
            io.close_socket(eof=True)
            await self._broken()
        elif isinstance(event, Updated):
            if event.idle:
                io.idle()
            else:
                io.busy()
