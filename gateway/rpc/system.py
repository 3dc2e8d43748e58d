"""System methods: health, status, system-presence, system-event, last-heartbeat,
set-heartbeats (``wake`` is in rpc/voicewake.py)."""

from __future__ import annotations

import os

from .. import __version__, observe
from ..agent.agents import default_agent_id
from ..agent.heartbeat import heartbeat_view
from ..agent.keys import session_key
from ..auth import ADMIN, READ
from ..channels.views import summary_lines
from ..errors import InvalidRequest
from ..presence import event_key, parse_beacon
from ..protocol.codec import Encoded
from ..protocol.system import (
    ConfigStatus,
    EmptyParams,
    GatewayStatus,
    HealthParams,
    HealthSummary,
    HeartbeatAgent,
    HeartbeatPayload,
    HeartbeatStatus,
    OkResult,
    PresenceEntry,
    SessionDefaults,
    SessionsStatus,
    SetHeartbeatsParams,
    SetHeartbeatsResult,
    StatusParams,
    StatusSummary,
    SystemEventParams,
)
from .registry import LATER, CallContext, answers_now, method


@method("health", params=HealthParams, result=HealthSummary, scope=READ)
async def health(ctx: CallContext, params: HealthParams) -> Encoded:
    rt = ctx.runtime
    return rt.health.encoded(await rt.current_health(probe=bool(params.probe)))


@answers_now("health")
def health_now(ctx: CallContext, params: HealthParams) -> object:
    """The cached snapshot while it is fresh; a probe or a stale cache waits (``health``)."""
    rt = ctx.runtime
    cached = None if params.probe else rt.fresh_health()
    return LATER if cached is None else rt.health.encoded(cached)


@method("status", params=StatusParams, result=StatusSummary, scope=READ)
async def status(ctx: CallContext, params: StatusParams) -> StatusSummary:
    rt = ctx.runtime
    settings = rt.settings
    snapshot = await rt.current_health()
    beat = heartbeat_view(settings.config, rt.process.heartbeats_enabled)
    store = snapshot.sessions
    return StatusSummary(
        runtime_version=__version__,
        heartbeat=HeartbeatStatus(
            default_agent_id(settings.config),
            [
                HeartbeatAgent(
                    default_agent_id(settings.config), beat.enabled, beat.every, beat.every_ms
                )
            ],
        ),
        channel_summary=(
            summary_lines(rt.channels.snapshots(), rt.now_ms())
            if params.include_channel_summary is not False
            else []
        ),
        link_channel=snapshot.link_channel,
        queued_system_events=rt.system_events.peek(rt.agents.main_session()),
        sessions=SessionsStatus(
            paths=[a.sessions.path for a in snapshot.agents],
            count=sum(a.sessions.count for a in snapshot.agents),
            defaults=SessionDefaults(model=None, context_tokens=None),
            recent=[{"key": r.key, "updatedAt": r.updated_at, "age": r.age} for r in store.recent],
            by_agent=[
                {"agentId": a.agent_id, "path": a.sessions.path, "count": a.sessions.count}
                for a in snapshot.agents
            ],
        ),
        gateway=GatewayStatus(
            pid=os.getpid(),
            version=__version__,
            uptime_ms=rt.uptime_ms(),
            url=settings.url,
            bind=settings.bind,
            port=settings.port,
            auth_mode=settings.auth.mode,
            config_path=str(settings.paths.config_path),
            state_dir=str(settings.paths.state_dir),
            connections=len(rt.hub.peers),
            profile=settings.paths.profile,
        ),
        config=ConfigStatus(
            path=str(settings.paths.config_path),
            exists=settings.paths.config_path.exists(),
            valid=rt.process.config_problem is None,
            reload_mode=settings.config.gateway.reload.mode,
            reloads=rt.process.reloads,
            restarts=rt.process.restarts,
            problem=rt.process.config_problem,
            last_reload_at=rt.process.last_reload_ms,
        ),
    )


