"""The listening socket and the TCP accept loop that feeds hypercorn.

We bind the socket ourselves so that (1) a taken port becomes one clear error, not a
traceback; (2) ``TCP_USER_TIMEOUT`` is set on it -- accepted sockets inherit it, which bounds
how long the kernel lets a write to a peer with a zero window stall; and (3) port 0 works
for tests. We also run hypercorn's per-connection ``TCPServer`` from our own accept loop
instead of ``hypercorn.trio.serve``, so we hold every accepted stream and can *abort* one:
hypercorn writes inside a shielded cancel scope, and closing the socket is the only way to
free a task stuck writing to a client that stopped reading (STACK-NOTES.md).
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
from typing import Any, cast

import trio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext

from ..config.settings import format_host
from ..errors import PortInUseError, StartupError

log = logging.getLogger("gateway.http")

PeerKey = tuple[str, int]


def open_socket(
    host: str, port: int, *, user_timeout_ms: int, backlog: int = 1024
) -> socket.socket:
    """A bound, listening TCP socket, or a :class:`StartupError` that names host and port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if user_timeout_ms and hasattr(socket, "TCP_USER_TIMEOUT"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, user_timeout_ms)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        url = f"ws://{format_host(host)}:{port}"
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"another gateway instance is already listening on {url} (EADDRINUSE)"
            ) from None
        raise StartupError(f"failed to bind gateway socket on {url}: {exc.strerror}") from None
    return sock


def _key(address: Any) -> PeerKey:
    return (str(address[0]), int(address[1]))


class Streams:
    """The accepted TCP streams, by peer address, so a stuck one can be aborted."""

    def __init__(self) -> None:
        self._by_peer: dict[PeerKey, trio.SocketStream] = {}
        self._changed = trio.Event()

    def __len__(self) -> int:
        return len(self._by_peer)

    def add(self, stream: trio.SocketStream) -> PeerKey | None:
        try:
            key = _key(stream.socket.getpeername())
        except OSError:
            return None
        self._by_peer[key] = stream
        return key

    def discard(self, key: PeerKey | None) -> None:
        if key is not None:
            self._by_peer.pop(key, None)
            self._changed.set()

    async def wait_empty(self) -> None:
        """Until every accepted connection has finished (closed by either side)."""
        while self._by_peer:
            self._changed = trio.Event()
            await self._changed.wait()

    def close(self, key: PeerKey) -> None:
        """Close the connection now (FIN): everything we sent was already written."""
        stream = self._by_peer.pop(key, None)
        if stream is not None:
            stream.socket.close()
            self._changed.set()

    def abort(self, key: PeerKey) -> None:
        """Reset the connection now: wakes a writer blocked in ``send_all``."""
        stream = self._by_peer.pop(key, None)
        if stream is None:
            return
        try:  # RST instead of FIN: the kernel drops the unsent bytes at once
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        stream.socket.close()
        self._changed.set()

    def abort_all(self) -> int:
        keys = list(self._by_peer)
        for key in keys:
            self.abort(key)
        return len(keys)


def hypercorn_config(max_message_size: int, ping_interval_ms: int) -> HypercornConfig:
    config = HypercornConfig()
    config.websocket_max_message_size = max_message_size
    config.websocket_ping_interval = ping_interval_ms / 1000 if ping_interval_ms else None
    config.errorlog = log
    config.accesslog = None
    config.keep_alive_timeout = 5
    return config


async def serve_tcp(
    app: Any,
    sock: socket.socket,
    streams: Streams,
    config: HypercornConfig,
    context: WorkerContext,
    *,
    task_status: trio.TaskStatus[trio.CancelScope] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept connections and run hypercorn's protocol on each until cancelled.

    Reports the *accept* cancel scope: cancelling it closes the listener but leaves the
    connections running, which is how graceful shutdown stops new work first.
    """
    listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
    wrapped = ASGIWrapper(app)

    async def handle(stream: trio.SocketStream) -> None:
        key = streams.add(stream)
        try:
            await TCPServer(wrapped, config, context, {}, cast(Any, stream))
        finally:
            streams.discard(key)

    async with trio.open_nursery() as handlers:
        with trio.CancelScope() as accept_scope:
            task_status.started(accept_scope)
            await trio.serve_listeners(handle, [listener], handler_nursery=handlers)
