"""The listening socket, the accept loop, and the per-connection driver under hypercorn.

We bind the socket ourselves so that (1) a taken port becomes one clear error, not a
traceback; (2) ``TCP_USER_TIMEOUT`` is set on it -- accepted sockets inherit it, which bounds
how long the kernel lets a write to a peer with a zero window stall; and (3) port 0 works
for tests.

hypercorn parses HTTP/1.1, performs the WebSocket upgrade, frames messages (wsproto) and
calls our ASGI app; :class:`Connection` does the rest of what hypercorn's trio
``TCPServer`` would do -- move bytes between the socket and hypercorn's protocol object --
with less per-message machinery (measured in BENCHMARKS.md, "Performance work"):

* reads wait for readability first (the peer is usually still thinking, so trying
  ``recv`` first is a wasted syscall), then read what is there;
* a write that the kernel takes at once returns without a scheduler round trip; only a
  write that has to wait for buffer space takes the lock and waits, shielded, as
  hypercorn's does (a frame is never cut in half by a cancellation);
* the keep-alive timeout is a deadline on the idle wait, not a task restarted per request.

We also hold every accepted socket (:class:`Streams`) so we can *abort* one: a write to a
client that stopped reading waits for buffer space that never comes, and closing the socket
is what frees it (STACK-NOTES.md).
"""

from __future__ import annotations

import errno
import logging
import math
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config as HypercornConfig
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.trio.task_group import TaskGroup
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState

from ..config.settings import format_host
from ..errors import PortInUseError, StartupError
from ..protocol.upgrade import Upgrade
from .front import MAX_HEAD_BYTES, Head, Path, classify, parse_head
from .gatekeeper import Gatekeeper
from .http11 import Http11Protocol
from .status_line import with_reason

log = logging.getLogger("gateway.http")

MAX_RECV = 2**16
PING_FRAME = b"\x89\x00"  # FIN + opcode 0x9, unmasked (server to client), no payload
CLOSE_FRAME_START = b"\x88"  # FIN + opcode 0x8: hypercorn writes each frame as one RawData
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


def format_peer(key: PeerKey) -> str:
    return f"{format_host(key[0])}:{key[1]}"


class Streams:
    """The accepted connections, by peer address, so a stuck one can be aborted."""

    def __init__(self) -> None:
        self._by_peer: dict[PeerKey, Connection] = {}
        self._changed = trio.Event()

    def __len__(self) -> int:
        return len(self._by_peer)

    def add(self, conn: Connection) -> None:
        self._by_peer[conn.key] = conn

    def discard(self, conn: Connection) -> None:
        if self._by_peer.get(conn.key) is conn:
            del self._by_peer[conn.key]
            self._changed.set()

    async def wait_empty(self) -> None:
        """Until every accepted connection has finished (closed by either side)."""
        while self._by_peer:
            self._changed = trio.Event()
            await self._changed.wait()

    def close(self, key: PeerKey) -> None:
        """Close the connection now (FIN): everything we sent was already written."""
        conn = self._by_peer.pop(key, None)
        if conn is not None:
            conn.close_socket()
            self._changed.set()

    def abort(self, key: PeerKey) -> None:
        """Reset the connection now: wakes a writer waiting for buffer space."""
        conn = self._by_peer.pop(key, None)
        if conn is not None:
            conn.close_socket(reset=True)
            self._changed.set()

    def abort_all(self) -> int:
        keys = list(self._by_peer)
        for key in keys:
            self.abort(key)
        return len(keys)

    def websocket(self, key: PeerKey) -> None:
        """The connection at ``key`` is now a WebSocket: keepalive pings apply to it."""
        conn = self._by_peer.get(key)
        if conn is not None:
            conn.websocket = True

    def websockets(self) -> list[Connection]:
        return [conn for conn in self._by_peer.values() if conn.websocket]

    def close_idle(self) -> None:
        """Close every HTTP keep-alive connection that is waiting for its next request."""
        for conn in list(self._by_peer.values()):
            conn.close_if_idle()


class Front(Protocol):
    """What answers at the front door (``server/front.py``): probes and WebSockets."""

    def probe(self, head: Head, conn: Connection) -> bytes:
        """The complete response to a probe request."""

    def websocket(self, conn: Connection, upgrade: Upgrade, after: bytes) -> Awaitable[None]:
        """Serve the upgrade request until the connection ends (``after``: the bytes that
        followed its head)."""


