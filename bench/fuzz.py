"""The hostile-input campaign (issue 16): ``nox -s fuzz`` (``python -m bench.fuzz``).

A real gateway process on 127.0.0.1 gets ``--frames`` frames (default 100,000) from
``--workers`` concurrent clients: the generators of ``tests/fuzzgen.py`` (params drawn from
the JSON Schemas in ``schemas/``, bent requests, cut frames, deep nesting, garbage), each
frame sent either before the handshake (a fresh connection per frame) or inside an
authenticated session, a few of them as raw, malformed WebSocket framing. A corpus is drawn
with hypothesis once, then replayed with seeded byte-level mutations.

Reported at the end, and the exit status is 1 if any is wrong:

* **crashes** -- the gateway process exited;
* **tracebacks** -- any in the gateway's output or log file;
* **leaked connections** -- the gateway's open descriptors, once every client has gone,
  beyond the count before the campaign;
* **RSS** before and after (and the close codes seen, for the record).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from collections import Counter
from pathlib import Path

import trio
import trio.lowlevel
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as fixed_seed

from tests.fuzzgen import frame_text

from . import procs, wire
from .client import Closed, Conn, RequestFailed

CORPUS = 4000
PREAUTH_SHARE = 0.15  # of frames sent on a fresh connection, before connect


def corpus(size: int, seed: int) -> list[bytes]:
    """``size`` frames drawn by hypothesis (a fixed seed: the same campaign every run)."""
    found: list[bytes] = []

    @fixed_seed(seed)
    @settings(
        max_examples=size,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(frame_text())
    def draw(text: str) -> None:
        found.append(text.encode("utf-8", "surrogatepass"))

    draw()
    return found


def mutate(frame: bytes, rng: random.Random) -> bytes:
    """Seeded byte-level damage: flips, cuts, splices, invalid UTF-8."""
    choice = rng.random()
    if choice < 0.5 or not frame:
        return frame
    data = bytearray(frame)
    if choice < 0.7:
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif choice < 0.85:
        data = data[: rng.randrange(len(data))]
    else:
        at = rng.randrange(len(data) + 1)
        data[at:at] = rng.choice([b"\xff\xfe", b"\xed\xa0\x80", b"\x00", b"\\ud800", b"[" * 300])
    return bytes(data)


RAW_FRAMES = (
    b"\x83\x80\x00\x00\x00\x00",  # reserved opcode
    b"\x81\x02{}",  # unmasked client frame
    b"\xc1\x80\x00\x00\x00\x00",  # RSV1 without an extension
    b"\x81\xff" + (2**62).to_bytes(8, "big") + b"\x00\x00\x00\x00",  # 2^62 bytes
    b"\x09\x80\x00\x00\x00\x00",  # a fragmented ping
)


class Campaign:
    def __init__(self, gw: procs.Gateway, frames: list[bytes], seed: int) -> None:
        self.gw = gw
        self.frames = frames
        self.rng = random.Random(seed)
        self.sent = 0
        self.connections = 0
        self.codes: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()

    def next_frame(self) -> bytes:
        frame = mutate(self.rng.choice(self.frames), self.rng)
        # a byte flip may turn a bent `restart` into a valid one: the campaign would then
        # measure a restart, not hostile input
        return frame if b'"restart"' not in frame else frame.replace(b'"restart"', b'"restarT"')

    async def preauth(self, frame: bytes) -> None:
        """One frame before connect, on a fresh connection; the close code is recorded."""
        self.connections += 1
        try:
            conn = await Conn.open(procs.HOST, self.gw.port)
        except (OSError, Closed, wire.HandshakeFailed) as exc:
            self.errors[f"open: {type(exc).__name__}"] += 1
            return
        try:
            await conn.recv()  # the challenge
            if self.rng.random() < 0.05:
                await conn.stream.send_all(self.rng.choice(RAW_FRAMES))
            else:
                await conn.stream.send_all(wire.text(frame))
            self.sent += 1
            with trio.move_on_after(2):
                while True:
                    await conn.recv()
            self.codes["open after 2 s"] += 1
        except Closed as closed:
            self.codes[str(closed.code)] += 1
        except (OSError, trio.BrokenResourceError) as exc:
            self.errors[f"preauth: {type(exc).__name__}"] += 1
        finally:
            await trio.aclose_forcefully(conn.stream)

    async def session(self, quota: int) -> None:
        """``quota`` frames inside authenticated sessions (reconnecting when one closes)."""
        while quota > 0:
            self.connections += 1
            try:
                conn = await Conn.open(procs.HOST, self.gw.port)
                conn.stream = _Locked(conn.stream)  # type: ignore[assignment]
                await conn.handshake(self.gw.token, "backend")
            except (OSError, Closed, wire.HandshakeFailed, RequestFailed) as exc:
                self.errors[f"session: {type(exc).__name__}"] += 1
                await trio.sleep(0.05)
                continue
            ended: list[str] = []
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_drain, conn, nursery.cancel_scope, ended)
                    while quota > 0:
                        await conn.stream.send_all(wire.text(self.next_frame()))
                        self.sent += 1
                        quota -= 1
                        if quota % 64 == 0:
                            await trio.lowlevel.checkpoint()  # let the reader keep up
                    nursery.cancel_scope.cancel()
            except (OSError, trio.BrokenResourceError) as exc:
                ended.append(type(exc).__name__)
            finally:
                await conn.close(1.0)
            for code in ended:
                self.codes[code] += 1


class _Locked(trio.abc.Stream):
    """The connection's stream with sends taken in turn: the reader answers pings and the
    server's close while the sender sends."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.inner = stream
        self.lock = trio.Lock()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        async with self.lock:
            await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _drain(conn: Conn, scope: trio.CancelScope, ended: list[str]) -> None:
    """Read everything the gateway answers; when it closes, record why and stop sending."""
    try:
        while True:
            await conn.recv()
    except Closed as closed:
        ended.append(str(closed.code))
    except (OSError, trio.BrokenResourceError) as exc:
        ended.append(type(exc).__name__)
    scope.cancel()


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def connections_on(port: int) -> int:
    """TCP connections to ``port`` the gateway still holds (established, or closed by the
    peer and not yet by the gateway): after every client has gone, any is a leak."""
    held = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] in ("01", "08"):  # ESTABLISHED, CLOSE_WAIT
                held += 1
    return held


