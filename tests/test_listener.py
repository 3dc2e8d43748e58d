"""The per-socket driver's writes (gateway/server/sockio.py ``SocketIO.write``) on a real
socket pair with small buffers: a frame is never cut by a cancellation, writers take turns,
and closing the socket frees a writer stuck on a peer that stopped reading."""

from __future__ import annotations

import socket
import threading

import trio
import trio.testing
from hypercorn.events import RawData
from hypercorn.trio.worker_context import WorkerContext

from gateway.server.hyper import HypercornBridge, hypercorn_config
from gateway.server.listener import Connection

BIG = bytes(range(256)) * 4096  # 1 MiB: far more than the socket buffers hold


def pair() -> tuple[socket.socket, socket.socket]:
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ours.setblocking(False)
    return ours, theirs


def connection(sock: socket.socket) -> Connection:
    return Connection(sock, ("127.0.0.1", 1), hypercorn_config(1 << 20), WorkerContext(None))


def read_exactly(sock: socket.socket, n: int) -> bytes:
    """Up to ``n`` bytes; fewer if nothing more arrives for 3 s (a cut-off frame)."""
    sock.settimeout(3)
    chunks, got = [], 0
    while got < n:
        try:
            chunk = sock.recv(min(65536, n - got))
        except TimeoutError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


async def test_a_started_frame_is_finished_even_if_its_writer_is_cancelled() -> None:
    """Cancelled before it starts (so any checkpoint would raise) and again while it waits
    for buffer space: the first bytes went out, so the whole frame must follow."""
    ours, theirs = pair()
    conn = connection(ours)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(read_exactly(theirs, len(BIG))))
    with theirs, trio.fail_after(10):
        reader.start()
        with trio.CancelScope() as scope:
            scope.cancel()
            await conn.write(BIG)
        await trio.to_thread.run_sync(reader.join)
    assert received == [BIG]
    assert not conn.closed
    conn.close_socket()


async def test_writers_take_turns_and_keep_their_order() -> None:
    ours, theirs = pair()
    conn = connection(ours)
    frames = [bytes([n]) * 200_000 for n in range(1, 4)]
    received: list[bytes] = []
    with theirs, trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            for frame in frames:  # the first blocks mid-frame; the others queue behind it
                nursery.start_soon(conn.write, frame)
                await trio.testing.wait_all_tasks_blocked()

            def drain() -> None:
                received.append(read_exactly(theirs, sum(map(len, frames))))

            await trio.to_thread.run_sync(drain)
    assert received == [b"".join(frames)]
    conn.close_socket()


async def test_closing_the_socket_frees_a_writer_stuck_on_a_silent_peer() -> None:
    ours, theirs = pair()
    conn = connection(ours)
    with theirs, trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.write, BIG)
            await trio.testing.wait_all_tasks_blocked()
            conn.close_socket(reset=True)  # what Streams.abort does
    assert conn.closed
    assert ours.fileno() == -1


async def test_no_ping_after_our_close_frame() -> None:
    ours, theirs = pair()
    conn = connection(ours)
    conn.websocket = True
    with theirs, trio.fail_after(10):
        await conn.send_ping()
        await HypercornBridge(conn, conn.config)._protocol_send(
            RawData(b"\x88\x02\x03\xe8")
        )  # close 1000
        await conn.send_ping()  # the keepalive round came too late: nothing is sent
        conn.close_socket(eof=True)
        wire = read_exactly(theirs, 100)
    assert wire == b"\x89\x00" + b"\x88\x02\x03\xe8"
