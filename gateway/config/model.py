"""The configuration file's shape: frozen attrs classes with the documented defaults.

Keys are camelCase in the file and snake_case here (one rename rule, ``protocol.model.camel``).
Numeric bounds ride in field metadata and are enforced by ``validate.py`` with the key path
in every message. A ``Config`` value is immutable; reload replaces it whole.
"""

from __future__ import annotations

from typing import Literal

import attrs

from ..protocol.frames import (
    HANDSHAKE_TIMEOUT_MS,
    HEALTH_REFRESH_INTERVAL_MS,
    MAX_BUFFERED_BYTES,
    MAX_PAYLOAD_BYTES,
    TICK_INTERVAL_MS,
)
from ..protocol.model import schema
from .channels import (
    AllowEntry,
    Binding,
    Channels,
    GroupChat,
    Messages,
    OutboxConfig,
    Readiness,
    SendConfig,
    SessionConfig,
)
from .hooks import Hooks

BindMode = Literal["loopback", "lan", "tailnet", "auto", "custom"]
AuthMode = Literal["token", "password", "none"]
ReloadMode = Literal["off", "hot", "restart", "hybrid"]
HeartbeatTarget = Literal["last", "none", "telegram", "whatsapp"]
ProviderApi = Literal["openai-completions", "openai-responses", "anthropic-messages"]

DEFAULT_PORT = 18789
DEV_PORT = 19001


@attrs.frozen
class RateLimit:
    max_attempts: int = attrs.field(default=10, metadata=schema(minimum=1))
    window_ms: int = attrs.field(default=60_000, metadata=schema(minimum=1))
    lockout_ms: int = attrs.field(default=300_000, metadata=schema(minimum=0))
    exempt_loopback: bool = True


@attrs.frozen
class Auth:
    mode: AuthMode | None = None
    token: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    password: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    rate_limit: RateLimit = attrs.field(factory=RateLimit)


@attrs.frozen
class Reload:
    mode: ReloadMode = "hybrid"
    debounce_ms: int = attrs.field(default=300, metadata=schema(minimum=0, maximum=60_000))


@attrs.frozen
class Remote:
    url: str | None = None
    token: str | None = None
    password: str | None = None


@attrs.frozen
class WebSocket:
    """Connection limits; the numbers here are the ones advertised in ``hello-ok.policy``."""

    tick_interval_ms: int = attrs.field(
        default=TICK_INTERVAL_MS, metadata=schema(minimum=100, maximum=3_600_000)
    )
    max_payload: int = attrs.field(
        default=MAX_PAYLOAD_BYTES, metadata=schema(minimum=65_536, maximum=256 * 1024 * 1024)
    )
    max_buffered_bytes: int = attrs.field(
        default=MAX_BUFFERED_BYTES, metadata=schema(minimum=65_536, maximum=1024 * 1024 * 1024)
    )
    handshake_timeout_ms: int = attrs.field(
        default=HANDSHAKE_TIMEOUT_MS, metadata=schema(minimum=100, maximum=600_000)
    )
    close_grace_ms: int = attrs.field(default=1_000, metadata=schema(minimum=0, maximum=60_000))
    # a connection that received nothing for this long is pinged (0 = never) ...
    ping_interval_ms: int = attrs.field(
        default=30_000, metadata=schema(minimum=0, maximum=3_600_000)
    )
    # ... and closed if nothing (a pong or anything else) arrives within this
    pong_timeout_ms: int = attrs.field(
        default=10_000, metadata=schema(minimum=100, maximum=600_000)
    )
    # connections from one address that have not completed a WebSocket connect (idle
    # sockets, half-sent requests, handshakes in progress), and all of them (gatekeeper.py)
    max_pre_auth_per_ip: int = attrs.field(
        default=64, metadata=schema(minimum=1, maximum=1_000_000)
    )
    max_connections_per_ip: int = attrs.field(
        default=1024, metadata=schema(minimum=1, maximum=1_000_000)
    )


@attrs.frozen
class Health:
    refresh_interval_ms: int = attrs.field(
        default=HEALTH_REFRESH_INTERVAL_MS, metadata=schema(minimum=1_000)
    )


