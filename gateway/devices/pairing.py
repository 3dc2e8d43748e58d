"""Device pairing: pending requests, paired devices and their per-role tokens. Pure.

The state machine of CONTROL-UI.md section 10, with the clock passed in::

    (unknown) --request--> pending --approve--> paired (+ token for the requested role)
                              |   \\--reject--> (gone)          |
                              |    \\--5 min--> (expired)       +--remove--> (gone)
                              +-- a second request for the device merges into the first

A paired device holds the roles and scopes approved so far; a connect asking for more makes
a new request (``role-upgrade``/``scope-upgrade``). Each approved role has one token
(32 hex); approval and rotation mint a new one, revocation marks it. Tokens are compared in
constant time and never leave this module except through ``hello-ok`` and a device's own
``device.token.rotate``. :class:`~gateway.devices.service.DeviceService` persists the state;
expiry, listing and removal are :class:`~gateway.pairing_store.PairingStore`'s.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from typing import Literal

import attrs

from ..auth import scope_allows
from ..pairing_store import PairingStore, view_of
from ..protocol.devices import (
    DeviceTokenRecord,
    DeviceTokenSummary,
    PairedDevice,
    PairedDeviceInfo,
    PairingReason,
    PendingDeviceRequest,
)
from .identity import normalize_metadata

OPERATOR_PREFIX = "operator."

TokenCheck = Literal["ok", "mismatch", "scope-mismatch"]


def new_token() -> str:
    return secrets.token_hex(16)


def unique_sorted(values: list[str]) -> list[str]:
    return sorted({v.strip() for v in values if v.strip()})


def scopes_allow(requested: list[str], allowed: list[str]) -> bool:
    """Every requested scope is granted by ``allowed`` (admin covers all, write covers read)."""
    return all(scope_allows(allowed, scope) for scope in requested)


def role_scopes(role: str, scopes: list[str]) -> list[str]:
    """The scopes that belong on a token for ``role`` (operator tokens carry operator.*)."""
    if role == "operator":
        return unique_sorted([s for s in scopes if s.startswith(OPERATOR_PREFIX)])
    return unique_sorted([s for s in scopes if not s.startswith(OPERATOR_PREFIX)])


def summarize(device: PairedDevice, *, connected: bool | None = None) -> PairedDeviceInfo:
    tokens = [
        DeviceTokenSummary(
            t.role, t.scopes, t.created_at_ms, t.rotated_at_ms, t.revoked_at_ms, t.last_used_at_ms
        )
        for t in sorted(device.tokens.values(), key=lambda t: t.role)
    ]
    return view_of(PairedDeviceInfo, device, tokens=tokens, connected=connected)


@attrs.frozen
class DeviceClaim:
    """What a verified connect asks for: the identity, the role and scopes, its metadata."""

    device_id: str
    public_key: str
    role: str
    scopes: list[str]
    display_name: str | None = None
    platform: str | None = None
    device_family: str | None = None
    client_id: str | None = None
    client_mode: str | None = None
    remote_ip: str | None = None


def pairing_needed(paired: PairedDevice | None, claim: DeviceClaim) -> PairingReason | None:
    """Why this connect needs an approval first, or ``None`` if the device is approved for it.

    A paired device whose key differs is a different device that reuses the id: not paired.
    """
    if paired is None or paired.public_key != claim.public_key:
        return "not-paired"
    for pinned, claimed in (
        (paired.platform, claim.platform),
        (paired.device_family, claim.device_family),
    ):
        if normalize_metadata(pinned) and normalize_metadata(pinned) != normalize_metadata(claimed):
            return "metadata-upgrade"
    if claim.role not in paired.roles:
        return "role-upgrade"
    if claim.scopes and not scopes_allow(claim.scopes, paired.scopes):
        return "scope-upgrade"
    return None


@attrs.define
class DevicePairing(PairingStore[PendingDeviceRequest, PairedDevice]):
    """Paired devices are keyed by deviceId."""

    def subject_of(self, item: PendingDeviceRequest | PairedDevice) -> str:
        return item.device_id

    # -- pending -----------------------------------------------------------------------------

    def request(
        self, claim: DeviceClaim, reason: PairingReason, now_ms: int, *, silent: bool
    ) -> tuple[PendingDeviceRequest, bool]:
        """Create a pending request, or merge into the device's open one (``created`` False).

        A merged request keeps its id, widens to the union of roles and scopes asked for, and
        its TTL restarts: a device retrying every few seconds keeps its request alive."""
        self.prune(now_ms)
        paired = self.paired.get(claim.device_id)
        same_key = paired is not None and paired.public_key == claim.public_key
        existing = self.pending_for(claim.device_id)
        if existing is not None and existing.public_key == claim.public_key:
            merged = attrs.evolve(
                existing,
                role=claim.role,
                roles=unique_sorted([*existing.roles, claim.role]),
                scopes=unique_sorted([*existing.scopes, *claim.scopes]),
                reason=reason,
                ts=now_ms,
                silent=bool(existing.silent) and silent,
                remote_ip=claim.remote_ip,
            )
            self.pending[merged.request_id] = merged
            return merged, False
        if existing is not None:  # another key claims this id: the newest claim replaces it
            del self.pending[existing.request_id]
        base_roles = paired.roles if paired is not None and same_key else []
        base_scopes = paired.scopes if paired is not None and same_key else []
        request = PendingDeviceRequest(
            request_id=str(uuid.uuid4()),
            device_id=claim.device_id,
            public_key=claim.public_key,
            role=claim.role,
            roles=unique_sorted([*base_roles, claim.role]),
            scopes=unique_sorted([*base_scopes, *claim.scopes]),
            is_repair=paired is not None,
            ts=now_ms,
            reason=reason,
            display_name=claim.display_name,
            platform=claim.platform,
            device_family=claim.device_family,
            client_id=claim.client_id,
            client_mode=claim.client_mode,
            remote_ip=claim.remote_ip,
            silent=silent,
        )
        self.pending[request.request_id] = request
        return request, True

    def approve(self, request_id: str, now_ms: int) -> PairedDevice | None:
        """Pair (or widen) the device and mint a fresh token for the requested role."""
        self.prune(now_ms)
        request = self.pending.pop(request_id, None)
        if request is None:
            return None
        old = self.paired.get(request.device_id)
        keep = old is not None and old.public_key == request.public_key
        roles = unique_sorted([*(old.roles if keep and old else []), *request.roles])
        scopes = unique_sorted([*(old.scopes if keep and old else []), *request.scopes])
        tokens = dict(old.tokens) if keep and old else {}
        previous = tokens.get(request.role)
        tokens[request.role] = DeviceTokenRecord(
            token=new_token(),
            role=request.role,
            scopes=role_scopes(request.role, scopes),
            created_at_ms=previous.created_at_ms if previous else now_ms,
            rotated_at_ms=now_ms if previous else None,
            last_used_at_ms=previous.last_used_at_ms if previous else None,
        )
        device = PairedDevice(
            device_id=request.device_id,
            public_key=request.public_key,
            roles=roles,
            scopes=scopes,
            created_at_ms=old.created_at_ms if keep and old else now_ms,
            approved_at_ms=now_ms,
            tokens=tokens,
            role=request.role,
            display_name=request.display_name,
            platform=request.platform,
            device_family=request.device_family,
            client_id=request.client_id,
            client_mode=request.client_mode,
            remote_ip=request.remote_ip,
            last_seen_at_ms=old.last_seen_at_ms if keep and old else None,
            last_seen_reason=old.last_seen_reason if keep and old else None,
        )
        self.paired[device.device_id] = device
        return device

    # -- paired ------------------------------------------------------------------------------

    def drop_role(self, device_id: str, role: str) -> bool:
        """Withdraw one role (and its token); a device left with no role is removed."""
        device = self.paired.get(device_id)
        if device is None or role not in device.roles:
            return False
        roles = [r for r in device.roles if r != role]
        if not roles:
            self.remove(device_id)
            return True
        tokens = {k: v for k, v in device.tokens.items() if k != role}
        self.paired[device_id] = attrs.evolve(
            device,
            roles=roles,
            tokens=tokens,
            role=roles[0] if device.role == role else device.role,
        )
        return True

    def seen(self, device_id: str, now_ms: int, reason: str, remote_ip: str | None) -> None:
        device = self.paired.get(device_id)
        if device is not None:
            self.paired[device_id] = attrs.evolve(
                device, last_seen_at_ms=now_ms, last_seen_reason=reason, remote_ip=remote_ip
            )

    # -- tokens ------------------------------------------------------------------------------

    def ensure_token(
        self, device_id: str, role: str, scopes: list[str], now_ms: int
    ) -> DeviceTokenRecord | None:
        """The device's token for ``role``: the current one if it covers ``scopes``, else a
        new one for exactly those scopes. ``None`` if the device is not paired for the role."""
        device = self.paired.get(device_id)
        if device is None or role not in device.roles:
            return None
        wanted = role_scopes(role, scopes)
        current = device.tokens.get(role)
        if (
            current is not None
            and current.revoked_at_ms is None
            and scopes_allow(wanted, current.scopes)
        ):
            fresh = attrs.evolve(current, last_used_at_ms=now_ms)
        else:
            fresh = DeviceTokenRecord(
                token=new_token(),
                role=role,
                scopes=wanted,
                created_at_ms=current.created_at_ms if current else now_ms,
                rotated_at_ms=now_ms if current else None,
                last_used_at_ms=now_ms,
            )
        self._put_token(device, fresh)
        return fresh

    def check_token(
        self, device_id: str, role: str, presented: str, scopes: list[str]
    ) -> tuple[TokenCheck, DeviceTokenRecord | None]:
        """Device-token auth: constant-time compare, not revoked, ``scopes`` within the token's."""
        device = self.paired.get(device_id)
        record = device.tokens.get(role) if device is not None else None
        expected = record.token if record is not None else new_token()  # compare anyway
        matches = hmac.compare_digest(presented.encode(), expected.encode())
        if record is None or not matches or record.revoked_at_ms is not None:
            return "mismatch", None
        if not scopes_allow(role_scopes(role, scopes), record.scopes):
            return "scope-mismatch", record
        return "ok", record

    def rotate(
        self, device_id: str, role: str, scopes: list[str] | None, now_ms: int
    ) -> DeviceTokenRecord | str:
        """A new token for ``role``; the reason as a string when it is refused."""
        device = self.paired.get(device_id)
        if device is None:
            return "unknown deviceId"
        if role not in device.roles:
            return f"device is not paired for role {role}"
        current = device.tokens.get(role)
        wanted = role_scopes(
            role,
            scopes if scopes is not None else (current.scopes if current else device.scopes),
        )
        if role == "operator" and not scopes_allow(wanted, device.scopes):
            return "requested scopes exceed the device's approved scopes"
        record = DeviceTokenRecord(
            token=new_token(),
            role=role,
            scopes=wanted,
            created_at_ms=current.created_at_ms if current else now_ms,
            rotated_at_ms=now_ms,
            last_used_at_ms=current.last_used_at_ms if current else None,
        )
        self._put_token(device, record)
        return record

    def revoke(self, device_id: str, role: str, now_ms: int) -> DeviceTokenRecord | str:
        device = self.paired.get(device_id)
        if device is None:
            return "unknown deviceId"
        current = device.tokens.get(role)
        if current is None:
            return f"device has no token for role {role}"
        record = attrs.evolve(current, revoked_at_ms=current.revoked_at_ms or now_ms)
        self._put_token(device, record)
        return record

    def _put_token(self, device: PairedDevice, record: DeviceTokenRecord) -> None:
        tokens = {**device.tokens, record.role: record}
        self.paired[device.device_id] = attrs.evolve(device, tokens=tokens)
