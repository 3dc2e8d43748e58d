"""RPC throughput/latency and handshakes per second, against the gateway and the ceiling.

The same load job runs against both servers, back to back, so each gateway figure has a
ceiling figure measured minutes apart on the same machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import trio

from .. import procs
from ..plan import Plan
from ..report import Measurement
from ..stats import latency_ms, rate
from . import reference


async def drive(job: dict[str, Any], plan: Plan, server_pid: int) -> dict[str, Any]:
    """Run ``job`` split over ``plan.load_procs`` processes, started together; merged result.

    Also measures the server's CPU time over the run (warmup included, so it is divided by
    every request completed, warmup included): CPU microseconds per request hardly move when
    other processes compete for the cores, unlike requests per second.
    """
    n = max(1, plan.load_procs)
    conns = int(job["conns"])
    shares = [conns // n + (1 if i < conns % n else 0) for i in range(n)]
    shares = [s for s in shares if s > 0] or [1]
    results: list[dict[str, Any]] = []
    cpu_start = 0.0
    async with trio.open_nursery() as nursery:

        async def one(share: int, ready: trio.Event, go: trio.Event) -> None:
            sub = {**job, "conns": share, "max_requests": job["max_requests"] // len(shares)}
            async with procs.load(sub) as gen:
                hello = await gen.expect("ready", 120)
                if hello["connected"] < share and job["kind"] == "rpc":
                    raise procs.ChildFailed(f"only {hello['connected']}/{share} connected: {hello}")
                ready.set()
                await go.wait()
                client_start = _cpu(gen.process.pid)
                await gen.command("go")
                result = await gen.expect("result", job["warmup"] + job["duration"] + 60)
                result["client_cpu"] = _cpu(gen.process.pid) - client_start
                results.append(result)

        go = trio.Event()
        readies = []
        for share in shares:
            ready = trio.Event()
            readies.append(ready)
            nursery.start_soon(one, share, ready, go)
        for ready in readies:
            await ready.wait()
        cpu_start = procs.cpu_seconds(server_pid)
        go.set()
    cpu = procs.cpu_seconds(server_pid) - cpu_start
    samples = [s for r in results for s in r["latencies_us"]]
    latency = latency_ms(samples)
    given = [r["percentiles_us"] for r in results if r.get("percentiles_us")]
    if not samples and given:  # wrk reports percentiles, not samples: the worst process's
        latency = {
            f"{k}_ms": max(g[f"{k}_us"] for g in given) / 1000 for k in ("p50", "p99", "max")
        }
    count = sum(r["count"] for r in results)
    total = sum(r["total"] for r in results)
    elapsed = max(r["elapsed"] for r in results)
    return {
        "count": count,
        "rate": rate(count, elapsed),
        "server_cpu_us": cpu / total * 1e6 if total else None,
        # the load generator's own CPU (its process; wrk's runs in a child, not counted):
        # a client near a core's worth would be setting the rate instead of the server
        "client_cpu_us": (
            sum(r["client_cpu"] for r in results) / total * 1e6
            if total and job["kind"] != "http" and all(r["client_cpu"] > 0 for r in results)
            else None
        ),
        "errors": sum(r["errors"] for r in results),
        "error_samples": [e for r in results for e in r["error_samples"]][:3],
        "client": results[0].get("client", "lean") if results else None,
        **latency,
    }


def _cpu(pid: int) -> float:
    """CPU seconds of a load process (0 once it is gone: then no client figure is shown)."""
    try:
        return procs.cpu_seconds(pid)
    except OSError:
        return 0.0


async def best_of(job: dict[str, Any], plan: Plan, server_pid: int) -> dict[str, Any]:
    """The repetition with the highest rate: other processes on the machine only slow us."""
    runs = [await drive(job, plan, server_pid) for _ in range(max(1, plan.repeats))]
    return _best(runs)


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    best = max(runs, key=lambda r: float(r["rate"]))
    return {**best, "rates": [round(r["rate"]) for r in runs]}


Outcome = dict[str, Any] | Exception


async def versus(
    ours: tuple[dict[str, Any], int], theirs: tuple[dict[str, Any], int] | None, plan: Plan
) -> tuple[dict[str, Any], Outcome | None]:
    """Best of ``plan.repeats`` for our gateway and, if given, the reference -- measured
    alternately (ours, theirs, ours, theirs, ...), so both see the same machine. A failing
    reference run is its row's error, never the end of ours."""
    mine: list[dict[str, Any]] = []
    other: list[dict[str, Any]] = []
    failed: Exception | None = None
    for _ in range(max(1, plan.repeats)):
        mine.append(await drive(ours[0], plan, ours[1]))
        if theirs is not None and failed is None:
            try:
                other.append(await drive(theirs[0], plan, theirs[1]))
            except Exception as exc:  # e.g. it refused connections under load
                failed = exc
    if theirs is None:
        return _best(mine), None
    return _best(mine), (_best(other) if other else failed)


def _job(kind: str, port: int, token: str, plan: Plan, **fields: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "host": procs.HOST,
        "port": port,
        "token": token,
        "warmup": plan.warmup,
        "duration": plan.duration,
        "max_requests": plan.max_requests,
        **fields,
    }


