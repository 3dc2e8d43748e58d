"""The ceiling: the fastest gateway our stack (hypercorn + trio + wsproto) could be.

A minimal ASGI app that does the protocol-4 handshake (challenge, connect, hello-ok) and
answers every request with a constant -- no validation, no state, no per-request task. It
runs in its own process with the same hypercorn settings as the gateway, so "share of the
ceiling" separates what our code costs from what the stack costs, on any machine.

For the fan-out scenario it keeps the one piece of state a broadcast needs, the list of
connected sessions: a ``system-event`` request sends a ``presence`` event carrying its text
to every session, one ``send`` after another from the requesting task (no queues, no
backpressure -- the fastest a broadcast can go on this stack, not a safe one).

The collector runs rarely here (``gc.set_threshold(50_000, 50, 1_000)``): a full collection
over a thousand connections' objects pauses everything for 100+ ms, and a ceiling is the
stack at its best -- the gateway can do the same (BENCHMARKS.md, "GC pauses").

    python -m bench.ceiling            # prints "listening on ws://127.0.0.1:<port>"
"""

from __future__ import annotations

import gc
import json
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any, cast

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

CHALLENGE = (
    '{"type":"event","event":"connect.challenge",'
    '"payload":{"nonce":"00000000-0000-4000-8000-000000000000","ts":0}}'
)
HELLO = (
    '{"type":"hello-ok","protocol":4,"server":{"version":"ceiling","connId":"ceiling"},'
    '"features":{"methods":["health","status","system-presence"],"events":[]},'
    '"snapshot":{"presence":[],"health":{},"stateVersion":{"presence":1,"health":1},'
    '"uptimeMs":0},"auth":{"role":"operator","scopes":["operator.admin"]},'
    '"policy":{"maxPayload":26214400,"maxBufferedBytes":52428800,"tickIntervalMs":30000}}'
)
RESULT = '{"ok":true}'

sessions: list[Send] = []


def _response(request_id: str, payload: str) -> str:
    return '{"type":"res","id":' + json.dumps(request_id) + ',"ok":true,"payload":' + payload + "}"


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    kind = scope["type"]
    if kind == "lifespan":
        while True:
            message = await receive()
            reply = message["type"] + ".complete"
            await send({"type": reply})
            if message["type"] == "lifespan.shutdown":
                return
    if kind == "http":
        body = b'{"ok":true,"status":"live"}'
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
        return
    if (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": CHALLENGE})
    payload = HELLO
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("text") or message.get("bytes") or "{}"
            frame = json.loads(data)
            request_id = str(frame.get("id", "invalid"))
            if frame.get("method") == "system-event":
                await _broadcast(str(frame.get("params", {}).get("text", "")))
            await send({"type": "websocket.send", "text": _response(request_id, payload)})
            if payload is HELLO:
                sessions.append(send)
            payload = RESULT
    finally:
        if send in sessions:
            sessions.remove(send)


async def _broadcast(text: str) -> None:
    event = (
        '{"type":"event","event":"presence","payload":{"text":' + json.dumps(text) + '},"seq":1}'
    )
    for peer in list(sessions):
        try:
            await peer({"type": "websocket.send", "text": event})
        except Exception:  # a session that is going away; the ceiling does not care
            pass


def hypercorn_config(sock: socket.socket) -> Config:
    """The gateway's hypercorn settings (``gateway/server/listener.py``), on a given socket."""
    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    config.websocket_max_message_size = 25 * 1024 * 1024
    config.websocket_ping_interval = 30.0
    config.accesslog = None
    config.errorlog = None
    config.keep_alive_timeout = 5
    config.backlog = 1024
    return config


async def main() -> None:
    gc.set_threshold(50_000, 50, 1_000)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    stop = trio.Event()

    async def shutdown_trigger() -> None:
        await stop.wait()

    async def watch_signals() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                stop.set()
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch_signals)
        print(f"ceiling listening on ws://127.0.0.1:{port}", flush=True)
        await serve(cast(Any, app), hypercorn_config(sock), shutdown_trigger=shutdown_trigger)
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    try:
        trio.run(main)
    except KeyboardInterrupt:
        sys.exit(0)
