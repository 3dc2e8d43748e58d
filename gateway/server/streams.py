"""Every accepted connection, by peer address, so one can be closed or aborted from outside.

A write to a client that stopped reading waits for buffer space that never comes, and
closing the socket is what frees it (STACK-NOTES.md); the keepalive, the session's closer
and shutdown do that through :class:`Streams`. Shutdown also waits here until every
connection has finished.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from ..config.settings import format_host
from .sockio import PeerKey

if TYPE_CHECKING:
    from .listener import Connection


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

    async def expire_idle(self, keep_alive_timeout: float) -> None:
        """Close connections that waited for a request longer than ``keep_alive_timeout``
        (``SocketIO.expire``), checking about once a second; runs until cancelled."""
        interval = min(1.0, keep_alive_timeout / 4)
        while True:
            await trio.sleep(interval)
            now = trio.current_time()
            for conn in list(self._by_peer.values()):
                conn.expire(now)

    def close_idle(self) -> None:
        """Close every HTTP keep-alive connection that is waiting for its next request."""
        for conn in list(self._by_peer.values()):
            conn.close_if_idle()
