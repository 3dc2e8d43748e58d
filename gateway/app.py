"""serve(): the gateway's nursery tree, signals, and graceful-deadline shutdown.

    serve()                                  one nursery; everything below has it as parent
    ├── serve_tcp                            accept loop (own cancel scope) + handler nursery
    │   └── Connection per socket            front door: probe | WebSocket | hypercorn (HTTP)
    │       └── run_session (WebSocket)      reader | writer (+ closer), + one task per request
    ├── tick_loop                            `tick` every ws.tickIntervalMs (droppable)
    ├── keepalive_loop                       pings idle WebSockets; drops those that never answer
    ├── channels                             channels/supervisor.py: one task per account
    ├── health_loop                          primes, then refreshes on demand or interval
    ├── heartbeat_loop                       agent heartbeat turn every agents.defaults.heartbeat.every
    ├── pairing_sweep_loop                   expires node/device pairing requests (every 30 s)
    └── watchdog_loop                        event-loop lag; names the task that blocked it

Signals, config reload and in-process restart live one level up, in ``supervisor.supervise``.

Shutdown is a deadline with a reason: stop accepting, drain in-flight work (``Runtime.drain_hooks``,
within ``gateway.drainTimeoutMs``), broadcast ``shutdown``, close every
peer with 1012, give them ``ws.closeGraceMs`` to flush (each session aborts its own socket
after that), abort whatever is left (HTTP keep-alives, half-done handshakes), cancel. The
whole sequence is capped by ``gateway.shutdownTimeoutMs``.
"""

from __future__ import annotations

import logging

import attrs
import trio
from hypercorn.trio.worker_context import WorkerContext

from . import logs
from .agent.heartbeat import heartbeat_loop
from .canvas.host import serve_canvas
from .config.settings import Settings
from .protocol import events as ev
from .protocol import validate
from .protocol.frames import CloseCode
from .protocol.system import ShutdownPayload, TickPayload
from .protocol.validate import load_schemas
from .runtime import ProcessState, Runtime
from .server import origin_gate
from .server.accept import open_socket, serve_tcp
from .server.admission import default_connect_checks
from .server.asgi import GatewayApp, GatewayFront
from .server.gatekeeper import Caps, Gatekeeper
from .server.hyper import hypercorn_config
from .server.listener import Connection
from .server.streams import Streams, format_peer
from .watchdog import watchdog_loop

log = logging.getLogger("gateway")

SERVICE_RESTART = "service restart"


@attrs.frozen
class Running:
    """What ``nursery.start(serve, ...)`` hands back once the port is bound."""

    runtime: Runtime
    host: str
    port: int
    streams: Streams  # every accepted connection (tests look at them)

    @property
    def url(self) -> str:
        return self.runtime.settings.url

    @property
    def canvas_port(self) -> int | None:
        """The canvas host's port, ``None`` when it is not running."""
        return self.runtime.canvas_port

    def stop(self, reason: str = "gateway stopping") -> None:
        self.runtime.request_stop(reason)