class Connection:
    """One accepted TCP connection: the front door (``server/front.py``) for WebSockets
    and probes, hypercorn's protocol for everything else (HTTP/1.1).

    The socket is a non-blocking stdlib socket; waits go through trio's I/O manager
    (``wait_readable`` / ``wait_writable``), and :meth:`close_socket` tells trio before it
    closes the descriptor, which wakes any task waiting on it.
    """

    def __init__(
        self,
        sock: socket.socket,
        key: PeerKey,
        config: HypercornConfig,
        context: WorkerContext,
        front: Front | None = None,
        gate: Gatekeeper | None = None,
    ) -> None:
        self.sock = sock
        self.key = key
        self.gate = gate
        self.authenticated = False  # completed a WebSocket connect (gatekeeper.py)
        self.config = config
        self.context = context
        self.front = front
        self.protocol: Http11Protocol | None = None
        self.closed = False
        self.websocket = False  # an open WebSocket (upgraded, no close frame sent yet)
        self.received = 0  # reads with data: the keepalive's sign of life
        self._send_lock = trio.Lock()
        self._idle_deadline = trio.current_time() + config.keep_alive_timeout
        self._idle_scope: trio.CancelScope | None = None

    async def run(self, app: Any) -> None:
        try:
            handed = b""
            if self.front is not None:
                found = await self._front_door(self.front)
                if found is None:
                    return
                handed = found
            await self._hypercorn(app, handed)
        except OSError:
            pass
        finally:
            self.close_socket(eof=True)

    async def _front_door(self, front: Front) -> bytes | None:
        """Serve what hypercorn is not needed for: WebSockets and probes. Returns the bytes
        read so far when hypercorn should take over, ``None`` when the connection is done."""
        buffer = bytearray()
        while True:
            while buffer.find(b"\r\n\r\n") < 0:
                if len(buffer) > MAX_HEAD_BYTES:
                    return bytes(buffer)  # hypercorn refuses it properly
                data = await self._recv_idle()
                if not data:
                    return None  # EOF, the keep-alive time ran out, or the gateway stops
                buffer += data
            head = parse_head(buffer)
            if head is None:
                return bytes(buffer)
            path = classify(head)
            if path is Path.WEBSOCKET:
                self._idle_deadline = math.inf
                upgrade = head.upgrade(self.key, self.server_address())
                del buffer[: head.length], head  # nothing of the request outlives this
                await front.websocket(self, upgrade, _emptied(buffer))
                return None
            if path is Path.HYPERCORN:
                return bytes(buffer)
            await self._send(front.probe(head, self))
            if not head.keep_alive or self.context.terminated.is_set():
                return None
            del buffer[: head.length]
            self._idle_deadline = trio.current_time() + self.config.keep_alive_timeout

    async def _recv_idle(self) -> bytes:
        """The next bytes of a request, waiting no longer than the keep-alive deadline;
        ``b""`` on EOF, on timeout, or when the gateway stops."""
        while True:
            if not await self._wait_while_idle():
                return b""
            try:
                data = self.sock.recv(MAX_RECV)
            except BlockingIOError:
                continue
            except (OSError, trio.ClosedResourceError):
                return b""
            self.received += 1
            return data

    async def recv(self) -> bytes:
        """The next bytes from the peer (``b""`` at EOF), waiting for readability first.
        Raises ``trio.ClosedResourceError`` once the socket has been closed (aborted)."""
        sock = self.sock
        while True:
            await trio.lowlevel.wait_readable(sock)
            try:
                data = sock.recv(MAX_RECV)
            except BlockingIOError:
                continue
            except OSError:
                return b""
            self.received += 1
            return data

    def authenticate(self) -> None:
        """The WebSocket on this connection completed ``connect``: it no longer counts
        against its address's unauthenticated connections."""
        if not self.authenticated:
            self.authenticated = True
            if self.gate is not None:
                self.gate.authenticated(self.key[0])

    async def write(self, data: bytes) -> None:
        """Write all of ``data`` (one or more whole frames): see :meth:`_send`."""
        await self._send(data)

    def server_address(self) -> tuple[str, int] | None:
        try:
            name = self.sock.getsockname()
        except OSError:
            return None
        return (str(name[0]), int(name[1]))

    async def _hypercorn(self, app: Any, handed: bytes) -> None:
        """hypercorn's HTTP/1.1 protocol for this socket, fed ``handed`` first."""
        server = self.sock.getsockname()
        async with TaskGroup() as task_group:
            self.protocol = Http11Protocol(  # HTTP/1.1 only: no h2c (server/http11.py)
                app,
                self.config,
                self.context,
                task_group,
                ConnectionState({}),  # no lifespan state
                False,  # not TLS
                self.key,
                (str(server[0]), int(server[1])),
                self._protocol_send,
            )
            await self.protocol.initiate()
            if handed:
                await self.protocol.handle(RawData(handed))
            await self._read()

    async def _read(self) -> None:
        assert self.protocol is not None
        sock = self.sock
        while not self.closed:
            try:
                if self._idle_deadline == math.inf:
                    await trio.lowlevel.wait_readable(sock)
                elif not await self._wait_while_idle():
                    break  # keep-alive timeout, or the gateway is stopping
                data = sock.recv(MAX_RECV)
            except BlockingIOError:
                continue
            except (OSError, trio.ClosedResourceError):
                break
            self.received += 1
            await self.protocol.handle(RawData(data))
            if not data:
                break  # EOF: the protocol has seen it as empty data
        await self.protocol.handle(Closed())

    async def _wait_while_idle(self) -> bool:
        """Wait for the next request's bytes; ``False`` if the keep-alive time ran out."""
        with trio.CancelScope(deadline=self._idle_deadline) as scope:
            self._idle_scope = scope
            if self.context.terminated.is_set():
                scope.cancel()
            await trio.lowlevel.wait_readable(self.sock)
        self._idle_scope = None
        return not scope.cancelled_caught

    async def send_ping(self) -> None:
        """A WebSocket ping (empty payload); the reply is a pong, which hypercorn reads and
        drops. Only between frames of an open WebSocket: not while a write is in progress
        (the peer is not reading, and a ping would have to wait its turn) and never after
        our close frame."""
        if self.websocket and not self.closed and not self._send_lock.locked():
            await self._send(PING_FRAME)

    def close_if_idle(self) -> None:
        if self._idle_scope is not None:
            self._idle_scope.cancel()

    async def _protocol_send(self, event: Event) -> None:
        if isinstance(event, RawData):
            data = event.data if self.websocket else with_reason(event.data)
            if self.websocket and data[:1] == CLOSE_FRAME_START:
                self.websocket = False  # closing: no more pings (RFC 6455 5.5.1)
            await self._send(data)
        elif isinstance(event, Closed):
            self.close_socket(eof=True)
            if self.protocol is not None:
                await self.protocol.handle(Closed())
        elif isinstance(event, Updated):
            if not event.idle:
                self._idle_deadline = math.inf
            else:
                self._idle_deadline = trio.current_time() + self.config.keep_alive_timeout
                if self.context.terminated.is_set():
                    self._idle_deadline = -math.inf

    async def _send(self, data: bytes) -> None:
        """Write all of ``data``. Without contention and with buffer space this does not
        yield; otherwise writers take turns (the lock), each finishing its frame shielded:
        once the first byte of a frame is out, nothing may interrupt it."""
        view = memoryview(data)
        lock = self._send_lock
        try:
            if lock.locked():
                await lock.acquire()  # nothing of ours is written yet: cancellable here
            else:
                lock.acquire_nowait()  # no checkpoint between this and the first write
                try:
                    sent = self.sock.send(view)
                except BlockingIOError:
                    sent = 0
                except BaseException:
                    lock.release()
                    raise
                if sent == len(view):
                    lock.release()
                    return
                view = view[sent:]
            try:
                with trio.CancelScope(shield=True):
                    while view and not self.closed:
                        await trio.lowlevel.wait_writable(self.sock)
                        try:
                            sent = self.sock.send(view)
                        except BlockingIOError:
                            continue
                        view = view[sent:]
            finally:
                lock.release()
        except (OSError, trio.ClosedResourceError):
            if self.protocol is not None:
                await self.protocol.handle(Closed())

    def close_socket(self, *, reset: bool = False, eof: bool = False) -> None:
        """Close the descriptor (waking every task waiting on it). ``reset``: RST instead of
        FIN, so the kernel drops unsent bytes at once; ``eof``: shut down writing first."""
        if self.closed:
            return
        self.closed = True
        sock = self.sock
        try:
            if reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif eof:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        trio.lowlevel.notify_closing(sock)
        sock.close()