async def run(args: argparse.Namespace) -> dict[str, object]:
    started = time.monotonic()
    frames = await trio.to_thread.run_sync(corpus, args.corpus, args.seed)
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        config = procs.gateway_config()
        async with procs.gateway(Path(tmp), config=config) as gw:
            await trio.sleep(1)  # settle
            rss_before, fds_before = gw.rss(), open_fds(gw.pid)
            campaign = Campaign(gw, frames, args.seed)
            preauth = int(args.frames * PREAUTH_SHARE)
            per_worker = -(-(args.frames - preauth) // args.workers)  # ceiling: at least --frames
            limiter = trio.CapacityLimiter(args.workers)

            async def preauth_one() -> None:
                async with limiter:
                    await campaign.preauth(campaign.next_frame())

            async with trio.open_nursery() as nursery:
                for _ in range(args.workers):
                    nursery.start_soon(campaign.session, per_worker)
                for _ in range(preauth):
                    nursery.start_soon(preauth_one)
            await trio.sleep(3)  # let the gateway notice every close
            alive = gw.process.poll() is None
            rss_after = gw.rss() if alive else 0
            fds_after = open_fds(gw.pid) if alive else 0
            leaked = connections_on(gw.port)
            healthy = False
            if alive:
                try:
                    probe = await Conn.open(procs.HOST, gw.port)
                    await probe.handshake(gw.token, "cli")
                    await probe.call(b"probe", b"health")
                    await probe.close()
                    healthy = True
                except Exception as exc:
                    campaign.errors[f"final health: {exc}"] += 1
            log = gw.log_path.read_text(errors="replace")
        tracebacks = log.count("Traceback")
    return {
        "frames": campaign.sent,
        "connections": campaign.connections,
        "seconds": round(time.monotonic() - started, 1),
        "crashed": not alive,
        "tracebacks": tracebacks,
        "healthyAfter": healthy,
        "fdsBefore": fds_before,
        "fdsAfter": fds_after,
        "leakedConnections": leaked,
        "rssBeforeMb": round(rss_before / 2**20, 1),
        "rssAfterMb": round(rss_after / 2**20, 1),
        "closeCodes": dict(campaign.codes.most_common()),
        "clientErrors": dict(campaign.errors.most_common(10)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fuzz", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--corpus", type=int, default=CORPUS)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    result = trio.run(run, args)
    print(json.dumps(result, indent=2))
    bad = (
        result["crashed"]
        or result["tracebacks"]
        or result["leakedConnections"]
        or not result["healthyAfter"]
    )
    raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    main()
