"""The cheapest correct WebSocket client wire format we could write (sans-IO, RFC 6455).

The load generator has to be cheaper than the server it measures, or the numbers describe
the client. A general library (wsproto, trio-websocket) spends tens of microseconds per
message on events and state; a benchmark client needs only four things:

* an upgrade request, and the end of the server's 101 response;
* unfragmented client text frames, masked with an all-zero key -- RFC 6455 requires the
  mask bit on client frames, and the server still performs the XOR (wsproto has no zero
  shortcut), so the server's work is exactly what a real client causes;
* a decoder for server frames (never masked), with continuation frames joined;
* close and pong frames.

No validation of the server's handshake beyond the status line: a benchmark fails loudly
enough when the server misbehaves.
"""

from __future__ import annotations

import base64
import os
import struct

TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0

_ZERO_MASK = b"\x00\x00\x00\x00"


def upgrade_request(host: str, port: int, path: str = "/") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


class HandshakeFailed(Exception):
    """The server answered the upgrade with something other than 101."""


def split_upgrade_response(buffer: bytes) -> tuple[bool, bytes]:
    """``(done, rest)``: whether the 101 response is complete, and the bytes after it."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return False, buffer
    status = buffer[: buffer.find(b"\r\n")]
    if b" 101 " not in status + b" ":
        raise HandshakeFailed(status.decode(errors="replace"))
    return True, buffer[end + 4 :]


def encode(opcode: int, payload: bytes) -> bytes:
    """One final client frame (masked with a zero key, so the payload goes out as is)."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return header + _ZERO_MASK + payload


def text(payload: bytes) -> bytes:
    return encode(TEXT, payload)


def close(code: int = 1000, reason: str = "") -> bytes:
    return encode(CLOSE, struct.pack("!H", code) + reason.encode())


def parse_close(payload: bytes) -> tuple[int, str]:
    if len(payload) < 2:
        return 1005, ""
    (code,) = struct.unpack("!H", payload[:2])
    return int(code), payload[2:].decode(errors="replace")


class Decoder:
    """Server frames in, ``(opcode, payload)`` messages out; fragments are joined."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next(self) -> tuple[int, bytes] | None:
        """The next complete message, or ``None`` until more bytes are fed."""
        while True:
            buf = self._buf
            if len(buf) < 2:
                return None
            b0, b1 = buf[0], buf[1]
            length = b1 & 0x7F
            offset = 2
            if length == 126:
                if len(buf) < 4:
                    return None
                (length,) = struct.unpack_from("!H", buf, 2)
                offset = 4
            elif length == 127:
                if len(buf) < 10:
                    return None
                (length,) = struct.unpack_from("!Q", buf, 2)
                offset = 10
            if b1 & 0x80:  # a masked server frame is a protocol error; skip the key anyway
                offset += 4
            end = offset + length
            if len(buf) < end:
                return None
            payload = bytes(buf[offset:end])
            del buf[:end]
            opcode, fin = b0 & 0x0F, b0 & 0x80
            if opcode >= 0x8:  # control frames are never fragmented
                return opcode, payload
            if opcode != CONTINUATION:
                self._fragment_opcode = opcode
            if fin and not self._fragments:
                return opcode, payload
            self._fragments.append(payload)
            if fin:
                message = b"".join(self._fragments)
                self._fragments = []
                return self._fragment_opcode, message