def _emptied(buffer: bytearray) -> bytes:
    """The contents of ``buffer``, which is emptied (its memory released)."""
    data = bytes(buffer)
    buffer.clear()
    return data


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
    """Accept connections and run each through hypercorn's protocol until cancelled.

    Reports the *accept* cancel scope: cancelling it stops accepting but leaves the
    connections running, which is how graceful shutdown stops new work first. Each wake-up
    accepts every connection the kernel has queued, not just one.
    """
    wrapped = ASGIWrapper(app)
    sock.setblocking(False)

    async def handle(conn: Connection) -> None:
        streams.add(conn)
        try:
            await conn.run(wrapped)
        finally:
            streams.discard(conn)
            if gate is not None:
                gate.closed(conn.key[0], conn.authenticated)

    async with trio.open_nursery() as handlers:
        with trio.CancelScope() as accept_scope:
            task_status.started(accept_scope)
            try:
                await _accept_loop(sock, handlers, handle, config, context, front, gate)
            finally:  # stop listening at once: the port is free while connections drain
                trio.lowlevel.notify_closing(sock)
                sock.close()


async def _accept_loop(
    sock: socket.socket,
    handlers: trio.Nursery,
    handle: Callable[[Connection], Awaitable[None]],
    config: HypercornConfig,
    context: WorkerContext,
    front: Front | None,
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
            key = (ip, int(address[1]))
            if gate is not None:
                gate.opened(ip)
            handlers.start_soon(handle, Connection(client, key, config, context, front, gate))


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
