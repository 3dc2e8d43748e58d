"""Connected nodes and the invoke relay (PROTOCOL.md 7.11).

    operator --node.invoke--> gateway --event node.invoke.request (unicast, no seq)--> node
    operator <--res---------- gateway <--req node.invoke.result {id, ok, payload...}-- node

Each relayed call has a fresh id and waits, in the operator's own request task, on a
``trio.Event`` for the node's answer. It ends exactly once, with the first of: the node's
result; the deadline (``timeoutMs``, default 30 s, measured on trio's clock so tests run in
virtual time); the node's connection going away (every call waiting on that connection fails
at once with ``node disconnected (<command>)``); the operator cancelling its request. An
answer that arrives after that -- or names an id nobody waits for, or comes from a different
connection than the one asked -- is acknowledged with ``{ok:true, ignored:true}`` and dropped.

The same ``idempotencyKey`` for the same node and command joins a call still in flight, and
replays the outcome of a finished one for 5 minutes (PROTOCOL.md 10); the key also travels
to the node, which may deduplicate on its side.
"""

from __future__ import annotations

import logging
import uuid

import attrs
import trio

from ..agent.dedupe import IdempotencyCache
from ..events import Hub, Peer
from ..protocol import events as ev
from ..protocol.codec import dumps
from ..protocol.handshake import ClientInfo
from ..protocol.nodes import NodeInvokeRequestPayload, NodeInvokeResultParams

log = logging.getLogger("gateway.nodes")

DEFAULT_TIMEOUT_MS = 30_000


@attrs.define(eq=False)
class NodeSession:
    """One connected node (a ``role:"node"`` connection)."""

    node_id: str
    peer: Peer
    client: ClientInfo
    caps: list[str]
    declared: list[str]  # the commands it declared, as declared
    connected_at_ms: int
    permissions: dict[str, bool] | None = None
    path_env: str | None = None
    remote_ip: str | None = None
    device_id: str | None = None


@attrs.frozen
class Outcome:
    """How one relayed call ended: the node's answer, or why there is none."""

    ok: bool
    payload: object = None
    payload_json: str | None = None
    error: dict[str, object] | None = None

    @classmethod
    def failed(cls, code: str, message: str) -> Outcome:
        return cls(False, error={"code": code, "message": message})


@attrs.define(eq=False)
class _Call:
    id: str
    node_id: str
    conn_id: str
    command: str
    done: trio.Event = attrs.field(factory=trio.Event)
    outcome: Outcome | None = None

    def finish(self, outcome: Outcome) -> None:
        if self.outcome is None:
            self.outcome = outcome
            self.done.set()


@attrs.define(eq=False)
class NodeRelay:
    hub: Hub
    sessions: dict[str, NodeSession] = attrs.field(factory=dict)  # by nodeId
    _calls: dict[str, _Call] = attrs.field(factory=dict)  # by invoke id
    _joins: dict[str, _Call] = attrs.field(factory=dict)  # in flight, by idempotency key
    _finished: IdempotencyCache[Outcome] = attrs.field(factory=IdempotencyCache)

    # -- sessions ----------------------------------------------------------------------------

    def register(self, session: NodeSession) -> None:
        """The newest connection for a node id is the one calls go to."""
        previous = self.sessions.get(session.node_id)
        if previous is not None and previous.peer is not session.peer:
            log.info(
                "node %s reconnected (conn %s replaces %s)",
                session.node_id,
                session.peer.conn_id,
                previous.peer.conn_id,
            )
        self.sessions[session.node_id] = session

    def unregister(self, peer: Peer) -> NodeSession | None:
        """Forget ``peer``'s node session and fail every call waiting on it."""
        gone = None
        for node_id, session in list(self.sessions.items()):
            if session.peer is peer:
                gone = self.sessions.pop(node_id)
        for call in [c for c in self._calls.values() if c.conn_id == peer.conn_id]:
            call.finish(Outcome.failed("DISCONNECTED", f"node disconnected ({call.command})"))
        return gone

    def session_of(self, peer: Peer) -> NodeSession | None:
        return next((s for s in self.sessions.values() if s.peer is peer), None)

    def in_flight(self) -> int:
        return len(self._calls)

    # -- calls -------------------------------------------------------------------------------

    async def invoke(
        self,
        session: NodeSession,
        command: str,
        params: object,
        *,
        timeout_ms: int | None,
        idempotency_key: str,
        now_ms: int,
    ) -> Outcome:
        """Relay one call and wait for its outcome.

        Cancellation: cancelling the caller abandons the call (a late answer is ignored)."""
        key = f"{session.node_id}\0{command}\0{idempotency_key}"
        replay = self._finished.get(key, now_ms)
        if replay is not None:
            return replay
        joined = self._joins.get(key)
        if joined is not None:
            await joined.done.wait()
            assert joined.outcome is not None
            return joined.outcome
        call = _Call(str(uuid.uuid4()), session.node_id, session.peer.conn_id, command)
        timeout = timeout_ms or DEFAULT_TIMEOUT_MS
        self._calls[call.id] = call
        self._joins[key] = call
        try:
            request = NodeInvokeRequestPayload(
                id=call.id,
                node_id=session.node_id,
                command=command,
                params_json=None if params is None else dumps(params),
                timeout_ms=timeout,
                idempotency_key=idempotency_key,
            )
            self.hub.unicast(session.peer, ev.NODE_INVOKE_REQUEST, request)
            with trio.move_on_after(timeout / 1000):
                await call.done.wait()
            call.finish(Outcome.failed("TIMEOUT", "node invoke timed out"))
            assert call.outcome is not None
            self._finished.put(key, call.outcome, now_ms)
            return call.outcome
        finally:
            self._calls.pop(call.id, None)
            if self._joins.get(key) is call:
                del self._joins[key]
            # the caller was cancelled: whoever joined it is told, nothing is cached
            call.finish(Outcome.failed("CANCELLED", "node invoke cancelled"))

    def resolve(self, result: NodeInvokeResultParams, peer: Peer) -> bool:
        """Deliver a node's answer; ``False`` if no call is waiting for it from this peer."""
        call = self._calls.get(result.id)
        if call is None or call.node_id != result.node_id or call.conn_id != peer.conn_id:
            return False
        error = None
        if result.error is not None:
            error = {k: v for k, v in attrs.asdict(result.error).items() if v is not None}
        call.finish(Outcome(result.ok, result.payload, result.payload_json, error))
        return True
