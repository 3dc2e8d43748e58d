"""Slow consumers (FAILURE-MODES 14): bounded buffers, 1008, and no head-of-line blocking.

A raw-socket client with a tiny receive buffer completes the handshake and then never
reads. The gateway must close it under the advertised policy while a normal client keeps
receiving every event, and a stop must still finish within its deadline.
"""

from __future__ import annotations

import threading
from pathlib import Path

import trio
import trio.lowlevel

from gateway.app import serve
from gateway.protocol import events as ev

from .conftest import StartGateway, handshake, in_thread, make_settings, open_raw, recv_json
from .rawws import RawClient

BIG = "x" * 100_000
FRAMES = 150  # 15 MB: past the kernel buffers plus a 4 MiB outbox
WINDOW = 8


async def test_slow_consumer_is_closed_and_others_get_everything(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    limit = 4 * 1024 * 1024
    running = await start_gateway(
        make_settings(tmp_path, max_buffered_bytes=limit, close_grace_ms=200)
    )
    hub = running.runtime.hub
    slow = await in_thread(lambda: RawClient(running.url, rcvbuf=4096))
    hello = await in_thread(slow.handshake)
    assert hello["payload"]["policy"]["maxBufferedBytes"] == limit
    (slow_peer,) = hub.peers.values()

    fast_received: list[int] = []
    fast_ready = threading.Event()
    # credit-based pacing: the producer stays at most WINDOW frames ahead of the fast
    # client, so the fast client is never "slow" -- only the one that stopped reading is
    credits_send, credits = trio.open_memory_channel[int](FRAMES)

    def fast_client() -> None:
        with open_raw(running.url, max_size=None) as ws:
            handshake(ws)
            fast_ready.set()
            while len(fast_received) < FRAMES:
                frame = recv_json(ws, timeout=10)
                if (
                    frame.get("event") == ev.HEALTH
                    and isinstance(frame["payload"], dict)
                    and frame["payload"].get("big")
                ):
                    fast_received.append(frame["seq"])
                    trio.from_thread.run_sync(credits_send.send_nowait, frame["seq"])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(in_thread, fast_client)
        await trio.to_thread.run_sync(fast_ready.wait)
        with trio.fail_after(20):
            for i in range(FRAMES):
                if i >= WINDOW:
                    await credits.receive()
                hub.broadcast(ev.HEALTH, {"big": BIG, "i": i})  # non-droppable
            await slow_peer.outbox.finished.wait()
    assert slow_peer.conn_id not in hub.peers
    assert slow_peer.outbox.close_frame == (1008, "slow consumer")
    assert hub.slow_closes == 1
    assert fast_received == sorted(fast_received)
    assert len(fast_received) == FRAMES
    slow.close()


async def test_stop_finishes_with_a_client_that_never_reads(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_buffered_bytes=65_536, close_grace_ms=300)
    with trio.fail_after(15):
        async with trio.open_nursery() as nursery:
            running = await nursery.start(serve, settings)
            slow = await in_thread(lambda: RawClient(running.url, rcvbuf=4096))
            await in_thread(slow.handshake)
            (peer,) = running.runtime.hub.peers.values()
            # droppable events: the peer stays connected with its writer stuck in a socket write
            for _ in range(FRAMES):
                running.runtime.hub.broadcast(ev.TICK, {"ts": 0, "pad": BIG})
                await trio.lowlevel.checkpoint()
            assert peer.outbox.dropped > 0
            assert peer.conn_id in running.runtime.hub.peers
            start = trio.current_time()
            running.stop()
        elapsed = trio.current_time() - start
    assert elapsed < 3.0, f"serve() took {elapsed:.1f}s to stop"
    slow.close()
