"""The WebSocket wire work the lean path does itself, pure (RFC 6455).

``websockets``' sans-IO protocol stays in charge of the connection (``server/websocket.py``):
it parses every frame this module does not take, answers pings and the close handshake,
and refuses what is invalid. What is here is the common case, done without the library's
per-call machinery, each piece held to the library's own behaviour by differential tests
(``tests/test_wsframes.py``):

* :func:`scan` -- whole, unfragmented, masked data frames of up to 64 KiB within the size
  cap (nearly everything a client sends): a header, an unmask, a decode. At the first
  frame it does not take it stops at that frame's boundary, and the library parses from
  there on;
* :func:`text_frame` -- an unfragmented server text frame, as pieces to write in order
  (a broadcast's shared payload is never copied per peer);
* :func:`accept_response` -- the 101 answer to a plain upgrade request (no extensions,
  no subprotocol), byte for byte the library's; anything else returns ``None`` and the
  library answers it.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import re
import time
from collections.abc import Sequence

from ..outbox import Text

FAST_MAX = 64 * 1024  # the largest frame scan() takes
TEXT, BINARY = 1, 2  # opcodes


def unmask(payload: bytes, mask: bytes) -> bytes:
    """RFC 6455 5.3: the payload XOR the repeated 4-byte key (as one big integer: C speed)."""
    n = len(payload)
    if not n:
        return b""
    key = (mask * ((n >> 2) + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def decode(payload: bytes | bytearray | memoryview, text: bool) -> str | None:
    """A message as text. Binary messages are tolerated by decoding them (PROTOCOL.md 2.2);
    one that is not UTF-8 is simply not JSON (``""``: ignored after the handshake). A *text*
    message that is not UTF-8 is ``None``: the connection fails with 1007 (RFC 6455 8.1)."""
    try:
        return str(payload, "utf-8")
    except UnicodeDecodeError:
        return None if text else ""


def scan(buf: bytes, limit: int, messages: list[str | None]) -> tuple[int, bool]:
    """Take the whole data frames at the start of ``buf`` that the fast path handles:
    FIN set, no RSV bits, opcode text or binary, masked, the shortest length encoding, at
    most ``limit`` bytes of payload. Their messages are appended to ``messages``.

    Returns ``(at, handoff)``: everything before ``at`` was taken. ``handoff``: the frame
    at ``at`` is one this path does not take (a control frame, a fragment, a bigger frame,
    a protocol error) -- the library parses from there on. Otherwise ``buf[at:]`` is the
    start of a frame still arriving (or nothing)."""
    end, at = len(buf), 0
    while end - at >= 2:
        b0, b1 = buf[at], buf[at + 1]
        if b0 & 0xF0 != 0x80 or not b1 & 0x80 or b0 & 0x0F not in (TEXT, BINARY):
            return at, True  # not FIN, RSV bits, a control or continuation frame, unmasked
        length, start = b1 & 0x7F, at + 2
        if length == 126:
            if end - start < 2:
                return at, False
            length = (buf[start] << 8) | buf[start + 1]
            start += 2
            if length < 126:
                return at, True  # not the shortest encoding: the library's to judge
        elif length == 127:
            return at, True
        if length > limit:
            return at, True
        stop = start + 4 + length
        if stop > end:
            return at, False
        payload = unmask(buf[start + 4 : stop], buf[start : start + 4])
        messages.append(decode(payload, b0 & 0x0F == TEXT))
        at = stop
    return at, False


def text_frame(text: Text) -> list[bytes]:
    """One unfragmented server text frame (RFC 6455 5.2: FIN, opcode 1, no mask) as pieces
    to write in order: the header, then the payload as it came -- a broadcast's shared
    pieces are written with ``sendmsg``, never copied into a frame per peer. (The library's
    ``send_text`` copies the payload twice.)"""
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


# -- the opening handshake ----------------------------------------------------------------------

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 1.3
_TOKENS = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+(?:[ \t]*,[ \t]*[-!#$%&'*+.^_`|~0-9A-Za-z]+)*")
_KEY = re.compile(rb"[A-Za-z0-9+/]{22}==")  # base64 of 16 bytes (RFC 6455 4.1)
_date: tuple[int, bytes] = (0, b"")


def http_date() -> bytes:
    """The ``Date`` header's value (RFC 9110 5.6.7), made once per second."""
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, email.utils.formatdate(now, usegmt=True).encode())
    return _date[1]


def accept_response(headers: Sequence[tuple[bytes, bytes]]) -> bytes | None:
    """The 101 response to a WebSocket upgrade request whose headers (names lower-cased,
    values stripped: h11's) are the plain kind -- ``Connection`` with an ``upgrade`` token,
    ``Upgrade: websocket``, one valid ``Sec-WebSocket-Key``, ``Sec-WebSocket-Version: 13``,
    no ``Sec-WebSocket-Protocol``, at most one ``Origin`` -- exactly what ``websockets``'
    ``ServerProtocol.accept`` sends for it (no extensions: the gateway offers none).
    ``None`` for anything else: the library answers those, and refuses what it should."""
    connection = upgrade = key = version = None
    origins = 0
    for name, value in headers:
        if name == b"connection":
            if connection is not None:
                return None
            connection = value
        elif name == b"upgrade":
            if upgrade is not None:
                return None
            upgrade = value
        elif name == b"sec-websocket-key":
            if key is not None:
                return None
            key = value
        elif name == b"sec-websocket-version":
            if version is not None:
                return None
            version = value
        elif name == b"sec-websocket-protocol":
            return None
        elif name == b"origin":
            origins += 1
    if connection is None or upgrade is None or key is None or version != b"13" or origins > 1:
        return None
    if upgrade.lower() != b"websocket" or not _KEY.fullmatch(key):
        return None
    if not _TOKENS.fullmatch(connection):
        return None
    if not any(token.strip().lower() == b"upgrade" for token in connection.split(b",")):
        return None
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    return b"".join(
        (
            b"HTTP/1.1 101 Switching Protocols\r\nDate: ",
            http_date(),
            b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
            accept,
            b"\r\n\r\n",
        )
    )
