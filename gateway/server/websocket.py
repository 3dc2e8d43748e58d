"""The lean WebSocket path: from the upgrade request to the session driver, without ASGI.

``websockets``' sans-IO ``ServerProtocol`` does the opening handshake and the framing
(chosen over wsproto by measurement: BENCHMARKS.md, "Connection layer"); the socket I/O
is ``listener.Connection``'s. :class:`LeanWebSocket` is what ``server/session.py`` drives:
``receive`` reads the socket only when no message is waiting, assembles fragments, lets the
library answer pings and the client's close, and ``send_text``/``send_close`` frame and
write at once (``Connection.write`` keeps whole frames in order, never cut by a
cancellation). Only public API of ``websockets`` is used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import trio
from websockets.datastructures import Headers
from websockets.exceptions import PayloadTooBig
from websockets.frames import Close, CloseCode, Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from ..errors import GatewayError
from ..outbox import Text
from ..protocol.frames import MAX_PREAUTH_PAYLOAD_BYTES
from ..protocol.upgrade import Upgrade
from ..runtime import Runtime
from .admission import upgrade_refusal
from .session import Disconnected, run_session
from .wsframes import FAST_MAX, accept_response, decode, scan, text_frame

if TYPE_CHECKING:
    from .listener import Connection

_DATA = (Opcode.TEXT, Opcode.BINARY)
NO_STATUS = 1005  # RFC 6455: a close frame without a code
PREAUTH_TOO_LARGE = "preauth payload too large"  # PROTOCOL.md 2.4
MAX_PAYLOAD_EXCEEDED = "Max payload size exceeded"  # the reference's words after hello-ok


class LeanWebSocket:
    """One upgraded connection: ``websockets``' protocol over our socket driver."""

    __slots__ = (
        "_abort",
        "_authenticated",
        "_fragments",
        "_gone",
        "_gone_code",
        "_limit",
        "_messages",
        "_next",
        "_opcode",
        "_pending",
        "_prefix",
        "_replacement",
        "_upgrade",
        "conn",
        "protocol",
    )

    def __init__(
        self,
        conn: Connection,
        protocol: ServerProtocol,
        upgrade: Upgrade,
        abort: Callable[[], None],
    ) -> None:
        self.conn = conn
        self.protocol = protocol
        self._upgrade = upgrade
        self._abort = abort
        self._messages: list[str | None] = []  # read from _next on (no deque: memory)
        self._next = 0
        self._fragments: list[bytes | bytearray | memoryview] = []
        self._opcode = Opcode.TEXT  # of the message being assembled from fragments
        self._gone = False  # the client closed, TCP ended, or the library failed the connection
        self._gone_code: int | None = None
        self._authenticated = False  # the pre-auth frame cap applies until hello-ok
        self._replacement = b""  # a close frame of ours to send in place of the library's
        self._prefix = b""  # bytes to write before the next frame: the 101 response
        # the fast path's unparsed rest (b"": none); None once the library parses everything
        self._pending: bytes | None = b""
        self._limit = min(FAST_MAX, MAX_PREAUTH_PAYLOAD_BYTES)  # the fast path's size cap

    @property
    def upgrade(self) -> Upgrade:
        return self._upgrade

    async def receive(self) -> str | None:
        messages = self._messages
        while self._next >= len(messages):
            if messages:
                messages.clear()
                self._next = 0
            if self._gone:
                raise Disconnected(self._gone_code)
            try:
                data = await self.conn.recv()
            except trio.ClosedResourceError:  # aborted (a stuck writer, the keepalive)
                data = b""
            protocol = self.protocol
            if self._pending is not None:  # the fast path (see _parse)
                if data:
                    data = self._parse(data)
                    if not data:
                        continue  # whole data frames, or the start of one: no library work
                elif self._pending:  # EOF in the middle of a frame: the library says so
                    protocol.receive_data(self._pending)
                self._pending = None  # from now on the library parses everything
            if data:
                protocol.receive_data(data)
            else:
                protocol.receive_eof()
                self._gone = True
            self._take(protocol.events_received())
            await self._flush()  # pongs, the answer to the client's close, a failure's close
        message = messages[self._next]
        self._next += 1
        return message

    def _parse(self, data: bytes) -> bytes:
        """The fast path (``wsframes.scan``) for what clients send almost always: whole,
        unfragmented, masked data frames within the size cap, taken without the library's
        generator parser (~6 µs a request: BENCHMARKS.md). Returns ``b""`` when everything
        was taken (an incomplete frame waits in ``_pending``), else the bytes from the first
        frame this path does not take: the caller hands those, and everything after them,
        to the library, which has seen nothing until then and so starts at a frame boundary."""
        buf = self._pending + data if self._pending else data
        at, handoff = scan(buf, self._limit, self._messages)
        if handoff:
            self._pending = b""
            return buf[at:]
        self._pending = buf[at:]
        return b""

    def early(self, data: bytes) -> None:
        """Bytes that came with the upgrade request (a client that did not wait for the
        101), read as any later bytes are: the fast path first, so that a frame cut at
        their end is completed by the next read, whichever parser holds its start."""
        rest = self._parse(data)
        if rest:
            self._pending = None  # from now on the library parses everything
            self.protocol.receive_data(rest)
            self._take(self.protocol.events_received())

    def _take(self, events: Sequence[object]) -> None:
        for frame in events:
            if not isinstance(frame, Frame):
                continue
            opcode = frame.opcode
            if opcode in _DATA or opcode is Opcode.CONT:
                if not frame.fin:
                    if opcode is not Opcode.CONT:
                        self._opcode = opcode
                    self._fragments.append(frame.data)
                elif self._fragments:
                    self._fragments.append(frame.data)
                    whole = b"".join(self._fragments)
                    self._messages.append(decode(whole, self._opcode is Opcode.TEXT))
                    self._fragments = []
                else:
                    self._messages.append(decode(frame.data, opcode is Opcode.TEXT))
            elif opcode is Opcode.CLOSE:
                received = self.protocol.close_rcvd
                self._gone = True
                self._gone_code = received.code if received is not None else None
        failure = self.protocol.parser_exc
        if failure is not None:  # too big, a protocol error: it sent the close
            self._gone = True
            if isinstance(failure, PayloadTooBig):
                self._too_big()

    def _too_big(self) -> None:
        """The library refused a frame on its header (before reading its body) and queued
        a close 1009 with its own words; say it in the protocol's (PROTOCOL.md 2.4)."""
        self.protocol.data_to_send()  # drop the library's close frame: ours replaces it
        reason = PREAUTH_TOO_LARGE if not self._authenticated else MAX_PAYLOAD_EXCEEDED
        close = Frame(Opcode.CLOSE, Close(CloseCode.MESSAGE_TOO_BIG, reason).serialize())
        self._replacement = close.serialize(mask=False)

    def authenticated(self, max_payload: int) -> None:
        """hello-ok is about to go out: from the next frame on, ``max_payload`` applies
        instead of the pre-auth cap (the library reads the limit when a frame starts, and
        no frame the client sent after seeing hello-ok can have started yet)."""
        self._authenticated = True
        self.protocol.max_message_size = max_payload
        self._limit = min(FAST_MAX, max_payload)
        self.conn.authenticate()  # no longer counted as unauthenticated (gatekeeper.py)

    async def _flush(self) -> None:
        out = self.protocol.data_to_send()
        if self._replacement:
            out = [*out, self._replacement]
            self._replacement = b""
        if self._prefix:
            out = [self._prefix, *out]
            self._prefix = b""
        if out:
            data = b"".join(out)
            if data:
                await self.conn.write(data)

    async def send_text(self, text: Text) -> None:
        if self.protocol.state is not State.OPEN:
            return  # closing: a frame after the close would be a protocol error
        pieces = text_frame(text)
        if self._prefix:
            pieces.insert(0, self._prefix)
            self._prefix = b""
        await self.conn.write(b"".join(pieces))

    def send_now(self, text: Text) -> bytes | None:
        """Frame and write ``text`` without yielding, if nothing else is being written:
        returns what the kernel did not take (``b""``: all of it; the caller queues the
        rest as already framed bytes, ahead of anything else), or ``None`` when it could
        not start (another write in progress, closing) and nothing was framed."""
        conn = self.conn
        if self.protocol.state is not State.OPEN or conn.closed or conn.writing:
            return None
        pieces = text_frame(text)
        if self._prefix:  # the 101 response goes out with the first frame (connect.challenge)
            pieces.insert(0, self._prefix)
            self._prefix = b""
        sent = conn.try_write(pieces) or 0
        if sent == sum(map(len, pieces)):
            return b""
        return b"".join(pieces)[sent:]

    async def write_framed(self, data: bytes) -> None:
        await self.conn.write(data)

    async def send_close(self, code: int, reason: str) -> None:
        protocol = self.protocol
        if protocol.state is not State.OPEN:
            return
        self.conn.websocket = False  # closing: no more keepalive pings (RFC 6455 5.5.1)
        protocol.send_close(code, reason)
        await self._flush()

    def abort(self) -> None:
        self._abort()


