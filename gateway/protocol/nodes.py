"""Wire types of the node methods and events (PROTOCOL.md 7.11, 7.12 and section 8).

Operators list, describe and invoke nodes; nodes answer ``node.invoke.request`` events with
``node.invoke.result`` requests and report ``node.event``. The node pairing store
(``node.pair.*``, ``node.rename``) keeps which nodes an operator approved and the token each
one got. Params of node-role methods stay open: node apps add fields faster than gateways.
"""

from __future__ import annotations

from typing import Literal

import attrs

from .model import closed, schema

NodeDecision = Literal["approved", "rejected", "removed", "expired"]


# -- node.list / node.describe -----------------------------------------------------------------


@closed
@attrs.frozen
class NodeInfo:
    """A node as operators see it: paired (even offline) or connected (even unpaired)."""

    node_id: str = attrs.field(metadata=schema(min_length=1))
    caps: list[str]
    commands: list[str] = attrs.field(
        metadata=schema(description="commands node.invoke relays to this node now")
    )
    paired: bool
    connected: bool
    display_name: str | None = None
    platform: str | None = None
    version: str | None = None
    core_version: str | None = None
    ui_version: str | None = None
    device_family: str | None = None
    model_identifier: str | None = None
    remote_ip: str | None = None
    permissions: dict[str, bool] | None = None
    path_env: str | None = None
    connected_at_ms: int | None = None
    approved_at_ms: int | None = None
    last_seen_at_ms: int | None = None
    last_seen_reason: str | None = None
    declared_commands: list[str] | None = attrs.field(
        default=None,
        metadata=schema(description="what the node declared, when it differs from commands"),
    )
    pending_request_id: str | None = attrs.field(
        default=None, metadata=schema(description="only for pairing/admin callers")
    )


@closed
@attrs.frozen
class NodeListResult:
    ts: int = attrs.field(metadata=schema(minimum=0))
    nodes: list[NodeInfo]


@closed
@attrs.frozen
class NodeIdParams:
    node_id: str = attrs.field(metadata=schema(min_length=1))


@closed
@attrs.frozen
class NodeDescription(NodeInfo):
    ts: int = attrs.field(kw_only=True, metadata=schema(minimum=0))


# -- node.invoke and its relay -----------------------------------------------------------------


@attrs.frozen
class NodeInvokeParams:
    node_id: str = attrs.field(metadata=schema(min_length=1))
    command: str = attrs.field(metadata=schema(min_length=1))
    idempotency_key: str = attrs.field(metadata=schema(min_length=1))
    params: object = None
    timeout_ms: int | None = attrs.field(
        default=None,
        metadata=schema(minimum=0, maximum=3_600_000, description="default 30000"),
    )


@closed
@attrs.frozen
class NodeInvokeResult:
    ok: Literal[True]
    node_id: str
    command: str
    payload: object
    payload_json: str | None


@closed
@attrs.frozen
class NodeInvokeRequestPayload:
    """Sent to one node only (no ``seq``): run ``command`` and answer with ``node.invoke.result``."""

    id: str = attrs.field(metadata=schema(min_length=1))
    node_id: str = attrs.field(metadata=schema(min_length=1))
    command: str = attrs.field(metadata=schema(min_length=1))
    params_json: str | None
    timeout_ms: int | None = attrs.field(default=None, metadata=schema(minimum=0))
    idempotency_key: str | None = None


@attrs.frozen
class NodeError:
    code: str | None = None
    message: str | None = None


@attrs.frozen
class NodeInvokeResultParams:
    id: str = attrs.field(metadata=schema(min_length=1))
    node_id: str = attrs.field(metadata=schema(min_length=1))
    ok: bool
    payload: object = None
    payload_json: str | None = None
    error: NodeError | None = None


@closed
@attrs.frozen
class NodeInvokeResultAck:
    ok: bool
    ignored: bool | None = attrs.field(
        default=None, metadata=schema(description="true: no invoke with that id is waiting")
    )


@attrs.frozen
class NodeEventParams:
    event: str = attrs.field(metadata=schema(min_length=1))
    payload: object = None
    payload_json: str | None = None


