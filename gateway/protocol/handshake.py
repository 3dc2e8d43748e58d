"""The connect handshake (PROTOCOL.md section 3): wire types and pure decisions.

Nothing here touches a socket or a clock. A refusal is an error of the tree in
``errors.py``, which says which ``res`` error to send and how to close.
"""

from __future__ import annotations

from typing import Literal

import attrs

from ..errors import PeerError, ProtocolMismatch
from .frames import (
    MIN_NODE_PROTOCOL,
    MIN_PROBE_PROTOCOL,
    PROTOCOL_VERSION,
    StateVersion,
)
from .model import JsonObject, closed, schema
from .system import HealthSummary, PresenceEntry

Role = Literal["operator", "node"]


@attrs.frozen
class ClientInfo:
    id: str = attrs.field(metadata=schema(min_length=1))
    version: str = attrs.field(metadata=schema(min_length=1))
    platform: str = attrs.field(metadata=schema(min_length=1))
    mode: str = attrs.field(metadata=schema(min_length=1))
    display_name: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    device_family: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    model_identifier: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    instance_id: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    build_id: str | None = None
    time_zone: str | None = None


@attrs.frozen
class ConnectAuth:
    token: str | None = attrs.field(default=None, metadata=schema(max_length=4096))
    password: str | None = attrs.field(default=None, metadata=schema(max_length=4096))
    device_token: str | None = attrs.field(default=None, metadata=schema(max_length=256))
    bootstrap_token: str | None = attrs.field(default=None, metadata=schema(max_length=256))


@attrs.frozen
class DeviceIdentity:
    id: str = attrs.field(metadata=schema(min_length=1))
    public_key: str = attrs.field(metadata=schema(min_length=1))
    signature: str = attrs.field(metadata=schema(min_length=1))
    signed_at: int = attrs.field(metadata=schema(minimum=0))
    nonce: str | None = None


@attrs.frozen
class ConnectParams:
    """``connect`` params. Open: unknown keys from newer clients are tolerated."""

    min_protocol: int = attrs.field(metadata=schema(minimum=1))
    max_protocol: int = attrs.field(metadata=schema(minimum=1))
    client: ClientInfo
    caps: list[str] = attrs.field(factory=list, metadata=schema())
    commands: list[str] | None = None
    permissions: dict[str, bool] | None = None
    path_env: str | None = None
    role: str = "operator"
    scopes: list[str] | None = None
    auth: ConnectAuth | None = None
    device: DeviceIdentity | None = None
    locale: str | None = None
    user_agent: str | None = None


@closed
@attrs.frozen
class ServerInfo:
    version: str = attrs.field(metadata=schema(min_length=1))
    conn_id: str = attrs.field(metadata=schema(min_length=1))


@closed
@attrs.frozen
class Features:
    methods: list[str]
    events: list[str]
    capabilities: list[str] | None = None


@closed
@attrs.frozen
class SessionDefaultsInfo:
    default_agent_id: str
    main_key: str
    main_session_key: str
    scope: str | None = None


@closed
@attrs.frozen
class Snapshot:
    presence: list[PresenceEntry]
    health: HealthSummary | JsonObject
    state_version: StateVersion
    uptime_ms: int = attrs.field(metadata=schema(minimum=0))
    session_defaults: SessionDefaultsInfo | None = None
    auth_mode: str | None = None
    config_path: str | None = None
    state_dir: str | None = None


@closed
@attrs.frozen
class HelloAuth:
    role: str
    scopes: list[str]
    device_token: str | None = attrs.field(
        default=None,
        metadata=schema(description="this device's token for this role; use it to reconnect"),
    )
    issued_at_ms: int | None = attrs.field(default=None, metadata=schema(minimum=0))


@closed
@attrs.frozen
class Policy:
    max_payload: int = attrs.field(metadata=schema(minimum=1))
    max_buffered_bytes: int = attrs.field(metadata=schema(minimum=1))
    tick_interval_ms: int = attrs.field(metadata=schema(minimum=1))


@closed
@attrs.frozen
class HelloOk:
    type: Literal["hello-ok"]
    protocol: int
    server: ServerInfo
    features: Features
    snapshot: Snapshot
    auth: HelloAuth
    policy: Policy


# -- decisions ---------------------------------------------------------------------------


def negotiate_protocol(params: ConnectParams) -> ProtocolMismatch | None:
    """Section 3.7: accept 4; accept 3 for probes and legacy nodes; else a mismatch."""
    lo, hi = params.min_protocol, params.max_protocol
    if lo <= PROTOCOL_VERSION <= hi:
        return None
    if params.client.mode == "probe" and hi >= MIN_PROBE_PROTOCOL and lo <= PROTOCOL_VERSION:
        return None
    if (
        params.role == "node"
        and params.client.mode == "node"
        and hi >= MIN_NODE_PROTOCOL
        and lo <= MIN_NODE_PROTOCOL
    ):
        return None
    return ProtocolMismatch(
        "protocol mismatch",
        details={
            "code": "PROTOCOL_MISMATCH",
            "clientMinProtocol": lo,
            "clientMaxProtocol": hi,
            "expectedProtocol": PROTOCOL_VERSION,
            "minimumProbeProtocol": MIN_PROBE_PROTOCOL,
        },
    )


def check_role(params: ConnectParams) -> PeerError | None:
    if params.role in ("operator", "node"):
        return None
    return PeerError("invalid role")
