"""A thin trio driver around ``wire``: one WebSocket, one protocol-4 handshake, no tasks.

Frames are bytes end to end. Responses are recognised by their prefix
(``{"type":"res","id":"<id>","ok":true``), which both the gateway and the ceiling server
produce (their encoders keep key order); anything else is parsed as JSON before a verdict,
so a reordered or failed response is never counted as a success.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from typing import Any

import trio

from . import wire

CONNECT_ID = b"c0"


class Closed(Exception):
    """The server closed the WebSocket (``code`` 1006 if TCP dropped without a close frame)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"closed {code} {reason}".strip())
        self.code = code
        self.reason = reason


class RequestFailed(Exception):
    pass


def client_info(mode: str) -> dict[str, str]:
    """A ``connect.params.client`` for load clients.

    ``backend`` and ``cli`` clients are not tracked in presence (PROTOCOL.md 9), so a
    thousand of them do not turn every hello-ok and presence event into a 200-entry list --
    the many-connection scenarios measure connections, not presence payloads.
    """
    client_id = {"backend": "gateway-client", "cli": "cli"}.get(mode, "test")
    return {
        "id": client_id,
        "version": "bench",
        "platform": "linux",
        "mode": mode,
        "instanceId": str(uuid.uuid4()),
    }


def connect_frame(token: str, mode: str) -> bytes:
    params = {
        "minProtocol": 4,
        "maxProtocol": 4,
        "client": client_info(mode),
        "caps": [],
        "role": "operator",
        # asked for explicitly: a gateway may grant nothing to a client that asks for nothing
        # (the reference does), and system-event (fan-out) needs admin
        "scopes": ["operator.admin"],
        "auth": {"token": token},
    }
    return json.dumps(
        {"type": "req", "id": CONNECT_ID.decode(), "method": "connect", "params": params},
        separators=(",", ":"),
    ).encode()


def request_frame(request_id: bytes, method: bytes, params: bytes | None = None) -> bytes:
    frame = b'{"type":"req","id":"' + request_id + b'","method":"' + method + b'"'
    if params is not None:
        frame += b',"params":' + params
    return frame + b"}"


def ok_prefix(request_id: bytes) -> bytes:
    return b'{"type":"res","id":"' + request_id + b'","ok":true'


def is_response_to(message: bytes, request_id: bytes) -> bool | None:
    """``True``/``False`` for an ok/failed response to ``request_id``; ``None`` otherwise."""
    if message.startswith(ok_prefix(request_id)):
        return True
    if not message.startswith(b'{"type":"res"'):
        return None
    frame: dict[str, Any] = json.loads(message)
    if frame.get("id") != request_id.decode():
        return None
    return frame.get("ok") is True


class Conn:
    def __init__(self, stream: trio.SocketStream, decoder: wire.Decoder) -> None:
        self.stream = stream
        self.decoder = decoder
        self.closed: Closed | None = None
        self.close_sent = False

    @classmethod
    async def open(cls, host: str, port: int) -> Conn:
        stream = await trio.open_tcp_stream(host, port)
        try:
            await stream.send_all(wire.upgrade_request(host, port))
            buffer = b""
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    raise Closed(1006, "closed during upgrade")
                done, rest = wire.split_upgrade_response(buffer + data)
                if done:
                    break
                buffer = rest
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        decoder = wire.Decoder()
        decoder.feed(rest)
        return cls(stream, decoder)

    async def recv(self) -> bytes:
        """The next text/binary message; answers pings; raises :class:`Closed` at the end."""
        while True:
            message = self.decoder.next()
            if message is None:
                if self.closed is not None:
                    raise self.closed
                try:
                    data = await self.stream.receive_some(262144)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
                if not data:
                    self.closed = self.closed or Closed(1006, "connection dropped")
                    raise self.closed
                self.decoder.feed(data)
                continue
            opcode, payload = message
            if opcode == wire.PING:
                await self.stream.send_all(wire.encode(wire.PONG, payload))
            elif opcode == wire.CLOSE:
                self.closed = Closed(*wire.parse_close(payload))
                if not self.close_sent:  # RFC 6455 5.5.1: answer the server's close
                    self.close_sent = True
                    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        await self.stream.send_all(wire.close(self.closed.code))
                raise self.closed
            elif opcode in (wire.TEXT, wire.BINARY):
                return payload

    async def send(self, payload: bytes) -> None:
        await self.stream.send_all(wire.text(payload))

    async def handshake(self, token: str, mode: str) -> bytes:
        """Challenge -> connect -> hello-ok; returns the hello-ok ``res`` frame."""
        challenge = await self.recv()
        if b'"connect.challenge"' not in challenge:
            raise RequestFailed(f"expected connect.challenge, got {challenge[:80]!r}")
        await self.send(connect_frame(token, mode))
        return await self._response(CONNECT_ID, "connect rejected")

    async def call(self, request_id: bytes, method: bytes, params: bytes | None = None) -> bytes:
        await self.send(request_frame(request_id, method, params))
        return await self._response(request_id, f"{method.decode()} failed")

    async def _response(self, request_id: bytes, failure: str) -> bytes:
        """The ``ok`` response to ``request_id`` (events before it are skipped)."""
        while True:
            message = await self.recv()
            verdict = is_response_to(message, request_id)
            if verdict is True:
                return message
            if verdict is False:
                raise RequestFailed(f"{failure}: {message[:200]!r}")

    async def close(self, timeout: float = 2.0) -> None:
        """Send a close frame, wait (bounded) for the server's, then drop TCP."""
        try:
            if self.closed is None:
                self.close_sent = True
                await self.stream.send_all(wire.close(1000))
                with trio.move_on_after(timeout):
                    while True:
                        await self.recv()
        except (Closed, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await trio.aclose_forcefully(self.stream)


async def open_session(host: str, port: int, token: str, mode: str = "backend") -> Conn:
    conn = await Conn.open(host, port)
    try:
        await conn.handshake(token, mode)
    except BaseException:
        await trio.aclose_forcefully(conn.stream)
        raise
    return conn


def now() -> float:
    """CLOCK_MONOTONIC: one clock for every process on the machine (Linux)."""
    return time.monotonic()
