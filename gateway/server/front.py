"""The front door: the first request on a connection decides which path serves it.

``listener.Connection`` reads the request head and asks :func:`classify`:

* ``GET`` with ``Upgrade: websocket`` -- the control plane. The WebSocket never goes
  through ASGI: ``server/websocket.py`` hands the bytes to ``websockets``' sans-IO
  protocol and its frames straight to the session driver; hypercorn's protocol is never
  created for that socket.
* ``GET``/``HEAD`` of a probe (``/health``, ``/healthz``, ``/ready``, ``/readyz``) without
  a body -- answered here (:class:`Probes`), from responses h11 framed once per state; the
  next request on the keep-alive connection goes through the same door.
* anything else -- hypercorn (``/v1/*``, ``/tools/invoke``, ``/metrics``, 404s, errors),
  with the bytes already read handed on.

The head is parsed with h11 (one ``h11.Connection`` per head: it leaves nothing
half-consumed to hand on), so a malformed head is hypercorn's to answer -- except the plain
``GET`` of a WebSocket upgrade, which a stricter reading of the same grammar takes without
h11's objects (``_fast``: ~18 -> ~4 µs; what it does not take goes to h11).
"""

from __future__ import annotations

import enum
import re

import attrs
import h11

from ..clientip import NO_PROXIES, ProxyPolicy
from ..protocol.codec import dumps
from ..protocol.upgrade import Upgrade
from .http import BASELINE_HEADERS, JSON, LIVENESS, READINESS

MAX_HEAD_BYTES = 64 * 1024  # a longer head goes to hypercorn, which refuses it


class Path(enum.Enum):
    WEBSOCKET = "websocket"
    PROBE = "probe"
    HYPERCORN = "hypercorn"


@attrs.frozen(slots=True)
class Head:
    """One parsed request head."""

    method: bytes
    target: bytes
    headers: tuple[tuple[bytes, bytes], ...]  # names lower-cased by h11
    keep_alive: bool
    length: int  # of the head in bytes, blank line included

    @property
    def path(self) -> str:
        return self.target.split(b"?", 1)[0].decode("latin-1")

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def upgrade(
        self,
        client: tuple[str, int] | None,
        server: tuple[str, int] | None,
        proxies: ProxyPolicy = NO_PROXIES,
    ) -> Upgrade:
        return Upgrade(self.target.decode("latin-1"), self.headers, client, server, proxies)


KNOWN_PROBES_MAX = 256
_known_probes: dict[bytes, Head] = {}


def parse_head(buffer: bytes | bytearray) -> Head | None:
    """The first request head in ``buffer`` (which holds at least its blank line); ``None``
    when h11 finds it malformed.

    A probe's head seen before is not parsed again: a load balancer or watchdog sends the
    same bytes every few seconds, and h11's parse is most of a probe's cost. Only heads
    that classified as probes are remembered, at most ``KNOWN_PROBES_MAX`` of them."""
    end = buffer.find(b"\r\n\r\n") + 4
    raw = bytes(buffer[:end])
    known = _known_probes.get(raw)
    if known is not None:
        return known
    head = _parse(raw)
    if head is not None and len(_known_probes) < KNOWN_PROBES_MAX and classify(head) is Path.PROBE:
        _known_probes[raw] = head
    return head


# The fast path's grammar: RFC 9112's, as h11 reads it, narrowed to the plain case.
_GET_LINE = re.compile(rb"GET ([\x21-\x7e]+) HTTP/1\.1\r\n")
_FIELD = re.compile(
    rb"([-!#$%&'*+.^_`|~0-9A-Za-z]+):[ \t]*((?:[\x21-\x7e]+(?:[ \t]+[\x21-\x7e]+)*)?)[ \t]*\r\n"
)
_BODY_FIELDS = (b"content-length", b"transfer-encoding")


def _fast(raw: bytes) -> Head | None:
    """The head of a plain ``GET`` (a WebSocket upgrade: the one head every control-plane
    connection sends, each with its own key) read without an ``h11.Connection`` and its
    events: ``HTTP/1.1``, ASCII only, CRLF line ends, one ``Host``, no body headers.
    Anything else is ``None`` and goes to h11, which also says what is malformed. The
    result is h11's for the same bytes (a differential test holds them equal)."""
    line = _GET_LINE.match(raw)
    if line is None:
        return None
    at, end = line.end(), len(raw) - 2  # the blank line's CRLF ends it
    headers = []
    hosts = 0
    keep_alive = True
    while at < end:
        field = _FIELD.match(raw, at)
        if field is None:
            return None
        name, value = field[1].lower(), field[2]
        if name == b"host":
            hosts += 1
        elif name == b"connection":
            keep_alive = keep_alive and b"close" not in value.lower()
        elif name in _BODY_FIELDS:
            return None
        headers.append((name, value))
        at = field.end()
    if at != end or hosts != 1:
        return None
    return Head(b"GET", line[1], tuple(headers), keep_alive, len(raw))


