"""The gateway's periodic loops in virtual time (trio's MockClock, autojump at 0): the
keepalive rounds, ticks and heartbeats run minutes of schedule in milliseconds, and the
assertions are about the schedule itself. Wire-level behaviour keeps its socket tests
(test_keepalive.py, test_events.py)."""

from __future__ import annotations

from typing import Any, cast

import attrs
import pytest
import trio
import trio.testing

from gateway.agent import heartbeat
from gateway.app import keepalive_loop, tick_loop
from gateway.config.load import parse
from gateway.protocol import events as ev

INTERVAL, TIMEOUT = 30.0, 10.0  # the defaults, in seconds of virtual time


@attrs.define(eq=False)
class FakeConn:
    """What the keepalive loop reads and does on a connection."""

    key: tuple[str, int]
    answers: bool = True  # a pong (any bytes) comes back right after a ping
    busy: bool = False  # sends something every second anyway
    received: int = 0
    closed: bool = False
    pings: list[float] = attrs.field(factory=list)

    async def send_ping(self) -> None:
        self.pings.append(trio.current_time())
        if self.answers:
            self.received += 1


@attrs.define(eq=False)
class FakeStreams:
    conns: list[FakeConn]
    aborted: list[tuple[tuple[str, int], float]] = attrs.field(factory=list)

    def websockets(self) -> list[Any]:
        return [c for c in self.conns if not c.closed]

    def abort(self, key: tuple[str, int]) -> None:
        for conn in self.conns:
            if conn.key == key:
                conn.closed = True
                self.aborted.append((key, trio.current_time()))


@attrs.define
class FakeWs:
    ping_interval_ms: int = int(INTERVAL * 1000)
    pong_timeout_ms: int = int(TIMEOUT * 1000)
    tick_interval_ms: int = 30_000


def fake_runtime(ws: FakeWs) -> Any:
    gateway = attrs.make_class("Gateway", {"ws": attrs.field(default=ws)})()
    config = attrs.make_class("Config", {"gateway": attrs.field(default=gateway)})()
    settings = attrs.make_class("Settings", {"config": attrs.field(default=config)})()
    return attrs.make_class("Rt", {"settings": attrs.field(default=settings)})()


async def run_for(seconds: float, loop: Any, *args: Any) -> None:
    with trio.move_on_after(seconds):
        await loop(*args)


async def busy(conn: FakeConn) -> None:
    while True:
        await trio.sleep(1.0)
        conn.received += 1


async def test_keepalive_rounds_in_virtual_time(autojump_clock: trio.testing.MockClock) -> None:
    """Quiet for an interval -> pinged; silent for the pong timeout after it -> reset; an
    answer keeps a connection; a busy one is never pinged."""
    start = trio.current_time()
    answering = FakeConn(("a", 1))
    silent = FakeConn(("s", 2), answers=False)
    active = FakeConn(("b", 3), answers=False, busy=True)
    streams = FakeStreams([answering, silent, active])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(busy, active)
        await run_for(10 * INTERVAL, keepalive_loop, fake_runtime(FakeWs()), cast(Any, streams))
        nursery.cancel_scope.cancel()
    # the first round only notes what each connection has received; the second pings
    assert [round(t - start) for t in silent.pings] == [2 * INTERVAL]
    assert [(key, round(t - start)) for key, t in streams.aborted] == [
        (("s", 2), 2 * INTERVAL + TIMEOUT)
    ]
    assert len(answering.pings) >= 5  # pinged on and on, never reset
    assert not answering.closed
    assert active.pings == []
    assert not active.closed


async def test_keepalive_off(autojump_clock: trio.testing.MockClock) -> None:
    conn = FakeConn(("x", 1), answers=False)
    streams = FakeStreams([conn])
    with trio.fail_after(1):  # returns at once, without looping
        await keepalive_loop(fake_runtime(FakeWs(ping_interval_ms=0)), cast(Any, streams))
    assert conn.pings == []


