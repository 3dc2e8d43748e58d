"""What the lean path does itself is held to its libraries' behaviour (differential tests).

* the frame fast path (``wsframes.scan``, driven through ``LeanWebSocket.receive``) against
  ``websockets``' own parser alone, over streams of valid and invalid frames cut at random
  points: the same messages, and the same close -- 1002 for a protocol error, 1007 for a
  text message that is not UTF-8, 1009 for a frame over the cap (in our words), the
  client's own close code;
* the 101 answer (``wsframes.accept_response``) against ``ServerProtocol.accept``;
* the upgrade head fast path (``front._fast``) against h11.

No sockets: a fake connection hands the chunks to ``receive`` and keeps what is written.
"""

from __future__ import annotations

import re
import struct
from typing import Any

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.datastructures import Headers
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from gateway.protocol.frames import MAX_PREAUTH_PAYLOAD_BYTES
from gateway.server import front, wsframes
from gateway.server.session import Disconnected
from gateway.server.websocket import MAX_PAYLOAD_EXCEEDED, PREAUTH_TOO_LARGE, LeanWebSocket

# -- frames ------------------------------------------------------------------------------------

SIZES = [0, 1, 5, 125, 126, 127, 999, 1000, 1001, 65535, 65536, 65537, 70_000]


def encode(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = b"\x00\x00\x00\x00",
    wide: int = 0,
) -> bytes:
    """A client frame, valid or not: ``wide`` forces the 16-bit (1) or 64-bit (2) length
    encoding whatever the size (non-minimal below 126 / 65536)."""
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    n = len(payload)
    bit = 0x80 if mask is not None else 0
    if wide == 2 or n >= 65536:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    elif wide == 1 or n >= 126:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | n])
    if mask is None:
        return head + payload
    return head + mask + wsframes.unmask(payload, mask)  # XOR is its own inverse


