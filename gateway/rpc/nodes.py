"""Node methods: node.list, node.describe, node.invoke (operators); node.invoke.result,
node.event, skills.bins (nodes). PROTOCOL.md 6.1, 7.11."""

from __future__ import annotations

import logging

import attrs

from ..auth import ADMIN, PAIRING, READ, WRITE, scope_allows
from ..errors import RpcError
from ..nodes.policy import ADMIN_COMMANDS
from ..nodes.relay import Outcome
from ..protocol.codec import loads
from ..protocol.frames import ErrorCode
from ..protocol.nodes import (
    NodeDescription,
    NodeEventParams,
    NodeEventResult,
    NodeIdParams,
    NodeInfo,
    NodeInvokeParams,
    NodeInvokeResult,
    NodeInvokeResultAck,
    NodeInvokeResultParams,
    NodeListResult,
    SkillsBinsResult,
)
from ..protocol.system import EmptyParams, PresenceEntry
from .registry import CallContext, method

log = logging.getLogger("gateway.nodes")

KNOWN_NODE_EVENTS = frozenset({"node.presence.alive"})


def _sees_pending(ctx: CallContext) -> bool:
    return scope_allows(ctx.peer.scopes, PAIRING)


@method("node.list", params=EmptyParams, result=NodeListResult, scope=READ)
async def node_list(ctx: CallContext, params: EmptyParams) -> NodeListResult:
    rt = ctx.runtime
    return NodeListResult(rt.now_ms(), rt.nodes.rows(with_pending=_sees_pending(ctx)))


@method("node.describe", params=NodeIdParams, result=NodeDescription, scope=READ)
async def node_describe(ctx: CallContext, params: NodeIdParams) -> NodeDescription:
    rt = ctx.runtime
    nodes = rt.nodes
    pending = nodes.pairing.pending_for(params.node_id) if _sees_pending(ctx) else None
    row = nodes.row(params.node_id, pending.request_id if pending else None)
    if row is None:
        raise RpcError(
            ErrorCode.INVALID_REQUEST, "unknown nodeId", details={"nodeId": params.node_id}
        )
    fields = {a.name: getattr(row, a.name) for a in attrs.fields(NodeInfo)}
    return NodeDescription(**fields, ts=rt.now_ms())


def _not_allowed(message: str, reason: str, command: str, **extra: object) -> RpcError:
    return RpcError(
        ErrorCode.INVALID_REQUEST, message, details={"reason": reason, "command": command, **extra}
    )


@method("node.invoke", params=NodeInvokeParams, result=NodeInvokeResult, scope=WRITE)
async def node_invoke(ctx: CallContext, params: NodeInvokeParams) -> NodeInvokeResult:
    rt = ctx.runtime
    nodes = rt.nodes
    node_id, command = params.node_id.strip(), params.command.strip()
    session = nodes.relay.sessions.get(node_id)
    if session is None:
        raise RpcError(
            ErrorCode.UNAVAILABLE,
            "node not connected",
            details={
                "code": "NOT_CONNECTED",
                "nodeId": node_id,
                "nodeError": {"code": "NOT_CONNECTED", "message": "node not connected"},
            },
        )
    client = session.client
    refusal = nodes.policy().refusal(
        command, session.declared, client.platform, client.device_family
    )
    if refusal is not None:
        raise _not_allowed(refusal[1], refusal[0], command)
    approved = nodes.approved_commands(node_id)
    if approved is None or command not in approved:
        pending = nodes.pairing.pending_for(node_id)
        hint = (
            f"; run `smart-agent-neo nodes approve {pending.request_id}`"
            if pending is not None
            else "; run `smart-agent-neo nodes pending`"
        )
        if approved is None:
            message, reason = (
                "node command not allowed: the node is not paired" + hint,
                "node not paired",
            )
        else:
            message = f'node command not allowed: "{command}" is not approved for this node' + hint
            reason = "command not approved"
        extra = {"requestId": pending.request_id} if pending is not None else {}
        raise _not_allowed(message, reason, command, **extra)
    if command in ADMIN_COMMANDS and not scope_allows(ctx.peer.scopes, ADMIN):
        raise RpcError(
            ErrorCode.FORBIDDEN,
            f"missing scope: {ADMIN}",
            details={
                "code": "MISSING_SCOPE",
                "missingScope": ADMIN,
                "requiredScopes": [ADMIN],
                "command": command,
            },
        )
    outcome = await nodes.relay.invoke(
        session,
        command,
        params.params,
        timeout_ms=params.timeout_ms,
        idempotency_key=params.idempotency_key,
        now_ms=rt.now_ms(),
    )
    if not outcome.ok:
        raise _node_failure(outcome)
    payload = _parse(outcome.payload_json) if outcome.payload_json is not None else outcome.payload
    return NodeInvokeResult(True, node_id, command, payload, outcome.payload_json)


def _parse(text: str) -> object:
    try:
        return loads(text)
    except ValueError:
        return None


def _node_failure(outcome: Outcome) -> RpcError:
    """UNAVAILABLE with the node's own message (or ours: timeout, disconnect)."""
    error = outcome.error or {}
    message = error.get("message")
    text = message.strip() if isinstance(message, str) and message.strip() else "node invoke failed"
    return RpcError(ErrorCode.UNAVAILABLE, text, details={"nodeError": outcome.error})


@method(
    "node.invoke.result", params=NodeInvokeResultParams, result=NodeInvokeResultAck, role="node"
)
async def node_invoke_result(
    ctx: CallContext, params: NodeInvokeResultParams
) -> NodeInvokeResultAck:
    relay = ctx.runtime.nodes.relay
    session = relay.session_of(ctx.peer)
    if session is not None and session.node_id != params.node_id:
        raise RpcError(ErrorCode.INVALID_REQUEST, "nodeId mismatch")
    if not relay.resolve(params, ctx.peer):
        log.debug("late or unknown invoke result ignored: id=%s node=%s", params.id, params.node_id)
        return NodeInvokeResultAck(True, ignored=True)
    return NodeInvokeResultAck(True)


@method("node.event", params=NodeEventParams, result=NodeEventResult, role="node")
async def node_event(ctx: CallContext, params: NodeEventParams) -> NodeEventResult:
    """``node.presence.alive`` refreshes the node's presence entry (``lastInputSeconds`` too,
    when the payload has it); other events are acknowledged and logged, not acted on."""
    rt, peer = ctx.runtime, ctx.peer
    session = rt.nodes.relay.session_of(peer)
    node_id = session.node_id if session is not None else peer.client_id
    log.debug("node event %s from %s", params.event, node_id)
    handled = params.event in KNOWN_NODE_EVENTS
    if params.event == "node.presence.alive" and peer.presence_key is not None:
        payload = _parse(params.payload_json) if params.payload_json else params.payload
        idle = payload.get("lastInputSeconds") if isinstance(payload, dict) else None
        idle_ok = isinstance(idle, int) and not isinstance(idle, bool) and idle >= 0
        entry = PresenceEntry(ts=rt.now_ms(), last_input_seconds=idle if idle_ok else None)
        rt.presence.upsert(peer.presence_key, entry)
        rt.presence_changed()
    return NodeEventResult(True, params.event, handled)


@method("skills.bins", params=EmptyParams, result=SkillsBinsResult, role="node")
async def skills_bins(ctx: CallContext, params: EmptyParams) -> SkillsBinsResult:
    """PROTOCOL.md 6.1: a node asks which skill binaries to probe for; there are none."""
    return SkillsBinsResult(bins=[])
