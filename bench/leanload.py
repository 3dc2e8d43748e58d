"""The lean load generator's jobs (the epoll engine is ``bench/lean.py``).

``rpc`` -- requests back to back, one in flight per connection; ``hold`` -- idle sessions
that read everything (memory, fan-out, shutdown, operators joining one by one);
``handshake`` -- open -> challenge -> connect -> hello-ok -> close in a loop.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Any

from . import wire
from .client import is_response_to, now, ok_prefix, request_frame
from .lean import (
    CONNECT_ATTEMPTS,
    CONNECT_CONCURRENCY,
    DONE,
    FANOUT_MARKER,
    OPEN,
    Loop,
    Session,
    emit,
)

# -- jobs ----------------------------------------------------------------------------------


def run_rpc(job: dict[str, Any]) -> None:
    loop = Loop(job)
    sessions = loop.connect_all(int(job["conns"]), CONNECT_CONCURRENCY)
    emit("ready", connected=len(sessions), errors=loop.errors[:5])
    if loop.command() != "go":
        return
    method = job["method"].encode()
    params = job["params"].encode() if job.get("params") is not None else None
    per_conn = max(1, -(-int(job["max_requests"]) // max(1, len(sessions))))
    start = now()
    measure_from = start + float(job["warmup"])
    deadline = measure_from + float(job["duration"])
    latencies: list[int] = []
    failures: list[str] = []
    total = 0
    active = len(sessions)

    def fire(session: Session) -> None:
        nonlocal active
        t = now()
        if t >= deadline or session.n >= per_conn:
            session.request_id = b""  # done: later messages are ignored
            active -= 1
            return
        request_id = session.request_id = b"%d-%d" % (session.index, session.n)
        session.n += 1
        session.t0 = t
        session.expect = ok_prefix(request_id)
        loop.send(session, wire.text(request_frame(request_id, method, params)))

    def on_message(session: Session, opcode: int, payload: bytes) -> None:
        nonlocal total, active
        if not session.request_id:
            return
        if opcode == wire.CLOSE:
            failures.append(f"closed {session.close_code}")
            session.request_id = b""
            active -= 1
            return
        ok = True if payload.startswith(session.expect) else None
        if ok is None:
            ok = is_response_to(payload, session.request_id)
            if ok is None:
                return  # an event
        if not ok:
            failures.append(f"{method.decode()} failed: {payload[:200]!r}")
            session.request_id = b""
            active -= 1
            return
        total += 1
        if session.t0 >= measure_from:
            latencies.append(int((now() - session.t0) * 1e6))
        fire(session)

    loop.on_message = on_message
    for session in sessions:
        fire(session)
    loop.run_until(lambda: active <= 0, deadline + 30)
    elapsed = min(now(), deadline) - measure_from
    emit_result(total, latencies, elapsed, failures)
    close_all(loop, sessions)


def close_all(loop: Loop, sessions: list[Session]) -> None:
    """Close frames to all, a moment for the answers, then TCP."""
    for session in sessions:
        loop.close(session)
    loop.run_until(lambda: all(s.state == DONE for s in sessions), now() + 2.0)
    for session in sessions:
        loop.drop(session)


def emit_result(total: int, latencies: list[int], elapsed: float, failures: list[str]) -> None:
    emit(
        "result",
        total=total,
        count=len(latencies),
        elapsed=elapsed,
        latencies_us=latencies,
        errors=len(failures),
        error_samples=failures[:3],
    )


def run_handshakes(job: dict[str, Any]) -> None:
    loop = Loop(job)
    emit("ready", connected=0, errors=[])
    if loop.command() != "go":
        return
    start = now()
    measure_from = start + float(job["warmup"])
    deadline = measure_from + float(job["duration"])
    per_worker = max(1, -(-int(job["max_requests"]) // max(1, int(job["conns"]))))
    latencies: list[int] = []
    total = 0
    workers = [Session(i) for i in range(int(job["conns"]))]
    busy = len(workers)

    def begin(session: Session) -> None:
        nonlocal busy
        if now() >= deadline or session.n >= per_worker:
            busy -= 1
            return
        session.n += 1
        session.attempt = CONNECT_ATTEMPTS - 1  # no retries: a failure is counted, not hidden
        loop.open(session)

    def opened(session: Session) -> None:
        if session.state == OPEN:
            loop.close(session)  # ends when the server answers the close
        else:  # the handshake failed (recorded in loop.errors); go on after a pause
            loop.at(now() + 0.01, lambda: begin(session))

    def on_message(session: Session, opcode: int, payload: bytes) -> None:
        nonlocal total
        if opcode == wire.CLOSE:
            total += 1
            if session.t0 >= measure_from:
                latencies.append(int((now() - session.t0) * 1e6))
            begin(session)

    loop.on_message = on_message
    for session in workers:
        session.on_open = opened
        begin(session)
    loop.run_until(lambda: busy <= 0, deadline + 30)
    elapsed = min(now(), deadline) - measure_from
    emit_result(total, latencies, elapsed, loop.errors)


def run_hold(job: dict[str, Any]) -> None:
    loop = Loop(job)
    concurrency = 1 if job.get("sequential") else CONNECT_CONCURRENCY
    held = loop.connect_all(int(job["conns"]), concurrency, float(job.get("connect_timeout", 120)))
    emit("ready", connected=len(held), errors=loop.errors[:5])
    state: dict[str, Any] = {"round": -1, "seen": 0}

    def on_message(session: Session, opcode: int, payload: bytes) -> None:
        if opcode == wire.CLOSE:
            return
        index = payload.find(FANOUT_MARKER)
        if index >= 0:
            start = end = index + len(FANOUT_MARKER)
            while payload[end : end + 1].isdigit():
                end += 1
            round_no = int(payload[start:end])
            if round_no not in session.arrivals:
                session.arrivals[round_no] = now()
                if round_no == state["round"]:
                    state["seen"] += 1
        elif b'"event":"shutdown"' in payload:
            session.saw_shutdown = True

    loop.on_message = on_message
    while True:
        command, *args = loop.command().split() or ["release"]
        if command == "fanout":
            emit("fanout", **fanout(loop, held, state, int(args[0]), float(args[1])))
        elif command == "await-close":
            t0 = now()
            loop.run_until(lambda: all(s.state == DONE for s in held), t0 + float(args[0]))
            emit(
                "closed",
                seconds=now() - t0,
                total=len(held),
                closed=sum(s.state == DONE for s in held),
                saw_shutdown=sum(s.saw_shutdown for s in held),
                codes={str(k): v for k, v in Counter(s.close_code for s in held).items()},
            )
        else:  # release
            close_all(loop, held)
            emit("released", connected=len(held))
            return


def fanout(
    loop: Loop, held: list[Session], state: dict[str, Any], rounds: int, interval: float
) -> dict[str, Any]:
    """``system-event`` from one more session; the time until each held session reads it."""
    found = loop.connect_all(1, 1)
    if not found:
        raise RuntimeError(f"fan-out sender could not connect: {loop.errors[-1:]}")
    sender = found[0]
    on_held = loop.on_message
    answered: dict[str, float] = {}

    def on_message(session: Session, opcode: int, payload: bytes) -> None:
        if session is sender:
            if payload.startswith(sender.expect):
                answered["at"] = now()
            return
        on_held(session, opcode, payload)

    loop.on_message = on_message
    latencies: list[int] = []
    lost = 0
    send_ms: list[float] = []
    for round_no in range(rounds):
        marker = (FANOUT_MARKER + b"%d" % round_no).decode()
        params = json.dumps({"text": marker, "instanceId": "bench-fanout", "mode": "backend"})
        request_id = b"fanout-%d" % round_no
        state["round"], state["seen"] = round_no, 0
        state["target"] = sum(s.state == OPEN for s in held)
        answered.clear()
        sender.expect = ok_prefix(request_id)
        t0 = now()
        loop.send(sender, wire.text(request_frame(request_id, b"system-event", params.encode())))
        loop.run_until(lambda: state["seen"] >= state["target"] and "at" in answered, t0 + 5.0)
        send_ms.append((answered.get("at", now()) - t0) * 1000)
        for session in held:
            at = session.arrivals.get(round_no)
            if at is None:
                lost += 1
            else:
                latencies.append(int((at - t0) * 1e6))
        pause = now() + interval
        loop.run_until(lambda: False, pause)
    loop.on_message = on_held
    close_all(loop, [sender])
    return {"latencies_us": latencies, "lost": lost, "request_ms": send_ms}


def main(spec: dict[str, Any]) -> None:
    kind = spec["kind"]
    {"rpc": run_rpc, "handshake": run_handshakes, "hold": run_hold}[kind](spec)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
