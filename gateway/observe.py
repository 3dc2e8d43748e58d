"""What the gateway records about itself: one function per noteworthy thing.

Each function logs the event at its level (with structured fields; the log pipeline redacts
them) and counts it in ``rt.metrics``, so the log file and ``/metrics`` tell the same story.
The session driver, the HTTP router and the RPC handlers call these; subsystems added later
(config reload, in-process restart, agent runs, model providers, the heartbeat runner) call
:func:`config_reloaded`, :func:`restarting`, :func:`agent_run`, :func:`provider_call` and
:func:`heartbeat`.

Levels: requests and frames are debug (``--verbose``); connections, system events, reloads,
restarts and agent runs are info; auth failures and failed runs are warnings.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import trio

from .presence import UNTRACKED_MODES
from .protocol import events as ev
from .protocol.codec import to_wire
from .protocol.system import HeartbeatPayload

if TYPE_CHECKING:
    from .events import Peer
    from .protocol.handshake import ConnectParams
    from .runtime import Runtime
    from .server.http import SendFn

log = logging.getLogger("gateway")
log_ws = logging.getLogger("gateway.ws")
log_rpc = logging.getLogger("gateway.rpc")
log_http = logging.getLogger("gateway.http")
log_agent = logging.getLogger("gateway.agent")

NO_CLOSE_FRAME = 1006  # RFC 6455: the connection dropped without a close frame
MAX_TEXT = 2000  # system-event text in the log; the rest is cut, not the line


def _ms(started: float) -> float:
    return round((trio.current_time() - started) * 1000, 2)


# -- WebSocket connections ---------------------------------------------------------------------


def connect_frame(peer: Peer, params: ConnectParams) -> None:
    """The ``connect`` request, at debug (built only then). Its ``auth`` block is masked by
    the pipeline."""
    if log_ws.isEnabledFor(logging.DEBUG):
        frame = {"type": "req", "method": "connect", "params": to_wire(params)}
        log_ws.debug("connect frame", extra={"connId": peer.conn_id, "frame": frame})


def _ephemeral(mode: str | None) -> bool:
    """CLI calls, probes and backends connect for one request: at info level a monitor
    polling `status` every few seconds would bury everything else, so they log at debug."""
    return mode in UNTRACKED_MODES


def connection_opened(rt: Runtime, peer: Peer, client_id: str, mode: str, role: str) -> None:
    rt.metrics.connections.inc()
    log_ws.log(
        logging.DEBUG if _ephemeral(mode) else logging.INFO,
        "client connected",
        extra={
            "connId": peer.conn_id,
            "client": client_id,
            "mode": mode,
            "role": role,
            "ip": peer.remote_ip,
        },
    )


def connection_closed(rt: Runtime, peer: Peer, client_code: int | None) -> None:
    """A session ended. Our close code is exact; the client's is not knowable.

    hypercorn 0.18 does not pass a client's close code to the application: whatever the
    client sent (or a dropped TCP connection), the ASGI ``websocket.disconnect`` says 1006.
    So a close we initiated is logged and counted with its code (1008 auth / slow consumer,
    1009, 1012, ...) and any other as ``by=client`` (metric label ``code="client"``).
    ``client_code`` is kept in the line for when the server stack starts reporting it.
    """
    ours = peer.outbox.close_frame
    fields: dict[str, object] = {"connId": peer.conn_id}
    if ours is not None:
        label = str(int(ours[0]))
        fields.update(code=int(ours[0]), by="gateway")
        if ours[1]:
            fields["reason"] = ours[1]
    else:
        label = "client"
        fields["by"] = "client"
        if client_code is not None and client_code != NO_CLOSE_FRAME:
            fields["code"] = client_code
    rt.metrics.connection_closes.labels(code=label).inc()
    routine = ours is None or ours[0] in (1000, 1012)
    level = logging.DEBUG if routine and _ephemeral(peer.client_mode) else logging.INFO
    log_ws.log(level, "client disconnected", extra=fields)


def auth_failed(
    rt: Runtime, transport: str, ip: str | None, reason: str, *, client: str | None = None
) -> None:
    """A rejected credential. Never pass the credential itself; ``reason`` is a detail code.

    Repeats from one client (a stale token reconnecting) are identical lines, which the log
    pipeline rate-limits (FAILURE-MODES.md item 16); the counter still counts every one.
    """
    rt.metrics.auth_failures.labels(transport=transport, reason=reason).inc()
    fields: dict[str, object] = {"transport": transport, "ip": ip, "reason": reason}
    if client is not None:
        fields["client"] = client
    (log_http if transport == "http" else log_ws).warning("auth failed", extra=fields)


def origin_refused(
    rt: Runtime, ip: str | None, origin: str | None, reason: str, stage: str
) -> None:
    """A browser page on an origin that may not drive the gateway (CSWSH defence), or a
    ``Host`` a loopback gateway does not answer to (DNS rebinding: ``origin`` is the Host)."""
    host = reason == "host not allowed"
    transport = "http" if stage == "http" else "ws"
    label = "HOST_NOT_ALLOWED" if host else "ORIGIN_NOT_ALLOWED"
    rt.metrics.auth_failures.labels(transport=transport, reason=label).inc()
    shown = (origin or "")[:256]
    field = "host" if host else "origin"
    (log_http if stage == "http" else log_ws).warning(
        f"{field} refused", extra={"ip": ip, field: shown, "reason": reason, "stage": stage}
    )


# -- requests ----------------------------------------------------------------------------------


def request_done(
    rt: Runtime, peer: Peer, method: str, started: float, response: str, *, known: bool
) -> None:
    """One RPC answered with the serialized ``res`` frame ``response``; ``known``: the
    method is registered (clients choose names: the metric labels only known ones)."""
    label = method if known else "unknown"
    outcome = response_outcome(response)
    elapsed = trio.current_time() - started
    count, latency = rt.metrics.request_metrics(label, outcome)
    count.inc()
    latency.observe(elapsed)
    if log_rpc.isEnabledFor(logging.DEBUG):
        log_rpc.debug(
            "request",
            extra={
                "connId": peer.conn_id,
                "method": method,
                "outcome": outcome,
                "durationMs": round(elapsed * 1000, 2),
            },
        )


def response_outcome(response: str) -> str:
    """``ok`` or the error code of a ``res`` frame built by ``dispatch.response_text``.

    The frame starts ``{"type":"res","id":"...","ok":...``: the sequence ``,"ok":`` cannot
    occur inside the JSON-encoded id (a quote in a string is always escaped), so finding it
    reads the outcome without decoding a payload that may be megabytes. Failures are small
    and rare, so those are decoded for their code.
    """
    at = response.find(',"ok":')
    if at >= 0 and response.startswith("true", at + 6):
        return "ok"
    try:
        frame = json.loads(response)
        code = frame["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return "error"
    return code if isinstance(code, str) else "error"


def watch_http(rt: Runtime, scope: dict[str, Any], send: SendFn, route: str) -> SendFn:
    """Wrap an HTTP ``send`` so the response is counted and logged (debug) when it ends."""
    started = trio.current_time()
    status = 0

    async def observed(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        await send(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            rt.metrics.http_counter(route, status).inc()
            if log_http.isEnabledFor(logging.DEBUG):
                client = scope.get("gateway.client")
                headers = {
                    k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])
                }
                log_http.debug(
                    "http request",
                    extra={
                        "method": scope.get("method"),
                        "path": scope.get("path"),
                        "status": status,
                        "durationMs": _ms(started),
                        "ip": client.ip if client else _peer(scope),
                        "headers": headers,
                    },
                )

    return observed


def _peer(scope: dict[str, Any]) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def http_answered(
    rt: Runtime,
    method: bytes,
    path: str,
    status: int,
    started: float,
    client: tuple[str, int],
    headers: Sequence[tuple[bytes, bytes]],
) -> None:
    """A request answered at the front door (a probe): counted like any HTTP request, and
    logged with its headers only when debug is on."""
    rt.metrics.http_counter(path, status).inc()
    if log_http.isEnabledFor(logging.DEBUG):
        log_http.debug(
            "http request",
            extra={
                "method": method.decode("latin-1"),
                "path": path,
                "status": status,
                "durationMs": _ms(started),
                "ip": client[0],
                "headers": {k.decode("latin-1"): v.decode("latin-1") for k, v in headers},
            },
        )


# -- gateway events ----------------------------------------------------------------------------


def system_event(rt: Runtime, text: str) -> None:
    rt.metrics.system_events.inc()
    shown = text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"
    log.info("system event", extra={"text": shown})


def heartbeat(rt: Runtime, payload: HeartbeatPayload) -> None:
    """An agent heartbeat finished: keep it for ``last-heartbeat``, broadcast, log, count."""
    rt.last_heartbeat = payload
    rt.hub.broadcast(ev.HEARTBEAT, payload)
    rt.metrics.heartbeats.labels(status=payload.status).inc()
    level = logging.WARNING if payload.status == "failed" else logging.INFO
    fields: dict[str, object] = {"status": payload.status}
    for key in ("to", "reason", "duration_ms", "indicator_type"):
        value = getattr(payload, key)
        if value is not None:
            fields[key] = value
    log_agent.log(level, "heartbeat", extra=fields)


def config_reloaded(rt: Runtime, outcome: str, paths: Iterable[str] = ()) -> None:
    """``outcome``: hot | restart | skipped | invalid | off."""
    rt.metrics.reloads.labels(outcome=outcome).inc()
    level = logging.WARNING if outcome == "invalid" else logging.INFO
    log.log(level, "config reload", extra={"outcome": outcome, "paths": list(paths)})


def restarting(rt: Runtime, reason: str) -> None:
    rt.metrics.restarts.inc()
    log.info("restarting in process", extra={"reason": reason})


def agent_run(
    rt: Runtime, agent: str, outcome: str, duration_s: float, *, run_id: str | None = None
) -> None:
    """``outcome``: ok | error | timeout | aborted."""
    rt.metrics.agent_runs.labels(agent=agent, outcome=outcome).inc()
    level = logging.INFO if outcome in ("ok", "aborted") else logging.WARNING
    log_agent.log(
        level,
        "agent run",
        extra={
            "agent": agent,
            "outcome": outcome,
            "runId": run_id,
            "durationMs": round(duration_s * 1000),
        },
    )


def provider_call(
    rt: Runtime, provider: str, model: str, duration_s: float, *, outcome: str = "ok"
) -> None:
    rt.metrics.provider_seconds.labels(provider=provider, model=model).observe(duration_s)
    log_agent.debug(
        "provider call",
        extra={
            "provider": provider,
            "model": model,
            "outcome": outcome,
            "durationMs": round(duration_s * 1000),
        },
    )