async def serve(
    settings: Settings,
    *,
    process: ProcessState | None = None,
    task_status: trio.TaskStatus[Running] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the gateway until a stop or restart is requested, then drain.

    Reports :class:`Running` after the port is bound and the first health snapshot exists.
    Raises :class:`~gateway.errors.StartupError` (before reporting) if the port cannot be bound.
    Returns after a stop or after ``Runtime.request_restart()`` (see ``restart_requested``);
    restarting is the caller's job (``supervisor.supervise``). ``process`` is the state that
    outlives one serve() (config problems, restart counts).

    Cancellation: cancelling serve() from outside skips the graceful sequence -- clients see
    the TCP connection drop. Use ``Running.stop()`` for a clean stop.
    """
    ws = settings.config.gateway.ws
    load_schemas()  # every inbound frame is checked against them: no schemas, no start
    sock = open_socket(settings.host, settings.port, user_timeout_ms=_user_timeout_ms(settings))
    port = int(sock.getsockname()[1])
    settings = attrs.evolve(settings, port=port)
    process = process or ProcessState()
    rt = Runtime(settings, process=process, metrics=process.metrics)
    rt.upgrade_checks.append(origin_gate.upgrade_check)
    rt.connect_checks.extend([origin_gate.connect_check, *default_connect_checks()])
    validate.prime()
    logs.attach(rt)  # the installed log pipeline (if any) follows this runtime's settings
    streams = Streams()
    context = WorkerContext(None)
    config = hypercorn_config(ws.max_payload)
    async with trio.open_nursery() as nursery:
        rt.nursery = nursery
        accept_scope = await nursery.start(
            serve_tcp,
            GatewayApp(rt),
            sock,
            streams,
            config,
            context,
            GatewayFront(rt, streams.abort),
            Gatekeeper(lambda: _caps(rt)),
        )
        rt.canvas_port = await nursery.start(serve_canvas, settings)
        # channels start once the port is bound: degraded beats dead
        channels_scope = trio.CancelScope()
        await nursery.start(_run_channels, rt, channels_scope)
        await rt.refresh_health()
        nursery.start_soon(tick_loop, rt)
        nursery.start_soon(keepalive_loop, rt, streams)
        nursery.start_soon(health_loop, rt)
        nursery.start_soon(heartbeat_loop, rt)
        nursery.start_soon(pairing_sweep_loop, rt)
        rt.ready = True
        nursery.start_soon(watchdog_loop, rt)  # after start-up: a cold start is no stall
        # the CLI's banner says this on the terminal; the file still records every bind
        log.info("listening on %s (pid %d)", settings.url, rt.pid, extra={"_console": False})
        task_status.started(Running(rt, settings.host, port, streams))
        await rt.stop_requested.wait()
        await shutdown(rt, accept_scope, streams, context)
        channels_scope.cancel()
        nursery.cancel_scope.cancel()
    if not rt.restart_requested and process.boot_history is not None:
        # a stop that got this far is a clean exit (the crash-loop breaker counts the others)
        await trio.to_thread.run_sync(process.boot_history.mark_clean)


async def _run_channels(
    rt: Runtime,
    scope: trio.CancelScope,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    with scope:
        await rt.channels.run(task_status=task_status)


def _caps(rt: Runtime) -> Caps:
    ws = rt.settings.config.gateway.ws
    return Caps(ws.max_pre_auth_per_ip, ws.max_connections_per_ip, rt.settings.proxies)


def _user_timeout_ms(settings: Settings) -> int:
    # Long enough for a slow but live mobile link; short enough that a wedged peer cannot
    # outlive a stop by much even if the application-level abort were missed.
    return max(10_000, settings.config.gateway.shutdown_timeout_ms * 2)


async def shutdown(
    rt: Runtime, accept_scope: trio.CancelScope, streams: Streams, context: WorkerContext
) -> None:
    gw = rt.settings.config.gateway
    log.info("shutting down: %s", rt.stop_reason)
    rt.draining = True
    accept_scope.cancel()
    with trio.move_on_after(gw.shutdown_timeout_ms / 1000) as cap:
        await context.terminated.set()  # keep-alive connections close after their request
        streams.close_idle()  # and those waiting for their next one close now
        with trio.move_on_after(gw.drain_timeout_ms / 1000) as drain:
            if rt.inflight_requests or rt.drain_hooks:
                log.info(
                    "draining %d request(s) and %d hook(s) (timeout %dms)",
                    rt.inflight_requests,
                    len(rt.drain_hooks),
                    gw.drain_timeout_ms,
                )
            # concurrently: one slow hook must not eat the budget of the others
            async with trio.open_nursery() as drains:
                for hook in rt.drain_hooks:
                    drains.start_soon(hook)
                drains.start_soon(rt.requests_idle)
        if drain.cancelled_caught:
            log.warning("drain timeout reached; proceeding")
        # channel accounts stop after the drain (in-flight turns could still reply)
        await rt.channels.stop_all("shutdown")
        rt.hub.broadcast(ev.SHUTDOWN, ShutdownPayload(rt.stop_reason, rt.restart_expected_ms))
        for peer in list(rt.hub.peers.values()):
            peer.close(CloseCode.SERVICE_RESTART, SERVICE_RESTART)
        # wait for the TCP connections themselves, not just the peers: a session leaves the
        # hub a moment before hypercorn closes its socket, and aborting then would turn a
        # clean close into a reset
        with trio.move_on_after(gw.ws.close_grace_ms / 1000 + 1.0):
            await streams.wait_empty()
    if cap.cancelled_caught:
        log.warning("shutdown timed out; exiting without full cleanup")
    left = streams.abort_all()
    if left:
        log.info("aborted %d connection(s) that did not close in time", left)


async def keepalive_loop(rt: Runtime, streams: Streams) -> None:
    """WebSocket keepalive (PROTOCOL.md section 11; FAILURE-MODES 15): every
    ``ws.pingIntervalMs``, ping each connection that received nothing since the last round;
    one that still has received nothing ``ws.pongTimeoutMs`` later is dead (a sleeping
    laptop, a NAT that forgot us) and is reset, which ends its session like a disconnect.
    Any bytes count as an answer, so busy connections are never pinged. A connection whose
    write is stuck (a peer that stopped reading) is not pinged either; if it also sends
    nothing it is reset like any silent peer."""
    ws = rt.settings.config.gateway.ws
    if not ws.ping_interval_ms:
        return
    interval, timeout = ws.ping_interval_ms / 1000, ws.pong_timeout_ms / 1000
    seen: dict[Connection, int] = {}
    async with trio.open_nursery() as pings:
        while True:
            await trio.sleep(interval)
            sockets = streams.websockets()
            quiet = [c for c in sockets if seen.get(c, -1) == c.received]
            seen = {c: c.received for c in sockets}
            for conn in quiet:
                pings.start_soon(conn.send_ping)
            if not quiet:
                continue
            await trio.sleep(timeout)
            for conn in quiet:
                if conn.received != seen.get(conn):  # it answered; its pong is not activity
                    seen[conn] = conn.received
                elif not conn.closed:
                    log.info(
                        "conn from %s: no answer to a ping within %d ms; closing",
                        format_peer(conn.key),
                        ws.pong_timeout_ms,
                    )
                    streams.abort(conn.key)


async def tick_loop(rt: Runtime) -> None:
    interval = rt.settings.config.gateway.ws.tick_interval_ms / 1000
    while True:
        await trio.sleep(interval)
        rt.hub.broadcast(ev.TICK, TickPayload(rt.now_ms()))


PAIRING_SWEEP_S = 30.0


async def pairing_sweep_loop(rt: Runtime) -> None:
    """Expire node and device pairing requests on time: a request older than 5 minutes goes
    (``*.pair.resolved`` ``expired``) within ``PAIRING_SWEEP_S``, even if nobody looks."""
    while True:
        await trio.sleep(PAIRING_SWEEP_S)
        await rt.nodes.sweep()
        await rt.devices.sweep()


async def health_loop(rt: Runtime) -> None:
    interval = rt.settings.config.gateway.health.refresh_interval_ms / 1000
    while True:
        with trio.move_on_after(interval):
            await rt.health_wanted.wait()
        rt.health_wanted = trio.Event()
        if rt.fresh_health() is None:
            try:
                await rt.refresh_health()
            except Exception:
                log.exception("health refresh failed")
