"""DeviceService: the device pairing store on disk, its events, and who it disconnects.

Owns one :class:`~gateway.devices.pairing.DevicePairing` loaded from
``<state>/devices/pending.json`` and ``paired.json`` (maps keyed by requestId / deviceId,
0600, written atomically after every change). Mutations happen on the trio thread without
an await in between, so two requests never interleave inside one change; the write that
follows is queued in order (``StateFile``).

Events go to operators holding ``operator.pairing``: ``device.pair.requested`` when a request
is created, ``device.pair.resolved`` when one is approved, rejected or expires. Removing a
device or rotating/revoking one of its tokens closes that device's open connections (for that
role) with 4001 ``client invalidated: <reason>``: a credential that was withdrawn must not
keep a session alive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import attrs

from ..auth import PAIRING
from ..events import Hub, Peer
from ..pairing_store import PairingFiles, PairingService
from ..protocol import events as ev
from ..protocol.devices import (
    DevicePairResolvedPayload,
    DeviceTokenRecord,
    PairedDevice,
    PendingDeviceRequest,
)
from ..protocol.frames import CloseCode
from .pairing import DevicePairing

log = logging.getLogger("gateway.devices")

Clock = Callable[[], int]


@attrs.define(eq=False)
class DeviceService(PairingService[PendingDeviceRequest, PairedDevice]):
    state_dir: Path
    hub: Hub
    now_ms: Clock
    pairing: DevicePairing = attrs.field(init=False)
    _files: PairingFiles = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._files = PairingFiles(self.state_dir / "devices")
        self.pairing = DevicePairing()
        self._files.load(self.pairing, PendingDeviceRequest, PairedDevice)

    # -- events ------------------------------------------------------------------------------

    def requested(self, request: PendingDeviceRequest) -> None:
        log.info(
            "device pairing requested: device %s (%s) wants %s %s, from %s; request %s",
            request.device_id[:12],
            request.client_id or "?",
            request.role,
            ",".join(request.scopes) or "no scopes",
            request.remote_ip or "?",
            request.request_id,
        )
        self.hub.broadcast(ev.DEVICE_PAIR_REQUESTED, request, scope=PAIRING)

    def resolved(self, request_id: str, device_id: str, decision: str) -> None:
        log.info("device pairing %s: device %s, request %s", decision, device_id[:12], request_id)
        payload = DevicePairResolvedPayload(request_id, device_id, decision, self.now_ms())  # type: ignore[arg-type]
        self.hub.broadcast(ev.DEVICE_PAIR_RESOLVED, payload, scope=PAIRING)

    # -- connections -------------------------------------------------------------------------

    def connected(self, device_id: str) -> bool:
        return any(p.device_id == device_id for p in self.hub.peers.values())

    def invalidate(
        self,
        device_id: str,
        reason: str,
        role: str | None = None,
        *,
        token_sessions_only: bool = False,
        keep: Peer | None = None,
    ) -> int:
        """Close the device's connections (for ``role`` only, if given; with
        ``token_sessions_only``, only those that signed in with the device token); how many."""
        closed = 0
        for peer in list(self.hub.peers.values()):
            if peer is keep or peer.device_id != device_id:
                continue
            if role is not None and peer.role != role:
                continue
            if not token_sessions_only or peer.auth_method == "device-token":
                peer.close(CloseCode.CLIENT_INVALIDATED, f"client invalidated: {reason}")
                closed += 1
        if closed:
            log.info("closed %d connection(s) of device %s: %s", closed, device_id, reason)
        return closed

    # -- operator actions (each saves before returning) ------------------------------------------

    async def approve(self, request_id: str) -> PairedDevice | None:
        self.prune()
        device = self.pairing.approve(request_id, self.now_ms())
        if device is None:
            return None
        await self.save()
        self.resolved(request_id, device.device_id, "approved")
        return device

    async def reject(self, request_id: str) -> PendingDeviceRequest | None:
        self.prune()
        request = self.pairing.reject(request_id)
        if request is None:
            return None
        await self.save()
        self.resolved(request_id, request.device_id, "rejected")
        return request

    async def remove(self, device_id: str) -> PairedDevice | None:
        device = self.pairing.remove(device_id)
        if device is None:
            return None
        await self.save()
        self.invalidate(device_id, "device removed")
        return device

    async def rotate(
        self, device_id: str, role: str, scopes: list[str] | None, *, caller: Peer | None = None
    ) -> DeviceTokenRecord | str:
        record = self.pairing.rotate(device_id, role, scopes, self.now_ms())
        if isinstance(record, str):
            return record
        await self.save()
        # sessions that signed in with the old token lose it; shared-secret ones keep going
        self.invalidate(
            device_id, "device token rotated", role, token_sessions_only=True, keep=caller
        )
        return record

    async def revoke(self, device_id: str, role: str) -> DeviceTokenRecord | str:
        record = self.pairing.revoke(device_id, role, self.now_ms())
        if isinstance(record, str):
            return record
        await self.save()
        self.invalidate(device_id, "device token revoked", role)
        return record