@attrs.frozen
class MetricsEndpoint:
    """``GET /metrics`` (Prometheus); Bearer auth unless loopback is explicitly let in."""

    enabled: bool = True
    allow_loopback_without_auth: bool = False


@attrs.frozen
class HttpEndpoint:
    """One OpenAI-compatible endpoint (OPERATIONS.md A.2, A.5): off unless enabled."""

    enabled: bool = False
    max_body_bytes: int = attrs.field(
        default=20 * 1024 * 1024, metadata=schema(minimum=1024, maximum=256 * 1024 * 1024)
    )


@attrs.frozen
class HttpEndpoints:
    chat_completions: HttpEndpoint = attrs.field(factory=HttpEndpoint)
    responses: HttpEndpoint = attrs.field(factory=HttpEndpoint)


@attrs.frozen
class Http:
    endpoints: HttpEndpoints = attrs.field(factory=HttpEndpoints)
    # request bodies held at once by the HTTP APIs; more wait their turn (server/bodies.py)
    max_body_bytes_in_flight: int = attrs.field(
        default=64 * 1024 * 1024, metadata=schema(minimum=1024 * 1024, maximum=1 << 40)
    )
    # the whole body must arrive within this, else 408 Request body timeout
    body_timeout_ms: int = attrs.field(
        default=60_000, metadata=schema(minimum=100, maximum=3_600_000)
    )


@attrs.frozen
class ToolPolicy:
    """Tool names (``*`` globs allowed); deny wins over allow, an empty allow means all."""

    allow: list[str] = attrs.field(factory=list)
    deny: list[str] = attrs.field(factory=list)


ORIGIN_PATTERN = r"\*|[Hh][Tt][Tt][Pp][Ss]?://([A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?/?"
BASE_PATH_PATTERN = r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*"


@attrs.frozen
class ControlUi:
    """The browser dashboard on the gateway port (CONTROL-UI.md 1-3)."""

    enabled: bool = True
    base_path: str = attrs.field(
        default="/",
        metadata=schema(
            pattern=BASE_PATH_PATTERN,
            description='a URL path starting with "/", such as "/" or "/dashboard"',
        ),
    )
    root: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    # entries apply to each item of the list (config/load.py)
    allowed_origins: list[str] = attrs.field(
        factory=list,
        metadata=schema(
            pattern=ORIGIN_PATTERN,
            description='a full origin such as "https://host" or "http://host:8080", or "*"',
        ),
    )
    dangerously_allow_host_header_origin_fallback: bool = False


@attrs.frozen
class Nodes:
    """Node command policy: exact command names added to / removed from the platform
    defaults (CONTROL-UI.md section 8). Deny wins."""

    allow_commands: list[str] = attrs.field(factory=list)
    deny_commands: list[str] = attrs.field(factory=list)


PROXY_PATTERN = r"[0-9A-Fa-f:.]+(/[0-9]{1,3})?"


@attrs.frozen
class Tailscale:
    """``gateway.tailscale`` (OPERATIONS.md B.3): only ``off`` runs; ``serve``/``funnel`` are
    checked with the reference's preconditions and then refused as not supported yet."""

    mode: Literal["off", "serve", "funnel"] = "off"
    reset_on_exit: bool = False


@attrs.frozen
class Tls:
    """``gateway.tls`` (C.2): accepted while ``enabled`` is false; TLS itself is not
    supported yet (terminate it in a reverse proxy, ``gateway.trustedProxies``)."""

    enabled: bool = False
    auto_generate: bool = False
    cert_path: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    key_path: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    ca_path: str | None = attrs.field(default=None, metadata=schema(min_length=1))


@attrs.frozen
class Watchdog:
    """The event-loop watchdog (watchdog.py): warn when the loop is blocked this long."""

    threshold_ms: int = attrs.field(default=1_000, metadata=schema(minimum=0, maximum=600_000))


