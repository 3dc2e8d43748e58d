"""The node pairing store (PROTOCOL.md 7.12): pending requests and paired nodes. Pure.

    (unknown) --request--> pending --approve--> paired (+ token, 32 hex)
                              |   \\--reject--> (gone)
                              +--5 min after the last retry--> expired
    paired --remove--> (gone);  paired --rename--> paired

One pending request per node: asking again returns the open one (``created`` False) with its
TTL restarted and its surface refreshed. Approval records the surface (caps, commands) the
node is approved for; a node that later declares more gets a new request, and only the
approved commands are relayed meanwhile. Tokens are compared in constant time and returned
only by ``approve``. The clock is passed in; :mod:`gateway.nodes.service` persists.
"""

from __future__ import annotations

import hmac
import secrets
import uuid

import attrs

from ..pairing_store import PairingStore, view_of
from ..protocol.nodes import PairedNode, PairedNodeInfo, PendingNodeRequest


@attrs.frozen
class NodeSurface:
    """What a node says about itself when it asks to be paired."""

    node_id: str
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


def public(node: PairedNode) -> PairedNodeInfo:
    """The record without its token."""
    return view_of(PairedNodeInfo, node)


def covers(approved: list[str] | None, wanted: list[str] | None) -> bool:
    return set(wanted or ()) <= set(approved or ())


@attrs.define
class NodePairing(PairingStore[PendingNodeRequest, PairedNode]):
    """Paired nodes are keyed by nodeId."""

    def subject_of(self, item: PendingNodeRequest | PairedNode) -> str:
        return item.node_id

    def surface_approved(self, surface: NodeSurface) -> bool:
        """Paired, and approved for every cap and command this surface declares."""
        node = self.paired.get(surface.node_id)
        return (
            node is not None
            and covers(node.caps, surface.caps)
            and covers(node.commands, surface.commands)
        )

    def request(
        self, surface: NodeSurface, now_ms: int, *, silent: bool = False
    ) -> tuple[PendingNodeRequest, bool]:
        self.prune(now_ms)
        existing = self.pending_for(surface.node_id)
        fields = attrs.asdict(surface, recurse=False)
        if existing is not None:
            refreshed = attrs.evolve(
                existing,
                **{k: v for k, v in fields.items() if v is not None},
                ts=now_ms,
            )
            self.pending[refreshed.request_id] = refreshed
            return refreshed, False
        request = PendingNodeRequest(
            request_id=str(uuid.uuid4()),
            is_repair=surface.node_id in self.paired,
            ts=now_ms,
            silent=silent or None,
            **fields,
        )
        self.pending[request.request_id] = request
        return request, True

    def approve(self, request_id: str, now_ms: int) -> PairedNode | None:
        self.prune(now_ms)
        request = self.pending.pop(request_id, None)
        if request is None:
            return None
        old = self.paired.get(request.node_id)
        node = PairedNode(
            node_id=request.node_id,
            token=secrets.token_hex(16),
            created_at_ms=old.created_at_ms if old else now_ms,
            approved_at_ms=now_ms,
            display_name=request.display_name or (old.display_name if old else None),
            platform=request.platform,
            version=request.version,
            core_version=request.core_version,
            ui_version=request.ui_version,
            device_family=request.device_family,
            model_identifier=request.model_identifier,
            caps=request.caps,
            commands=request.commands,
            bins=old.bins if old else None,
            permissions=request.permissions,
            remote_ip=request.remote_ip,
            last_connected_at_ms=old.last_connected_at_ms if old else None,
        )
        self.paired[node.node_id] = node
        return node

    def verify(self, node_id: str, token: str) -> PairedNode | None:
        node = self.paired.get(node_id)
        expected = node.token if node is not None else secrets.token_hex(16)
        ok = hmac.compare_digest(token.encode(), expected.encode())
        return node if node is not None and ok else None

    def rename(self, node_id: str, display_name: str) -> PairedNode | None:
        node = self.paired.get(node_id)
        if node is None:
            return None
        renamed = attrs.evolve(node, display_name=display_name)
        self.paired[node_id] = renamed
        return renamed

    def connected(self, node_id: str, now_ms: int, remote_ip: str | None) -> None:
        node = self.paired.get(node_id)
        if node is not None:
            self.paired[node_id] = attrs.evolve(
                node, last_connected_at_ms=now_ms, remote_ip=remote_ip or node.remote_ip
            )
