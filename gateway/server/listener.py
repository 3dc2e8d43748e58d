"""One accepted TCP connection: the front door, then the path that serves it.

The connection reads the first request head and asks ``server/front.py`` which path it
takes (:func:`front.classify`):

* a **WebSocket upgrade** is served on the lean path (``server/websocket.py``): no ASGI,
  and hypercorn's protocol is never created for the socket;
* a **probe** (``/health[z]``, ``/ready[z]``) is answered in place, and the next request
  on the keep-alive connection comes through the same door;
* **anything else** goes to hypercorn (``server/hyper.py``) with the bytes already read.

The pieces around it: the listening socket and accept loop (``server/accept.py``), the
socket I/O this class inherits (``server/sockio.py``: reads, whole-frame writes, the
keep-alive wait, the close that wakes every waiter) and the registry of accepted
connections that can abort one (``server/streams.py``).
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol

from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.worker_context import WorkerContext

from ..protocol.upgrade import Upgrade
from .front import MAX_HEAD_BYTES, Head, Path, classify, parse_head
from .hyper import HypercornBridge
from .sockio import PeerKey, SocketIO

if TYPE_CHECKING:
    from .streams import Streams


class Front(Protocol):
    """What answers at the front door (``server/asgi.GatewayFront``): probes and WebSockets."""

    def probe(self, head: Head, conn: Connection) -> bytes:
        """The complete response to a probe request."""

    def websocket(self, conn: Connection, upgrade: Upgrade, after: bytes) -> Awaitable[None]:
        """Serve the upgrade request until the connection ends (``after``: the bytes that
        followed its head)."""


class Connection(SocketIO):
    """One accepted connection: the front door for WebSockets and probes, hypercorn's
    protocol for everything else (HTTP/1.1)."""

    def __init__(
        self,
        sock: socket.socket,
        key: PeerKey,
        config: HypercornConfig,
        context: WorkerContext,
        front: Front | None = None,
    ) -> None:
        super().__init__(sock, key, config.keep_alive_timeout, context)
        self.config = config
        self.front = front
        self.http: HypercornBridge | None = None  # made only if hypercorn takes over

    async def run(self, app: Any, streams: Streams | None = None) -> None:
        """Serve the connection until either side ends it; the socket is closed after, and
        the connection leaves ``streams`` (which the accept loop added it to)."""
        try:
            handed = b""
            if self.front is not None:
                found = await self._front_door(self.front)
                if found is None:
                    return
                handed = found
            self.http = HypercornBridge(self, self.config)
            await self.http.serve(app, handed)
        except OSError:
            pass
        finally:
            self.close_socket(eof=True)
            if streams is not None:
                streams.discard(self)

    async def _front_door(self, front: Front) -> bytes | None:
        """Serve what hypercorn is not needed for: WebSockets and probes. Returns the bytes
        read so far when hypercorn should take over, ``None`` when the connection is done."""
        buffer = bytearray()
        while True:
            while buffer.find(b"\r\n\r\n") < 0:
                if len(buffer) > MAX_HEAD_BYTES:
                    return bytes(buffer)  # hypercorn refuses it properly
                data = await self.recv_idle()
                if not data:
                    return None  # EOF, the keep-alive time ran out, or the gateway stops
                buffer += data
            head = parse_head(buffer)
            if head is None:
                return bytes(buffer)
            path = classify(head)
            if path is Path.WEBSOCKET:
                self.busy()
                upgrade = head.upgrade(self.key, self.server_address())
                del buffer[: head.length], head  # nothing of the request outlives this
                await front.websocket(self, upgrade, _emptied(buffer))
                return None
            if path is Path.HYPERCORN:
                return bytes(buffer)
            await self.write(front.probe(head, self))
            if not head.keep_alive or self.context.terminated.is_set():
                return None
            del buffer[: head.length]
            self.idle()


def _emptied(buffer: bytearray) -> bytes:
    """The contents of ``buffer``, which is emptied (its memory released)."""
    data = bytes(buffer)
    buffer.clear()
    return data
