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

Between requests of a keep-alive HTTP connection the idle wait has a deadline
(``keep_alive_timeout``) and is cancelled when the gateway stops taking requests.
"""

from __future__ import annotations

import math
import socket
import struct
from collections.abc import Awaitable, Callable

import trio
from hypercorn.trio.worker_context import WorkerContext

MAX_RECV = 2**16
PING_FRAME = b"\x89\x00"  # FIN + opcode 0x9, unmasked (server to client), no payload
PeerKey = tuple[str, int]


class SocketIO:
    """Reads, whole-frame writes, the keep-alive idle wait and the close of one socket."""

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
        self._idle_deadline = trio.current_time() + keep_alive_timeout
        self._idle_scope: trio.CancelScope | None = None

    # -- reading -------------------------------------------------------------------------------

    async def recv(self) -> bytes:
        """The next bytes from the peer (``b""`` at EOF), waiting for readability first.
        Raises ``trio.ClosedResourceError`` once the socket has been closed (aborted)."""
        sock = self.sock
        while True:
            await trio.lowlevel.wait_readable(sock)
            try:
                return self._got(sock.recv(MAX_RECV))
            except BlockingIOError:
                continue
            except OSError:
                return b""

    def _got(self, data: bytes) -> bytes:
        self.received += 1
        return data

    async def recv_idle(self) -> bytes | None:
        """The next bytes of a request, waiting no longer than the keep-alive deadline;
        ``b""`` at EOF; ``None`` on timeout, when the gateway stops or the socket is closed."""
        while True:
            try:
                if self._idle_deadline == math.inf:
                    await trio.lowlevel.wait_readable(self.sock)
                elif not await self._wait_while_idle():
                    return None
                return self._got(self.sock.recv(MAX_RECV))
            except BlockingIOError:
                continue
            except (OSError, trio.ClosedResourceError):
                return None

    def busy(self) -> None:
        """A request is being served: no keep-alive deadline until :meth:`idle`."""
        self._idle_deadline = math.inf

    def idle(self) -> None:
        """Waiting for the next request: the keep-alive deadline starts now (and has
        passed already if the gateway is stopping)."""
        if self.context.terminated.is_set():
            self._idle_deadline = -math.inf
        else:
            self._idle_deadline = trio.current_time() + self.keep_alive_timeout

    async def _wait_while_idle(self) -> bool:
        """Wait for the next request's bytes; ``False`` if the keep-alive time ran out."""
        with trio.CancelScope(deadline=self._idle_deadline) as scope:
            self._idle_scope = scope
            if self.context.terminated.is_set():
                scope.cancel()
            await trio.lowlevel.wait_readable(self.sock)
        self._idle_scope = None
        return not scope.cancelled_caught

    def close_if_idle(self) -> None:
        """Stop waiting for a next request that has not started (the gateway stops)."""
        if self._idle_scope is not None:
            self._idle_scope.cancel()

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
            if self.on_broken is not None:
                await self.on_broken()

    @property
    def writing(self) -> bool:
        """A write is waiting for buffer space (or taking its turn behind one)."""
        return self._send_lock.locked()

    def try_write(self, data: bytes) -> int | None:
        """Write what the kernel takes of ``data`` now, without yielding: the number of
        bytes written (the rest is the caller's to write in order, before anything else),
        or ``None`` -- nothing written -- while another write is in progress or after the
        close. A broken socket counts as written: the reader sees the end."""
        if self.closed or self._send_lock.locked():
            return None
        try:
            return self.sock.send(data)
        except BlockingIOError:
            return 0
        except OSError:
            return len(data)

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
