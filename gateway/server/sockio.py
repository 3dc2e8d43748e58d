"""One accepted socket's I/O, without a stream object between us and the kernel.

The socket is a non-blocking stdlib socket; waits go through trio's I/O manager
(``wait_readable`` / ``wait_writable``). Measured against ``trio.SocketStream`` this saves
20-25 µs per request (STACK-NOTES.md), and it gives us three behaviours a stream would not:

* **reads wait for readability first** (the peer is usually still thinking, so trying
  ``recv`` first is a wasted syscall);
* **a write the kernel takes at once returns without a scheduler round trip**; only a
  write that has to wait for buffer space takes the lock and waits, shielded: once the
  first byte of a frame is out, nothing may cut it (the peer would see a torn frame);
* **closing wakes every waiter**: :meth:`SocketIO.close_socket` tells trio before it closes
  the descriptor. That is how a writer stuck on a peer that stopped reading is freed
  (STACK-NOTES.md: the kernel would hold it until ``TCP_USER_TIMEOUT``).

A keep-alive HTTP connection that waits longer than ``keep_alive_timeout`` for its next
request is closed by a sweep over the connections (``Streams.expire_idle``) -- no deadline
to set and no cancel scope to enter per request.
"""

from __future__ import annotations

import math
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio
from hypercorn.trio.worker_context import WorkerContext

if TYPE_CHECKING:
    from .streams import Streams

MAX_RECV = 2**16
PING_FRAME = b"\x89\x00"  # FIN + opcode 0x9, unmasked (server to client), no payload
PeerKey = tuple[str, int]
EAGER_SKIP = 8  # after an early read found nothing, this many reads wait first (_read)


