"""Wire types of the channel methods: ``channels.*`` (PROTOCOL 7.10, CHANNELS.md 2.5) and
the DM pairing methods ``pairing.list`` / ``pairing.approve`` (CHANNELS.md 3.5)."""

from __future__ import annotations

import attrs

from .model import JsonObject, closed, schema


@closed
@attrs.frozen
class ChannelsStatusParams:
    probe: bool | None = None
    timeout_ms: int | None = attrs.field(default=None, metadata=schema(minimum=0))


@attrs.frozen
class ChannelMeta:
    id: str
    label: str
    detail_label: str
    system_image: str | None = None


@attrs.frozen
class ChannelsStatusResult:
    """Accounts are ``ChannelAccountSnapshot`` objects (``accountId`` required, extra keys
    allowed), kept schema-free like ``health.channels``."""

    ts: int
    channel_order: list[str]
    channel_labels: dict[str, str]
    channels: JsonObject
    channel_accounts: dict[str, list[JsonObject]]
    channel_default_account_id: dict[str, str]
    channel_detail_labels: dict[str, str] | None = None
    channel_system_images: dict[str, str] | None = None
    channel_meta: list[ChannelMeta] | None = None


@closed
@attrs.frozen
class ChannelParams:
    channel: str = attrs.field(metadata=schema(min_length=1))
    account_id: str | None = attrs.field(default=None, metadata=schema(min_length=1))


@attrs.frozen
class ChannelStartResult:
    channel: str
    account_id: str | None
    started: bool


@attrs.frozen
class ChannelStopResult:
    channel: str
    account_id: str | None
    stopped: bool


@attrs.frozen
class ChannelRestartResult:
    channel: str
    account_id: str | None
    stopped: bool
    started: bool


@attrs.frozen
class ChannelLogoutResult:
    channel: str
    account_id: str | None
    cleared: bool
    logged_out: bool | None = None


@closed
@attrs.frozen
class PairingListParams:
    channel: str = attrs.field(metadata=schema(min_length=1))
    account_id: str | None = attrs.field(default=None, metadata=schema(min_length=1))


@attrs.frozen
class PairingRequestMeta:
    username: str | None
    name: str | None
    account_id: str


@attrs.frozen
class PairingRequestInfo:
    """A pending request as stored (``{id, code, createdAt, lastSeenAt, meta}``, CHANNELS.md
    3.5), plus ``expiresAt`` and the meta fields at the top for convenience."""

    id: str
    code: str
    created_at: int
    last_seen_at: int
    expires_at: int
    account_id: str
    username: str | None = None
    name: str | None = None
    meta: PairingRequestMeta | None = None


@attrs.frozen
class PairingListResult:
    channel: str
    requests: list[PairingRequestInfo]


@closed
@attrs.frozen
class PairingApproveParams:
    channel: str = attrs.field(metadata=schema(min_length=1))
    code: str = attrs.field(metadata=schema(min_length=1, max_length=32))
    account_id: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    notify: bool | None = None


@attrs.frozen
class PairingApproveResult:
    channel: str
    approved: bool
    id: str
    account_id: str
    notified: bool
    # the ``commands.ownerAllowFrom`` entry this approval set (the first approval only)
    owner: str | None = None
