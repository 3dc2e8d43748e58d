"""NodeService: node pairing on disk, connected nodes, and what operators may relay to them.

The node pairing store lives in ``<state>/nodes/pending.json`` and ``paired.json`` (maps
keyed by requestId / nodeId, 0600, atomic). A node that connects is registered with the
relay, and its declared surface (caps, commands) is checked against what was approved:

* not yet approved and connecting from this machine (local direct), or connecting for the
  first time with a device identity a person or the loopback rule already approved: the
  surface is approved on the spot (``node.pair.resolved`` approved);
* otherwise a pending request is made (``node.pair.requested``), and until someone runs
  ``nodes approve`` only the commands approved before are relayed.

A command is relayed when the node is connected, declared it, the command policy allows it
(:mod:`gateway.nodes.policy`, read from the live config so a reload applies to the next
call) and it is within the node's approved surface.
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
from ..protocol.frames import CloseCode
from ..protocol.handshake import ConnectParams
from ..protocol.nodes import (
    NodeInfo,
    NodePairResolvedPayload,
    PairedNode,
    PendingNodeRequest,
)
from .pairing import NodePairing, NodeSurface
from .policy import CommandPolicy, never_relayed
from .relay import NodeRelay, NodeSession

log = logging.getLogger("gateway.nodes")

Clock = Callable[[], int]


@attrs.define(eq=False)
class NodeService(PairingService[PendingNodeRequest, PairedNode]):
    state_dir: Path
    hub: Hub
    now_ms: Clock
    policy: Callable[[], CommandPolicy]  # the live config's allow/deny lists
    relay: NodeRelay = attrs.field(init=False)
    pairing: NodePairing = attrs.field(init=False)
    _files: PairingFiles = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.relay = NodeRelay(self.hub)
        self._files = PairingFiles(self.state_dir / "nodes")
        self.pairing = NodePairing()
        self._files.load(self.pairing, PendingNodeRequest, PairedNode)

    # -- events ------------------------------------------------------------------------------

    def requested(self, request: PendingNodeRequest) -> None:
        log.info(
            "node pairing requested: node %s (%s), commands %s; request %s",
            request.node_id[:12],
            request.display_name or "?",
            ",".join(request.commands or []) or "none",
            request.request_id,
        )
        self.hub.broadcast(ev.NODE_PAIR_REQUESTED, request, scope=PAIRING)

    def resolved(self, request_id: str, node_id: str, decision: str) -> None:
        log.info("node pairing %s: node %s, request %s", decision, node_id[:12], request_id or "-")
        payload = NodePairResolvedPayload(request_id, node_id, decision, self.now_ms())  # type: ignore[arg-type]
        self.hub.broadcast(ev.NODE_PAIR_RESOLVED, payload, scope=PAIRING)

    # -- connections -------------------------------------------------------------------------

    async def connected(
        self, peer: Peer, params: ConnectParams, *, device_id: str | None, local_direct: bool
    ) -> NodeSession:
        """Register a node connection and settle its pairing (see the module docstring)."""
        c = params.client
        node_id = device_id or c.id
        now = self.now_ms()
        declared = [d for d in dict.fromkeys(x.strip() for x in params.commands or []) if d]
        session = NodeSession(
            node_id=node_id,
            peer=peer,
            client=c,
            caps=list(dict.fromkeys(params.caps)),
            declared=declared,
            connected_at_ms=now,
            permissions=params.permissions,
            path_env=params.path_env,
            remote_ip=peer.remote_ip,
            device_id=device_id,
        )
        self.relay.register(session)
        surface = NodeSurface(
            node_id=node_id,
            display_name=c.display_name,
            platform=c.platform,
            version=c.version,
            device_family=c.device_family,
            model_identifier=c.model_identifier,
            caps=session.caps,
            commands=[d for d in declared if not never_relayed(d)],
            permissions=params.permissions,
            remote_ip=peer.remote_ip,
        )
        self.prune()
        if not self.pairing.surface_approved(surface):
            first_with_device = device_id is not None and node_id not in self.pairing.paired
            silent = local_direct or first_with_device
            request, created = self.pairing.request(surface, now, silent=silent)
            if silent:
                self.pairing.approve(request.request_id, now)
                self.resolved(request.request_id, node_id, "approved")
            elif created:
                self.requested(request)
        self.pairing.connected(node_id, now, peer.remote_ip)
        await self.save()
        return session

    def disconnected(self, peer: Peer) -> None:
        session = self.relay.unregister(peer)
        if session is not None:
            log.info("node %s disconnected (conn %s)", session.node_id, peer.conn_id)

    def disconnect(self, node_id: str, reason: str) -> None:
        session = self.relay.sessions.get(node_id)
        if session is not None:
            session.peer.close(CloseCode.CLIENT_INVALIDATED, f"client invalidated: {reason}")

    # -- what operators see and may call ---------------------------------------------------------

    def approved_commands(self, node_id: str) -> list[str] | None:
        """The commands approved for a paired node; ``None`` if it is not paired."""
        node = self.pairing.paired.get(node_id)
        return None if node is None else list(node.commands or [])

    def relayable(self, session: NodeSession) -> list[str]:
        allowed = self.policy().effective(
            session.declared, session.client.platform, session.client.device_family
        )
        approved = self.approved_commands(session.node_id)
        return [c for c in allowed if approved is not None and c in approved]

    def rows(self, *, with_pending: bool) -> list[NodeInfo]:
        """``node.list``: paired nodes (even offline) and connected ones (even unpaired)."""
        self.prune()
        pending = {r.node_id: r.request_id for r in self.pairing.pending.values()}
        ids = list(dict.fromkeys([*self.relay.sessions, *self.pairing.paired]))
        rows = [
            self.row(node_id, pending.get(node_id) if with_pending else None) for node_id in ids
        ]
        return sorted(
            (r for r in rows if r is not None),
            key=lambda r: (not r.connected, (r.display_name or r.node_id).lower()),
        )

    def row(self, node_id: str, pending_request_id: str | None = None) -> NodeInfo | None:
        session = self.relay.sessions.get(node_id)
        paired = self.pairing.paired.get(node_id)
        if session is None and paired is None:
            return None
        if session is not None:
            c = session.client
            commands = self.relayable(session)
            declared = session.declared if session.declared != commands else None
            return NodeInfo(
                node_id=node_id,
                caps=session.caps,
                commands=commands,
                paired=paired is not None,
                connected=True,
                display_name=(paired.display_name if paired else None) or c.display_name,
                platform=c.platform,
                version=c.version,
                device_family=c.device_family,
                model_identifier=c.model_identifier,
                remote_ip=session.remote_ip,
                permissions=session.permissions,
                path_env=session.path_env,
                connected_at_ms=session.connected_at_ms,
                approved_at_ms=paired.approved_at_ms if paired else None,
                last_seen_at_ms=self.now_ms(),
                last_seen_reason="connected",
                declared_commands=declared,
                pending_request_id=pending_request_id,
            )
        assert paired is not None
        allowed = self.policy().allowlist(paired.platform, paired.device_family)
        return NodeInfo(
            node_id=node_id,
            caps=list(paired.caps or []),
            commands=[c for c in paired.commands or [] if c in allowed],
            paired=True,
            connected=False,
            display_name=paired.display_name,
            platform=paired.platform,
            version=paired.version,
            core_version=paired.core_version,
            ui_version=paired.ui_version,
            device_family=paired.device_family,
            model_identifier=paired.model_identifier,
            remote_ip=paired.remote_ip,
            permissions=paired.permissions,
            approved_at_ms=paired.approved_at_ms,
            last_seen_at_ms=paired.last_connected_at_ms,
            last_seen_reason="disconnected" if paired.last_connected_at_ms else None,
            pending_request_id=pending_request_id,
        )
