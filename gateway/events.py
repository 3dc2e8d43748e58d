"""Event fan-out: per-connection ``seq`` stamping and the slow-consumer policy.

``Hub.broadcast`` serializes the payload once, then for every authenticated peer stamps that
peer's next ``seq`` and *offers* the frame to its outbox. Offering never blocks, so a
broadcast to 1,000 clients costs 1,000 dict-free string joins and no awaits; a slow peer
loses droppable events (its ``seq`` still advances, so it can see the gap) or is closed with
1008 ``slow consumer``. Unicast events (``connect.challenge``) carry no ``seq``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

import attrs
import trio

from .auth import scope_allows
from .protocol.codec import dumps, to_wire
from .protocol.events import EVENTS
from .protocol.frames import CloseCode, StateVersion
from .server.outbox import Outbox, Verdict

SLOW_CONSUMER = "slow consumer"

log = logging.getLogger("gateway.events")


@attrs.define(eq=False)
class Peer:
    """The hub's view of one WebSocket connection."""

    outbox: Outbox
    remote_ip: str | None = None
    conn_id: str = attrs.field(factory=lambda: str(uuid.uuid4()))
    role: str = "operator"
    scopes: list[str] = attrs.field(factory=list)
    client_id: str | None = None
    client_mode: str | None = None
    caps: frozenset[str] = frozenset()
    presence_key: str | None = None
    device_id: str | None = None  # a verified device identity (connect.device)
    auth_method: str | None = None  # "token" | "password" | "none" | "device-token"
    last_seq: int = 0
    on_close: Callable[[int, str], None] | None = None

    def next_seq(self) -> int:
        self.last_seq += 1
        return self.last_seq

    def send_text(self, text: str, *, droppable: bool = False, wake: bool = True) -> Verdict:
        verdict = self.outbox.offer(text, droppable=droppable, wake=wake)
        if verdict == "close":
            self.close(CloseCode.POLICY, SLOW_CONSUMER)
        return verdict

    def close(self, code: int, reason: str) -> None:
        self.outbox.request_close(code, reason)
        if self.on_close is not None:
            self.on_close(code, reason)


def event_text(name: str, payload_json: str, seq: int | None, state_version: str | None) -> str:
    parts = ['{"type":"event","event":', dumps(name), ',"payload":', payload_json]
    if seq is not None:
        parts += [',"seq":', str(seq)]
    if state_version is not None:
        parts += [',"stateVersion":', state_version]
    parts.append("}")
    return "".join(parts)


@attrs.define
class Hub:
    peers: dict[str, Peer] = attrs.field(factory=dict)
    sent: int = 0
    dropped: int = 0
    slow_closes: int = 0
    _changed: trio.Event = attrs.field(factory=trio.Event, init=False)

    def add(self, peer: Peer) -> None:
        self.peers[peer.conn_id] = peer

    def remove(self, peer: Peer) -> None:
        self.peers.pop(peer.conn_id, None)
        self._changed.set()

    async def wait_empty(self) -> None:
        """Until no authenticated peer is left."""
        while self.peers:
            self._changed = trio.Event()
            await self._changed.wait()

    def broadcast(
        self,
        name: str,
        payload: object,
        *,
        state_version: StateVersion | None = None,
        scope: str | None = None,
        cap: str | None = None,
    ) -> None:
        """Offer the event to every peer; with ``scope``, only to operators holding it; with
        ``cap``, only to peers that advertised that capability in ``connect.caps``."""
        entry = EVENTS[name]  # KeyError for an event we never declared: a bug, not input
        payload_json = dumps(to_wire(payload))
        version_json = dumps(to_wire(state_version)) if state_version is not None else None
        for peer in list(self.peers.values()):
            if scope is not None and (
                peer.role != "operator" or not scope_allows(peer.scopes, scope)
            ):
                continue
            if cap is not None and cap not in peer.caps:
                continue
            text = event_text(name, payload_json, peer.next_seq(), version_json)
            verdict = peer.send_text(text, droppable=entry.droppable)
            if verdict == "queued":
                self.sent += 1
            elif verdict == "dropped":
                self.dropped += 1
            else:
                self.slow_closes += 1
        log.debug("event broadcast", extra={"event": name, "peers": len(self.peers)})

    def unicast(self, peer: Peer, name: str, payload: object, *, wake: bool = True) -> None:
        entry = EVENTS[name]
        seq = peer.next_seq() if entry.sequenced else None
        text = event_text(name, dumps(to_wire(payload)), seq, None)
        peer.send_text(text, droppable=entry.droppable, wake=wake)