class SocketIO:
    """Reads, whole-frame writes, the keep-alive idle wait and the close of one socket."""

    # slots: one of these per connection (BENCHMARKS.md, memory per idle connection)
    __slots__ = (
        "_send_lock",
        "_skip",
        "closed",
        "context",
        "idle_since",
        "keep_alive_timeout",
        "key",
        "on_broken",
        "received",
        "sock",
        "streams",
        "websocket",
    )

    def __init__(
        self, sock: socket.socket, key: PeerKey, keep_alive_timeout: float, context: WorkerContext
    ) -> None:
        self.sock = sock
        self.key = key
        self.context = context  # ``terminated``: the gateway takes no more requests
        self.keep_alive_timeout = keep_alive_timeout
        self.closed = False
        self.websocket = False  # an open WebSocket (upgraded, no close frame sent yet)
        self.received = 0  # reads with data: the keepalive's sign of life
        # a failed write (the peer reset us) is reported here; reads see it as EOF anyway
        self.on_broken: Callable[[], Awaitable[None]] | None = None
        self._send_lock = trio.Lock()
        # reads left before the next early read (see _read); -1: the first read is early
        self._skip = -1
        # when the wait for the next request began (None: a request or a WebSocket is being
        # served; -inf: the gateway stops, no next request); a new connection waits now
        self.idle_since: float | None = trio.current_time()
        self.streams: Streams | None = None  # the registry that sweeps idle connections

    # -- reading -------------------------------------------------------------------------------

    async def recv(self) -> bytes:
        """The next bytes from the peer (``b""`` at EOF). Raises ``trio.ClosedResourceError``
        once the socket has been closed (aborted)."""
        try:
            return self._got(await self._read())
        except OSError:
            return b""

    async def _read(self) -> bytes:
        """One ``recv``, after the next bytes have arrived.

        A busy peer's next request is usually in by the time every other ready connection
        has had its turn: then yielding once and reading (a scheduler pass) is cheaper than
        registering the socket with epoll and being woken by it (BENCHMARKS.md: ~3 µs of
        15 for a probe). When that early read finds nothing, the next ``EAGER_SKIP`` reads
        wait for readability first, as an idle peer's always should. The first read of a
        new connection does not wait at all: the client sends its request as soon as it
        is connected, and it has usually arrived by the time the connection's task runs
        (a handshake saves an epoll registration and a wake-up)."""
        sock = self.sock
        skip = self._skip
        if skip > 0:
            self._skip = skip - 1
        else:
            if skip == 0:
                await trio.lowlevel.checkpoint()
            else:  # a new connection: its first request usually came with it
                self._skip = EAGER_SKIP
            try:
                return sock.recv(MAX_RECV)
            except BlockingIOError:
                self._skip = EAGER_SKIP
        while True:
            await trio.lowlevel.wait_readable(sock)
            try:
                return sock.recv(MAX_RECV)
            except BlockingIOError:
                continue

    def _got(self, data: bytes) -> bytes:
        self.received += 1
        return data

    async def recv_idle(self) -> bytes | None:
        """The next bytes of a request; ``b""`` at EOF; ``None`` once the socket is closed --
        by the idle sweep (``Streams.expire_idle``: the keep-alive time ran out), by a stop
        (:meth:`close_if_idle`) -- or when the gateway stopped taking requests."""
        if self.idle_since == -math.inf:
            return None
        if self.closed:
            return None
        try:
            return self._got(await self._read())
        except (OSError, trio.ClosedResourceError):
            return None

    def busy(self) -> None:
        """A request is being served: no keep-alive timeout until :meth:`idle`."""
        self.idle_since = None

    def idle(self) -> None:
        """Waiting for the next request from now on (there is none if the gateway stops):
        ``Streams.expire_idle`` closes the connection if it waits too long -- one sweep
        over the connections instead of a deadline per request."""
        if self.context.terminated.is_set():
            self.idle_since = -math.inf
        else:
            self.idle_since = trio.current_time()
            if self.streams is not None:
                self.streams.went_idle()

    def close_if_idle(self) -> None:
        """Close the connection if it is waiting for a request (the gateway stops)."""
        if self.idle_since is not None:
            self.close_socket(eof=True)

    # -- writing -------------------------------------------------------------------------------

    async def write(self, data: bytes) -> None:
        """Write all of ``data`` (one or more whole frames). Without contention and with
        buffer space this does not yield; otherwise writers take turns (the lock), each
        finishing its frame shielded. A failed write goes to :attr:`on_broken`."""
        view = memoryview(data)
        lock = self._send_lock
        try:
            if lock.locked():
                await lock.acquire()  # nothing of ours is written yet: cancellable here
            else:
                # No checkpoint between the check above and this write, so no other task
                # can come between: the lock is only needed if we have to wait.
                try:
                    sent = self.sock.send(view)
                except BlockingIOError:
                    sent = 0
                if sent == len(view):
                    return
                lock.acquire_nowait()
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
            if self.on_broken is not None:
                await self.on_broken()

    @property
    def writing(self) -> bool:
        """A write is waiting for buffer space (or taking its turn behind one)."""
        return self._send_lock.locked()

    def try_write(self, pieces: list[bytes]) -> int | None:
        """Write what the kernel takes of ``pieces`` (in order, one ``sendmsg``) now,
        without yielding: the number of bytes written (the rest is the caller's to write in
        order, before anything else), or ``None`` -- nothing written -- while another write
        is in progress or after the close. A broken socket counts as written: the reader
        sees the end."""
        if self.closed or self._send_lock.locked():
            return None
        try:
            return self.sock.sendmsg(pieces)
        except BlockingIOError:
            return 0
        except OSError:
            return sum(map(len, pieces))

    async def send_ping(self) -> None:
        """A WebSocket ping (empty payload). Only between frames of an open WebSocket: not
        while a write is in progress (the peer is not reading, and a ping would have to wait
        its turn) and never after our close frame (RFC 6455 5.5.1)."""
        if self.websocket and not self.closed and not self._send_lock.locked():
            await self.write(PING_FRAME)

    # -- the end -----------------------------------------------------------------------------

    def server_address(self) -> tuple[str, int] | None:
        try:
            name = self.sock.getsockname()
        except OSError:
            return None
        return (str(name[0]), int(name[1]))

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
