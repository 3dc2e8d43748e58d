"""The listening socket and the accept loop.

We bind the socket ourselves so that (1) a taken port becomes one clear error, not a
traceback; (2) ``TCP_USER_TIMEOUT`` is set on it -- accepted sockets inherit it, which bounds
how long the kernel lets a write to a peer with a zero window stall (STACK-NOTES.md); and
(3) port 0 works for tests. Each accepted socket gets a :class:`listener.Connection` in the
handler nursery.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.worker_context import WorkerContext

from ..config.settings import format_host
from ..errors import PortInUseError, StartupError
from .listener import Connection, Front
from .streams import Streams

log = logging.getLogger("gateway.http")


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


async def serve_tcp(
    app: Any,
    sock: socket.socket,
    streams: Streams,
    config: HypercornConfig,
    context: WorkerContext,
    front: Front | None = None,
    *,
    task_status: trio.TaskStatus[trio.CancelScope] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept connections and serve each (``listener.Connection``) until cancelled.

    Reports the *accept* cancel scope: cancelling it stops accepting but leaves the
    connections running, which is how graceful shutdown stops new work first. Each wake-up
    accepts every connection the kernel has queued, not just one.
    """
    wrapped = ASGIWrapper(app)
    sock.setblocking(False)

    def serve_one(client: socket.socket, key: tuple[str, int]) -> Awaitable[None]:
        conn = Connection(client, key, config, context, front)
        streams.add(conn)  # until the connection ends (Connection.run discards it)
        return conn.run(wrapped, streams)

    async with trio.open_nursery() as handlers:
        with trio.CancelScope() as accept_scope:
            task_status.started(accept_scope)
            try:
                async with trio.open_nursery() as accepting:
                    # keep-alive timeouts; once the gateway stops accepting, a connection
                    # that goes idle closes by itself (``SocketIO.idle``)
                    accepting.start_soon(streams.expire_idle, config.keep_alive_timeout)
                    await _accept_loop(sock, handlers, serve_one)
            finally:  # stop listening at once: the port is free while connections drain
                trio.lowlevel.notify_closing(sock)
                sock.close()


async def _accept_loop(
    sock: socket.socket,
    handlers: trio.Nursery,
    serve_one: Callable[[socket.socket, tuple[str, int]], Awaitable[None]],
) -> None:
    while True:
        await trio.lowlevel.wait_readable(sock)
        while True:
            try:
                client, address = sock.accept()
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno in _ACCEPT_SHORTAGE:
                    log.warning("accept failed (%s); retrying shortly", exc.strerror)
                    await trio.sleep(0.1)  # e.g. EMFILE: give closes a moment
                    break
                if exc.errno in _ACCEPT_PEER_GONE:
                    continue
                raise
            client.setblocking(False)
            try:
                if client.family in (socket.AF_INET, socket.AF_INET6):
                    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:  # the peer is already gone
                client.close()
                continue
            key = (str(address[0]), int(address[1]))
            handlers.start_soon(serve_one, client, key)  # returns conn.run(...): one frame less


# accept() errors that concern one connection, and those of a momentary resource shortage
_ACCEPT_PEER_GONE = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM})
_ACCEPT_SHORTAGE = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