async def test_ticks_every_interval(autojump_clock: trio.testing.MockClock) -> None:
    stamps: list[float] = []

    class Hub:
        def broadcast(self, name: str, payload: object) -> None:
            assert name == ev.TICK
            stamps.append(trio.current_time())

    rt = fake_runtime(FakeWs(tick_interval_ms=30_000))
    rt.hub = Hub()
    rt.now_ms = lambda: 0
    start = trio.current_time()
    await run_for(100.0, tick_loop, rt)
    assert [round(t - start) for t in stamps] == [30, 60, 90]


async def test_heartbeats_follow_their_interval_and_the_toggle(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``every: "30m"``: a beat every half hour; switched off, none (the loop looks again
    every RECHECK_S); switched on, they resume. The beat itself is a stand-in here (an
    agent run does file I/O in worker threads, which a virtual clock cannot wait for)."""
    config, _ = parse('{agents: {defaults: {heartbeat: {every: "30m"}}}}', {})
    beats: list[float] = []

    async def fake_beat(rt: object) -> None:
        beats.append(trio.current_time())

    monkeypatch.setattr(heartbeat, "beat", fake_beat)
    process = attrs.make_class("Process", {"heartbeats_enabled": attrs.field(default=True)})()
    settings = attrs.make_class("Settings", {"config": attrs.field(default=config)})()
    rt: Any = attrs.make_class(
        "Rt",
        {
            "settings": attrs.field(default=settings),
            "process": attrs.field(default=process),
            "heartbeat_wakes": attrs.field(factory=heartbeat.Wakes),
        },
    )()
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(heartbeat.heartbeat_loop, rt)
        await trio.sleep(3 * 1800 + 1)
        process.heartbeats_enabled = False
        await trio.sleep(2 * 1800)
        process.heartbeats_enabled = True
        await trio.sleep(1800 + heartbeat.RECHECK_S + 1)
        nursery.cancel_scope.cancel()
    offsets = [round(t - start) for t in beats]
    assert offsets[:3] == [1800, 3600, 5400]
    assert len(offsets) == 4  # none while off; one more half an hour after switching back on
    assert offsets[3] >= 5400 + 2 * 1800 + 1800


async def test_a_wake_runs_a_heartbeat_at_once_and_restarts_the_interval(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``wake {mode:"now"}`` / ``system-event {wake:true}`` / ``/hooks/wake``
    (Runtime.wake_heartbeat -> Wakes.request): a beat right away, one per session asked
    for, and the next scheduled one a whole interval later; paused by ``set-heartbeats``,
    a wake runs nothing."""
    config, _ = parse('{agents: {defaults: {heartbeat: {every: "30m"}}}}', {})
    beats: list[tuple[float, str | None, str | None]] = []

    async def fake_beat(rt: object, reason: str | None = None, session: str | None = None) -> None:
        beats.append((trio.current_time(), reason, session))

    monkeypatch.setattr(heartbeat, "beat", fake_beat)
    process = attrs.make_class("Process", {"heartbeats_enabled": attrs.field(default=True)})()
    settings = attrs.make_class("Settings", {"config": attrs.field(default=config)})()
    wakes = heartbeat.Wakes()
    rt: Any = attrs.make_class(
        "Rt",
        {
            "settings": attrs.field(default=settings),
            "process": attrs.field(default=process),
            "heartbeat_wakes": attrs.field(default=wakes),
        },
    )()
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(heartbeat.heartbeat_loop, rt)
        await trio.sleep(100)
        wakes.request("wake")
        wakes.request("hook:wake")  # the same session: one beat
        wakes.request("wake", "agent:main:hook:x")
        await trio.sleep(1800 + 60)
        process.heartbeats_enabled = False
        await trio.testing.wait_all_tasks_blocked()
        wakes.request("wake")
        await trio.sleep(heartbeat.RECHECK_S * 2)
        nursery.cancel_scope.cancel()
    seen = [(round(t - start), reason, session) for t, reason, session in beats]
    assert seen == [
        (100, "wake", None),
        (100, "wake", "agent:main:hook:x"),
        (1900, None, None),
    ]