def _note(result: dict[str, Any], ceiling: dict[str, Any]) -> str:
    parts = []
    ours, theirs = result["server_cpu_us"], ceiling["server_cpu_us"]
    if ours and theirs:
        parts.append(f"server CPU {ours:.0f} us/req (ceiling {theirs:.0f})")
    if result.get("client_cpu_us"):
        parts.append(f"client {result['client_cpu_us']:.0f} us/req")
    if result["errors"]:
        parts.append(f"{result['errors']} errors, e.g. {result['error_samples'][:1]}")
    return "; ".join(parts)


async def rpc(plan: Plan, workdir: Path) -> list[Measurement]:
    rows: list[Measurement] = []
    theirs: list[Measurement] = []
    async with (
        procs.ceiling() as ceiling,
        procs.gateway(workdir) as gw,
        reference.rival(plan, workdir) as ref,
    ):
        for conns in plan.rpc_conns:
            job = _job("rpc", ceiling.port, "-", plan, conns=conns, method="health")
            top = await best_of(job, plan, ceiling.pid)
            for method in plan.rpc_methods:
                job = _job("rpc", gw.port, gw.token, plan, conns=conns, method=method)
                rival = None
                if ref is not None:
                    rival = (
                        _job("rpc", ref.port, ref.token, plan, conns=conns, method=method),
                        ref.pid,
                    )
                result, other = await versus((job, gw.pid), rival, plan)
                rows.append(
                    Measurement(
                        "rpc",
                        f"{method} @ {conns} conn{'s' if conns > 1 else ''}",
                        result["rate"],
                        "req/s",
                        p50_ms=result["p50_ms"],
                        p99_ms=result["p99_ms"],
                        ceiling=top["rate"],
                        note=_note(result, top),
                        detail={"method": method, "conns": conns, "ceiling": top, **result},
                    )
                )
                if other is not None:
                    theirs.append(
                        reference.reference_row({"method": method, "conns": conns}, other)
                    )
    return rows + theirs


def http_row(scenario: str, path: str, conns: int, result: dict[str, Any]) -> Measurement:
    note = f"server CPU {result['server_cpu_us']:.0f} us/req" if result["server_cpu_us"] else ""
    if result.get("client") == "wrk":
        note += "; client wrk"
    else:
        note += "; Python client (no wrk on PATH: the client sets the rate)"
    if result["errors"]:
        note += f"; {result['errors']} errors, e.g. {result['error_samples'][:1]}"
    return Measurement(
        scenario,
        f"GET {path} @ {conns} conn{'s' if conns > 1 else ''}",
        result["rate"],
        "req/s",
        p50_ms=result["p50_ms"],
        p99_ms=result["p99_ms"],
        note=note.lstrip("; "),
        detail={"path": path, "conns": conns, **result},
    )


async def http(plan: Plan, workdir: Path) -> list[Measurement]:
    """Keep-alive ``GET /healthz``: the probe a load balancer or systemd watchdog hammers."""
    rows: list[Measurement] = []
    theirs: list[Measurement] = []
    async with procs.gateway(workdir) as gw, reference.rival(plan, workdir) as ref:
        for conns in plan.http_conns:
            job = _job("http", gw.port, gw.token, plan, conns=conns, path="/healthz")
            rival = None
            if ref is not None:
                rival = (
                    _job("http", ref.port, ref.token, plan, conns=conns, path="/healthz"),
                    ref.pid,
                )
            result, other = await versus((job, gw.pid), rival, plan)
            rows.append(http_row("http", "/healthz", conns, result))
            if other is not None:
                what = {"path": "/healthz", "conns": conns}
                row = reference.reference_row(what, other)
                if not isinstance(other, BaseException) and other.get("client") == "wrk":
                    row = attrs.evolve(row, note=row.note + "; client wrk")
                theirs.append(row)
    return rows + theirs


async def handshakes(plan: Plan, workdir: Path) -> list[Measurement]:
    """Open, challenge, connect, hello-ok, close -- as the CLI's client mode (not in presence)."""
    rows: list[Measurement] = []
    theirs: list[Measurement] = []
    async with (
        procs.ceiling() as ceiling,
        procs.gateway(workdir) as gw,
        reference.rival(plan, workdir) as ref,
    ):
        for workers in plan.handshake_workers:
            job = _job("handshake", ceiling.port, "-", plan, conns=workers, mode="cli")
            top = await best_of(job, plan, ceiling.pid)
            job = _job("handshake", gw.port, gw.token, plan, conns=workers, mode="cli")
            rival = None
            if ref is not None:
                rival = (
                    _job("handshake", ref.port, ref.token, plan, conns=workers, mode="cli"),
                    ref.pid,
                )
            result, other = await versus((job, gw.pid), rival, plan)
            rows.append(
                Measurement(
                    "handshake",
                    f"{workers} worker{'s' if workers > 1 else ''}",
                    result["rate"],
                    "hs/s",
                    p50_ms=result["p50_ms"],
                    p99_ms=result["p99_ms"],
                    ceiling=top["rate"],
                    note=_note(result, top),
                    detail={"workers": workers, "ceiling": top, **result},
                )
            )
            if other is not None:
                theirs.append(reference.reference_row({"workers": workers}, other))
    return rows + theirs