@method("system-presence", params=EmptyParams, result=None, scope=READ)
async def system_presence(ctx: CallContext, params: EmptyParams) -> Encoded:
    """The presence listing (``list[PresenceEntry]`` on the wire)."""
    return presence_now(ctx, params)


@answers_now("system-presence")
def presence_now(ctx: CallContext, params: EmptyParams) -> Encoded:
    return ctx.runtime.presence.encoded(ctx.runtime.now_ms())


@method("system-event", params=SystemEventParams, result=OkResult, scope=ADMIN)
async def system_event(ctx: CallContext, params: SystemEventParams) -> OkResult:
    rt = ctx.runtime
    text = (params.text or "").strip()
    if not text:  # missing, empty or blank: the reference's words, with our prefix
        raise InvalidRequest("invalid system-event params: text required")
    beacon = parse_beacon(text)
    if beacon and params.wake:
        raise InvalidRequest(
            "invalid system-event params: wake is not allowed for Node: beacons",
        )
    last_input = params.last_input_seconds
    if last_input is None and beacon.get("lastInputSeconds", "").isdigit():
        last_input = int(beacon["lastInputSeconds"])
    clear_input = "system-presence-clear-last-input" in (params.tags or [])
    update = PresenceEntry(
        ts=rt.now_ms(),
        host=params.host or beacon.get("host"),
        ip=params.ip or beacon.get("ip"),
        version=params.version or beacon.get("version"),
        platform=params.platform,
        device_family=params.device_family,
        model_identifier=params.model_identifier,
        mode=params.mode or beacon.get("mode"),
        last_input_seconds=last_input,
        reason=params.reason or beacon.get("reason"),
        tags=params.tags,
        text=text,
        device_id=params.device_id,
        roles=params.roles,
        scopes=params.scopes,
        instance_id=params.instance_id,
    )
    session = None
    if params.session_key is not None:
        spec, rest = rt.agents.resolve(None, params.session_key)  # INVALID_REQUEST if bad
        session = session_key(spec.id, rest)
    key = event_key(params.device_id, params.instance_id, update.host, update.ip, text)
    before = rt.presence.get(key)
    rt.presence.upsert(key, update, clear=("last_input_seconds",) if clear_input else ())
    if not beacon or beacon_news(before, update):
        rt.system_events.enqueue(session or rt.agents.main_session(), text, rt.now_ms())
    observe.system_event(rt, text)
    rt.presence_changed()
    if params.wake:  # PROTOCOL 7.4: an immediate heartbeat, which reads the queued event
        rt.wake_heartbeat("wake", session)
    return OkResult(ok=True)


PERIODIC_REASONS = frozenset({"heartbeat", "connect", "launch", "instances-refresh"})


def beacon_news(before: PresenceEntry | None, update: PresenceEntry) -> bool:
    """PROTOCOL 7.4 (2): a ``Node:`` beacon is news for the agent only when the node's host,
    ip, version or mode changed, or its reason changed to one that is not periodic."""
    if before is None:
        return True
    if any(
        getattr(update, f) is not None and getattr(update, f) != getattr(before, f)
        for f in ("host", "ip", "version", "mode")
    ):
        return True
    reason = update.reason
    periodic = reason is not None and (reason in PERIODIC_REASONS or reason.startswith("periodic"))
    return reason is not None and reason != before.reason and not periodic


@method("last-heartbeat", params=EmptyParams, result=None, scope=READ)
async def last_heartbeat(ctx: CallContext, params: EmptyParams) -> HeartbeatPayload | None:
    return ctx.runtime.last_heartbeat


@method("set-heartbeats", params=SetHeartbeatsParams, result=SetHeartbeatsResult, scope=ADMIN)
async def set_heartbeats(ctx: CallContext, params: SetHeartbeatsParams) -> SetHeartbeatsResult:
    """Pause or resume the agent heartbeat (kept across in-process restarts)."""
    ctx.runtime.process.heartbeats_enabled = params.enabled
    ctx.runtime.kick_health()
    return SetHeartbeatsResult(ok=True, enabled=params.enabled)
