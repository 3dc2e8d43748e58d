"""The targets of issue 7 and whether a run met them (pure).

Reference figures (the TypeScript gateway, openclaw 2026.9.6 on Node 24, 2 cores): ``health``
1.6k requests/s at 10 and 50 connections, 0.9-1.1k handshakes/s, ~1 GB RSS idle, 9-11 s to
the first hello-ok. A target whose case was not run (``--only``, a smaller plan) is
"not measured", never "met".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .report import Measurement, Verdict

REFERENCE_HEALTH_RPS = 1_600
REFERENCE_HANDSHAKES = 1_100  # top of the reference's 0.9-1.1k/s


def _find(rows: Iterable[Measurement], scenario: str, **detail: object) -> Measurement | None:
    for m in rows:
        if m.scenario == scenario and m.status == "ok" and m.value is not None:
            if all(m.detail.get(k) == v for k, v in detail.items()):
                return m
    return None


def _case(rows: Iterable[Measurement], scenario: str, prefix: str) -> Measurement | None:
    """The first row of ``scenario`` with a value whose case starts with ``prefix``."""
    for m in rows:
        if m.scenario == scenario and m.case.startswith(prefix) and m.value is not None:
            return m
    return None


def _trivial_share(rows: list[Measurement]) -> Verdict:
    name = "trivial RPC (system-presence) at 10 conns >= 70% of the ceiling"
    m = _find(rows, "rpc", method="system-presence", conns=10)
    if m is None or m.share is None:
        return Verdict(name, "-", None)
    return Verdict(name, f"{m.value:,.0f} req/s = {m.share:.1%}", m.share >= 0.70)


def _health_rate(rows: list[Measurement]) -> Verdict:
    """Per connection count: ours >= 3x the reference. With ``--reference`` the reference
    was measured in this run (same machine, same load); otherwise the issue's 1.6k/s."""
    found = [_find(rows, "rpc", method="health", conns=c) for c in (10, 50)]
    theirs = [_find(rows, "reference", method="health", conns=c) for c in (10, 50)]
    here = all(t is not None for t in theirs)
    where = "measured here" if here else "issue's figure"
    goals = [3 * (t.value or 0.0) if t else 3.0 * REFERENCE_HEALTH_RPS for t in theirs]
    name = f"health >= 3x reference at 10 and 50 conns (reference {where})"
    if any(m is None for m in found):
        return Verdict(name, "-", None)
    values = [m.value or 0.0 for m in found if m is not None]
    observed = " / ".join(f"{v:,.0f}" for v in values) + " req/s"
    observed += " vs goal " + " / ".join(f"{g:,.0f}" for g in goals)
    if here:
        observed += f" ({min(v / (g / 3) for v, g in zip(values, goals, strict=True)):.1f}x)"
    return Verdict(name, observed, all(v >= g for v, g in zip(values, goals, strict=True)))


def _handshakes(rows: list[Measurement]) -> Verdict:
    """Best of 1/4/16 workers, ours vs the reference's best (measured here with
    ``--reference``, else the issue's 1.1k/s)."""
    found = [m for m in rows if m.scenario == "handshake" and m.status == "ok" and m.value]
    theirs = [m for m in rows if m.scenario == "reference" and "workers" in m.detail and m.value]
    goal = max((m.value or 0.0) for m in theirs) if theirs else float(REFERENCE_HANDSHAKES)
    where = "measured here" if theirs else "issue's figure"
    name = f"handshakes >= reference (best of 1/4/16 workers; reference {where})"
    if not found:
        return Verdict(name, "-", None)
    best = max(found, key=lambda m: m.value or 0.0)
    observed = f"{best.value:,.0f}/s ({best.case}) vs {goal:,.0f}/s"
    if theirs:
        observed += f" ({(best.value or 0) / goal:.1f}x)"
    return Verdict(name, observed, (best.value or 0) >= goal)


def _idle_rss(rows: list[Measurement]) -> Verdict:
    name = "idle RSS < 80 MB"
    m = _case(rows, "memory", "RSS idle")
    if m is None or m.value is None:
        return Verdict(name, "-", None)
    return Verdict(name, f"{m.value:.1f} MB", m.value < 80)


def _rss_200(rows: list[Measurement]) -> Verdict:
    name = "200 idle conns add < 20 MB"
    m = _find(rows, "memory", conns=200)
    if m is None:
        return Verdict(name, "-", None)
    added = (int(m.detail["rss"]) - int(m.detail["idle_rss"])) / 1024 / 1024
    return Verdict(name, f"+{added:.1f} MB", added < 20)


def _cold_start(rows: list[Measurement]) -> Verdict:
    name = "first hello-ok < 1 s after spawn"
    m = _case(rows, "lifecycle", "cold start")
    if m is None or m.value is None:
        return Verdict(name, "-", None)
    return Verdict(name, f"{m.value:.0f} ms (median)", m.value < 1000)


def _fanout(rows: list[Measurement]) -> Verdict:
    name = "fan-out p99 < 100 ms at 1,000 clients, none lost"
    m = _find(rows, "fan-out", clients=1000)
    if m is None or m.p99_ms is None:
        return Verdict(name, "-", None)
    lost = int(m.detail["lost"])
    return Verdict(name, f"p99 {m.p99_ms:.1f} ms, {lost} lost", m.p99_ms < 100 and lost == 0)


def _sigterm(rows: list[Measurement]) -> Verdict:
    name = "SIGTERM with 1,000 clients: exit 0, every client got shutdown"
    m = next((r for r in rows if r.scenario == "sigterm" and r.detail.get("clients") == 1000), None)
    if m is None:
        return Verdict(name, "-", None)
    observed = f"{(m.value or 0) / 1000:.2f} s; {m.note}"
    return Verdict(name, observed, m.status == "ok")


CHECKS: list[Callable[[list[Measurement]], Verdict]] = [
    _trivial_share,
    _health_rate,
    _handshakes,
    _idle_rss,
    _rss_200,
    _cold_start,
    _fanout,
    _sigterm,
]


def evaluate(rows: list[Measurement]) -> list[Verdict]:
    return [check(rows) for check in CHECKS]
