"""Event fan-out: per-connection ``seq`` stamping and the slow-consumer policy.

``Hub.broadcast`` serializes the payload once, then for every authenticated peer stamps that
peer's next ``seq`` and writes the frame at once if that peer's socket is free and takes
it, else *offers* it to the peer's outbox. Neither blocks, so a broadcast to 1,000 clients
costs 1,000 string joins and sends and no awaits; a slow peer
loses droppable events (its ``seq`` still advances, so it can see the gap) or is closed with
1008 ``slow consumer``. Unicast events (``connect.challenge``) carry no ``seq``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

import attrs
import trio

from .outbox import Outbox, Text, Verdict
from .protocol.codec import dumps, to_wire
from .protocol.connection import Close, ServerConnection
from .protocol.events import EVENTS
from .protocol.frames import CloseCode, StateVersion, event_text
from .protocol.scopes import scope_allows
from .protocol.upgrade import Upgrade

SLOW_CONSUMER = "slow consumer"

log = logging.getLogger("gateway.events")


@attrs.define(eq=False)
class Peer:
    """The hub's view of one WebSocket connection: its outbox, and what its connection
    machine decided (role, scopes, event ``seq``, the close)."""

    machine: ServerConnection
    outbox: Outbox
    upgrade: Upgrade
    conn_id: str = attrs.field(factory=lambda: str(uuid.uuid4()))
    client_id: str | None = None
    client_mode: str | None = None
    caps: frozenset[str] = frozenset()
    presence_key: str | None = None
    device_id: str | None = None  # a verified device identity (connect.device)
    auth_method: str | None = None  # "token" | "password" | "none" | "device-token"
    # writes a frame now if the socket is free (LeanWebSocket.send_now): the unsent rest,
    # or None when it could not start; None for a peer without a socket of its own (tests)
    direct: Callable[[Text], bytes | None] | None = None

    @property
    def role(self) -> str:
        return self.machine.role

    @property
    def scopes(self) -> list[str]:
        return self.machine.scopes

    @property
    def remote_ip(self) -> str | None:
        return self.upgrade.client_ip

    def next_seq(self) -> int:
        return self.machine.next_seq()

    def send_text(self, text: Text, *, droppable: bool = False, wake: bool = True) -> Verdict:
        """Write the frame now when nothing is queued or being sent and the kernel takes
        it (no queue entry, no writer wake-up); else offer it to the outbox, whose policy
        decides. ``wake=False``: the caller flushes the outbox itself."""
        outbox = self.outbox
        if self.direct is not None and outbox.idle:
            rest = self.direct(text)
            if rest is not None:
                if rest:
                    outbox.offer_framed(rest)
                return "queued"
        verdict = outbox.offer(text, droppable=droppable, wake=wake)
        if verdict == "close":
            self.close(CloseCode.POLICY, SLOW_CONSUMER)
        return verdict

    def close(self, code: int, reason: str) -> None:
        """Close after what is queued; the first close wins (the machine's rule)."""
        for action in self.machine.close(code, reason):
            if isinstance(action, Close):
                self.outbox.request_close(action.code, action.reason)


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
        # encoded once; every peer's frame is (head, payload, its own tail with its seq)
        head = b'{"type":"event","event":' + dumps(name).encode() + b',"payload":'
        body = dumps(to_wire(payload)).encode()
        version = b""
        if state_version is not None:
            version = b',"stateVersion":' + dumps(to_wire(state_version)).encode()
        for peer in list(self.peers.values()):
            if scope is not None and (
                peer.role != "operator" or not scope_allows(peer.scopes, scope)
            ):
                continue
            if cap is not None and cap not in peer.caps:
                continue
            tail = b',"seq":%d%s}' % (peer.next_seq(), version)
            verdict = peer.send_text((head, body, tail), droppable=entry.droppable)
            if verdict == "queued":
                self.sent += 1
            elif verdict == "dropped":
                self.dropped += 1
            else:
                self.slow_closes += 1
        if log.isEnabledFor(logging.DEBUG):  # no record built on the hot path otherwise
            log.debug("event broadcast", extra={"event": name, "peers": len(self.peers)})

    def unicast(
        self,
        peer: Peer,
        name: str,
        payload: object,
        *,
        wake: bool = True,
        sequenced: bool | None = None,
    ) -> None:
        """One event to one peer; ``sequenced=False`` for a targeted copy of an event that
        is otherwise broadcast (targeted events carry no ``seq``: PROTOCOL.md 4.3)."""
        entry = EVENTS[name]
        numbered = entry.sequenced if sequenced is None else sequenced
        seq = peer.next_seq() if numbered else None
        text = event_text(name, dumps(to_wire(payload)), seq, None)
        peer.send_text(text, droppable=entry.droppable, wake=wake)
