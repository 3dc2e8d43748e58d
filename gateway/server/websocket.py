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

from ..outbox import Text
from ..protocol.frames import MAX_PREAUTH_PAYLOAD_BYTES
from ..protocol.upgrade import Upgrade
from ..runtime import Runtime
from .admission import upgrade_refusal
from .session import Disconnected, run_session

if TYPE_CHECKING:
    from .listener import Connection

_DATA = (Opcode.TEXT, Opcode.BINARY)
NO_STATUS = 1005  # RFC 6455: a close frame without a code
PREAUTH_TOO_LARGE = "preauth payload too large"  # PROTOCOL.md 2.4
MAX_PAYLOAD_EXCEEDED = "Max payload size exceeded"  # the reference's words after hello-ok


def _text(payload: bytes | bytearray | memoryview, opcode: Opcode) -> str | None:
    """A message as text. Binary messages are tolerated by decoding them (PROTOCOL.md 2.2);
    one that is not UTF-8 is simply not JSON (``""``: ignored after the handshake). A *text*
    message that is not UTF-8 is ``None``: the connection fails with 1007 (RFC 6455 8.1)."""
    try:
        return str(payload, "utf-8")
    except UnicodeDecodeError:
        return None if opcode is Opcode.TEXT else ""


FAST_MAX = 64 * 1024  # the largest frame the fast path parses (LeanWebSocket._parse)


def _unmask(payload: bytes, mask: bytes) -> bytes:
    """RFC 6455 5.3: the payload XOR the repeated 4-byte key (as one big integer: C speed)."""
    n = len(payload)
    if not n:
        return b""
    key = (mask * ((n >> 2) + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def text_frame(text: Text) -> list[bytes]:
    """One unfragmented server text frame (RFC 6455 5.2: FIN, opcode 1, no mask) as pieces
    to write in order: the header, then the payload as it came -- a broadcast's shared
    pieces are written with ``sendmsg``, never copied into a frame per peer. Data frames are
    framed here rather than by the library (whose ``send_text`` copies the payload twice);
    it keeps everything else: parsing, pings, the close handshake and its state."""
    pieces = [text.encode()] if isinstance(text, str) else list(text)
    n = sum(map(len, pieces))
    if n < 126:
        header = bytes((0x81, n))
    elif n < 65536:
        header = b"\x81\x7e" + n.to_bytes(2, "big")
    else:
        header = b"\x81\x7f" + n.to_bytes(8, "big")
    pieces.insert(0, header)
    return pieces


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
        """The fast path for what clients send almost always: whole, unfragmented, masked
        text (or binary) frames of up to 64 KiB within the size cap. Their messages are
        taken here -- a header, an unmask, a decode -- without the library's generator
        parser (~6 µs a request: BENCHMARKS.md). Returns ``b""`` when everything was taken
        (an incomplete frame waits in ``_pending``), else the bytes from the first frame
        this path does not take (a ping, a close, a fragment, a bigger frame, a protocol
        error): the caller hands those, and everything after them, to the library, which
        has seen nothing until then and so starts at a frame boundary."""
        buf = self._pending + data if self._pending else data
        end, at, limit = len(buf), 0, self._limit
        while end - at >= 2:
            b0, b1 = buf[at], buf[at + 1]
            if b0 & 0xF0 != 0x80 or not b1 & 0x80 or b0 & 0x0F not in (1, 2):
                break  # not FIN, RSV bits, a control or continuation frame, unmasked
            length, start = b1 & 0x7F, at + 2
            if length == 126:
                if end - start < 2:
                    self._pending = buf[at:]
                    return b""
                length = (buf[start] << 8) | buf[start + 1]
                start += 2
                if length < 126:
                    break  # not the shortest encoding: the library's to judge
            elif length == 127 or length > limit:
                break
            stop = start + 4 + length
            if stop > end:
                self._pending = buf[at:]
                return b""
            payload = _unmask(buf[start + 4 : stop], buf[start : start + 4])
            self._messages.append(_text(payload, Opcode.TEXT if b0 & 0x0F == 1 else Opcode.BINARY))
            at = stop
        if end - at < 2:  # all taken, or one byte of the next header
            self._pending = buf[at:]
            return b""
        self._pending = b""
        return buf[at:]

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
                    self._messages.append(_text(b"".join(self._fragments), self._opcode))
                    self._fragments = []
                else:
                    self._messages.append(_text(frame.data, opcode))
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
    until the connection ends. Refused upgrades get a plain HTTP answer.

    The library is handed the parsed request (``accept(Request)``) rather than its bytes: its
    own head parser would parse it again and keep it alive for the connection's lifetime. So
    one protocol object answers the handshake and a second, made ``OPEN``, does the framing.
    """
    handshake = ServerProtocol()
    request = Request(
        upgrade.path,
        Headers((k.decode("latin-1"), v.decode("latin-1")) for k, v in upgrade.headers),
    )
    refusal = upgrade_refusal(rt, upgrade)
    if refusal is not None:
        response = handshake.reject(refusal.http_status, refusal.message + "\n")
    else:
        response = handshake.accept(request)
    handshake.send_response(response)
    answer = b"".join(handshake.data_to_send())
    if handshake.state is not State.OPEN:
        await conn.write(answer)
        return  # refused, or not a valid WebSocket handshake (400/426 sent)
    del handshake, request, response
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
        protocol.receive_data(after)
        ws._take(protocol.events_received())
        del after
    await run_session(rt, ws)