@attrs.frozen
class Gateway:
    mode: Literal["local", "remote"] | None = None
    port: int = attrs.field(default=DEFAULT_PORT, metadata=schema(minimum=1, maximum=65535))
    bind: BindMode = "loopback"
    custom_bind_host: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    auth: Auth = attrs.field(factory=Auth)
    reload: Reload = attrs.field(factory=Reload)
    remote: Remote = attrs.field(factory=Remote)
    ws: WebSocket = attrs.field(factory=WebSocket)
    health: Health = attrs.field(factory=Health)
    shutdown_timeout_ms: int = attrs.field(
        default=5_000, metadata=schema(minimum=100, maximum=600_000)
    )
    drain_timeout_ms: int = attrs.field(default=2_000, metadata=schema(minimum=0, maximum=600_000))
    metrics: MetricsEndpoint = attrs.field(factory=MetricsEndpoint)
    http: Http = attrs.field(factory=Http)
    # /tools/invoke only: `deny` extends the built-in HTTP deny list, `allow` lifts entries off it
    tools: ToolPolicy = attrs.field(factory=ToolPolicy)
    control_ui: ControlUi = attrs.field(factory=ControlUi)
    nodes: Nodes = attrs.field(factory=Nodes)
    # reverse proxies whose X-Forwarded-For / Forwarded name the client (clientip.py)
    trusted_proxies: list[str] = attrs.field(
        factory=list,
        metadata=schema(
            pattern=PROXY_PATTERN,
            description='an IP address or a CIDR range such as "127.0.0.1" or "10.0.0.0/8"',
        ),
    )
    allow_real_ip_fallback: bool = False
    watchdog: Watchdog = attrs.field(factory=Watchdog)  # 0 = off
    tailscale: Tailscale = attrs.field(factory=Tailscale)
    tls: Tls = attrs.field(factory=Tls)


@attrs.frozen
class Commands:
    restart: bool = True
    # who owns the assistant, as "<channel>:<sender id>" (e.g. "telegram:123456789"); the
    # first DM pairing approval fills it when unset (CHANNELS.md 3.5)
    owner_allow_from: list[AllowEntry] | None = None


LogLevel = Literal["silent", "fatal", "error", "warn", "info", "debug", "trace"]


@attrs.frozen
class LogRateLimit:
    """Identical log lines: the first ``maxRepeats`` per ``windowMs`` pass, the rest are counted."""

    max_repeats: int = attrs.field(default=10, metadata=schema(minimum=1, maximum=1_000_000))
    window_ms: int = attrs.field(default=60_000, metadata=schema(minimum=100, maximum=86_400_000))


@attrs.frozen
class Logging:
    level: LogLevel = "info"  # the file's level
    console_level: LogLevel = "info"  # --verbose makes the console debug
    file: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    max_file_bytes: int = attrs.field(
        default=10 * 1024 * 1024, metadata=schema(minimum=4096, maximum=1 << 40)
    )
    max_files: int = attrs.field(default=10, metadata=schema(minimum=1, maximum=10_000))
    rate_limit: LogRateLimit = attrs.field(factory=LogRateLimit)
    # OPERATIONS.md H.1: pretty (coloured on a terminal), compact (plain), json (the file's
    # lines); unset = pretty, which Rich makes plain when stderr is not a terminal
    console_style: Literal["pretty", "compact", "json"] | None = None
    # H.3, runbook era: "off" | "tools". Redaction here is always on (the newer rule); the key
    # is accepted so configs written for the reference load, and "off" changes nothing
    redact_sensitive: Literal["off", "tools"] = "tools"
    # H.3: extra patterns ("regex", implicit case-insensitive, or "/regex/flags"); their
    # first group -- else the whole match -- is masked, on top of the built-in set
    redact_patterns: list[str] = attrs.field(factory=list, metadata=schema(min_length=1))


@attrs.frozen
class ModelEntry:
    id: str = attrs.field(metadata=schema(min_length=1))
    name: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    max_tokens: int | None = attrs.field(default=None, metadata=schema(minimum=1))


@attrs.frozen
class Provider:
    """``models.providers.<name>``: where a model API lives and which wire format it speaks."""

    base_url: str = attrs.field(metadata=schema(min_length=1))
    api: ProviderApi = "openai-completions"
    api_key: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    headers: dict[str, str] = attrs.field(factory=dict)
    models: list[ModelEntry] = attrs.field(factory=list)
    max_retries: int = attrs.field(default=2, metadata=schema(minimum=0, maximum=10))
    connect_timeout_ms: int = attrs.field(
        default=10_000, metadata=schema(minimum=100, maximum=300_000)
    )
    read_timeout_ms: int = attrs.field(
        default=120_000, metadata=schema(minimum=100, maximum=3_600_000)
    )


