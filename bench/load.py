"""The load-generator process: ``python -m bench.load '<job json>'``.

WebSocket jobs run on the lean epoll client (``bench/leanload.py``) unless the job says
``"client": "trio"`` (this module's trio client, kept to compare clients with); the HTTP
job runs here, or in ``wrk`` (``bench/httpload.py``) when it is installed.

Runs in its own process (own GIL, own core) so the server's numbers are not the client's.
It speaks JSON lines: it writes ``{"event": ...}`` objects to stdout and, for jobs that
wait on the parent, reads one command per line from stdin. Every loop is bounded by a
deadline and a request count, and every wait by a timeout, so a job always ends by itself.

Jobs (``kind``):

``rpc``        connect ``conns`` sessions, print ``ready``, wait for ``go``, then each session
               sends ``method`` back to back (one in flight) for warmup + duration; prints
               ``result`` with the count in the measured window and latencies in microseconds.
``handshake``  ``workers`` loops of open -> challenge -> connect -> hello-ok -> close.
``http``       ``conns`` keep-alive HTTP/1.1 connections, each sends ``GET <path>`` back to
               back (one in flight) for warmup + duration; a 200 with its body counts.
``hold``       connect ``conns`` idle sessions and keep reading; then obey commands:
               ``fanout ROUNDS INTERVAL`` (``system-event`` from one more session, time to
               each held session), ``await-close TIMEOUT`` (the server is stopping: who saw
               ``shutdown``, which close codes), ``release`` (close all and exit).
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter
from typing import Any

import attrs
import trio

from .client import Closed, Conn, RequestFailed, now, open_session
from .wire import HandshakeFailed

CONNECT_CONCURRENCY = 64
# what one session's open, handshake or call can fail with (the job notes it and goes on)
SESSION_ERRORS = (OSError, Closed, RequestFailed, HandshakeFailed, trio.BrokenResourceError)
CONNECT_ATTEMPTS = 5  # a session that cannot connect is retried (backoff 50 ms .. 0.8 s)
FANOUT_MARKER = b"bench-fanout-"


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def emit_result(total: int, latencies: list[int], elapsed: float, failures: list[str]) -> None:
    """The ``result`` line of a load job: ``count`` is what the measured window saw."""
    emit(
        "result",
        total=total,
        count=len(latencies),
        elapsed=elapsed,
        latencies_us=latencies,
        errors=len(failures),
        error_samples=failures[:3],
    )


async def read_command(stdin: trio.abc.ReceiveStream, buffer: bytearray) -> str:
    """The next line from the parent; ``"release"`` if the parent went away."""
    while b"\n" not in buffer:
        data = await stdin.receive_some(4096)
        if not data:
            return "release"
        buffer += data
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line.decode().strip()


@attrs.define
class Job:
    host: str
    port: int
    token: str
    mode: str = "backend"
    conns: int = 1
    method: str = "health"
    params: str | None = None
    warmup: float = 0.5
    duration: float = 3.0
    max_requests: int = 1_000_000
    connect_timeout: float = 60.0
    path: str = "/healthz"
    sequential: bool = False  # connect one session after another (each join is seen by all)


async def connect_many(job: Job, count: int) -> tuple[list[Conn], list[str]]:
    """``count`` sessions, opened ``CONNECT_CONCURRENCY`` at a time; failures are reported."""
    conns: list[Conn] = []
    errors: list[str] = []
    limiter = trio.CapacityLimiter(1 if job.sequential else CONNECT_CONCURRENCY)

    async def one() -> None:
        async with limiter:
            for attempt in range(CONNECT_ATTEMPTS):
                try:
                    conns.append(await open_session(job.host, job.port, job.token, job.mode))
                    return
                except HandshakeFailed as exc:  # e.g. 503/429: a server shedding a burst
                    error = f"upgrade refused: {exc}"
                except SESSION_ERRORS as exc:
                    error = str(exc) or type(exc).__name__
                await trio.sleep(0.05 * 2**attempt)
            errors.append(error)

    with trio.move_on_after(job.connect_timeout):
        async with trio.open_nursery() as nursery:
            for _ in range(count):
                nursery.start_soon(one)
    return conns, errors


async def close_all(conns: list[Conn]) -> None:
    async with trio.open_nursery() as nursery:
        for conn in conns:
            nursery.start_soon(conn.close, 1.0)


# -- rpc ---------------------------------------------------------------------------------


async def run_rpc(job: Job, stdin: trio.abc.ReceiveStream) -> None:
    conns, errors = await connect_many(job, job.conns)
    emit("ready", connected=len(conns), errors=errors[:5])
    if await read_command(stdin, bytearray()) != "go":
        await close_all(conns)
        return
    method = job.method.encode()
    params = job.params.encode() if job.params is not None else None
    per_conn = max(1, math.ceil(job.max_requests / max(1, len(conns))))
    start = now()
    measure_from = start + job.warmup
    deadline = measure_from + job.duration
    latencies: list[int] = []
    failures: list[str] = []
    total = 0

    async def loop(index: int, conn: Conn) -> None:
        nonlocal total
        record = latencies.append
        for n in range(per_conn):
            t0 = now()
            if t0 >= deadline:
                return
            try:
                await conn.call(b"%d-%d" % (index, n), method, params)
            except (Closed, RequestFailed, trio.BrokenResourceError) as exc:
                failures.append(str(exc))
                return
            total += 1
            if t0 >= measure_from:
                record(int((now() - t0) * 1e6))

    async with trio.open_nursery() as nursery:
        for index, conn in enumerate(conns):
            nursery.start_soon(loop, index, conn)
    elapsed = min(now(), deadline) - measure_from
    emit_result(total, latencies, elapsed, failures)
    await close_all(conns)


# -- HTTP keep-alive ---------------------------------------------------------------------


class HttpConn:
    """One keep-alive HTTP/1.1 connection that sends the same GET again and again."""

    def __init__(self, stream: trio.SocketStream, request: bytes) -> None:
        self.stream = stream
        self.request = request
        self.buffer = bytearray()

    async def get(self) -> None:
        """One request; ``RequestFailed`` unless the answer is a 200 with its whole body."""
        await self.stream.send_all(self.request)
        buffer = self.buffer
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            await self._more()
        head = bytes(buffer[:end]).lower()
        if not head.startswith((b"http/1.1 200", b"http/1.0 200")):
            raise RequestFailed(bytes(buffer[: buffer.find(b"\r\n")]).decode(errors="replace"))
        index = head.find(b"content-length:")
        if index < 0:
            raise RequestFailed("no content-length")
        line_end = head.find(b"\r\n", index)
        length = int(head[index + 15 : line_end if line_end >= 0 else len(head)])
        while len(buffer) < end + 4 + length:
            await self._more()
        del buffer[: end + 4 + length]

    async def _more(self) -> None:
        data = await self.stream.receive_some(65536)
        if not data:
            raise Closed(1006, "connection closed")
        self.buffer += data


async def run_http(job: Job, stdin: trio.abc.ReceiveStream) -> None:
    request = (
        f"GET {job.path} HTTP/1.1\r\nHost: {job.host}:{job.port}\r\nUser-Agent: bench\r\n\r\n"
    ).encode()
    conns = [
        HttpConn(await trio.open_tcp_stream(job.host, job.port), request) for _ in range(job.conns)
    ]
    emit("ready", connected=len(conns), errors=[])
    if await read_command(stdin, bytearray()) != "go":
        return
    per_conn = max(1, math.ceil(job.max_requests / max(1, len(conns))))
    start = now()
    measure_from = start + job.warmup
    deadline = measure_from + job.duration
    latencies: list[int] = []
    failures: list[str] = []
    total = 0

    async def loop(conn: HttpConn) -> None:
        nonlocal total
        for _ in range(per_conn):
            t0 = now()
            if t0 >= deadline:
                return
            try:
                await conn.get()
            except (*SESSION_ERRORS, ValueError) as exc:
                failures.append(str(exc) or type(exc).__name__)
                return
            total += 1
            if t0 >= measure_from:
                latencies.append(int((now() - t0) * 1e6))

    async with trio.open_nursery() as nursery:
        for conn in conns:
            nursery.start_soon(loop, conn)
    elapsed = min(now(), deadline) - measure_from
    emit_result(total, latencies, elapsed, failures)
    for conn in conns:
        await conn.stream.aclose()


# -- handshakes --------------------------------------------------------------------------


async def run_handshakes(job: Job, stdin: trio.abc.ReceiveStream) -> None:
    emit("ready", connected=0, errors=[])
    if await read_command(stdin, bytearray()) != "go":
        return
    start = now()
    measure_from = start + job.warmup
    deadline = measure_from + job.duration
    per_worker = max(1, math.ceil(job.max_requests / max(1, job.conns)))
    latencies: list[int] = []
    failures: list[str] = []
    total = 0

    async def worker() -> None:
        nonlocal total
        for _ in range(per_worker):
            t0 = now()
            if t0 >= deadline:
                return
            try:
                conn = await Conn.open(job.host, job.port)
                try:
                    await conn.handshake(job.token, job.mode)
                finally:
                    await conn.close()
            except SESSION_ERRORS as exc:
                failures.append(str(exc) or type(exc).__name__)
                await trio.sleep(0.01)  # a refused connect must not become a busy loop
                continue
            total += 1
            if t0 >= measure_from:
                latencies.append(int((now() - t0) * 1e6))

    async with trio.open_nursery() as nursery:
        for _ in range(job.conns):
            nursery.start_soon(worker)
    elapsed = min(now(), deadline) - measure_from
    emit_result(total, latencies, elapsed, failures)


# -- held connections: memory, fan-out, shutdown -----------------------------------------


@attrs.define(eq=False)
class Tally:
    """How many held sessions have seen the current fan-out round."""

    round_no: int = -1
    target: int = 0
    seen: int = 0
    complete: trio.Event = attrs.field(factory=trio.Event)

    def start(self, round_no: int, target: int) -> None:
        self.round_no, self.target, self.seen = round_no, target, 0
        self.complete = trio.Event()
        if target == 0:
            self.complete.set()

    def hit(self, round_no: int) -> None:
        if round_no == self.round_no:
            self.seen += 1
            if self.seen >= self.target:
                self.complete.set()


@attrs.define(eq=False)
class Held:
    conn: Conn
    tally: Tally
    arrivals: dict[int, float] = attrs.field(factory=dict)
    saw_shutdown: bool = False
    close_code: int | None = None
    done: trio.Event = attrs.field(factory=trio.Event)

    async def read(self) -> None:
        try:
            while True:
                message = await self.conn.recv()
                at = now()
                index = message.find(FANOUT_MARKER)
                if index >= 0:
                    start = index + len(FANOUT_MARKER)
                    end = start
                    while message[end : end + 1].isdigit():
                        end += 1
                    round_no = int(message[start:end])
                    if round_no not in self.arrivals:
                        self.arrivals[round_no] = at
                        self.tally.hit(round_no)
                elif b'"event":"shutdown"' in message:
                    self.saw_shutdown = True
        except Closed as closed:
            self.close_code = closed.code
        finally:
            self.done.set()


async def fanout(
    job: Job, held: list[Held], tally: Tally, rounds: int, interval: float
) -> dict[str, Any]:
    sender = await open_session(job.host, job.port, job.token, job.mode)
    latencies: list[int] = []
    lost = 0
    send_ms: list[float] = []
    try:
        for round_no in range(rounds):
            marker = (FANOUT_MARKER + b"%d" % round_no).decode()
            params = json.dumps({"text": marker, "instanceId": "bench-fanout", "mode": "backend"})
            tally.start(round_no, sum(not h.done.is_set() for h in held))
            t0 = now()
            await sender.call(b"fanout-%d" % round_no, b"system-event", params.encode())
            send_ms.append((now() - t0) * 1000)
            with trio.move_on_after(5.0):
                await tally.complete.wait()
            for h in held:
                at = h.arrivals.get(round_no)
                if at is None:
                    lost += 1
                else:
                    latencies.append(int((at - t0) * 1e6))
            await trio.sleep(interval)
    finally:
        await sender.close()
    return {"latencies_us": latencies, "lost": lost, "request_ms": send_ms}


async def run_hold(job: Job, stdin: trio.abc.ReceiveStream) -> None:
    conns, errors = await connect_many(job, job.conns)
    tally = Tally()
    held = [Held(conn, tally) for conn in conns]
    buffer = bytearray()
    async with trio.open_nursery() as nursery:
        for h in held:
            nursery.start_soon(h.read)
        emit("ready", connected=len(conns), errors=errors[:5])
        while True:
            command, *args = (await read_command(stdin, buffer)).split() or ["release"]
            if command == "fanout":
                result = await fanout(job, held, tally, int(args[0]), float(args[1]))
                emit("fanout", **result)
            elif command == "await-close":
                t0 = now()
                with trio.move_on_after(float(args[0])):
                    for h in held:
                        await h.done.wait()
                emit(
                    "closed",
                    seconds=now() - t0,
                    total=len(held),
                    closed=sum(h.done.is_set() for h in held),
                    saw_shutdown=sum(h.saw_shutdown for h in held),
                    codes={str(k): v for k, v in Counter(h.close_code for h in held).items()},
                )
            else:  # release
                nursery.cancel_scope.cancel()
                break
    await close_all(conns)
    emit("released", connected=len(conns))


async def main(spec: dict[str, Any]) -> None:
    spec.pop("client", None)
    kind = spec.pop("kind")
    job = Job(**spec)
    stdin = trio.lowlevel.FdStream(sys.stdin.fileno())
    runner = {"rpc": run_rpc, "handshake": run_handshakes, "hold": run_hold, "http": run_http}[kind]
    await runner(job, stdin)


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    if spec.get("client", "lean") == "lean" and spec["kind"] != "http":
        from . import leanload  # the epoll client: cheaper than any server it measures

        leanload.main(spec)
    else:
        trio.run(main, spec)
