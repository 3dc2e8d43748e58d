"""Node pairing methods: node.pair.request|list|approve|reject|verify|remove, node.rename.

PROTOCOL.md 7.12. All need ``operator.pairing``; approving a node that declares commands also
needs ``operator.write``, and one that declares commands that run programs or reach files on
its machine needs ``operator.admin`` (6.3).
"""

from __future__ import annotations

from ..auth import ADMIN, PAIRING, WRITE, scope_allows
from ..errors import RpcError
from ..nodes.pairing import NodeSurface, public
from ..nodes.policy import ADMIN_TO_APPROVE, never_relayed
from ..protocol.frames import ErrorCode
from ..protocol.nodes import (
    NodeIdParams,
    NodeIdResult,
    NodePairApproveResult,
    NodePairListResult,
    NodePairRejectResult,
    NodePairRequestParams,
    NodePairRequestResult,
    NodePairVerifyParams,
    NodePairVerifyResult,
    NodeRenameParams,
    NodeRenameResult,
    PendingNodeRequest,
    RequestIdParams,
)
from ..protocol.system import EmptyParams
from .registry import CallContext, method


def _unknown_request() -> RpcError:
    return RpcError(ErrorCode.INVALID_REQUEST, "unknown requestId")


def _required_scope(request: PendingNodeRequest) -> str:
    """What approving this request needs beyond operator.pairing (PROTOCOL.md 6.3)."""
    commands = request.commands or []
    if any(c in ADMIN_TO_APPROVE or never_relayed(c) for c in commands):
        return ADMIN
    return WRITE if commands else PAIRING


@method(
    "node.pair.request", params=NodePairRequestParams, result=NodePairRequestResult, scope=PAIRING
)
async def node_pair_request(
    ctx: CallContext, params: NodePairRequestParams
) -> NodePairRequestResult:
    nodes = ctx.runtime.nodes
    surface = NodeSurface(
        node_id=params.node_id.strip(),
        display_name=params.display_name,
        platform=params.platform,
        version=params.version,
        core_version=params.core_version,
        ui_version=params.ui_version,
        device_family=params.device_family,
        model_identifier=params.model_identifier,
        caps=params.caps,
        commands=params.commands,
        remote_ip=params.remote_ip,
    )
    nodes.prune()
    request, created = nodes.pairing.request(
        surface, ctx.runtime.now_ms(), silent=bool(params.silent)
    )
    await nodes.save()
    if created:
        nodes.requested(request)
    return NodePairRequestResult("pending", request, created)


@method("node.pair.list", params=EmptyParams, result=NodePairListResult, scope=PAIRING)
async def node_pair_list(ctx: CallContext, params: EmptyParams) -> NodePairListResult:
    nodes = ctx.runtime.nodes
    nodes.prune()
    pending, paired = nodes.pairing.listing(ctx.runtime.now_ms())
    return NodePairListResult(pending, [public(n) for n in paired])


@method("node.pair.approve", params=RequestIdParams, result=NodePairApproveResult, scope=PAIRING)
async def node_pair_approve(ctx: CallContext, params: RequestIdParams) -> NodePairApproveResult:
    rt = ctx.runtime
    nodes = rt.nodes
    nodes.prune()
    request_id = params.request_id.strip()
    request = nodes.pairing.pending.get(request_id)
    if request is None:
        raise _unknown_request()
    needed = _required_scope(request)
    if not scope_allows(ctx.peer.scopes, needed):
        raise RpcError(
            ErrorCode.FORBIDDEN,
            f"missing scope: {needed}",
            details={"code": "MISSING_SCOPE", "missingScope": needed, "requiredScopes": [needed]},
        )
    node = nodes.pairing.approve(request_id, rt.now_ms())
    if node is None:
        raise _unknown_request()
    await nodes.save()
    nodes.resolved(request_id, node.node_id, "approved")
    return NodePairApproveResult(request_id, node)


@method("node.pair.reject", params=RequestIdParams, result=NodePairRejectResult, scope=PAIRING)
async def node_pair_reject(ctx: CallContext, params: RequestIdParams) -> NodePairRejectResult:
    nodes = ctx.runtime.nodes
    nodes.prune()
    request = nodes.pairing.reject(params.request_id.strip())
    if request is None:
        raise _unknown_request()
    await nodes.save()
    nodes.resolved(request.request_id, request.node_id, "rejected")
    return NodePairRejectResult(request.request_id, request.node_id)


@method("node.pair.verify", params=NodePairVerifyParams, result=NodePairVerifyResult, scope=PAIRING)
async def node_pair_verify(ctx: CallContext, params: NodePairVerifyParams) -> NodePairVerifyResult:
    node = ctx.runtime.nodes.pairing.verify(params.node_id.strip(), params.token)
    return NodePairVerifyResult(True, public(node)) if node else NodePairVerifyResult(False)


@method("node.pair.remove", params=NodeIdParams, result=NodeIdResult, scope=PAIRING)
async def node_pair_remove(ctx: CallContext, params: NodeIdParams) -> NodeIdResult:
    rt = ctx.runtime
    nodes = rt.nodes
    node_id = params.node_id.strip()
    if nodes.pairing.remove(node_id) is None:
        raise RpcError(ErrorCode.INVALID_REQUEST, "unknown nodeId", details={"nodeId": node_id})
    await nodes.save()
    # a device-backed node also loses its device approval for the node role, or it would be
    # approved again on its next connect
    if rt.devices.pairing.drop_role(node_id, "node"):
        await rt.devices.save()
    nodes.resolved("", node_id, "removed")
    nodes.disconnect(node_id, "node pairing removed")
    return NodeIdResult(node_id)


@method("node.rename", params=NodeRenameParams, result=NodeRenameResult, scope=PAIRING)
async def node_rename(ctx: CallContext, params: NodeRenameParams) -> NodeRenameResult:
    nodes = ctx.runtime.nodes
    name = params.display_name.strip()
    if not name:
        raise RpcError(ErrorCode.INVALID_REQUEST, "displayName required")
    node_id = params.node_id.strip()
    if nodes.pairing.rename(node_id, name) is None:
        raise RpcError(ErrorCode.INVALID_REQUEST, "unknown nodeId", details={"nodeId": node_id})
    await nodes.save()
    return NodeRenameResult(node_id, name)
