"""The lean load generator: one epoll loop over raw sockets, no async framework.

A load client has to be cheaper than the server it measures, or the figures describe the
client. The trio client (``bench/client.py``) costs ~40-60 µs of CPU per request or per
fan-out delivery -- as much as the servers it measures -- so at 10 connections it, not the
server, set the rate (BENCHMARKS.md). This loop costs ~8-12 µs: ``epoll_wait``, ``recv``,
a prefix check, ``send``. The jobs that must saturate a server run on it
(``bench/leanload.py``): ``rpc``, ``hold`` and ``handshake``. Same wire format as the trio client (``bench/wire.py``), same JSON-lines
protocol with the parent (``bench/load.py``).
"""

from __future__ import annotations

import heapq
import json
import os
import select
import socket
import sys
from collections.abc import Callable
from typing import Any

from . import wire
from .client import CONNECT_ID, connect_frame, is_response_to, now

FANOUT_MARKER = b"bench-fanout-"
CONNECT_ATTEMPTS = 5
CONNECT_CONCURRENCY = 64
RECV = 262_144

# session states
UPGRADING, CHALLENGED, CONNECTING, OPEN, CLOSING, DONE = range(6)


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


class Session:
    """One WebSocket through its handshake and then whatever the job does with it."""

    __slots__ = (
        "arrivals",
        "attempt",
        "buffer",
        "close_code",
        "decoder",
        "expect",
        "index",
        "n",
        "on_open",
        "request_id",
        "saw_shutdown",
        "sock",
        "state",
        "t0",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        self.attempt = 0
        self.sock: socket.socket | None = None
        self.state = DONE
        self.buffer = b""
        self.decoder = wire.Decoder()
        self.n = 0  # requests sent
        self.t0 = 0.0  # when the request in flight (or the handshake) started
        self.expect = b""  # the ok-prefix of the response awaited
        self.request_id = b""  # of the request in flight; b"" when the session is done
        self.arrivals: dict[int, float] = {}
        self.saw_shutdown = False
        self.close_code: int | None = None
        self.on_open: Callable[[Session], None] | None = None


class Loop:
    """epoll over every session's socket and the parent's stdin; timers in a heap."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.host: str = job["host"]
        self.port: int = int(job["port"])
        self.token: str = job["token"]
        self.mode: str = job.get("mode", "backend")
        self.epoll = select.epoll()
        self.by_fd: dict[int, Session] = {}
        self.timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_n = 0
        self.stdin_buffer = b""
        self.commands: list[str] = []
        self.epoll.register(sys.stdin.fileno(), select.EPOLLIN)
        self.errors: list[str] = []
        self.on_message: Callable[[Session, int, bytes], None] = lambda s, o, p: None
        self.running = True
        self.upgrade = wire.upgrade_request(self.host, self.port)
        self.connect = wire.text(connect_frame(self.token, self.mode))

    # -- timers and the loop ---------------------------------------------------------------

    def at(self, when: float, action: Callable[[], None]) -> None:
        self._timer_n += 1
        heapq.heappush(self.timers, (when, self._timer_n, action))

    def run_until(self, done: Callable[[], bool], deadline: float) -> None:
        """Serve sockets, stdin and timers until ``done()`` or the deadline."""
        poll, by_fd, stdin = self.epoll.poll, self.by_fd, sys.stdin.fileno()
        while not done():
            t = now()
            if t >= deadline:
                return
            timers = self.timers
            while timers and timers[0][0] <= t:
                heapq.heappop(timers)[2]()
            wait = deadline - t
            if timers:
                wait = min(wait, timers[0][0] - t)
            for fd, _ in poll(max(0.0, wait)):
                if fd == stdin:
                    self._read_stdin()
                    continue
                session = by_fd.get(fd)
                if session is not None:
                    self._readable(session)

    def _read_stdin(self) -> None:
        data = os.read(sys.stdin.fileno(), 4096)
        if not data:
            self.commands.append("release")
            self.epoll.unregister(sys.stdin.fileno())
            return
        self.stdin_buffer += data
        while b"\n" in self.stdin_buffer:
            line, _, self.stdin_buffer = self.stdin_buffer.partition(b"\n")
            self.commands.append(line.decode().strip())

    def command(self, timeout: float = 3600.0) -> str:
        """The next line from the parent (``release`` if it went away)."""
        self.run_until(lambda: bool(self.commands), now() + timeout)
        return self.commands.pop(0) if self.commands else "release"

    # -- sessions ---------------------------------------------------------------------------

    def open(self, session: Session) -> None:
        """Start (or restart) the session's TCP connection and handshake."""
        session.t0 = now()
        session.buffer = b""
        session.decoder = wire.Decoder()
        try:
            sock = socket.create_connection((self.host, self.port), timeout=5)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            sock.send(self.upgrade)
        except OSError as exc:
            self._failed(session, f"connect: {exc}")
            return
        session.sock = sock
        session.state = UPGRADING
        self.by_fd[sock.fileno()] = session
        self.epoll.register(sock.fileno(), select.EPOLLIN)

    def drop(self, session: Session) -> None:
        sock = session.sock
        if sock is not None:
            self.by_fd.pop(sock.fileno(), None)
            try:
                self.epoll.unregister(sock.fileno())
            except (OSError, ValueError):
                pass
            sock.close()
            session.sock = None
        session.state = DONE

    def _failed(self, session: Session, why: str) -> None:
        """A handshake failed: retried with backoff, then reported."""
        self.drop(session)
        session.attempt += 1
        if session.attempt < CONNECT_ATTEMPTS:
            self.at(now() + 0.05 * 2**session.attempt, lambda: self.open(session))
        else:
            self.errors.append(why)
            if session.on_open is not None:
                session.on_open(session)  # the job counts it as finished (not open)

    def send(self, session: Session, data: bytes) -> None:
        sock = session.sock
        if sock is None:
            return
        try:
            sent = sock.send(data)
            if sent < len(data):  # rare: a full buffer; finish it blocking, bounded
                sock.settimeout(5)
                sock.sendall(data[sent:])
                sock.setblocking(False)
        except OSError:
            self._gone(session, 1006)

    def _gone(self, session: Session, code: int) -> None:
        if session.state in (OPEN, CLOSING):
            session.close_code = code
            self.drop(session)
            self.on_message(session, wire.CLOSE, b"")
        else:
            self._failed(session, f"closed during handshake ({code})")

    def _readable(self, session: Session) -> None:
        sock = session.sock
        assert sock is not None
        try:
            data = sock.recv(RECV)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._gone(session, session.close_code or 1006)
            return
        if session.state == UPGRADING:
            try:
                done, rest = wire.split_upgrade_response(session.buffer + data)
            except wire.HandshakeFailed as exc:
                self._failed(session, f"upgrade refused: {exc}")
                return
            if not done:
                session.buffer = rest
                return
            session.buffer = b""
            session.state = CHALLENGED
            data = rest
        decoder = session.decoder
        decoder.feed(data)
        while session.sock is not None:
            message = decoder.next()
            if message is None:
                return
            opcode, payload = message
            if opcode == wire.PING:
                self.send(session, wire.encode(wire.PONG, payload))
            elif opcode == wire.CLOSE:
                code, _ = wire.parse_close(payload)
                if session.state in (OPEN, CLOSING):
                    if session.state == OPEN:  # answer the server's close (RFC 6455 5.5.1)
                        self.send(session, wire.close(code))
                    session.close_code = code
                    self.drop(session)
                    self.on_message(session, wire.CLOSE, payload)
                else:
                    self._failed(session, f"closed {code} during handshake")
                return
            elif session.state == OPEN:
                self.on_message(session, opcode, payload)
            elif session.state == CHALLENGED:
                if b'"connect.challenge"' not in payload:
                    self._failed(session, f"expected connect.challenge, got {payload[:80]!r}")
                    return
                session.state = CONNECTING
                self.send(session, self.connect)
            elif session.state == CONNECTING:
                verdict = is_response_to(payload, CONNECT_ID)
                if verdict is False:
                    self._failed(session, f"connect rejected: {payload[:200]!r}")
                    return
                if verdict is True:
                    session.state = OPEN
                    if session.on_open is not None:
                        session.on_open(session)

    def close(self, session: Session) -> None:
        """Send our close; the session ends when the server answers (or drops TCP)."""
        if session.state == OPEN:
            session.state = CLOSING
            self.send(session, wire.close(1000))

    def connect_all(self, count: int, concurrency: int, timeout: float = 120.0) -> list[Session]:
        """``count`` open sessions (``concurrency`` handshakes at a time), reading all along."""
        sessions = [Session(i) for i in range(count)]
        pending = list(reversed(sessions))
        finished = 0

        def opened(session: Session) -> None:
            nonlocal finished
            finished += 1
            session.on_open = None
            if pending:
                start(pending.pop())

        def start(session: Session) -> None:
            session.on_open = opened
            self.open(session)

        for _ in range(min(concurrency, count)):
            start(pending.pop())
        self.run_until(lambda: finished >= count, now() + timeout)
        return [s for s in sessions if s.state == OPEN]