sized = st.sampled_from(SIZES).map(lambda n: ("é" * (n // 2) + "x" * (n % 2)).encode())
payloads = st.one_of(
    st.text(max_size=40).map(str.encode),
    sized,
    sized,
    st.binary(max_size=40),
    st.just(b"\xc3\x28"),  # not UTF-8
    st.just("€".encode()[:2]),  # a code point cut in half
)
masks = st.one_of(st.binary(min_size=4, max_size=4), st.just(b"\x00\x00\x00\x00"))


@st.composite
def data_frame(draw: st.DrawFn) -> bytes:
    opcode = draw(st.sampled_from([1, 1, 1, 2, 0]))
    fin = draw(st.booleans() | st.just(True))
    return encode(
        opcode,
        draw(payloads),
        fin=fin,
        mask=draw(masks),
        wide=draw(st.sampled_from([0, 0, 0, 1, 2])),
    )


@st.composite
def control_frame(draw: st.DrawFn) -> bytes:
    opcode = draw(st.sampled_from([0x9, 0xA, 0x8]))
    if opcode == 0x8:
        code = draw(st.sampled_from([1000, 1001, 1008, 1011, 3000, 4999, 999, 1005, 1016, 5000]))
        reason = draw(st.text(max_size=20)).encode()
        payload = draw(st.sampled_from([b"", struct.pack("!H", code) + reason, b"\x03"]))
    else:
        payload = draw(st.binary(max_size=130))
    return encode(opcode, payload, fin=draw(st.booleans() | st.just(True)), mask=draw(masks))


@st.composite
def broken_frame(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["rsv", "unmasked", "opcode", "garbage"]))
    if kind == "rsv":
        return encode(1, b"hi", rsv=draw(st.integers(1, 7)))
    if kind == "unmasked":
        return encode(1, b"hi", mask=None)
    if kind == "opcode":
        return encode(draw(st.sampled_from([3, 4, 5, 6, 7, 0xB, 0xF])), b"hi")
    return draw(st.binary(min_size=1, max_size=12))


streams = st.lists(
    st.one_of(data_frame(), data_frame(), data_frame(), control_frame(), broken_frame()),
    min_size=1,
    max_size=6,
).map(b"".join)


class FakeConn:
    """What ``LeanWebSocket`` needs of ``listener.Connection``: chunks in, bytes out."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.written = bytearray()
        self.websocket = True

    async def recv(self) -> bytes:
        await trio.lowlevel.checkpoint()
        return self.chunks.pop(0) if self.chunks else b""

    async def write(self, data: bytes) -> None:
        self.written += data

    def authenticate(self) -> None:
        pass


def close_code(written: bytes) -> int | None:
    """The code of the close frame in what the server wrote (unmasked frames), if any."""
    at = 0
    while at + 2 <= len(written):
        opcode, n = written[at] & 0x0F, written[at + 1] & 0x7F
        at += 2
        if n == 126:
            n, at = struct.unpack("!H", written[at : at + 2])[0], at + 2
        elif n == 127:
            n, at = struct.unpack("!Q", written[at : at + 8])[0], at + 8
        if opcode == 0x8:
            return Close.parse(written[at : at + n]).code if n else 1005
        at += n
    return None


def ours(wire: bytes, cuts: list[int], limit: int | None) -> tuple[list[str], Any]:
    """Messages until the end, and how it ended, through ``LeanWebSocket.receive``."""
    points = sorted({c % (len(wire) + 1) for c in cuts})
    chunks = [wire[a:b] for a, b in zip([0, *points], [*points, len(wire)], strict=True)]
    conn = FakeConn([c for c in chunks if c])
    protocol = ServerProtocol(state=State.OPEN, max_size=MAX_PREAUTH_PAYLOAD_BYTES)
    ws = LeanWebSocket(conn, protocol, None, lambda: None)  # type: ignore[arg-type]
    if limit is not None:
        ws.authenticated(limit)
    messages: list[str] = []

    async def run() -> Any:
        while True:
            try:
                message = await ws.receive()
            except Disconnected as gone:
                return ("disconnected", gone.code, close_code(bytes(conn.written)))
            if message is None:
                return ("invalid utf-8",)  # the machine closes 1007 (test_connection.py)
            messages.append(message)

    return messages, trio.run(run)


def library(wire: bytes, limit: int | None) -> tuple[list[str], Any]:
    """The same stream through ``websockets``' parser alone, its messages decoded by the
    gateway's rule (``wsframes.decode``: binary leniently; a text message that is not UTF-8
    ends the connection with 1007, which the connection machine sends)."""
    protocol = ServerProtocol(state=State.OPEN, max_size=limit or MAX_PREAUTH_PAYLOAD_BYTES)
    protocol.receive_data(wire)
    protocol.receive_eof()
    messages: list[str] = []
    parts: list[bytes] = []
    opcode = Opcode.TEXT
    peer = None  # the code of a close frame the client sent (as an event: a valid one)
    for frame in protocol.events_received():
        assert isinstance(frame, Frame)
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            if frame.opcode is not Opcode.CONT:
                opcode = frame.opcode
            parts.append(bytes(frame.data))
            if frame.fin:
                text = wsframes.decode(b"".join(parts), opcode is Opcode.TEXT)
                if text is None:  # the sans-IO layer leaves UTF-8 to its user: the
                    return messages, ("invalid utf-8",)  # gateway's rule, 1007
                messages.append(text)
                parts = []
        elif frame.opcode is Opcode.CLOSE:
            peer = Close.parse(frame.data).code
            break
    sent = b"".join(protocol.data_to_send())
    return messages, ("disconnected", peer, close_code(sent))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    wire=streams,
    cuts=st.lists(st.integers(0, 200_000), max_size=4),
    limit=st.sampled_from([None, 1000, 65535, 70_000]),
)
def test_the_frame_fast_path_is_the_librarys_parser(
    wire: bytes, cuts: list[int], limit: int | None
) -> None:
    """Valid and invalid frames, cut anywhere: what ``receive`` yields and how the
    connection ends are what the library alone would do (``limit``: the cap after hello-ok;
    ``None``: before it)."""
    assert ours(wire, cuts, limit) == library(wire, limit)


def test_a_frame_over_the_cap_closes_1009_in_the_protocols_words() -> None:
    big = encode(1, b"x" * 2000)  # a 16-bit length over a small maxPayload
    for limit, reason in ((1000, MAX_PAYLOAD_EXCEEDED), (None, PREAUTH_TOO_LARGE)):
        wire = big if limit else encode(1, b"x" * 70_000)
        conn = FakeConn([wire])
        ws = LeanWebSocket(conn, ServerProtocol(state=State.OPEN, max_size=65536), None, print)  # type: ignore[arg-type]
        if limit:
            ws.authenticated(limit)

        async def run(ws: LeanWebSocket) -> None:
            try:
                await ws.receive()
            except Disconnected:
                return
            raise AssertionError("a message over the cap came through")

        trio.run(run, ws)
        assert close_code(bytes(conn.written)) == 1009  # with the protocol's words
        assert reason.encode() in bytes(conn.written)


def test_bytes_sent_with_the_upgrade_request_are_read_like_any_others() -> None:
    """A frame cut between the upgrade request's packet and the next read: its rest must
    not be parsed as a new frame (here the rest starts with what looks like a masked text
    frame header, 0x81 0x85)."""
    text = b'{"type":"req","id":"early","method":"connect"}'
    mask = bytes([text[0] ^ 0x81, text[1] ^ 0x85, 7, 9])
    frame = encode(1, text, mask=mask)
    assert frame[6:8] == b"\x81\x85"
    for cut in (1, 2, 6, 8, len(frame) - 1, len(frame)):
        conn = FakeConn([frame[cut:], encode(1, b"next")] if cut < len(frame) else [])
        protocol = ServerProtocol(state=State.OPEN, max_size=MAX_PREAUTH_PAYLOAD_BYTES)
        ws = LeanWebSocket(conn, protocol, None, print)  # type: ignore[arg-type]
        ws.early(frame[:cut])

        assert trio.run(ws.receive) == text.decode(), cut


# -- the opening handshake ---------------------------------------------------------------------

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
header_values = {
    b"connection": [
        b"Upgrade",
        b"upgrade",
        b"keep-alive, Upgrade",
        b"Upgrade,keep-alive",
        b"close",
        b"Upgrade, ",
        b"up grade",
        b"",
        b"keep-alive,, Upgrade",
    ],
    b"upgrade": [b"websocket", b"WebSocket", b"websocket, h2c", b"h2c", b"", b"websocket/13"],
    b"sec-websocket-key": [
        KEY,
        b"AAAAAAAAAAAAAAAAAAAAAA==",
        b"AAAAAAAAAAAAAAAAAAAAAB==",
        b"short==",
        KEY + b"=",
        b"dGhlIHNhbXBsZSBub25jZQ",
        b"dGhl*HNhbXBsZSBub25jZQ==",
    ],
    b"sec-websocket-version": [b"13", b"8", b"13, 8", b""],
    b"sec-websocket-protocol": [b"chat", b"", b"a b"],
    b"sec-websocket-extensions": [b"permessage-deflate", b";;;"],
    b"origin": [b"http://localhost:1", b"null"],
    b"host": [b"127.0.0.1:1"],
}


@st.composite
def upgrade_headers(draw: st.DrawFn) -> list[tuple[bytes, bytes]]:
    """A valid upgrade's headers, then up to three changes: a header dropped, repeated,
    given another value (valid or not), or one added."""
    headers = [(name, values[0]) for name, values in header_values.items() if name in VALID]
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(list(header_values)))
        change = draw(st.sampled_from(["value", "value", "drop", "repeat"]))
        values = header_values[name]
        at = next((i for i, (n, _) in enumerate(headers) if n == name), None)
        if change == "drop" and at is not None:
            del headers[at]
        elif change == "repeat" or at is None:
            headers.append((name, draw(st.sampled_from(values))))
        else:
            headers[at] = (name, draw(st.sampled_from(values)))
    return draw(st.permutations(headers))


VALID = (b"host", b"upgrade", b"connection", b"sec-websocket-key", b"sec-websocket-version")


def library_answer(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    protocol = ServerProtocol()
    request = Request("/", Headers((k.decode("latin-1"), v.decode("latin-1")) for k, v in headers))
    response = protocol.accept(request)
    if response.status_code != 101:
        return None
    protocol.send_response(response)
    return b"".join(protocol.data_to_send())


def same_date(response: bytes | None) -> bytes | None:
    """The response with its ``Date`` value replaced by this second's (ours)."""
    if response is None:
        return None
    return re.sub(
        rb"\r\nDate: [^\r]*\r\n", b"\r\nDate: " + wsframes.http_date() + b"\r\n", response
    )


@settings(max_examples=500, deadline=None)
@given(headers=upgrade_headers())
def test_the_101_is_the_librarys(headers: list[tuple[bytes, bytes]]) -> None:
    """Ours answers only what the library accepts, with the library's bytes (the ``Date``
    is the same second's); what it declines, the library answers."""
    answer = wsframes.accept_response(headers)
    expected = library_answer(headers)
    if answer is not None:
        assert same_date(answer) == same_date(expected)


def test_the_101_takes_the_common_handshakes() -> None:
    plain = [
        (b"host", b"h"),
        (b"upgrade", b"websocket"),
        (b"connection", b"Upgrade"),
        (b"sec-websocket-key", KEY),
        (b"sec-websocket-version", b"13"),
    ]
    firefox = [
        *plain[:2],
        (b"connection", b"keep-alive, Upgrade"),
        *plain[3:],
        (b"origin", b"http://localhost:1"),
        (b"sec-websocket-extensions", b"permessage-deflate"),
    ]
    for headers in (plain, firefox):
        answer = wsframes.accept_response(headers)
        assert answer is not None
        assert same_date(answer) == same_date(library_answer(headers))
        assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in answer


# -- the upgrade head --------------------------------------------------------------------------


def h11_head(raw: bytes) -> front.Head | None:
    return front._parse_h11(raw)


field_names = st.sampled_from(
    [
        b"Host",
        b"host",
        b"Upgrade",
        b"Connection",
        b"X-A",
        b"Content-Length",
        b"Transfer-Encoding",
        b"Bad Name",
        b"",
        b"Sec-WebSocket-Key",
    ]
)
field_values = st.one_of(
    st.sampled_from(
        [
            b"websocket",
            b"Upgrade",
            b"close",
            b"keep-alive, close",
            b"",
            b"  a  b  ",
            b"a\tb",
            b"\xe9t\xe9",
            b"x\x00y",
            b"12",
            b"chunked",
            b"a\rb",
        ]
    ),
    st.binary(max_size=8),
)


@st.composite
def heads(draw: st.DrawFn) -> bytes:
    line = draw(
        st.sampled_from(
            [
                b"GET / HTTP/1.1",
                b"GET /?a=b HTTP/1.1",
                b"GET / HTTP/1.0",
                b"POST / HTTP/1.1",
                b"GET  / HTTP/1.1",
                b"GET /\xe9 HTTP/1.1",
                b"GET / HTTP/1.1 ",
                b"\r\nGET / HTTP/1.1",
            ]
        )
    )
    fields = draw(
        st.lists(
            st.tuples(field_names, field_values, st.sampled_from([b": ", b":", b" : ", b":\t"])),
            max_size=6,
        )
    )
    fold = draw(st.sampled_from([b"", b"", b" folded"]))
    body = b"".join(name + sep + value + b"\r\n" for name, value, sep in fields)
    if fold and fields:
        body += fold + b"\r\n"
    return line + b"\r\n" + body + b"\r\n"


@settings(max_examples=800, deadline=None)
@given(raw=heads())
def test_the_head_fast_path_is_h11(raw: bytes) -> None:
    """A head the fast path takes is exactly what h11 makes of it; the rest goes to h11."""
    if raw.count(b"\r\n\r\n") != 1 or not raw.endswith(b"\r\n\r\n"):
        return  # not one head (parse_head is given exactly one)
    fast = front._fast(raw)
    if fast is not None:
        assert fast == h11_head(raw)


def test_the_head_fast_path_takes_an_upgrade() -> None:
    raw = (
        b"GET /ws?x=1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\nUpgrade: websocket\r\n"
        b"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: " + KEY + b"\r\n"
        b"Sec-WebSocket-Version: 13\r\nUser-Agent: x  y\r\n\r\n"
    )
    head = front._fast(raw)
    assert head is not None
    assert head == h11_head(raw)
