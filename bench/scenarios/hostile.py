"""Hostile load (issue 16): memory under pre-auth floods, a normal client's connect latency
while one address holds idle sockets at the file limit, and an opt-in soak.

* ``preauth-memory`` -- waves of senders that open a WebSocket and, before ``connect``,
  start a frame of 24 MiB and stream it; RSS after every wave against idle (target: within
  +50 MB after 4 waves of 40). The pre-auth cap is enforced on the frame header, so the
  body is never read.
* ``idle-flood`` -- the gateway's file limit is set to 1,024 (``prlimit``); 1,500 sockets
  from 127.0.0.2 connect and send nothing; a normal client on 127.0.0.1 then connects
  (upgrade, challenge, ``connect``, hello-ok) again and again (target: within 100 ms).
* ``soak`` (opt-in: ``--only soak``) -- ``plan.soak_seconds`` (30 minutes) of mixed load:
  sessions calling ``health``/``status``/``system-presence``, connection churn, held
  clients receiving a fan-out event every second, HTTP probes and ``/tools/invoke``, and a
  trickle of hostile frames; RSS sampled every ``plan.soak_sample_s``. Reported: the slope
  of RSS after the warm-up (least squares) and the growth from the end of the warm-up to
  the end (target: no upward trend).
"""

from __future__ import annotations

import json
import os
import random
import resource
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from .. import procs, wire
from ..client import Closed, Conn, open_session
from ..plan import Plan
from ..report import Measurement

MB = 1024 * 1024


# -- pre-auth memory ---------------------------------------------------------------------------


async def _preauth_sender(gw: procs.Gateway, size: int) -> str:
    """Open a WebSocket, start a ``size``-byte frame before connect and stream it; what
    ended it (the close code, or how the socket failed)."""
    try:
        conn = await Conn.open(procs.HOST, gw.port)
    except (OSError, Closed, wire.HandshakeFailed) as exc:
        return f"open: {type(exc).__name__}"
    stream = conn.stream
    try:
        await conn.recv()  # the challenge
        header = b"\x81\xff" + size.to_bytes(8, "big") + b"\x00\x00\x00\x00"
        await stream.send_all(header)
        chunk = b"x" * 65536
        sent = 0
        with trio.move_on_after(30):
            while sent < size:
                await stream.send_all(chunk)
                sent += len(chunk)
        return f"sent all {sent}"
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        try:
            await conn.recv()
        except Closed as closed:
            return str(closed.code)
        except Exception:
            pass
        return "reset"
    finally:
        await trio.aclose_forcefully(stream)


async def preauth_memory(plan: Plan, workdir: Path) -> list[Measurement]:
    rows: list[Measurement] = []
    async with procs.gateway(workdir) as gw:
        await trio.sleep(plan.settle)
        idle = gw.rss()
        rows.append(Measurement("preauth-memory", "RSS idle", idle / MB, "MB"))
        endings: dict[str, int] = {}
        for wave in range(1, plan.preauth_waves + 1):
            results: list[str] = []

            async def one(into: list[str]) -> None:
                into.append(await _preauth_sender(gw, plan.preauth_bytes))

            async with trio.open_nursery() as nursery:
                for _ in range(plan.preauth_senders):
                    nursery.start_soon(one, results)
            for r in results:
                endings[r] = endings.get(r, 0) + 1
            await trio.sleep(plan.settle)
            rss = gw.rss()
            rows.append(
                Measurement(
                    "preauth-memory",
                    f"RSS after wave {wave} ({plan.preauth_senders} x "
                    f"{plan.preauth_bytes // MB} MiB pre-auth)",
                    rss / MB,
                    "MB",
                    note=f"+{(rss - idle) / MB:.1f} MB over idle",
                    detail={"wave": wave, "growth_mb": (rss - idle) / MB, "endings": endings},
                )
            )
    return rows


# -- idle sockets at the file limit ----------------------------------------------------------------


def _idle(port: int, count: int, source: str) -> list[socket.socket]:
    held = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind((source, 0))
        sock.setblocking(False)
        sock.connect_ex((procs.HOST, port))
        held.append(sock)
    return held