@closed
@attrs.frozen
class NodeEventResult:
    ok: bool
    event: str
    handled: bool


@closed
@attrs.frozen
class SkillsBinsResult:
    """``skills.bins`` (node role): the binaries the gateway's skills need, for the node
    to look for on its PATH. This gateway has no skills: always empty."""

    bins: list[str]


# -- node pairing ------------------------------------------------------------------------------


@closed
@attrs.frozen
class NodePairRequestParams:
    node_id: str = attrs.field(metadata=schema(min_length=1))
    display_name: str | None = None
    platform: str | None = None
    version: str | None = None
    core_version: str | None = None
    ui_version: str | None = None
    device_family: str | None = None
    model_identifier: str | None = None
    caps: list[str] | None = None
    commands: list[str] | None = None
    remote_ip: str | None = None
    silent: bool | None = None


@attrs.frozen
class PendingNodeRequest:
    request_id: str = attrs.field(metadata=schema(min_length=1))
    node_id: str = attrs.field(metadata=schema(min_length=1))
    is_repair: bool
    ts: int = attrs.field(metadata=schema(minimum=0))
    display_name: str | None = None
    platform: str | None = None
    version: str | None = None
    core_version: str | None = None
    ui_version: str | None = None
    device_family: str | None = None
    model_identifier: str | None = None
    caps: list[str] | None = None
    commands: list[str] | None = None
    permissions: dict[str, bool] | None = None
    remote_ip: str | None = None
    silent: bool | None = None


@attrs.frozen
class PairedNodeInfo:
    """A paired node without its token (lists, describe, verify)."""

    node_id: str = attrs.field(metadata=schema(min_length=1))
    created_at_ms: int = attrs.field(metadata=schema(minimum=0))
    approved_at_ms: int = attrs.field(metadata=schema(minimum=0))
    display_name: str | None = None
    platform: str | None = None
    version: str | None = None
    core_version: str | None = None
    ui_version: str | None = None
    device_family: str | None = None
    model_identifier: str | None = None
    caps: list[str] | None = None
    commands: list[str] | None = None
    bins: list[str] | None = None
    permissions: dict[str, bool] | None = None
    remote_ip: str | None = None
    last_connected_at_ms: int | None = None


@attrs.frozen
class PairedNode(PairedNodeInfo):
    """The stored record; only ``node.pair.approve`` returns it with its token."""

    token: str = attrs.field(kw_only=True, metadata=schema(min_length=1))


@closed
@attrs.frozen
class NodePairRequestResult:
    status: Literal["pending"]
    request: PendingNodeRequest
    created: bool


@closed
@attrs.frozen
class NodePairListResult:
    pending: list[PendingNodeRequest]
    paired: list[PairedNodeInfo]


@closed
@attrs.frozen
class RequestIdParams:
    request_id: str = attrs.field(metadata=schema(min_length=1))


@closed
@attrs.frozen
class NodePairApproveResult:
    request_id: str
    node: PairedNode


@closed
@attrs.frozen
class NodePairRejectResult:
    request_id: str
    node_id: str


@closed
@attrs.frozen
class NodePairVerifyParams:
    node_id: str = attrs.field(metadata=schema(min_length=1))
    token: str = attrs.field(metadata=schema(min_length=1, max_length=256))


@closed
@attrs.frozen
class NodePairVerifyResult:
    ok: bool
    node: PairedNodeInfo | None = None


@closed
@attrs.frozen
class NodeIdResult:
    node_id: str


@closed
@attrs.frozen
class NodeRenameParams:
    node_id: str = attrs.field(metadata=schema(min_length=1))
    display_name: str = attrs.field(metadata=schema(min_length=1, max_length=256))


@closed
@attrs.frozen
class NodeRenameResult:
    node_id: str
    display_name: str


@closed
@attrs.frozen
class NodePairResolvedPayload:
    request_id: str = attrs.field(metadata=schema(description='"" when a paired node is removed'))
    node_id: str
    decision: NodeDecision
    ts: int = attrs.field(metadata=schema(minimum=0))
