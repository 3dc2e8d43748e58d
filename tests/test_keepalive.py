"""WebSocket keepalive (PROTOCOL.md section 11, FAILURE-MODES 15): the gateway pings a
connection that has sent nothing for ``ws.pingIntervalMs`` and resets one that then sends
nothing (not even the pong) for ``ws.pongTimeoutMs`` -- a sleeping laptop or a NAT that
forgot the connection must not stay in presence forever.

These run the real loop against real sockets (a few short rounds); the schedule itself --
who is pinged when, who is reset, busy connections, ``pingIntervalMs: 0`` -- is tested in
virtual time in test_loops.py."""

from __future__ import annotations

import time
from pathlib import Path

from websockets.frames import Opcode

from gateway.app import Running

from .conftest import StartGateway, in_thread, make_settings
from .test_handshake import RawClient

# short rounds so a test takes a fraction of a second
FAST = {"ping_interval_ms": 100, "pong_timeout_ms": 150}


def next_frame_counting_pings(conn: RawClient, *, answer: bool) -> tuple[Opcode, int]:
    """Read until a frame other than a ping arrives or the server ends the connection;
    returns that frame's opcode (CLOSE for a dropped connection) and the pings seen."""
    pings = 0
    while True:
        while not conn.frames:
            try:
                conn.pump()
            except ConnectionResetError:
                return Opcode.CLOSE, pings
            if conn.protocol.state.name == "CLOSED" and not conn.frames:
                return Opcode.CLOSE, pings
        frame = conn.frames.popleft()
        if frame.opcode is Opcode.PING:
            pings += 1
            if answer:
                conn.flush()  # the protocol queued the pong
            continue
        return frame.opcode, pings


async def test_a_client_that_answers_pings_stays_connected(start_gateway: StartGateway) -> None:
    running: Running = await start_gateway(**FAST)

    def client() -> None:
        with RawClient(running.url) as conn:
            conn.handshake()
            pings = 0
            conn.sock.settimeout(5)
            while pings < 3:  # idle: a ping every round, each answered
                conn.pump()
                while conn.frames:
                    frame = conn.frames.popleft()
                    if frame.opcode is Opcode.PING:
                        assert frame.data == b""
                        pings += 1
                        conn.flush()
            conn.send_json({"type": "req", "id": "after", "method": "health"})
            while True:
                answer = conn.recv_json()
                if answer.get("id") == "after":
                    break
            assert answer["ok"] is True

    await in_thread(client)
    assert len(running.runtime.hub.peers) <= 1


async def test_a_client_that_never_answers_is_dropped(start_gateway: StartGateway) -> None:
    running: Running = await start_gateway(**FAST)

    def client() -> None:
        with RawClient(running.url) as conn:
            conn.handshake()
            conn.sock.settimeout(5)  # the gateway must act well before this
            started = time.monotonic()
            pings, opcode = 0, Opcode.TEXT
            while opcode is Opcode.TEXT:  # events (presence, health) may come first
                opcode, seen = next_frame_counting_pings(conn, answer=False)
                pings += seen
            assert opcode is Opcode.CLOSE, f"expected the connection to end, got {opcode}"
            assert pings >= 1, "dropped without being pinged first"
            assert time.monotonic() - started < 2.0

    await in_thread(client)


def test_defaults(tmp_path: Path) -> None:
    ws = make_settings(tmp_path).config.gateway.ws
    assert (ws.ping_interval_ms, ws.pong_timeout_ms) == (30_000, 10_000)
