"""The gateway's shared state for one serve() lifetime, and the operations on it.

One ``Runtime`` per ``serve()`` call: the hub, presence, health cache, auth limiter and the
queued system events. RPC handlers and the session driver reach the gateway only through it.
Wall-clock timestamps (``now_ms``) go on the wire; durations and deadlines use trio's clock,
so tests can drive them with ``autojump_clock``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import attrs
import trio

from . import __version__
from .agent.agents import agent_specs
from .agent.heartbeat import Wakes, heartbeat_view
from .agent.service import AgentService
from .agent.sysevents import SystemEvents
from .auth import RateLimiter
from .channels.breaker import BootHistory
from .channels.supervisor import ChannelManager
from .config.model import RateLimit
from .config.settings import Settings
from .devices.service import DeviceService
from .events import Hub
from .health import AgentInfo, HealthCache, build_health
from .metrics import Metrics
from .nodes.policy import CommandPolicy
from .nodes.service import NodeService
from .presence import Presence
from .protocol import events as ev
from .protocol.frames import StateVersion
from .protocol.system import HealthSummary, HeartbeatPayload, PresencePayload
from .server.bodies import ByteBudget
from .voicewake import VoiceWake

if TYPE_CHECKING:
    from .errors import GatewayError
    from .protocol.upgrade import Upgrade
    from .server.admission import ConnectAttempt

RESTART_EXPECTED_MS = 1500
# /hooks/*: 20 bad tokens a minute from one client lock it out for a minute, loopback too
HOOK_AUTH_LIMIT = RateLimit(
    max_attempts=20, window_ms=60_000, lockout_ms=60_000, exempt_loopback=False
)
PROBE_TIMEOUT_S = 10.0  # health {probe:true}: live channel probes


def wall_ms() -> int:
    return int(time.time() * 1000)


@attrs.define(eq=False)
class ProcessState:
    """What outlives one serve(): kept by the lifecycle supervisor across in-process restarts."""

    config_problem: str | None = None  # why the file on disk is not what we run, if it is not
    restarts: int = 0
    reloads: int = 0
    last_reload_ms: int | None = None
    started_ms: int = attrs.field(factory=wall_ms)
    heartbeats_enabled: bool = True  # `set-heartbeats`; survives in-process restarts
    metrics: Metrics = attrs.field(factory=Metrics)
    boot_history: BootHistory | None = None  # this process's entry (channels' crash-loop breaker)


@attrs.define(eq=False)
class Runtime:
    settings: Settings
    hub: Hub = attrs.field(factory=Hub)
    presence: Presence = attrs.field(factory=lambda: Presence.seeded(__version__, wall_ms()))
    health: HealthCache = attrs.field(factory=HealthCache)
    limiter: RateLimiter = attrs.field(init=False)
    hook_limiter: RateLimiter = attrs.field(factory=lambda: RateLimiter(HOOK_AUTH_LIMIT))
    # per session, read by its next agent turn (agent/sysevents.py)
    system_events: SystemEvents = attrs.field(factory=SystemEvents)
    # heartbeats asked for now (system-event wake, /hooks/wake); heartbeat_loop runs them
    heartbeat_wakes: Wakes = attrs.field(factory=Wakes)
    bodies: ByteBudget = attrs.field(factory=ByteBudget)  # HTTP request bodies held at once
    last_heartbeat: HeartbeatPayload | None = None
    started_at: float = attrs.field(factory=trio.current_time)
    ready: bool = False
    draining: bool = False
    stop_requested: trio.Event = attrs.field(factory=trio.Event)
    health_wanted: trio.Event = attrs.field(factory=trio.Event)
    stop_reason: str = "gateway stopping"
    restart_expected_ms: int | None = None
    pid: int = attrs.field(factory=os.getpid)
    # Set by serve(): the nursery for work that outlives a request (agent runs, ...).
    nursery: trio.Nursery | None = None
    # Awaited at the start of shutdown/restart, within gateway.drainTimeoutMs: finish or
    # checkpoint in-flight work (e.g. agent runs record the interruption) before sockets close.
    drain_hooks: list[Callable[[], Awaitable[None]]] = attrs.field(factory=list)
    process: ProcessState = attrs.field(factory=ProcessState)
    canvas_port: int | None = None  # set by serve() once the canvas host listens
    restart_requested: bool = False
    # Admission hooks (server/admission.py): checks before the WebSocket upgrade, and the
    # chain that decides a `connect` (serve() installs the shared-secret checks).
    upgrade_checks: list[Callable[[Runtime, Upgrade], GatewayError | None]] = attrs.field(
        factory=list
    )
    connect_checks: list[Callable[[Runtime, ConnectAttempt], Awaitable[None]]] = attrs.field(
        factory=list
    )
    inflight_requests: int = 0
    _requests_idle: trio.Event = attrs.field(factory=trio.Event, init=False)
    # Agent runs, sessions and providers (gateway/agent/); runs live in `nursery`.
    agents: AgentService = attrs.field(init=False)
    # Prometheus counters (GET /metrics); serve() passes ProcessState's so restarts keep them.
    metrics: Metrics = attrs.field(factory=Metrics)
    # Messaging channels (gateway/channels/); serve() runs them in a nursery of their own.
    channels: ChannelManager = attrs.field(init=False)
    # Device pairing and tokens (gateway/devices/); nodes, their pairing and the relay
    # (gateway/nodes/). Both load their stores from the state dir here.
    devices: DeviceService = attrs.field(init=False)
    nodes: NodeService = attrs.field(init=False)
    voicewake: VoiceWake = attrs.field(init=False)  # the wake words (voicewake.*)

    def __attrs_post_init__(self) -> None:
        self.limiter = RateLimiter(self.settings.config.gateway.auth.rate_limit)
        self.channels = ChannelManager(self)
        self.metrics.bind(self)
        self.agents = AgentService(self)
        self.drain_hooks.append(self.agents.drain)
        self.drain_hooks.append(self.channels.drain)
        state_dir = self.settings.paths.state_dir
        self.devices = DeviceService(state_dir, self.hub, self.now_ms)
        self.nodes = NodeService(state_dir, self.hub, self.now_ms, self.command_policy)
        self.voicewake = VoiceWake(state_dir, self.hub, self.now_ms)

    def command_policy(self) -> CommandPolicy:
        nodes = self.settings.config.gateway.nodes
        return CommandPolicy.of(nodes.allow_commands, nodes.deny_commands)

    # -- time ------------------------------------------------------------------------------

    def now_ms(self) -> int:
        return wall_ms()

    def uptime_ms(self) -> int:
        return int((trio.current_time() - self.started_at) * 1000)

    # -- lifecycle -------------------------------------------------------------------------

    def request_stop(
        self, reason: str = "gateway stopping", restart_expected_ms: int | None = None
    ) -> None:
        """Ask serve() to shut down gracefully. The first request's reason wins."""
        if not self.stop_requested.is_set():
            self.stop_reason = reason
            self.restart_expected_ms = restart_expected_ms
            self.stop_requested.set()

    def request_restart(self, reason: str = "gateway restarting") -> bool:
        """Ask for an in-process restart; ``False`` if a stop or restart is already under way
        (requests coalesce: the one in progress will pick up the latest config anyway)."""
        if self.stop_requested.is_set():
            return False
        self.restart_requested = True
        self.request_stop(reason, RESTART_EXPECTED_MS)
        return True

    def apply_settings(self, settings: Settings) -> None:
        """Hot reload: swap in new settings (same bound port); readers see them on next use."""
        self.settings = attrs.evolve(settings, port=self.settings.port)
        self.limiter.policy = settings.config.gateway.auth.rate_limit
        self.channels.apply_config()

    # -- in-flight requests (drained before a stop or restart) ---------------------------------

    def request_started(self) -> None:
        self.inflight_requests += 1

    def request_finished(self) -> None:
        self.inflight_requests -= 1
        if self.inflight_requests == 0:
            self._requests_idle.set()

    async def requests_idle(self) -> None:
        while self.inflight_requests:
            self._requests_idle = trio.Event()
            await self._requests_idle.wait()

    # -- state versions and broadcasts -----------------------------------------------------

    def state_version(self) -> StateVersion:
        return StateVersion(presence=self.presence.version, health=self.health.version)

    def presence_changed(self) -> None:
        listing = self.presence.listing(self.now_ms())
        self.hub.broadcast(
            ev.PRESENCE, PresencePayload(listing), state_version=self.state_version()
        )

    def channels_changed(self) -> None:
        """A channel account changed state: the next health read builds a new snapshot
        (and the health task broadcasts it)."""
        self.health.produced_at = float("-inf")
        self.health_wanted.set()

    async def refresh_health(self, *, probe: bool = False) -> HealthSummary:
        """Produce a new snapshot, bump its version and broadcast it; ``probe`` runs the
        channels' live probes first."""
        start = trio.current_time()
        if probe and self.channels.slots:
            await self.channels.probe_all(PROBE_TIMEOUT_S)
        now = self.now_ms()
        state_dir = self.settings.paths.state_dir
        agents = [
            AgentInfo(a.id, a.name, a.is_default)
            for a in agent_specs(self.settings.config, state_dir)
        ]
        heartbeat = heartbeat_view(self.settings.config, self.process.heartbeats_enabled)
        snapshot = await trio.to_thread.run_sync(build_health, state_dir, now, 0, agents, heartbeat)
        snapshot = self.channels.add_to_health(snapshot)
        duration = int((trio.current_time() - start) * 1000)
        snapshot = attrs.evolve(snapshot, duration_ms=duration)
        self.health.store(snapshot, trio.current_time())
        self.hub.broadcast(ev.HEALTH, snapshot, state_version=self.state_version())
        return snapshot

    def wake_heartbeat(self, reason: str = "wake", session_key: str | None = None) -> None:
        """Run the agent heartbeat now rather than at its next interval (if it is on): in
        ``session_key``, or the default agent's main session."""
        self.heartbeat_wakes.request(reason, session_key)

    def kick_health(self) -> None:
        """Ask the health task for a refresh if the cached snapshot is stale.

        Checked here as well as in the task: every handshake kicks, and waking the task
        only to find the snapshot fresh cost a task switch per connection."""
        if self.fresh_health() is None:
            self.health_wanted.set()

    def fresh_health(self) -> HealthSummary | None:
        """The cached snapshot if it is younger than ``gateway.health.refreshIntervalMs``."""
        max_age = self.settings.config.gateway.health.refresh_interval_ms / 1000
        return self.health.fresh(trio.current_time(), max_age)

    async def current_health(self, *, probe: bool = False) -> HealthSummary:
        cached = None if probe else self.fresh_health()
        return cached if cached is not None else await self.refresh_health(probe=probe)
