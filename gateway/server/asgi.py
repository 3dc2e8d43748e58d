"""What answers on the gateway port.

:class:`GatewayFront` answers at the front door (``listener.Connection`` asks it): the
WebSocket control plane on the lean path (``server/websocket.py``) and the probes.
:class:`GatewayApp` is the ASGI app hypercorn runs for everything else (``server/routes.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import attrs
import trio

from .. import observe
from ..clientip import attribute
from ..protocol.upgrade import Upgrade
from ..runtime import Runtime
from .front import Head, Probes
from .http import READINESS
from .listener import Connection
from .routes import handle_http
from .sockio import PeerKey
from .websocket import serve_websocket

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class GatewayFront:
    """The gateway's answers at the front door (``listener.Front``)."""

    def __init__(self, rt: Runtime, abort: Callable[[PeerKey], None]) -> None:
        self.rt = rt
        self.probes = Probes()
        self._abort = abort

    def probe(self, head: Head, conn: Connection) -> bytes:
        rt = self.rt
        started = trio.current_time()
        status, wire = self.probes.answer(head, rt.ready, rt.draining)
        if status == 200 and head.path in READINESS and rt.channels.slots:
            failing = rt.channels.readiness()
            if failing:
                local = attribute(conn.key[0], head.headers, rt.settings.proxies).local_direct
                status, wire = self.probes.not_ready(head, failing if local else None)
        observe.http_answered(rt, head.method, head.path, status, started, conn.key, head.headers)
        return wire

    def websocket(self, conn: Connection, upgrade: Upgrade, after: bytes) -> Awaitable[None]:
        # not a coroutine of its own: no frame of ours holds the request during the session
        key = conn.key
        proxies = self.rt.settings.proxies
        if proxies.trusted:  # the client behind a trusted proxy (clientip.py)
            upgrade = attrs.evolve(upgrade, proxies=proxies)
        return serve_websocket(self.rt, conn, upgrade, after, partial(self._abort, key))


class GatewayApp:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await handle_http(self.rt, scope, receive, send)
        elif kind == "websocket":
            # WebSockets are served at the front door, before hypercorn; one that reaches
            # hypercorn anyway (a malformed upgrade) is refused (hypercorn answers 403).
            if (await receive())["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": 1008})
