"""The targets of issues 11 and 7 and whether a run met them (pure).

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


# -- issue 11 (connection layer): against the reference measured in the same run ----------


def _vs_reference(
    rows: list[Measurement], label: str, factor: float, ours: Measurement | None, ref_case: str
) -> Verdict:
    theirs = next(
        (m for m in rows if m.scenario == "reference" and m.case == ref_case and m.value), None
    )
    name = f"{label} >= {factor:g}x the reference"
    if ours is None or ours.value is None or theirs is None or theirs.value is None:
        return Verdict(name, "-", None)
    ratio = ours.value / theirs.value
    observed = f"{ours.value:,.0f} vs {theirs.value:,.0f} ({ratio:.2f}x)"
    return Verdict(name, observed, ratio >= factor)


def _rpc_vs_reference(method: str, conns: int, factor: float) -> Check:
    def check(rows: list[Measurement]) -> Verdict:
        ours = _find(rows, "rpc", method=method, conns=conns)
        case = f"{method} @ {conns} conn{'s' if conns > 1 else ''}"
        return _vs_reference(rows, f"{method} @ {conns} conns", factor, ours, case)

    return check


def _healthz_vs_reference(rows: list[Measurement]) -> Verdict:
    ours = _find(rows, "http", path="/healthz", conns=10)
    return _vs_reference(rows, "GET /healthz @ 10 conns", 1.5, ours, "GET /healthz @ 10 conns")


def _presence_cpu(rows: list[Measurement]) -> Verdict:
    name = "system-presence @ 10 conns: server CPU <= 75 us/request"
    m = _find(rows, "rpc", method="system-presence", conns=10)
    cpu = m.detail.get("server_cpu_us") if m is not None else None
    if not isinstance(cpu, int | float):
        return Verdict(name, "-", None)
    return Verdict(name, f"{cpu:.0f} us", cpu <= 75)


def _handshakes_2x(rows: list[Measurement]) -> Verdict:
    name = "handshakes >= 2x the reference (best of 1/4/16 workers each)"
    ours = [m for m in rows if m.scenario == "handshake" and m.status == "ok" and m.value]
    theirs = [m for m in rows if m.scenario == "reference" and "workers" in m.detail and m.value]
    if not ours or not theirs:
        return Verdict(name, "-", None)
    a, b = max(m.value or 0 for m in ours), max(m.value or 0 for m in theirs)
    return Verdict(name, f"{a:,.0f}/s vs {b:,.0f}/s ({a / b:.2f}x)", a >= 2 * b)


def _fanout_vs_reference(rows: list[Measurement]) -> Verdict:
    name = "fan-out p99 to 1,000 clients <= 0.7x the reference's"
    ours = _find(rows, "fan-out", clients=1000)
    theirs = next(
        (m for m in rows if m.scenario == "reference" and m.case.startswith("fan-out")), None
    )
    if ours is None or theirs is None or ours.p99_ms is None or theirs.p99_ms is None:
        return Verdict(name, "-", None)
    ratio = ours.p99_ms / theirs.p99_ms
    observed = f"{ours.p99_ms:.1f} vs {theirs.p99_ms:.1f} ms ({ratio:.2f}x)"
    return Verdict(name, observed, ratio <= 0.7)


def _per_idle_conn(rows: list[Measurement]) -> Verdict:
    name = "RSS per idle connection <= 15 KB (1,000 connections)"
    m = _find(rows, "memory", conns=1000)
    if m is None:
        return Verdict(name, "-", None)
    per = (int(m.detail["rss"]) - int(m.detail["idle_rss"])) / 1000 / 1024
    return Verdict(name, f"{per:.1f} KB", per <= 15)


def _joins(rows: list[Measurement]) -> Verdict:
    name = "200 operators joining one by one: RSS within +5 MB of idle"
    m = next((r for r in rows if r.scenario == "memory" and "joins" in r.detail), None)
    if m is None:
        return Verdict(name, "-", None)
    added = (int(m.detail["rss"]) - int(m.detail["idle_rss"])) / 1024 / 1024
    return Verdict(name, f"+{added:.1f} MB", added <= 5)


def _idle_50(rows: list[Measurement]) -> Verdict:
    name = "idle RSS < 50 MB"
    m = _case(rows, "memory", "RSS idle")
    if m is None or m.value is None:
        return Verdict(name, "-", None)
    return Verdict(name, f"{m.value:.1f} MB", m.value < 50)


Check = Callable[[list[Measurement]], Verdict]

ISSUE_11: list[Check] = [
    _rpc_vs_reference("system-presence", 10, 1.5),
    _presence_cpu,
    _healthz_vs_reference,
    _rpc_vs_reference("health", 10, 5),
    _rpc_vs_reference("health", 50, 5),
    _rpc_vs_reference("status", 10, 4),
    _rpc_vs_reference("status", 50, 4),
    _handshakes_2x,
    _fanout_vs_reference,
    _per_idle_conn,
    _joins,
    _cold_start,
    _idle_50,
]

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


def _preauth_memory(rows: list[Measurement]) -> Verdict:
    name = "4 waves of 40 pre-auth 24 MiB senders: RSS within +50 MB of idle"
    waves = [m for m in rows if m.scenario == "preauth-memory" and "wave" in m.detail]
    if len(waves) < 4:
        return Verdict(name, "-", None)
    growth = float(waves[-1].detail["growth_mb"])
    return Verdict(name, f"{growth:+.1f} MB after {len(waves)} waves", growth <= 50)


def _idle_flood(rows: list[Measurement]) -> Verdict:
    name = "1,500 idle sockets from one address at file limit 1,024: connect <= 100 ms"
    m = _case(rows, "idle-flood", "connect with")
    if m is None or m.value is None:
        return Verdict(name, "-", None)
    return Verdict(name, f"worst {m.value:.0f} ms, p50 {m.p50_ms:.0f} ms", m.value <= 100)


def _soak(rows: list[Measurement]) -> Verdict:
    name = "30-minute mixed-load soak: no upward RSS trend after warm-up"
    m = _case(rows, "soak", "RSS trend")
    if m is None or m.value is None:
        return Verdict(name, "-", None)
    growth = float(m.detail.get("growth_mb", 0.0))
    # flat within measurement noise: under 5 MB an hour, and under 5 MB grown in the run
    return Verdict(name, f"{m.value:+.1f} MB/h ({growth:+.1f} MB)", m.value < 5 and growth < 5)


def _big_bodies(rows: list[Measurement]) -> Verdict:
    name = "20 concurrent 19 MB chat requests: peak RSS within 5x gateway.http.maxBodyBytesInFlight"
    m = _case(rows, "big-bodies", "20 concurrent")
    if m is None or m.value is None:
        return Verdict(name, "-", None)
    return Verdict(name, f"+{m.value:.0f} MB at peak ({m.note})", m.value <= 5 * 64)


ISSUE_16: list[Callable[[list[Measurement]], Verdict]] = [
    _preauth_memory,
    _idle_flood,
    _soak,
    _big_bodies,
]


def _outbox_delivered(rows: list[Measurement]) -> Verdict:
    name = "200 sends under random kill -9: every acknowledged send delivered"
    m = _case(rows, "outbox", "acked sends delivered")
    if m is None or m.value is None:
        return Verdict(name, "-", None)
    d = m.detail
    return Verdict(name, f"{d['delivered']}/{d['acked']} ({d['kills']} kills)", m.value == 100)


def _outbox_duplicates(rows: list[Measurement]) -> Verdict:
    name = "duplicates after known not-sent failures: 0 (ambiguous ones reported)"
    m = _case(rows, "outbox", "duplicates after known")
    if m is None or m.value is None:
        return Verdict(name, "-", None)
    d = m.detail
    shown = f"{m.value:.0f} (ambiguous resends {d['ambiguous_resent']}, dupes {d['duplicates']})"
    return Verdict(name, shown, m.value == 0)


ISSUE_13: list[Callable[[list[Measurement]], Verdict]] = [_outbox_delivered, _outbox_duplicates]


def evaluate(rows: list[Measurement]) -> list[Verdict]:
    """The connection layer's targets (issue 11), the earlier ones (issue 7), the
    hostile-load figures (issue 16) and the outbox's reliability (issue 13)."""
    return [check(rows) for check in [*ISSUE_11, *CHECKS, *ISSUE_16, *ISSUE_13]]
