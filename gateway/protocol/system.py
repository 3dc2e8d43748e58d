"""Wire types of the system methods and events: presence, health, status, tick, shutdown."""

from __future__ import annotations

from typing import Literal

import attrs

from .model import JsonObject, closed, schema


@closed
@attrs.define
class PresenceEntry:
    """One row of the presence table (PROTOCOL.md section 9). Only ``ts`` is required."""

    ts: int = attrs.field(metadata=schema(minimum=0))
    host: str | None = None
    ip: str | None = None
    version: str | None = None
    platform: str | None = None
    device_family: str | None = None
    model_identifier: str | None = None
    mode: str | None = None
    last_input_seconds: int | None = attrs.field(default=None, metadata=schema(minimum=0))
    reason: str | None = None
    tags: list[str] | None = None
    text: str | None = None
    device_id: str | None = None
    roles: list[str] | None = None
    scopes: list[str] | None = None
    instance_id: str | None = None


# -- events -------------------------------------------------------------------------------


@closed
@attrs.frozen
class ChallengePayload:
    nonce: str = attrs.field(metadata=schema(min_length=1))
    ts: int = attrs.field(metadata=schema(minimum=0))


@closed
@attrs.frozen
class TickPayload:
    ts: int = attrs.field(metadata=schema(minimum=0))


@closed
@attrs.frozen
class PresencePayload:
    presence: list[PresenceEntry]


@closed
@attrs.frozen
class ShutdownPayload:
    reason: str = attrs.field(metadata=schema(min_length=1))
    restart_expected_ms: int | None = attrs.field(default=None, metadata=schema(minimum=0))


HeartbeatStatusName = Literal["sent", "ok-empty", "ok-token", "skipped", "failed"]


@attrs.frozen
class HeartbeatPayload:
    """A finished agent heartbeat (OPERATIONS.md G.4); kept for ``last-heartbeat``.

    A monitor reads ``ts`` (is the heartbeat runner alive?), ``status`` and
    ``indicatorType`` (did the last one succeed, does it need attention?).
    """

    ts: int = attrs.field(metadata=schema(minimum=0))
    status: HeartbeatStatusName
    id: str | None = None
    to: str | None = None
    account_id: str | None = None
    preview: str | None = None
    duration_ms: int | None = attrs.field(default=None, metadata=schema(minimum=0))
    has_media: bool | None = None
    reason: str | None = None
    message: str | None = None
    channel: str | None = None
    silent: bool | None = None
    indicator_type: Literal["ok", "alert", "error"] | None = None


# -- health -------------------------------------------------------------------------------


@closed
@attrs.frozen
class SessionRecent:
    key: str
    updated_at: int | None
    age: int | None


@closed
@attrs.frozen
class SessionStore:
    path: str
    count: int = attrs.field(metadata=schema(minimum=0))
    recent: list[SessionRecent]


@closed
@attrs.frozen
class AgentHeartbeat:
    enabled: bool
    every: str
    every_ms: int | None
    prompt: str
    target: str
    ack_max_chars: int
    model: str | None = None


@closed
@attrs.frozen
class AgentHealth:
    agent_id: str
    is_default: bool
    heartbeat: AgentHeartbeat
    sessions: SessionStore
    name: str | None = None


@closed
@attrs.frozen
class LinkChannel:
    id: str
    label: str
    linked: bool
    auth_age_ms: int | None


@attrs.frozen
class HealthSummary:
    """Same shape as ``smart-agent-neo health --json`` (OPERATIONS.md G.1)."""

    ok: bool
    ts: int
    duration_ms: int = attrs.field(metadata=schema(minimum=0))
    channels: JsonObject
    channel_order: list[str]
    channel_labels: dict[str, str]
    heartbeat_seconds: int
    default_agent_id: str
    agents: list[AgentHealth]
    sessions: SessionStore
    link_channel: LinkChannel | None = None
    # the channel metrics of CHANNELS.md 7.3 by their Prometheus names (when a channel is
    # configured): state per account, counters by label, the outbox's depth and age
    delivery_queues: JsonObject | None = None


# -- status -------------------------------------------------------------------------------


@closed
@attrs.frozen
class HeartbeatAgent:
    agent_id: str
    enabled: bool
    every: str
    every_ms: int | None


@closed
@attrs.frozen
class HeartbeatStatus:
    default_agent_id: str
    agents: list[HeartbeatAgent]


@closed
@attrs.frozen
class SessionDefaults:
    model: str | None
    context_tokens: int | None


@closed
@attrs.frozen
class SessionsStatus:
    paths: list[str]
    count: int = attrs.field(metadata=schema(minimum=0))
    defaults: SessionDefaults
    recent: list[JsonObject]
    by_agent: list[JsonObject]


@closed
@attrs.frozen
class GatewayStatus:
    """Our addition to ``status``: what the running process is and how it is bound."""

    pid: int
    version: str
    uptime_ms: int = attrs.field(metadata=schema(minimum=0))
    url: str
    bind: str
    port: int
    auth_mode: str
    config_path: str
    state_dir: str
    connections: int = attrs.field(metadata=schema(minimum=0))
    profile: str | None = None


@closed
@attrs.frozen
class ConfigStatus:
    """The config file as the running gateway sees it; ``problem`` until an edit is valid."""

    path: str
    exists: bool
    valid: bool
    reload_mode: str
    reloads: int = attrs.field(metadata=schema(minimum=0))
    restarts: int = attrs.field(metadata=schema(minimum=0))
    problem: str | None = None
    last_reload_at: int | None = None


@attrs.frozen
class StatusSummary:
    runtime_version: str
    heartbeat: HeartbeatStatus
    channel_summary: list[str]
    queued_system_events: list[str]
    sessions: SessionsStatus
    gateway: GatewayStatus
    config: ConfigStatus
    link_channel: LinkChannel | None = None


# -- method params -------------------------------------------------------------------------


@closed
@attrs.frozen
class HealthParams:
    probe: bool | None = None


@closed
@attrs.frozen
class StatusParams:
    include_channel_summary: bool | None = None


@closed
@attrs.frozen
class EmptyParams:
    pass


@closed
@attrs.frozen
class SystemEventParams:
    # required, but checked by the handler: a missing, empty or blank text is refused with
    # the reference's own words, "text required" (PROTOCOL.md 7.4)
    text: str | None = attrs.field(
        default=None, metadata=schema(description="required: the event text, not blank")
    )
    device_id: str | None = None
    instance_id: str | None = None
    host: str | None = None
    ip: str | None = None
    mode: str | None = None
    version: str | None = None
    platform: str | None = None
    device_family: str | None = None
    model_identifier: str | None = None
    last_input_seconds: int | None = attrs.field(default=None, metadata=schema(minimum=0))
    reason: str | None = None
    roles: list[str] | None = None
    scopes: list[str] | None = None
    tags: list[str] | None = None
    session_key: str | None = None
    wake: bool | None = None


@closed
@attrs.frozen
class OkResult:
    ok: bool


@closed
@attrs.frozen
class RestartParams:
    reason: str | None = attrs.field(default=None, metadata=schema(min_length=1, max_length=200))
    delay_ms: int | None = attrs.field(default=None, metadata=schema(minimum=0, maximum=600_000))


@closed
@attrs.frozen
class RestartResult:
    ok: bool
    scheduled: bool
    restart_expected_ms: int = attrs.field(metadata=schema(minimum=0))


@closed
@attrs.frozen
class SetHeartbeatsParams:
    enabled: bool


@closed
@attrs.frozen
class SetHeartbeatsResult:
    ok: bool
    enabled: bool