async def serve_websocket(
    rt: Runtime, conn: Connection, upgrade: Upgrade, after: bytes, abort: Callable[[], None]
) -> None:
    """Answer the upgrade request (already parsed by h11 at the front door), take the bytes
    that followed it (``after``: frames a client sent without waiting), then run the session
    until the connection ends. Refused upgrades get a plain HTTP answer."""
    refusal = upgrade_refusal(rt, upgrade)
    answer = accept_response(upgrade.headers) if refusal is None else None
    if answer is None:  # refused, or not the plain kind: the library answers
        answer = await _library_answer(conn, upgrade, refusal)
        if answer is None:
            return  # refused, or not a valid WebSocket handshake (400/426 sent)
    # Until hello-ok, a frame over the pre-auth cap is refused on its header: the library
    # closes 1009 before reading (or buffering) a byte of its body (issue 16: 40 senders of
    # 24 MiB each no longer cost a gigabyte). LeanWebSocket.authenticated() lifts it.
    protocol = ServerProtocol(state=State.OPEN, max_size=MAX_PREAUTH_PAYLOAD_BYTES)
    conn.websocket = True
    ws = LeanWebSocket(conn, protocol, upgrade, abort)
    # The 101 goes out with the session's first frame, connect.challenge, which it sends
    # at once: one write and one wake-up of the client instead of two.
    ws._prefix = answer
    if after:
        ws.early(after)
        del after
    await run_session(rt, ws)


async def _library_answer(
    conn: Connection, upgrade: Upgrade, refusal: GatewayError | None
) -> bytes | None:
    """The library's answer to the upgrade: the 101 to send, or ``None`` once a refusal
    has been written (a check's, or the library's own 400/426 for an invalid handshake).

    It is handed the parsed request (``accept(Request)``), not the bytes: its head parser
    would parse them again and keep them alive for the connection's lifetime. So this
    protocol object only answers; another one, made ``OPEN``, does the framing."""
    handshake = ServerProtocol()
    if refusal is not None:
        response = handshake.reject(refusal.http_status, refusal.message + "\n")
    else:
        headers = Headers((k.decode("latin-1"), v.decode("latin-1")) for k, v in upgrade.headers)
        response = handshake.accept(Request(upgrade.path, headers))
    handshake.send_response(response)
    answer = b"".join(handshake.data_to_send())
    if handshake.state is State.OPEN:
        return answer
    await conn.write(answer)
    return None
