"""Every accepted connection, by peer address, so one can be closed or aborted from outside.

A write to a client that stopped reading waits for buffer space that never comes, and
closing the socket is what frees it (STACK-NOTES.md); the keepalive, the session's closer
and shutdown do that through :class:`Streams`. Shutdown also waits here until every
connection has finished, and :meth:`Streams.expire_idle` closes HTTP keep-alive
connections that wait too long for their next request.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import trio

from ..config.settings import format_host
from .sockio import PeerKey

if TYPE_CHECKING:
    from .listener import Connection


SWEEP_S = 0.25  # expire_idle wakes at most this often


def format_peer(key: PeerKey) -> str:
    return f"{format_host(key[0])}:{key[1]}"


class Streams:
    """The accepted connections, by peer address, so a stuck one can be aborted."""

    def __init__(self) -> None:
        self._by_peer: dict[PeerKey, Connection] = {}
        self._changed = trio.Event()
        self._idle_wanted: trio.Event | None = None  # expire_idle waits for an idle connection

    def __len__(self) -> int:
        return len(self._by_peer)

    def add(self, conn: Connection) -> None:
        self._by_peer[conn.key] = conn
        conn.streams = self
        self.went_idle()  # it waits for its first request

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

    async def expire_idle(self, keep_alive_timeout: float) -> None:
        """Close each connection that has waited for a request longer than
        ``keep_alive_timeout``; runs until cancelled.

        It sleeps until the earliest connection could expire (at least ``SWEEP_S`` apart:
        many connections expire in one sweep), and while no connection is waiting for a
        request, until one is (:meth:`went_idle`) -- so a gateway with only WebSocket
        clients has no timer at all (and a test's autojumping clock is never held up)."""
        while True:
            now = trio.current_time()
            earliest = math.inf
            for conn in list(self._by_peer.values()):
                since = conn.idle_since
                if since is None or since == -math.inf:
                    continue
                if now - since >= keep_alive_timeout:
                    conn.close_socket(eof=True)  # its reader sees the end
                else:
                    earliest = min(earliest, since + keep_alive_timeout)
            if earliest == math.inf:
                self._idle_wanted = trio.Event()
                await self._idle_wanted.wait()
                self._idle_wanted = None
            else:
                await trio.sleep_until(max(earliest, now + min(SWEEP_S, keep_alive_timeout / 4)))

    def went_idle(self) -> None:
        """A connection started waiting for a request (:meth:`expire_idle` may be asleep)."""
        if self._idle_wanted is not None:
            self._idle_wanted.set()

    def close_idle(self) -> None:
        """Close every HTTP keep-alive connection that is waiting for its next request."""
        for conn in list(self._by_peer.values()):
            conn.close_if_idle()
