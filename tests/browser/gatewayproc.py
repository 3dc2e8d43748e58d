"""The gateway as the browser tests run it: the real CLI (``gateway run``) in its own process,
plus test-only knobs on ``POST /__test__/<knob>`` (this module is never shipped; the
production code has no knobs):

* ``drop-seq`` -- for every Control UI connection, consume one event ``seq`` without sending
  the event (exactly what a dropped droppable event looks like to the client), then
  broadcast presence so the gap shows at once;
* ``pause-ticks`` / ``resume-ticks`` -- stop and restart the ``tick`` broadcasts;
* ``garbage`` -- send each Control UI connection frames that are not valid protocol frames.

Run as ``python -m tests.browser.gatewayproc gateway --allow-unconfigured --port N``.
"""

from __future__ import annotations

import sys
from typing import Any

import trio

from gateway import app as gateway_app
from gateway.cli.main import main
from gateway.protocol import events as ev
from gateway.protocol.system import TickPayload
from gateway.runtime import Runtime
from gateway.server import routes
from gateway.server.http import Receive, SendFn, respond_json

UI_CLIENT = "smart-agent-neo-control-ui"
TICKS = {"paused": False}


def _ui_peers(rt: Runtime) -> list[Any]:
    return [p for p in rt.hub.peers.values() if p.client_id == UI_CLIENT]


async def tick_loop(rt: Runtime) -> None:
    """The gateway's tick loop, with a pause switch."""
    interval = rt.settings.config.gateway.ws.tick_interval_ms / 1000
    while True:
        await trio.sleep(interval)
        if not TICKS["paused"]:
            rt.hub.broadcast(ev.TICK, TickPayload(rt.now_ms()))


async def knob(rt: Runtime, scope: dict[str, Any], receive: Receive, send: SendFn) -> None:
    name = str(scope["path"]).rsplit("/", 1)[-1]
    peers = _ui_peers(rt)
    if name == "drop-seq":
        for peer in peers:
            peer.next_seq()
        rt.presence_changed()
    elif name == "pause-ticks":
        TICKS["paused"] = True
    elif name == "resume-ticks":
        TICKS["paused"] = False
    elif name == "garbage":
        for peer in peers:
            peer.send_text("{this is not json")
            peer.send_text('{"type":"event","payload":{}}')
            peer.send_text("[1,2,3]")
    else:
        await respond_json(send, 404, {"error": f"no knob {name}"})
        return
    await respond_json(send, 200, {"ok": True, "uiConnections": len(peers)})


def install() -> None:
    gateway_app.tick_loop = tick_loop
    for name in ("drop-seq", "pause-ticks", "resume-ticks", "garbage"):
        routes.EXACT[f"/__test__/{name}"] = knob


if __name__ == "__main__":
    install()
    sys.exit(main(sys.argv[1:]))
