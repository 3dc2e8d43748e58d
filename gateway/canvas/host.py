"""serve_canvas(): the canvas host, a second small HTTP server in serve()'s nursery.

    serve_canvas                       one task in serve()'s nursery (absent when turned off)
    ├── hypercorn worker_serve         HTTP + the live-reload WebSocket, on a socket we bind
    └── watch_loop                     polls the root every 250 ms; debounced -> "reload"

We bind the socket ourselves, on the gateway's bind host (loopback by default, never a wider
address than the gateway's own), so a busy port is one warning and the gateway keeps
running without a canvas. hypercorn's own trio server runs it: the canvas is not the control
plane and needs none of the gateway's connection machinery. On a non-loopback bind every
request needs ``Authorization: Bearer <gateway token or password>``.
"""

from __future__ import annotations

import errno
import logging
import socket
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import trio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets
from hypercorn.trio.run import worker_serve

from ..agent.agents import agent_specs, default_agent_id
from ..auth import check_bearer
from ..config.settings import Settings, format_host, is_loopback_host
from . import files, snippet, watch

log = logging.getLogger("gateway.canvas")
SERVER_LOG = logging.getLogger("gateway.canvas.server")
SERVER_LOG.setLevel(logging.WARNING)

POLL_S = 0.25
DEBOUNCE_S = 0.075
SEND_TIMEOUT_S = 2.0


def canvas_root(settings: Settings) -> Path:
    """``canvasHost.root``, else the default agent's workspace + ``/canvas``."""
    configured = settings.config.canvas_host.root
    if configured:
        return Path(configured).expanduser()
    specs = agent_specs(settings.config, settings.paths.state_dir)
    wanted = default_agent_id(settings.config)
    spec = next((s for s in specs if s.id == wanted), specs[0])
    return spec.workspace / "canvas"


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


@attrs.define(eq=False)
class CanvasHost:
    """The ASGI app: files under the root, and the live-reload sockets."""

    settings: Settings
    root: Path
    live_reload: bool
    sockets: set[trio.MemorySendChannel[str]] = attrs.field(factory=set)
    reloads: int = 0

    @property
    def needs_auth(self) -> bool:
        return not is_loopback_host(self.settings.host)

    def authorized(self, scope: dict[str, Any]) -> bool:
        if not self.needs_auth:
            return True
        for key, value in scope.get("headers", []):
            if bytes(key).lower() == b"authorization":
                return check_bearer(self.settings.auth, bytes(value).decode("latin-1"))
        return check_bearer(self.settings.auth, None)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "http":
            await self._http(scope, send)

    async def _http(self, scope: dict[str, Any], send: Any) -> None:
        method = str(scope.get("method", "GET"))
        if not self.authorized(scope):
            response = files.Response(
                401, b"Unauthorized", headers=((b"www-authenticate", b"Bearer"),)
            )
        else:
            response = await trio.to_thread.run_sync(
                files.respond, method, str(scope.get("path", "/")), self.root, self.live_reload
            )
        headers = [
            (b"content-type", response.content_type.encode()),
            (b"content-length", str(len(response.body)).encode()),
            (b"cache-control", b"no-store"),
            (b"x-content-type-options", b"nosniff"),
            *response.headers,
        ]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        body = b"" if method == "HEAD" else response.body
        await send({"type": "http.response.body", "body": body})

    async def _websocket(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        if (
            scope.get("path") != snippet.WS_PATH
            or not self.live_reload
            or not self.authorized(scope)
        ):
            await send({"type": "websocket.close", "code": 1008})  # hypercorn: HTTP 403
            return
        outbox, inbox = trio.open_memory_channel[str](4)
        self.sockets.add(outbox)  # before the 101: a page that is open hears every reload
        try:
            await send({"type": "websocket.accept"})
            async with trio.open_nursery() as nursery:

                async def forward() -> None:
                    async for text in inbox:
                        with trio.move_on_after(SEND_TIMEOUT_S):
                            await send({"type": "websocket.send", "text": text})

                nursery.start_soon(forward)
                while (await receive())["type"] != "websocket.disconnect":
                    pass  # nothing to read: pages only listen
                nursery.cancel_scope.cancel()
        finally:
            self.sockets.discard(outbox)

    def reload(self) -> None:
        """Tell every open page to reload (a page whose queue is full already will)."""
        self.reloads += 1
        for outbox in list(self.sockets):
            try:
                outbox.send_nowait("reload")
            except trio.WouldBlock:
                pass
            except trio.BrokenResourceError:
                self.sockets.discard(outbox)

    async def watch_loop(self, before: watch.Snapshot) -> None:
        """Poll the root; after a change and ``DEBOUNCE_S`` of quiet, send ``reload``. A
        watcher error turns live reload off with one log line; the server keeps serving."""
        try:
            while True:
                await trio.sleep(POLL_S)
                now = await trio.to_thread.run_sync(watch.snapshot, self.root)
                if now == before:
                    continue
                while True:  # debounce: an editor's save can be several writes
                    await trio.sleep(DEBOUNCE_S)
                    settled = await trio.to_thread.run_sync(watch.snapshot, self.root)
                    if settled == now:
                        break
                    now = settled
                before = now
                self.reload()
        except OSError as exc:
            log.warning("canvas live reload stopped: cannot watch %s (%s)", self.root, exc)


async def serve_canvas(
    settings: Settings, *, task_status: trio.TaskStatus[int | None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run the canvas host until cancelled; reports the bound port (``None``: not running).

    Turned off (``canvasHost.enabled=false``, ``SMART_AGENT_NEO_SKIP_CANVAS_HOST``): reports
    ``None`` and returns. A port that cannot be bound or a root that cannot be created is a
    warning, never a failed gateway.

    Cancellation: the normal way to stop it (with the rest of serve()'s nursery).
    """
    port = settings.canvas_port
    if port is None:
        task_status.started(None)
        return
    cfg = settings.config.canvas_host
    root = canvas_root(settings)
    try:
        await trio.to_thread.run_sync(files.ensure_root, root)
    except OSError as exc:
        log.warning("canvas host not started: cannot create %s (%s)", root, exc.strerror)
        task_status.started(None)
        return
    try:
        sock = _bind(settings.host, port)
    except OSError as exc:
        why = "the port is in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        log.warning(
            "canvas host not started on %s:%d: %s (gateway continues without it)",
            format_host(settings.host),
            port,
            why,
        )
        task_status.started(None)
        return
    bound = int(sock.getsockname()[1])
    host = CanvasHost(settings, root, cfg.live_reload)
    config = HypercornConfig()
    config.include_server_header = False
    config.graceful_timeout = 0.5
    # hypercorn's own problems, not its "Running on ... (CTRL + C to quit)": the line
    # below says where the canvas is, and Ctrl-C stops the whole gateway
    config.errorlog = SERVER_LOG
    config.accesslog = None
    app: Any = host  # hypercorn's scope TypedDicts are stricter than this app needs
    async with trio.open_nursery() as nursery:
        await nursery.start(
            partial(worker_serve, ASGIWrapper(app), config, sockets=Sockets([], [sock], []))
        )
        if cfg.live_reload:
            try:  # the baseline, before anyone is told the host is up: no edit is missed
                baseline = await trio.to_thread.run_sync(watch.snapshot, root)
            except OSError as exc:
                log.warning("canvas live reload off: cannot watch %s (%s)", root, exc)
            else:
                nursery.start_soon(host.watch_loop, baseline)
        log.info(
            "canvas host on http://%s:%d%s/ (root %s)",
            format_host(settings.host),
            bound,
            files.PREFIX,
            root,
        )
        task_status.started(bound)
