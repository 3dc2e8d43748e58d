"""The listening socket and the accept loop.

We bind the socket ourselves so that (1) a taken port becomes one clear error, not a
traceback; (2) ``TCP_USER_TIMEOUT`` is set on it -- accepted sockets inherit it, which bounds
how long the kernel lets a write to a peer with a zero window stall (STACK-NOTES.md); and
(3) port 0 works for tests. Each accepted socket is admitted by the gatekeeper (per-address
caps, the file limit: ``server/gatekeeper.py``) and gets a :class:`listener.Connection` in
the handler nursery.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.worker_context import WorkerContext

from ..config.settings import format_host
from ..errors import PortInUseError, StartupError
from .gatekeeper import Gatekeeper
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
    gate: Gatekeeper | None = None,
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
        conn = Connection(client, key, config, context, front, gate)
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
                    await _accept_loop(sock, handlers, serve_one, gate)
            finally:  # stop listening at once: the port is free while connections drain
                trio.lowlevel.notify_closing(sock)
                sock.close()


async def _accept_loop(
    sock: socket.socket,
    handlers: trio.Nursery,
    serve_one: Callable[[socket.socket, tuple[str, int]], Awaitable[None]],
    gate: Gatekeeper | None,
) -> None:
    spare = _Spare()
    while True:
        await trio.lowlevel.wait_readable(sock)
        while True:
            try:
                client, address = sock.accept()
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno in _ACCEPT_SHORTAGE:
                    # Out of descriptors: the client would wait in the backlog, and every
                    # one behind it. Use the spare descriptor to take it and turn it away.
                    if exc.errno in (errno.EMFILE, errno.ENFILE) and spare.refuse_one(sock):
                        log.warning("accept failed (%s): refused a connection", exc.strerror)
                        continue
                    log.warning("accept failed (%s); retrying shortly", exc.strerror)
                    await trio.sleep(0.1)  # e.g. ENOBUFS: give closes a moment
                    break
                if exc.errno in _ACCEPT_PEER_GONE:
                    continue
                raise
            ip = str(address[0])
            if gate is not None:
                refusal = gate.admit(ip)
                if refusal is not None:
                    gate.refuse(client, ip, refusal)
                    continue
            client.setblocking(False)
            try:
                if client.family in (socket.AF_INET, socket.AF_INET6):
                    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:  # the peer is already gone
                client.close()
                continue
            if gate is not None:
                gate.opened(ip)
            handlers.start_soon(serve_one, client, (ip, int(address[1])))  # conn.run(...)


class _Spare:
    """One descriptor held in reserve, so that at the file limit a queued connection can
    still be accepted -- and closed at once -- instead of blocking the backlog."""

    def __init__(self) -> None:
        self.fd = self._open()

    @staticmethod
    def _open() -> int:
        try:
            return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return -1

    def refuse_one(self, sock: socket.socket) -> bool:
        if self.fd < 0:
            self.fd = self._open()
            return False
        os.close(self.fd)
        self.fd = -1
        try:
            client, _ = sock.accept()
        except OSError:
            return False
        else:
            client.close()
            return True
        finally:
            self.fd = self._open()


# accept() errors that concern one connection, and those of a momentary resource shortage
_ACCEPT_PEER_GONE = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM})
_ACCEPT_SHORTAGE = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