async def idle_flood(plan: Plan, workdir: Path) -> list[Measurement]:
    rows: list[Measurement] = []
    async with procs.gateway(workdir) as gw:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.prlimit(gw.pid, resource.RLIMIT_NOFILE, (plan.flood_fd_limit, hard))
        # one connect first: a gateway's first handshake pays one-time costs (imports,
        # compiled schemas; ~100 ms) that are the cold start's figure, not this one's
        warm = await open_session(procs.HOST, gw.port, gw.token, "cli")
        await warm.close(1.0)
        await trio.sleep(plan.settle)
        held = await trio.to_thread.run_sync(_idle, gw.port, plan.flood_sockets, "127.0.0.2")
        try:
            # The flood is in once every socket was accepted or refused -- including those
            # whose SYN found the backlog full and came again (the kernel retries after 1 s)
            await trio.sleep(plan.flood_settle)
            samples: list[float] = []
            failures = 0
            for _ in range(plan.flood_connects):
                t0 = time.monotonic()
                try:
                    with trio.fail_after(10):
                        conn = await open_session(procs.HOST, gw.port, gw.token, "cli")
                    samples.append((time.monotonic() - t0) * 1000)
                    await conn.close(1.0)
                except Exception:
                    failures += 1
        finally:
            for sock in held:
                sock.close()
        in_order = list(samples)
        samples.sort()
        worst = samples[-1] if samples else None
        rows.append(
            Measurement(
                "idle-flood",
                f"connect with {plan.flood_sockets} idle sockets from one address "
                f"(file limit {plan.flood_fd_limit})",
                worst,
                "ms",
                p50_ms=samples[len(samples) // 2] if samples else None,
                status="ok" if samples and not failures else "error",
                note=f"worst of {len(samples)} connects; {failures} failed",
                detail={"samples_ms": [round(s, 1) for s in in_order], "failures": failures},
                lower_is_better=True,
            )
        )
    return rows


# -- the soak --------------------------------------------------------------------------------


def slope_mb_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per hour."""
    n = len(points)
    if n < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / n
    mean_m = sum(m for _, m in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if not var:
        return 0.0
    cov = sum((t - mean_t) * (m - mean_m) for t, m in points)
    return cov / var * 3600


async def _forever(step: Callable[[], Awaitable[None]], pause: float) -> None:
    while True:
        try:
            await step()
        except Exception:
            await trio.sleep(0.2)
        await trio.sleep(pause)


async def soak(plan: Plan, workdir: Path) -> list[Measurement]:
    rng = random.Random(16)
    samples: list[tuple[float, float]] = []
    counts = {"rpc": 0, "churn": 0, "http": 0, "fanout": 0, "hostile": 0}
    async with procs.gateway(workdir) as gw:
        base = f"http://{procs.HOST}:{gw.port}"
        await trio.sleep(plan.settle)
        started = time.monotonic()
        async with trio.open_nursery() as nursery:
            sessions = [await open_session(procs.HOST, gw.port, gw.token) for _ in range(10)]
            held = [await open_session(procs.HOST, gw.port, gw.token) for _ in range(50)]

            def rpc(conn: Conn) -> Callable[[], Awaitable[None]]:
                async def step() -> None:
                    method = rng.choice([b"health", b"status", b"system-presence"])
                    await conn.call(b"r%d" % counts["rpc"], method)
                    counts["rpc"] += 1

                return step

            async def churn() -> None:
                conn = await open_session(procs.HOST, gw.port, gw.token, "cli")
                await conn.call(b"c", b"health")
                await conn.close(1.0)
                counts["churn"] += 1

            async def fanout() -> None:
                params = json.dumps({"text": f"soak {counts['fanout']}", "mode": "backend"})
                await sessions[0].call(b"f", b"system-event", params.encode())
                counts["fanout"] += 1

            async def drain(conn: Conn) -> None:
                while True:
                    await conn.recv()

            async def http() -> None:
                import httpx

                async with httpx.AsyncClient(base_url=base) as client:
                    await client.get("/healthz")
                    await client.post(
                        "/tools/invoke",
                        json={"tool": "current_time"},
                        headers={"authorization": f"Bearer {gw.token}"},
                    )
                counts["http"] += 2

            async def hostile() -> None:
                conn = await Conn.open(procs.HOST, gw.port)
                try:
                    await conn.recv()
                    await conn.stream.send_all(
                        wire.text(
                            rng.choice([b"[" * 3000 + b"]" * 3000, b'{"a":"\\ud800"}', b"\xff"])
                        )
                    )
                    with trio.move_on_after(2):
                        while True:
                            await conn.recv()
                except Closed:
                    pass
                finally:
                    await trio.aclose_forcefully(conn.stream)
                counts["hostile"] += 1

            for conn in sessions[1:]:
                nursery.start_soon(_forever, rpc(conn), 0.02)
            for conn in held:
                nursery.start_soon(drain, conn)
            nursery.start_soon(_forever, churn, 0.1)
            nursery.start_soon(_forever, fanout, 1.0)
            nursery.start_soon(_forever, http, 0.5)
            nursery.start_soon(_forever, hostile, 2.0)
            while time.monotonic() - started < plan.soak_seconds:
                samples.append((time.monotonic() - started, gw.rss() / MB))
                await trio.sleep(plan.soak_sample_s)
            samples.append((time.monotonic() - started, gw.rss() / MB))
            nursery.cancel_scope.cancel()
    warm = [p for p in samples if p[0] >= plan.soak_warmup_s]
    slope = slope_mb_per_hour(warm)
    growth = warm[-1][1] - warm[0][1] if warm else 0.0
    return [
        Measurement(
            "soak",
            f"RSS trend after warm-up ({plan.soak_seconds / 60:.0f} min mixed load)",
            slope,
            "MB/h",
            note=(
                f"{warm[0][1]:.1f} -> {warm[-1][1]:.1f} MB ({growth:+.1f}) after "
                f"{plan.soak_warmup_s / 60:.0f} min warm-up; {counts}"
            )
            if warm
            else "no samples after warm-up",
            detail={
                "samples": [(round(t), round(m, 1)) for t, m in samples],
                "growth_mb": growth,
                "counts": counts,
                "pid_fds": len(os.listdir(f"/proc/{os.getpid()}/fd")),
            },
            lower_is_better=True,
        )
    ]


# -- big authenticated bodies ------------------------------------------------------------------


async def big_bodies(plan: Plan, workdir: Path) -> list[Measurement]:
    """``plan.big_requests`` concurrent ``/v1/chat/completions`` requests of
    ``plan.big_bytes`` each (the offline model answers): peak RSS while they run, and after."""
    import httpx

    config = {
        "gateway": {
            "mode": "local",
            "http": {"endpoints": {"chatCompletions": {"enabled": True}}},
        }
    }
    async with procs.gateway(workdir, config=config) as gw:
        await trio.sleep(plan.settle)
        idle = gw.rss()
        peak = idle
        statuses: list[int] = []
        done = trio.Event()
        url = f"http://{procs.HOST}:{gw.port}/v1/chat/completions"
        headers = {"authorization": f"Bearer {gw.token}", "content-type": "application/json"}

        async def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, gw.rss())
                await trio.sleep(0.05)

        async def one(client: httpx.AsyncClient, index: int) -> None:
            message = {"role": "user", "content": "x" * plan.big_bytes}
            body = {"model": "smart-agent-neo", "user": f"u{index}", "messages": [message]}
            response = await client.post(url, content=json.dumps(body), headers=headers)
            statuses.append(response.status_code)

        limits = httpx.Limits(max_connections=plan.big_requests * 2)
        async with httpx.AsyncClient(limits=limits, timeout=120) as client:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(sample)
                async with trio.open_nursery() as requests:
                    for i in range(plan.big_requests):
                        requests.start_soon(one, client, i)
                done.set()
        await trio.sleep(plan.settle)
        after = gw.rss()
    ok = sum(1 for s in statuses if s == 200)
    case = f"{plan.big_requests} concurrent {plan.big_bytes // MB} MB chat requests"
    return [
        Measurement(
            "big-bodies",
            f"{case}: peak RSS over idle",
            (peak - idle) / MB,
            "MB",
            note=f"idle {idle / MB:.1f} MB, after {after / MB:.1f} MB; {ok} answered 200",
            detail={"statuses": sorted(statuses), "after_mb": after / MB, "idle_mb": idle / MB},
            lower_is_better=True,
        )
    ]
