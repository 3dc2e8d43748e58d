"""Many connections at once: memory per idle connection, event fan-out, SIGTERM.

The connections live in a ``hold`` load process (``bench/load.py``); this side measures the
gateway (RSS from /proc, exit time) and tells the holder what to do. Held clients connect
as ``backend`` clients, which presence does not track, so a thousand of them measure the
connection machinery rather than a 200-entry presence list in every event.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import trio

from .. import procs
from ..client import now
from ..plan import Plan
from ..report import Measurement
from ..stats import latency_ms

MB = 1024 * 1024


def _hold(gw: procs.Gateway, conns: int) -> dict[str, Any]:
    return {
        "kind": "hold",
        "host": procs.HOST,
        "port": gw.port,
        "token": gw.token,
        "conns": conns,
        "mode": "backend",
    }


async def _held(gen: procs.Load, wanted: int) -> None:
    ready = await gen.expect("ready", 180)
    if ready["connected"] < wanted:
        raise procs.ChildFailed(f"only {ready['connected']}/{wanted} connected: {ready['errors']}")


async def memory(plan: Plan, workdir: Path) -> list[Measurement]:
    rows: list[Measurement] = []
    async with procs.gateway(workdir) as gw:
        await trio.sleep(plan.settle)
        idle = gw.rss()
        rows.append(Measurement("memory", "RSS idle", idle / MB, "MB"))
        held = 0
        async with AsyncExitStack() as stack:
            for conns in sorted(plan.idle_conns):
                gen = await stack.enter_async_context(procs.load(_hold(gw, conns - held)))
                await _held(gen, conns - held)
                held = conns
                await trio.sleep(plan.settle)
                rss = gw.rss()
                per_conn_kb = (rss - idle) / conns / 1024
                rows.append(
                    Measurement(
                        "memory",
                        f"RSS with {conns} idle conns",
                        rss / MB,
                        "MB",
                        note=f"+{(rss - idle) / MB:.1f} MB over idle ({per_conn_kb:.0f} KB/conn)",
                        detail={"conns": conns, "rss": rss, "idle_rss": idle},
                    )
                )
    async with procs.gateway(workdir) as gw:
        found = await joined_rss(gw.port, gw.token, plan, gw.rss)
        rows.append(joins_row("memory", plan.operator_joins, found))
    return rows


def joins_job(port: int, token: str, conns: int) -> dict[str, Any]:
    """Operator clients that presence tracks (mode ``ui``), connecting one after another:
    every join broadcasts the grown presence list to everyone already connected."""
    return {
        "kind": "hold",
        "host": procs.HOST,
        "port": port,
        "token": token,
        "conns": conns,
        "mode": "ui",
        "sequential": True,
    }


async def joined_rss(port: int, token: str, plan: Plan, rss: Callable[[], int]) -> dict[str, int]:
    """RSS when idle, and once ``plan.operator_joins`` tracked clients have joined one by one
    (and everything they were sent has been delivered: the holders read continuously)."""
    await trio.sleep(plan.settle)
    idle = rss()
    async with procs.load(joins_job(port, token, plan.operator_joins)) as gen:
        await _held(gen, plan.operator_joins)
        await trio.sleep(plan.settle)
        return {"joins": plan.operator_joins, "idle_rss": idle, "rss": rss()}


def joins_row(scenario: str, count: int, found: dict[str, int]) -> Measurement:
    added = found["rss"] - found["idle_rss"]
    return Measurement(
        scenario,
        f"RSS after {count} operators joined one by one",
        found["rss"] / MB,
        "MB",
        note=f"+{added / MB:.1f} MB over idle ({added / count / 1024:.0f} KB/conn)",
        detail=dict(found),
    )


async def fanout_on(port: int, token: str, plan: Plan) -> dict[str, Any]:
    clients, rounds = plan.fanout_clients, plan.fanout_rounds
    job = {
        "kind": "hold",
        "host": procs.HOST,
        "port": port,
        "token": token,
        "conns": clients,
        "mode": "backend",
    }
    async with procs.load(job) as gen:
        await _held(gen, clients)
        await gen.command(f"fanout {rounds} {plan.fanout_interval}")
        result = await gen.expect("fanout", rounds * (5 + plan.fanout_interval) + 30)
    return {**latency_ms(result["latencies_us"]), "lost": result["lost"]}


async def fanout(plan: Plan, workdir: Path) -> list[Measurement]:
    """One ``system-event`` -> a ``presence`` event on every held session; time to each.

    With ``--reference``, the reference is measured alternately with our gateway (ours,
    theirs, ours, ...; ``plan.repeats`` each), each figure the repetition with the lowest
    p99 -- as the rates are best of their repetitions."""
    from . import reference  # it imports this module

    clients, rounds = plan.fanout_clients, plan.fanout_rounds
    async with procs.ceiling() as ceiling:
        top = await fanout_on(ceiling.port, "-", plan)
    mine: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    failed: Exception | None = None
    async with procs.gateway(workdir) as gw, reference.rival(plan, workdir) as ref:
        for _ in range(max(1, plan.repeats) if ref is not None else 1):
            mine.append(await fanout_on(gw.port, gw.token, plan))
            if ref is not None and failed is None:
                try:
                    theirs.append(await fanout_on(ref.port, ref.token, plan))
                except Exception as exc:
                    failed = exc
    ours = min(mine, key=_p99)
    ok = ours["p99_ms"] is not None
    rows = [
        Measurement(
            "fan-out",
            f"system-event -> {clients} clients",
            ours["p99_ms"],
            "ms",
            p50_ms=ours["p50_ms"],
            p99_ms=ours["p99_ms"],
            ceiling=top["p99_ms"],
            lower_is_better=True,
            status="ok" if ok else "error",
            note=(
                f"p99; {rounds} rounds, {ours['lost']} lost, max {ours['max_ms']} ms; "
                f"ceiling p50 {top['p50_ms']} ms"
            ),
            detail={
                "clients": clients,
                "rounds": rounds,
                "ceiling": top,
                "p99s": [r["p99_ms"] for r in mine],
                **ours,
            },
        )
    ]
    if theirs:
        best = min(theirs, key=_p99)
        rows.append(reference.fanout_row(plan, {**best, "p99s": [r["p99_ms"] for r in theirs]}))
    elif failed is not None:
        case = f"fan-out: system-event -> {clients} clients"
        rows.append(
            Measurement("reference", case, None, "", status="error", note=procs.describe(failed))
        )
    return rows


def _p99(found: dict[str, Any]) -> float:
    value = found["p99_ms"]
    return float("inf") if value is None else float(value)


async def sigterm(plan: Plan, workdir: Path) -> list[Measurement]:
    clients = plan.sigterm_clients
    async with procs.gateway(workdir) as gw, procs.load(_hold(gw, clients)) as gen:
        await _held(gen, clients)
        await gen.command("await-close 30")
        t0 = now()
        gw.signal(signal.SIGTERM)
        code = await gw.wait_exit(30)
        exit_s = now() - t0
        closed = await gen.expect("closed", 45)
    everyone = closed["saw_shutdown"] == clients and closed["closed"] == clients
    return [
        Measurement(
            "sigterm",
            f"SIGTERM with {clients} clients",
            exit_s * 1000 if code is not None else None,
            "ms",
            status="ok" if code == 0 and everyone else "error",
            note=(
                f"exit {code}; {closed['saw_shutdown']}/{clients} got shutdown; "
                f"close codes {closed['codes']}"
            ),
            detail={"clients": clients, "exit_code": code, **closed},
        )
    ]
