"""Process lifecycle: cold start, config-reload apply latency, SIGUSR1 restart gap.

These measure one event at a time, so they run a single client here in the harness process
instead of a load generator. Each gets a gateway process of its own, because each may end it.

Reload and restart depend on issue 3 (config reload, in-process restart). A build without
them does not crash this harness: the row says ``unsupported`` and why (no change observed
within the timeout; SIGUSR1 ended the process), so the numbers appear once the feature lands.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import attrs
import trio

from .. import procs
from ..client import Closed, Conn, RequestFailed, now
from ..plan import Plan
from ..report import Measurement
from ..stats import median

RELOAD_TIMEOUT = 10.0
RESTART_TIMEOUT = 15.0
POLL = 0.01


async def _try_session(port: int, token: str) -> tuple[Conn, dict[str, Any]] | None:
    """A session and its hello-ok payload, or ``None`` if the gateway is not accepting yet."""
    try:
        conn = await Conn.open(procs.HOST, port)
    except OSError:
        return None
    try:
        hello = json.loads(await conn.handshake(token, "cli"))
    except (Closed, RequestFailed, OSError, trio.BrokenResourceError):
        await trio.aclose_forcefully(conn.stream)
        return None
    return conn, hello["payload"]


async def _until_session(
    port: int, token: str, timeout: float
) -> tuple[Conn, dict[str, Any]] | None:
    with trio.move_on_after(timeout):
        while True:
            session = await _try_session(port, token)
            if session is not None:
                return session
            await trio.sleep(POLL)
    return None


async def cold_start(plan: Plan, workdir: Path) -> list[Measurement]:
    """Spawn -> first hello-ok, with the port fixed so nobody waits for the banner."""
    times: list[float] = []
    for _ in range(plan.cold_starts):
        port = procs.free_port()
        t0 = now()
        async with procs.gateway(workdir, port=port, wait=False) as gw:
            with trio.fail_after(procs.START_TIMEOUT):
                while (session := await _try_session(port, gw.token)) is None:
                    if gw.process.poll() is not None:
                        raise procs.ChildFailed(f"gateway exited:\n{gw.log_tail()}")
                    await trio.sleep(0.002)
            times.append(now() - t0)
            await session[0].close()
    best, mid = min(times), median(times)
    return [
        Measurement(
            "lifecycle",
            "cold start: spawn -> first hello-ok",
            (mid or 0) * 1000,
            "ms",
            note=f"median of {len(times)}, best {best * 1000:.0f} ms",
            detail={"seconds": times},
        )
    ]


@attrs.define
class Watcher:
    """One held session that notes ``shutdown`` and the close."""

    conn: Conn
    saw_shutdown: float | None = None
    closed_at: float | None = None
    close_code: int | None = None
    done: trio.Event = attrs.field(factory=trio.Event)

    async def run(self) -> None:
        try:
            while True:
                message = await self.conn.recv()
                if b'"event":"shutdown"' in message and self.saw_shutdown is None:
                    self.saw_shutdown = now()
        except Closed as closed:
            self.closed_at, self.close_code = now(), closed.code
        finally:
            self.done.set()


async def reload(plan: Plan, workdir: Path) -> list[Measurement]:
    """Edit ``gateway.ws.tickIntervalMs``; time until a new connection's hello-ok shows it.

    ``hello-ok.policy.tickIntervalMs`` is the documented, client-visible effect of the key,
    whether the gateway applies it hot or by an in-process restart (the watcher tells which).
    """
    before, after = 30_000, 1_500
    config = procs.gateway_config(tickIntervalMs=before)
    case = "config reload: file write -> new policy in hello-ok"
    # a fixed port: if the change is applied by an in-process restart, the gateway must come
    # back where the clients look (with --port 0 it could bind a new random port)
    async with procs.gateway(workdir, config=config, port=procs.free_port()) as gw:
        session = await _until_session(gw.port, gw.token, 5)
        if session is None:
            raise procs.ChildFailed("no session before the reload")
        watcher = Watcher(session[0])
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watcher.run)
            await trio.sleep(0.3)  # let a polling watcher see the old mtime first
            t0 = now()
            procs.write_config(gw.config_path, procs.gateway_config(tickIntervalMs=after))
            applied: float | None = None
            with trio.move_on_after(RELOAD_TIMEOUT):
                while applied is None:
                    probe = await _try_session(gw.port, gw.token)
                    if probe is not None:
                        conn, hello = probe
                        await conn.close(0.2)
                        if hello.get("policy", {}).get("tickIntervalMs") == after:
                            applied = now()
                            break
                    await trio.sleep(POLL)
            alive = gw.process.poll() is None
            nursery.cancel_scope.cancel()
        await watcher.conn.close(0.5)
    if applied is None:
        why = "gateway exited" if not alive else f"no new policy within {RELOAD_TIMEOUT:.0f} s"
        return [Measurement("lifecycle", case, None, "ms", status="unsupported", note=why)]
    how = "by restart (watcher got shutdown)" if watcher.saw_shutdown else "hot (watcher kept)"
    return [
        Measurement(
            "lifecycle",
            case,
            (applied - t0) * 1000,
            "ms",
            note=f"applied {how}; includes the gateway's reload debounce",
            detail={"restart": watcher.saw_shutdown is not None},
        )
    ]


async def restart(plan: Plan, workdir: Path) -> list[Measurement]:
    """SIGUSR1: ``shutdown`` + close 1012, same PID, then reconnect; the gap without service."""
    case = "SIGUSR1 restart: close -> next hello-ok"
    async with procs.gateway(workdir, port=procs.free_port()) as gw:  # same port after restart
        session = await _until_session(gw.port, gw.token, 5)
        if session is None:
            raise procs.ChildFailed("no session before the restart")
        watcher = Watcher(session[0])
        pid_before = await _status_pid(session[0])
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watcher.run)
            t0 = now()
            gw.signal(signal.SIGUSR1)
            with trio.move_on_after(RESTART_TIMEOUT):
                await watcher.done.wait()
            nursery.cancel_scope.cancel()
        await trio.aclose_forcefully(watcher.conn.stream)
        await trio.sleep(0.05)
        code = gw.process.poll()
        if code is not None:
            note = f"SIGUSR1 ended the process (exit {code})"
            return [Measurement("lifecycle", case, None, "ms", status="unsupported", note=note)]
        if watcher.closed_at is None:
            note = f"no close within {RESTART_TIMEOUT:.0f} s of SIGUSR1"
            return [Measurement("lifecycle", case, None, "ms", status="unsupported", note=note)]
        again = await _until_session(gw.port, gw.token, RESTART_TIMEOUT)
        if again is None:
            note = f"closed {watcher.close_code}, no hello-ok within {RESTART_TIMEOUT:.0f} s"
            return [Measurement("lifecycle", case, None, "ms", status="error", note=note)]
        back = now()
        pid_after = await _status_pid(again[0])
        await again[0].close()
    gap = back - watcher.closed_at
    same_pid = pid_before == pid_after == gw.pid
    ok = same_pid and watcher.close_code == 1012 and watcher.saw_shutdown is not None
    return [
        Measurement(
            "lifecycle",
            case,
            gap * 1000,
            "ms",
            status="ok" if ok else "error",
            note=(
                f"signal -> hello-ok {(back - t0) * 1000:.0f} ms; close {watcher.close_code}; "
                f"shutdown {'seen' if watcher.saw_shutdown else 'MISSING'}; "
                f"pid {'same' if same_pid else f'{pid_before} -> {pid_after}'}"
            ),
            detail={"signal_to_hello_ms": (back - t0) * 1000, "same_pid": same_pid},
        )
    ]


async def _status_pid(conn: Conn) -> int | None:
    reply = json.loads(await conn.call(b"pid", b"status"))
    pid = reply.get("payload", {}).get("gateway", {}).get("pid")
    return int(pid) if pid is not None else None
