"""Device pairing methods: device.pair.list|approve|reject|remove, device.token.rotate|revoke.

CONTROL-UI.md section 10; all need ``operator.pairing``. Approving a request also needs every
scope it asks for: an operator cannot mint a device more powerful than itself. A rotated token
is returned only to the device itself; another operator's rotation is delivered to the device
in ``hello-ok.auth.deviceToken`` on its next connect.
"""

from __future__ import annotations

from ..auth import PAIRING, scope_allows
from ..devices.pairing import summarize
from ..errors import RpcError
from ..protocol.devices import (
    DeviceIdParams,
    DeviceIdResult,
    DevicePairApproveResult,
    DevicePairListResult,
    DevicePairRejectResult,
    DeviceTokenRevokeParams,
    DeviceTokenRevokeResult,
    DeviceTokenRotateParams,
    DeviceTokenRotateResult,
)
from ..protocol.frames import ErrorCode
from ..protocol.nodes import RequestIdParams
from ..protocol.system import EmptyParams
from .registry import CallContext, method


def _unknown_request() -> RpcError:
    return RpcError(ErrorCode.INVALID_REQUEST, "unknown requestId")


def _unknown_device(device_id: str) -> RpcError:
    return RpcError(ErrorCode.INVALID_REQUEST, "unknown deviceId", details={"deviceId": device_id})


def _refused(action: str, reason: str, device_id: str, role: str) -> RpcError:
    """The error for a token change the store refused (``reason`` is its refusal)."""
    if reason == "unknown deviceId":
        return _unknown_device(device_id)
    return RpcError(
        ErrorCode.INVALID_REQUEST,
        f"device token {action} denied: {reason}",
        details={"deviceId": device_id, "role": role},
    )


@method("device.pair.list", params=EmptyParams, result=DevicePairListResult, scope=PAIRING)
async def device_pair_list(ctx: CallContext, params: EmptyParams) -> DevicePairListResult:
    devices = ctx.runtime.devices
    if devices.prune():
        await devices.save()
    pending, paired = devices.pairing.listing(ctx.runtime.now_ms())
    return DevicePairListResult(
        pending, [summarize(d, connected=devices.connected(d.device_id)) for d in paired]
    )


@method(
    "device.pair.approve", params=RequestIdParams, result=DevicePairApproveResult, scope=PAIRING
)
async def device_pair_approve(ctx: CallContext, params: RequestIdParams) -> DevicePairApproveResult:
    devices = ctx.runtime.devices
    devices.prune()
    request_id = params.request_id.strip()
    request = devices.pairing.pending.get(request_id)
    if request is None:
        raise _unknown_request()
    missing = [s for s in request.scopes if not scope_allows(ctx.peer.scopes, s)]
    if missing:
        raise RpcError(
            ErrorCode.FORBIDDEN,
            f"missing scope: {missing[0]}",
            details={
                "code": "MISSING_SCOPE",
                "missingScope": missing[0],
                "requiredScopes": missing,
                "reason": "a device cannot be granted scopes the approving operator lacks",
            },
        )
    device = await devices.approve(request_id)
    if device is None:
        raise _unknown_request()
    return DevicePairApproveResult(
        request_id, summarize(device, connected=devices.connected(device.device_id))
    )


@method("device.pair.reject", params=RequestIdParams, result=DevicePairRejectResult, scope=PAIRING)
async def device_pair_reject(ctx: CallContext, params: RequestIdParams) -> DevicePairRejectResult:
    request = await ctx.runtime.devices.reject(params.request_id.strip())
    if request is None:
        raise _unknown_request()
    return DevicePairRejectResult(request.request_id, request.device_id)


@method("device.pair.remove", params=DeviceIdParams, result=DeviceIdResult, scope=PAIRING)
async def device_pair_remove(ctx: CallContext, params: DeviceIdParams) -> DeviceIdResult:
    device_id = params.device_id.strip()
    if await ctx.runtime.devices.remove(device_id) is None:
        raise _unknown_device(device_id)
    return DeviceIdResult(device_id)


@method(
    "device.token.rotate",
    params=DeviceTokenRotateParams,
    result=DeviceTokenRotateResult,
    scope=PAIRING,
)
async def device_token_rotate(
    ctx: CallContext, params: DeviceTokenRotateParams
) -> DeviceTokenRotateResult:
    device_id, role = params.device_id.strip(), params.role.strip()
    record = await ctx.runtime.devices.rotate(device_id, role, params.scopes, caller=ctx.peer)
    if isinstance(record, str):
        raise _refused("rotation", record, device_id, role)
    own = ctx.peer.device_id == device_id
    return DeviceTokenRotateResult(
        device_id=device_id,
        role=record.role,
        scopes=record.scopes,
        rotated_at_ms=record.rotated_at_ms or record.created_at_ms,
        token_delivery="in-band" if own else "withheld-cross-device",
        token=record.token if own else None,
    )


@method(
    "device.token.revoke",
    params=DeviceTokenRevokeParams,
    result=DeviceTokenRevokeResult,
    scope=PAIRING,
)
async def device_token_revoke(
    ctx: CallContext, params: DeviceTokenRevokeParams
) -> DeviceTokenRevokeResult:
    device_id, role = params.device_id.strip(), params.role.strip()
    record = await ctx.runtime.devices.revoke(device_id, role)
    if isinstance(record, str):
        raise _refused("revocation", record, device_id, role)
    return DeviceTokenRevokeResult(device_id, record.role, record.revoked_at_ms or 0)
