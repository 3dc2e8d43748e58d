"""Wire types of device pairing and device tokens (CONTROL-UI.md section 10, PROTOCOL.md 7.12).

A device is an Ed25519 identity (``connect.device``). Pairing approves it for roles and
scopes; each approved role gets a device token, sent in ``hello-ok.auth.deviceToken`` and
accepted in place of the shared secret on later connects. Tokens never appear in lists: those
carry :class:`DeviceTokenSummary` rows.
"""

from __future__ import annotations

from typing import Literal

import attrs

from .model import closed, schema

DeviceDecision = Literal["approved", "rejected", "removed", "expired"]
PairingReason = Literal["not-paired", "role-upgrade", "scope-upgrade", "metadata-upgrade"]


@attrs.frozen
class PendingDeviceRequest:
    request_id: str = attrs.field(metadata=schema(min_length=1))
    device_id: str = attrs.field(metadata=schema(min_length=1))
    public_key: str = attrs.field(metadata=schema(min_length=1))
    role: str
    roles: list[str]
    scopes: list[str]
    is_repair: bool
    ts: int = attrs.field(metadata=schema(minimum=0))
    reason: PairingReason | None = None
    display_name: str | None = None
    platform: str | None = None
    device_family: str | None = None
    client_id: str | None = None
    client_mode: str | None = None
    remote_ip: str | None = None
    silent: bool | None = None


@attrs.frozen
class DeviceTokenRecord:
    token: str = attrs.field(metadata=schema(min_length=1))
    role: str
    scopes: list[str]
    created_at_ms: int
    rotated_at_ms: int | None = None
    revoked_at_ms: int | None = None
    last_used_at_ms: int | None = None


@closed
@attrs.frozen
class DeviceTokenSummary:
    role: str
    scopes: list[str]
    created_at_ms: int
    rotated_at_ms: int | None = None
    revoked_at_ms: int | None = None
    last_used_at_ms: int | None = None


@attrs.frozen
class PairedDevice:
    """The stored record (``<state>/devices/paired.json``), tokens included."""

    device_id: str = attrs.field(metadata=schema(min_length=1))
    public_key: str = attrs.field(metadata=schema(min_length=1))
    roles: list[str]
    scopes: list[str]
    created_at_ms: int
    approved_at_ms: int
    tokens: dict[str, DeviceTokenRecord] = attrs.field(factory=dict)
    role: str | None = None
    display_name: str | None = None
    platform: str | None = None
    device_family: str | None = None
    client_id: str | None = None
    client_mode: str | None = None
    remote_ip: str | None = None
    last_seen_at_ms: int | None = None
    last_seen_reason: str | None = None


@closed
@attrs.frozen
class PairedDeviceInfo:
    """A paired device as lists show it: token strings replaced by summaries."""

    device_id: str
    public_key: str
    roles: list[str]
    scopes: list[str]
    created_at_ms: int
    approved_at_ms: int
    tokens: list[DeviceTokenSummary]
    role: str | None = None
    display_name: str | None = None
    platform: str | None = None
    device_family: str | None = None
    client_id: str | None = None
    client_mode: str | None = None
    remote_ip: str | None = None
    last_seen_at_ms: int | None = None
    last_seen_reason: str | None = None
    connected: bool | None = None


@closed
@attrs.frozen
class DevicePairListResult:
    pending: list[PendingDeviceRequest]
    paired: list[PairedDeviceInfo]


@closed
@attrs.frozen
class DevicePairApproveResult:
    request_id: str
    device: PairedDeviceInfo


@closed
@attrs.frozen
class DevicePairRejectResult:
    request_id: str
    device_id: str


@closed
@attrs.frozen
class DeviceIdParams:
    device_id: str = attrs.field(metadata=schema(min_length=1))


@closed
@attrs.frozen
class DeviceIdResult:
    device_id: str


@closed
@attrs.frozen
class DeviceTokenRotateParams:
    device_id: str = attrs.field(metadata=schema(min_length=1))
    role: str = attrs.field(metadata=schema(min_length=1))
    scopes: list[str] | None = attrs.field(
        default=None, metadata=schema(description="default: the token's current scopes")
    )


@closed
@attrs.frozen
class DeviceTokenRotateResult:
    device_id: str
    role: str
    scopes: list[str]
    rotated_at_ms: int
    token_delivery: Literal["in-band", "withheld-cross-device"] = attrs.field(
        metadata=schema(
            description="the token is returned only to the device itself; others get it on "
            "the device's next connect (hello-ok.auth.deviceToken)"
        )
    )
    token: str | None = None


@closed
@attrs.frozen
class DeviceTokenRevokeParams:
    device_id: str = attrs.field(metadata=schema(min_length=1))
    role: str = attrs.field(metadata=schema(min_length=1))


@closed
@attrs.frozen
class DeviceTokenRevokeResult:
    device_id: str
    role: str
    revoked_at_ms: int


@closed
@attrs.frozen
class DevicePairResolvedPayload:
    request_id: str
    device_id: str
    decision: DeviceDecision
    ts: int = attrs.field(metadata=schema(minimum=0))
