"""A minimal blocking WebSocket client on a raw socket (wsproto), for misbehaving peers.

The ``websockets`` clients read eagerly in a background thread, so they cannot play a
client that stops reading (STACK-NOTES.md). This one reads only when told to, and can
shrink its receive buffer so the server's writes stall quickly.
"""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import urlsplit

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Message, Request, TextMessage

from .conftest import connect_frame

OPEN: set[RawClient] = set()


def close_all() -> None:
    """Close clients a failed test left open (else their sockets warn in a later test)."""
    for client in list(OPEN):
        client.close()


class RawClient:
    def __init__(self, url: str, *, rcvbuf: int | None = None, timeout: float = 5.0) -> None:
        parts = urlsplit(url)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        OPEN.add(self)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((parts.hostname or "127.0.0.1", parts.port or 80))
        self.ws = WSConnection(ConnectionType.CLIENT)
        self._pending: list[Any] = []
        self.close_code: int | None = None
        self.sock.sendall(self.ws.send(Request(host=parts.netloc, target="/")))
        self._until(lambda e: isinstance(e, AcceptConnection))

    def _until(self, predicate: Any) -> Any:
        while True:
            for i, event in enumerate(self._pending):
                if predicate(event):
                    del self._pending[i]
                    return event
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("peer closed the TCP connection")
            self.ws.receive_data(data)
            for event in self.ws.events():
                if isinstance(event, CloseConnection):
                    self.close_code = event.code
                self._pending.append(event)

    def recv_json(self) -> dict[str, Any]:
        # wsproto hands over a message in pieces as TCP delivers it (a small receive buffer
        # makes that likely): collect up to the piece that finishes the message
        parts: list[str] = []
        while True:
            event = self._until(lambda e: isinstance(e, Message | CloseConnection))
            if isinstance(event, CloseConnection):
                raise ConnectionError(f"closed {event.code} {event.reason}")
            parts.append(str(event.data))
            if event.message_finished:
                break
        data: dict[str, Any] = json.loads("".join(parts))
        return data

    def send_json(self, value: object) -> None:
        self.sock.sendall(self.ws.send(TextMessage(data=json.dumps(value))))

    def handshake(self) -> dict[str, Any]:
        challenge = self.recv_json()
        assert challenge["event"] == "connect.challenge"
        frame = connect_frame()
        self.send_json(frame)
        while True:
            reply = self.recv_json()
            if reply.get("type") == "res" and reply.get("id") == frame["id"]:
                return reply

    def close(self) -> None:
        OPEN.discard(self)
        self.sock.close()
