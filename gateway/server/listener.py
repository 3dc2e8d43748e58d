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
from .gatekeeper import Gatekeeper
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

    __slots__ = ("authenticated", "config", "front", "gate", "http")

    def __init__(
        self,
        sock: socket.socket,
        key: PeerKey,
        config: HypercornConfig,
        context: WorkerContext,
        front: Front | None = None,
        gate: Gatekeeper | None = None,
    ) -> None:
        super().__init__(sock, key, config.keep_alive_timeout, context)
        self.config = config
        self.front = front
        self.gate = gate
        self.authenticated = False  # completed a WebSocket connect (gatekeeper.py)
        self.http: HypercornBridge | None = None  # made only if hypercorn takes over

    async def run(self, app: Any, streams: Streams | None = None) -> None:
        """Serve the connection until either side ends it; the socket is closed after, and
        the connection leaves ``streams`` (which the accept loop added it to).

        The front door: each request head decides (``front.classify``). A WebSocket is
        served on the lean path until the connection ends; a probe is answered here and the
        next request comes through the same door; anything else goes to hypercorn with the
        bytes already read. (One method, not two: one coroutine frame less for every open
        WebSocket -- BENCHMARKS.md, memory per idle connection.)"""
        front = self.front
        buffer = bytearray()
        try:
            while front is not None:
                if buffer.find(b"\r\n\r\n") < 0:
                    if len(buffer) > MAX_HEAD_BYTES:
                        break  # hypercorn refuses it properly
                    data = await self.recv_idle()
                    if not data:
                        return  # EOF, the keep-alive time ran out, or the gateway stops
                    buffer += data
                    continue
                head = parse_head(buffer)
                if head is None:
                    break  # malformed: hypercorn answers it
                path = classify(head)
                if path is Path.HYPERCORN:
                    break
                if path is Path.WEBSOCKET:
                    self.busy()
                    upgrade = head.upgrade(self.key, self.server_address())
                    del buffer[: head.length], head  # nothing of the request outlives this
                    await front.websocket(self, upgrade, _emptied(buffer))
                    return
                await self.write(front.probe(head, self))
                if not head.keep_alive or self.context.terminated.is_set():
                    return
                del buffer[: head.length]
                self.idle()
            self.http = HypercornBridge(self, self.config)
            await self.http.serve(app, _emptied(buffer))
        except OSError:
            pass
        finally:
            self.close_socket(eof=True)
            if streams is not None:
                streams.discard(self)
            if self.gate is not None:
                self.gate.closed(self.key[0], self.authenticated)

    def authenticate(self) -> None:
        """The WebSocket on this connection completed ``connect``: it no longer counts
        against its address's unauthenticated connections."""
        if not self.authenticated:
            self.authenticated = True
            if self.gate is not None:
                self.gate.authenticated(self.key[0])


def _emptied(buffer: bytearray) -> bytes:
    """The contents of ``buffer``, which is emptied (its memory released)."""
    data = bytes(buffer)
    buffer.clear()
    return data