@attrs.frozen
class Models:
    providers: dict[str, Provider] = attrs.field(factory=dict)


@attrs.frozen
class AgentModel:
    primary: str | None = attrs.field(default=None, metadata=schema(min_length=1))


DURATION_PATTERN = r"[0-9]+(ms|s|m|h)"


@attrs.frozen
class HeartbeatConfig:
    """The periodic main-session turn (OPERATIONS.md G.4); ``every: "0m"`` turns it off."""

    every: str = attrs.field(
        default="30m",
        metadata=schema(
            pattern=DURATION_PATTERN, description='a duration like "30m", "1h", "45s" or "0m"'
        ),
    )
    prompt: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    ack_max_chars: int = attrs.field(default=300, metadata=schema(minimum=0, maximum=10_000))
    # where an alert goes (through the outbox): the main session's last route, nowhere, or
    # a channel (with `to`, else that channel's last route); OPERATIONS.md G.4
    target: HeartbeatTarget = "last"
    to: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    account_id: str | None = attrs.field(default=None, metadata=schema(min_length=1))


@attrs.frozen
class AgentDefaults:
    model: AgentModel = attrs.field(factory=AgentModel)
    timeout_seconds: int = attrs.field(default=600, metadata=schema(minimum=1, maximum=86_400))
    workspace: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    max_tool_steps: int = attrs.field(default=8, metadata=schema(minimum=1, maximum=100))
    history_limit: int = attrs.field(default=40, metadata=schema(minimum=0, maximum=1_000))
    # channel messages processed at once (one lane per chat; CHANNELS.md 3.2)
    max_concurrent: int = attrs.field(default=4, metadata=schema(minimum=1, maximum=64))
    system_prompt: str | None = None
    heartbeat: HeartbeatConfig = attrs.field(factory=HeartbeatConfig)


@attrs.frozen
class AgentEntry:
    """One of ``agents.list``; unset fields fall back to ``agents.defaults``."""

    id: str = attrs.field(metadata=schema(min_length=1))
    name: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    default: bool = False
    model: AgentModel | None = None
    workspace: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    system_prompt: str | None = None
    tools: ToolPolicy | None = None
    group_chat: GroupChat | None = None  # mentionPatterns for group messages (CHANNELS 3.5)


@attrs.frozen
class Agents:
    defaults: AgentDefaults = attrs.field(factory=AgentDefaults)
    # `list_` is the file's `list` (camel() drops the trailing underscore)
    list_: list[AgentEntry] = attrs.field(factory=list)


@attrs.frozen
class CanvasHost:
    """The canvas file server on its own port (CONTROL-UI.md 7); port default: gateway + 4,
    root default: the default agent's workspace + ``/canvas``."""

    enabled: bool = True
    port: int | None = attrs.field(default=None, metadata=schema(minimum=1, maximum=65535))
    root: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    live_reload: bool = True


@attrs.frozen
class Config:
    gateway: Gateway = attrs.field(factory=Gateway)
    commands: Commands = attrs.field(factory=Commands)
    logging: Logging = attrs.field(factory=Logging)
    models: Models = attrs.field(factory=Models)
    agents: Agents = attrs.field(factory=Agents)
    # tools the agents may call (and /tools/invoke, on top of gateway.tools)
    tools: ToolPolicy = attrs.field(factory=ToolPolicy)
    canvas_host: CanvasHost = attrs.field(factory=CanvasHost)
    # messaging channels and how their messages are routed (config/channels.py)
    channels: Channels = attrs.field(factory=Channels)
    session: SessionConfig = attrs.field(factory=SessionConfig)
    bindings: list[Binding] = attrs.field(factory=list)
    messages: Messages = attrs.field(factory=Messages)
    readiness: Readiness = attrs.field(factory=Readiness)
    # outbound delivery: the durable outbox and `send` (channels/outbox/)
    outbox: OutboxConfig = attrs.field(factory=OutboxConfig)
    send: SendConfig = attrs.field(factory=SendConfig)
    # the webhook endpoint /hooks/* (config/hooks.py, server/hooks_http.py)
    hooks: Hooks = attrs.field(factory=Hooks)