def _parse(raw: bytes) -> Head | None:
    head = _fast(raw)
    if head is not None:
        return head
    return _parse_h11(raw)


def _parse_h11(raw: bytes) -> Head | None:
    end = len(raw)
    parser = h11.Connection(h11.SERVER)
    parser.receive_data(raw)
    try:
        event = parser.next_event()
    except h11.RemoteProtocolError:
        return None
    if not isinstance(event, h11.Request):
        return None
    headers = tuple((bytes(k), bytes(v)) for k, v in event.headers)  # a tuple: no spare room
    return Head(bytes(event.method), bytes(event.target), headers, _keeps_alive(event), end)


def _keeps_alive(event: h11.Request) -> bool:
    if event.http_version == b"1.0":
        return any(k == b"connection" and b"keep-alive" in v.lower() for k, v in event.headers)
    return not any(k == b"connection" and b"close" in v.lower() for k, v in event.headers)


def classify(head: Head) -> Path:
    method = head.method
    if method == b"GET" and _has_token(head.header(b"upgrade"), b"websocket"):
        return Path.WEBSOCKET
    if (method == b"GET" or method == b"HEAD") and head.path in PROBE_PATHS:
        length = head.header(b"content-length")
        if head.header(b"transfer-encoding") is None and (length is None or length == b"0"):
            return Path.PROBE
    return Path.HYPERCORN


def _has_token(value: bytes | None, token: bytes) -> bool:
    return value is not None and token in value.lower()


PROBE_PATHS = LIVENESS | READINESS


class Probes:
    """``/health[z]`` (liveness) and ``/ready[z]`` (readiness) as complete HTTP responses.

    A response depends only on (path kind, state, HEAD or GET, keep-alive): each is framed
    by h11 the first time it is needed and reused after that, so answering a probe costs a
    head parse and one write.
    """

    def __init__(self) -> None:
        self._cache: dict[tuple[bool, str, bool, bool], tuple[int, bytes]] = {}

    def answer(self, head: Head, ready: bool, draining: bool) -> tuple[int, bytes]:
        """``(status, response bytes)`` for a probe request."""
        live = head.path in LIVENESS
        if live:
            state = "live"
        elif draining:
            state = "draining"
        else:
            state = "ready" if ready else "starting"
        key = (live, state, head.method == b"HEAD", head.keep_alive)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = _frame(state, key[2], key[3])
        return found

    def not_ready(self, head: Head, failing: list[dict[str, object]] | None) -> tuple[int, bytes]:
        """``503 {status: "not-ready", failing?}``: a channel fails readiness (CHANNELS.md
        7.2). Not cached: the failing accounts change; ``failing`` only for local callers."""
        body: dict[str, object] = {"ok": False, "status": "not-ready"}
        if failing is not None:
            body["failing"] = failing
        return _frame("not-ready", head.method == b"HEAD", head.keep_alive, body)


def _frame(
    state: str, head_only: bool, keep_alive: bool, payload: dict[str, object] | None = None
) -> tuple[int, bytes]:
    """One probe response, framed by h11 as the answer to such a request."""
    ok = state in ("live", "ready")
    status = 200 if ok else 503
    body = dumps(payload or {"ok": ok, "status": state}).encode()
    framer = h11.Connection(h11.SERVER)
    request = (b"HEAD" if head_only else b"GET") + b" / HTTP/1.1\r\nhost: gateway\r\n"
    framer.receive_data(request + (b"" if keep_alive else b"connection: close\r\n") + b"\r\n")
    framer.next_event()  # the request
    headers = [
        (b"content-type", JSON),
        (b"content-length", str(len(body)).encode()),
        *BASELINE_HEADERS,
    ]
    reason = b"OK" if ok else b"Service Unavailable"
    wire = framer.send(h11.Response(status_code=status, headers=headers, reason=reason)) or b""
    if not head_only:
        wire += framer.send(h11.Data(data=body)) or b""
    wire += framer.send(h11.EndOfMessage()) or b""
    return status, wire
