"""The session driver: one WebSocket's connection machine, run on trio.

The rules live in the sans-IO machine (``protocol/connection.py``); this module feeds it
what the socket says and carries out its actions. Tasks per connection, in one nursery:

* the **reader** (:meth:`_Session.run`) feeds each message to the machine, runs the auth
  decision when the machine asks for one (``server/admission.py``), answers a request
  itself when its method can without waiting (a cached presence or health: no task, no
  cancel scope, ``registry.answers_now``) and otherwise starts one task per request, so a
  slow handler never holds up ``health``; the challenge, hello-ok and each request's
  response are flushed by the task that made them (``Outbox.flush``);
* the **writer** (``Outbox.run``), started the first time something else queues a frame
  (an event) or a close is decided, drains the queue and sends the close frame, then gives
  the client ``ws.closeGraceMs`` to answer it;
* the **closer**, started when a close is decided, gives the writer ``ws.closeGraceMs`` to
  flush the queue and the close frame, and otherwise aborts the TCP stream -- the one way
  to free a writer stuck in a shielded write to a client that stopped reading.

When the client has answered our close (or the grace ran out), or the client goes away,
the nursery is cancelled and the connection's requests with it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol

import trio

from .. import observe
from ..errors import GatewayError
from ..events import Peer
from ..outbox import Outbox, Text
from ..protocol.connection import (
    Action,
    Authenticate,
    Cancel,
    Close,
    Limits,
    Phase,
    Refuse,
    Send,
    ServerConnection,
    Start,
)
from ..protocol.upgrade import Upgrade
from ..rpc import dispatch
from ..rpc.registry import CallContext, methods
from ..runtime import Runtime
from . import admission

log = logging.getLogger("gateway.ws")


class Disconnected(Exception):
    """The client closed (``code``: its close code; ``None``: TCP ended without one)."""

    def __init__(self, code: int | None = None) -> None:
        super().__init__(code)
        self.code = code


class WebSocket(Protocol):
    """One upgraded connection, as the driver needs it."""

    @property
    def upgrade(self) -> Upgrade: ...

    async def receive(self) -> str | None:
        """The next message as text (``None``: not valid UTF-8); raises ``Disconnected``."""

    async def send_text(self, text: Text) -> None: ...
    async def write_framed(self, data: bytes) -> None: ...
    async def send_close(self, code: int, reason: str) -> None: ...
    def abort(self) -> None:
        """Reset the TCP connection now (frees a writer stuck on a peer that stopped reading)."""

    def authenticated(self, max_payload: int) -> None:
        """hello-ok is queued: lift the pre-auth frame cap to ``max_payload``."""


async def run_session(rt: Runtime, ws: WebSocket) -> None:
    """Drive one WebSocket from the upgrade to the close.

    Cancellation: cancelling this task closes nothing by itself; serve() closes peers with
    1012 first and aborts streams that do not finish within the grace period.
    """
    cfg = rt.settings.config.gateway.ws
    limits = Limits(max_payload=cfg.max_payload, handshake_timeout=cfg.handshake_timeout_ms / 1000)
    machine = ServerConnection(
        nonce=str(uuid.uuid4()), rules=methods(), gate=rt, limits=limits, now=trio.current_time()
    )
    peer = Peer(machine, Outbox(cfg.max_buffered_bytes), ws.upgrade)
    peer.direct = getattr(ws, "send_now", None)  # the lean path writes frames directly
    async with trio.open_nursery() as nursery:
        session = _Session(rt, ws, peer, nursery)
        # bound methods, not closures: an idle connection holds as little as it can
        peer.outbox.on_wake = session.start_writer
        peer.outbox.on_close_requested = session.start_closer
        try:
            await session.run()
        except Disconnected as gone:
            machine.closed_by_peer(gone.code)
            nursery.cancel_scope.cancel()
        finally:
            session.forget()
            # The outbox's callbacks are the session's bound methods, and the session holds
            # the peer: a cycle that would keep the connection's whole object graph (socket,
            # task, nursery, protocol) for the cyclic collector -- ~70 µs of collection per
            # handshake (BENCHMARKS.md). Broken here, everything goes by reference counting.
            peer.outbox.on_wake = peer.outbox.on_close_requested = None


class _Session:
    __slots__ = (
        "authenticated",
        "inflight",
        "machine",
        "node",
        "nursery",
        "peer",
        "rt",
        "rules",
        "ws",
    )

    def __init__(self, rt: Runtime, ws: WebSocket, peer: Peer, nursery: trio.Nursery) -> None:
        self.rt = rt
        self.ws = ws
        self.peer = peer
        self.machine = peer.machine
        self.nursery = nursery
        self.rules = methods()
        self.inflight: dict[str, trio.CancelScope] = {}
        self.authenticated = False
        self.node = False  # registered with the node relay

    # -- the writer and the closer ----------------------------------------------------------

    def start_writer(self) -> None:
        """Started the first time a frame is queued for it (an event, a close): a CLI call
        -- handshake, one request, close -- and a peer that keeps up with the events it is
        written directly are served without it."""
        self.peer.outbox.on_wake = None
        self._start(self._write)

    def start_closer(self) -> None:
        self._start(self._close_or_abort)

    def _start(self, task: Callable[[], Awaitable[None]]) -> None:
        try:
            self.nursery.start_soon(task)
        except RuntimeError:  # the session is over (an agent run may outlive it)
            pass

    async def _write(self) -> None:
        await self.peer.outbox.run(self.ws)
        # Our close frame is out. RFC 6455: keep TCP open until the client answers with
        # its own close (the reader then sees it), or the grace runs out -- dropping TCP
        # at once could reset frames the client has not read yet.
        await trio.sleep(self.rt.settings.config.gateway.ws.close_grace_ms / 1000)
        self.nursery.cancel_scope.cancel()

    async def _close_or_abort(self) -> None:
        grace_ms = self.rt.settings.config.gateway.ws.close_grace_ms
        with trio.move_on_after(grace_ms / 1000):
            await self.peer.outbox.finished.wait()
            return
        log.info(
            "conn %s: close not flushed within %d ms; aborting socket",
            self.peer.conn_id,
            grace_ms,
        )
        self.ws.abort()

    # -- the reader --------------------------------------------------------------------------

    async def run(self) -> None:
        machine, ws = self.machine, self.ws
        self.apply(machine.challenge(self.rt.now_ms()))
        await self.peer.outbox.flush(ws)
        with trio.move_on_at(machine.deadline):
            while machine.phase is Phase.CHALLENGED:
                actions = machine.receive(await ws.receive())
                if actions and isinstance(actions[0], Authenticate):
                    actions = await self.authenticate(actions[0])
                self.apply(actions)
                await self.peer.outbox.flush(ws)  # the hello-ok or the refusal
        expired = machine.expire(trio.current_time())
        if expired:
            log.info(
                "conn %s: no connect within %.1fs",
                self.peer.conn_id,
                machine.limits.handshake_timeout,
            )
            self.apply(expired)
        outbox = self.peer.outbox
        while True:  # after a close, messages are read and dropped until the client answers
            actions = machine.receive(await ws.receive())
            if actions:
                self.apply(actions)
                if outbox.queued_bytes:  # a response answered inline (answer_now)
                    await outbox.flush(ws)

    def apply(self, actions: list[Action]) -> None:
        peer = self.peer
        for action in actions:
            match action:
                case Start():
                    if not self.answer_now(action):
                        self.nursery.start_soon(self.request, action)
                case Send(text):
                    peer.send_text(text, wake=False)  # the caller flushes
                case Refuse(_, method, text):
                    peer.send_text(text)
                    if method:
                        known = method in self.rules
                        now = trio.current_time()
                        observe.request_done(self.rt, peer, method, now, text, known=known)
                case Cancel(request_id):
                    scope = self.inflight.get(request_id)
                    if scope is not None:
                        scope.cancel()
                case Close(code, reason):
                    peer.outbox.request_close(code, reason)
                case Authenticate():  # only before hello-ok, where run() handles it
                    raise AssertionError("unexpected Authenticate")

    # -- the handshake ---------------------------------------------------------------------------

    async def authenticate(self, ask: Authenticate) -> list[Action]:
        rt, peer, params = self.rt, self.peer, ask.params
        observe.connect_frame(peer, params)
        attempt = admission.attempt_for(rt, peer, params, self.machine.nonce)
        try:
            await admission.decide(rt, attempt)
        except GatewayError as refusal:
            log.info(
                "conn %s: handshake rejected (%d %s)",
                peer.conn_id,
                refusal.close_code,
                refusal.close_reason,
            )
            return self.machine.reject(ask.request_id, refusal)
        tracked = admission.admitted(rt, peer, attempt)  # the peer's identity, presence
        hello = admission.hello_ok(rt, peer, attempt)
        actions = self.machine.accept(ask.request_id, hello, attempt.role, attempt.scopes)
        if not actions:
            return []  # closed while the decision was made
        self.ws.authenticated(self.machine.limits.max_payload)  # before hello-ok is flushed
        self.apply(actions)  # hello-ok is queued before any event
        rt.hub.add(peer)
        self.authenticated = True
        observe.connection_opened(rt, peer, params.client.id, params.client.mode, attempt.role)
        if tracked:
            rt.presence_changed()
        rt.kick_health()
        if attempt.role == "node":  # after hello-ok is queued: invokes may follow at once
            self.node = True
            await admission.node_connected(rt, peer, attempt)
        return []

    def forget(self) -> None:
        """Unregister from the hub and mark presence; safe to call for unauthenticated peers."""
        rt, peer = self.rt, self.peer
        if not self.authenticated:
            return
        rt.hub.remove(peer)
        if self.node:
            rt.nodes.disconnected(peer)
        if peer.presence_key is not None:
            rt.presence.mark_disconnected(peer.presence_key, rt.now_ms())
            rt.presence_changed()
        observe.connection_closed(rt, peer, self.machine.peer_close_code)

    # -- requests -------------------------------------------------------------------------------

    def answer_now(self, start: Start) -> bool:
        """Answer in the reader if the method can without waiting (``registry.answers_now``):
        no task, no cancel scope -- nothing could be cancelled before it is done. The
        response is queued; the reader flushes it. ``False``: it needs a request task."""
        spec = self.rules[start.method]
        if spec.now is None:
            return False
        rt, peer = self.rt, self.peer
        started = trio.current_time()
        text = dispatch.call_now(CallContext(rt, peer, start.request_id), spec, start.params)
        if text is None:
            return False
        self.machine.finished(start.request_id)
        observe.request_done(rt, peer, start.method, started, text, known=True)
        peer.send_text(text, wake=False)
        return True

    async def request(self, start: Start) -> None:
        rt, peer, request_id = self.rt, self.peer, start.request_id
        spec = methods()[start.method]
        started = trio.current_time()
        with trio.CancelScope() as scope:
            self.inflight[request_id] = scope
            rt.request_started()
            try:
                text = await dispatch.call(CallContext(rt, peer, request_id), spec, start.params)
            finally:
                rt.request_finished()
                if self.inflight.get(request_id) is scope:
                    del self.inflight[request_id]
                    self.machine.finished(request_id)
            observe.request_done(rt, peer, start.method, started, text, known=True)
            peer.send_text(text, wake=False)
            await peer.outbox.flush(self.ws)
