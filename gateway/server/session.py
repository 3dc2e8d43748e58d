"""One WebSocket connection: handshake, request dispatch, and an orderly close.

Tasks per connection, in one nursery:

* the **reader** (this module's ``_Session.run``) parses frames and starts one task per
  request, so a slow handler never holds up ``health``; the handshake's frames and each
  request's response are flushed by the task that made them (``Outbox.flush``);
* the **writer** (``Outbox.run``), started the first time something else queues a frame
  (an event) or a close is requested, drains the queue and sends the close frame;
* the **closer**, started when a close is requested, gives the writer ``ws.closeGraceMs``
  to flush the queue and the close frame, and otherwise aborts the TCP stream -- the one
  way to free a writer stuck in a shielded write to a client that stopped reading.

When the client has answered our close frame (or the grace ran out), or the client goes
away, the nursery is cancelled and the connection's requests with it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from .. import __version__, observe
from ..agent.agents import default_agent_id
from ..agent.keys import MAIN_KEY
from ..auth import check_secret, granted_scopes, is_loopback_ip, rate_limited_error
from ..errors import GatewayError, InvalidRequest, Unavailable
from ..events import Peer
from ..origins import OriginRequest
from ..outbox import Outbox, SendFn
from ..presence import UNTRACKED_MODES
from ..protocol import events as ev
from ..protocol import validate
from ..protocol.codec import from_wire, loads
from ..protocol.frames import (
    MAX_PREAUTH_PAYLOAD_BYTES,
    PROTOCOL_VERSION,
    CloseCode,
    ErrorCode,
    ErrorShape,
    truncate_reason,
)
from ..protocol.handshake import (
    ConnectParams,
    Features,
    HelloAuth,
    HelloOk,
    Policy,
    ServerInfo,
    SessionDefaultsInfo,
    Snapshot,
    check_role,
    negotiate_protocol,
)
from ..protocol.system import ChallengePayload, PresenceEntry
from ..rpc import dispatch
from ..rpc.registry import CallContext, methods
from ..runtime import Runtime
from . import origin_gate

log = logging.getLogger("gateway.ws")

Receive = Callable[[], Awaitable[dict[str, Any]]]


class _Disconnected(Exception):
    """The client went away (``websocket.disconnect``)."""


_UNPARSEABLE = object()


def _parse(text: str | None) -> object:
    """The JSON value of a frame, or ``_UNPARSEABLE`` (``null`` is a value, not a failure)."""
    if text is None:
        return _UNPARSEABLE
    try:
        return loads(text)
    except ValueError:
        return _UNPARSEABLE


async def run_session(
    rt: Runtime, scope: dict[str, Any], receive: Receive, send: SendFn, abort: Callable[[], None]
) -> None:
    """Drive one WebSocket from upgrade to close.

    Cancellation: cancelling this task closes nothing by itself; serve() closes peers with
    1012 first and aborts streams that do not finish within the grace period.
    """
    first = await receive()
    if first["type"] != "websocket.connect":
        return
    client = scope.get("client")
    remote_ip = str(client[0]) if client else None
    origin = OriginRequest.from_headers(scope.get("headers", []), remote_ip)
    verdict = origin_gate.check(rt.settings, origin)
    if not verdict.allowed:  # a browser page on a foreign origin: 403, never a 101
        observe.origin_refused(rt, remote_ip, origin.origin, verdict.reason, "upgrade")
        await origin_gate.refuse_upgrade(send)
        return
    await send({"type": "websocket.accept"})
    ws = rt.settings.config.gateway.ws
    peer = Peer(Outbox(ws.max_buffered_bytes), remote_ip=remote_ip)
    session = _Session(rt, peer, receive, send, origin)
    async with trio.open_nursery() as nursery:

        async def write() -> None:
            await peer.outbox.run(send)
            # Our close frame is out. RFC 6455: keep TCP open until the client answers with
            # its own close (hypercorn then reports a disconnect), or the grace runs out --
            # dropping TCP at once could reset frames the client has not read yet.
            with trio.move_on_after(ws.close_grace_ms / 1000):
                while (await receive())["type"] != "websocket.disconnect":
                    pass
            nursery.cancel_scope.cancel()

        async def close_or_abort() -> None:
            with trio.move_on_after(ws.close_grace_ms / 1000):
                await peer.outbox.finished.wait()
                return
            log.info(
                "conn %s: close not flushed within %d ms; aborting socket",
                peer.conn_id,
                ws.close_grace_ms,
            )
            abort()

        def start_closer() -> None:
            # started only when a close is requested (most connections end without one)
            try:
                nursery.start_soon(close_or_abort)
            except RuntimeError:  # the session is already over; nothing left to close
                pass

        def start_writer() -> None:
            # started the first time a frame is queued for it (an event, a close): a CLI
            # call -- handshake, one request, close -- is served without it
            peer.outbox.on_wake = None
            try:
                nursery.start_soon(write)
            except RuntimeError:  # the session is over (an agent run may outlive it)
                pass

        peer.outbox.on_wake = start_writer
        peer.outbox.on_close_requested = start_closer
        try:
            await session.run(nursery)
        except _Disconnected:
            nursery.cancel_scope.cancel()
        finally:
            session.forget()


class _Session:
    def __init__(
        self, rt: Runtime, peer: Peer, receive: Receive, send: SendFn, origin: OriginRequest
    ) -> None:
        self.rt = rt
        self.peer = peer
        self.origin = origin
        self._receive = receive
        self._send = send
        self.nonce = str(uuid.uuid4())
        self.authenticated = False
        self.inflight: dict[str, trio.CancelScope] = {}
        self.client_close: int | None = None  # the client's close code, if it closed first

    async def _next_text(self) -> str | None:
        """The next message as text; ``None`` if it is not valid UTF-8."""
        message = await self._receive()
        if message["type"] == "websocket.disconnect":
            self.client_close = message.get("code")
            raise _Disconnected
        text = message.get("text")
        if text is not None:
            return str(text)
        try:
            return bytes(message.get("bytes") or b"").decode()
        except UnicodeDecodeError:
            return None

    def _close(self, code: int, reason: str) -> None:
        self.peer.close(code, truncate_reason(reason))

    def _fail(self, request_id: str | None, rejection: GatewayError) -> None:
        if request_id is not None:
            self.peer.send_text(dispatch.response_text(request_id, False, error=rejection.shape()))
        log.info(
            "conn %s: handshake rejected (%d %s)",
            self.peer.conn_id,
            rejection.close_code,
            rejection.close_reason,
        )
        self._close(rejection.close_code, rejection.close_reason)

    async def run(self, nursery: trio.Nursery) -> None:
        rt = self.rt
        challenge = ChallengePayload(self.nonce, rt.now_ms())
        rt.hub.unicast(self.peer, ev.CHALLENGE, challenge, wake=False)
        await self.peer.outbox.flush(self._send)
        timeout = rt.settings.config.gateway.ws.handshake_timeout_ms / 1000
        accepted = False
        with trio.move_on_after(timeout) as handshake_scope:
            accepted = await self._handshake()
            await self.peer.outbox.flush(self._send)  # the hello-ok
        if handshake_scope.cancelled_caught:
            log.info("conn %s: no connect within %.1fs", self.peer.conn_id, timeout)
            self._close(CloseCode.NORMAL, "")
        if not accepted:
            await trio.sleep_forever()  # the writer cancels us once the close frame is out
        await self._serve_requests(nursery)

    # -- handshake -------------------------------------------------------------------------

    async def _handshake(self) -> bool:
        text = await self._next_text()
        if text is not None and len(text.encode()) > MAX_PREAUTH_PAYLOAD_BYTES:
            self._close(CloseCode.TOO_BIG, "preauth payload too large")
            return False
        frame = _parse(text)
        if frame is _UNPARSEABLE:
            self._close(CloseCode.NORMAL, "")  # not JSON at all: close, no res
            return False
        if not isinstance(frame, dict) or validate.problem("RequestFrame", frame) is not None:
            self._close(CloseCode.POLICY, "invalid request frame")
            return False
        request_id = str(frame["id"])
        observe.connect_frame(self.peer, frame)
        try:
            params = self._connect_params(frame)
            self._authenticate(params)
        except GatewayError as rejection:
            self._fail(request_id, rejection)
            return False
        self._accept(request_id, params)
        return True

    def _connect_params(self, frame: dict[str, Any]) -> ConnectParams:
        if frame["method"] != "connect":
            raise InvalidRequest("invalid handshake: first request must be connect")
        raw = frame.get("params")
        raw = {} if raw is None else raw
        problem = validate.problem("ConnectParams", raw)
        if problem is not None:
            raise InvalidRequest(f"invalid connect params: {problem}")
        params = from_wire(ConnectParams, raw)
        for check in (negotiate_protocol, check_role):
            rejection = check(params)
            if rejection is not None:
                raise rejection
        if not self.rt.ready and not self.rt.draining:
            raise Unavailable(
                "gateway starting; retry shortly",
                close_reason="gateway starting",
                details={"reason": "startup"},
                retry_after_ms=500,
            )
        if self.rt.draining:
            raise Unavailable(
                "gateway draining; retry shortly",
                close_reason="gateway draining",
                retry_after_ms=1000,
            )
        return params

    def _authenticate(self, params: ConnectParams) -> None:
        rt, ip = self.rt, self.peer.remote_ip
        verdict = origin_gate.check(rt.settings, self.origin)  # again: config may have changed
        if not verdict.allowed:
            observe.origin_refused(rt, ip, self.origin.origin, verdict.reason, "connect")
            raise origin_gate.connect_refusal(verdict)
        ip = origin_gate.limiter_key(self.origin)  # browsers: per origin, never exempt
        now = rt.now_ms()
        wait_ms = rt.limiter.retry_after_ms(ip, now)
        if wait_ms is not None:
            observe.auth_failed(rt, "ws", ip, "AUTH_RATE_LIMITED", client=params.client.id)
            raise rate_limited_error(wait_ms)
        failure = check_secret(rt.settings.auth, params.auth, params.client.id, params.client.mode)
        if failure is not None:
            if failure.counts:
                rt.limiter.record_failure(ip, now)
            observe.auth_failed(rt, "ws", ip, failure.detail_code, client=params.client.id)
            raise failure.error()
        rt.limiter.record_success(ip)

    def _accept(self, request_id: str, params: ConnectParams) -> None:
        rt, peer = self.rt, self.peer
        peer.role = params.role
        peer.scopes = granted_scopes(params.role, params.scopes)
        peer.client_id = params.client.id
        peer.client_mode = params.client.mode
        peer.caps = frozenset(params.caps)
        tracked = params.client.mode not in UNTRACKED_MODES
        if tracked:
            peer.presence_key = (
                (params.device.id if params.device else None)
                or params.client.instance_id
                or peer.conn_id
            )
            rt.presence.upsert(peer.presence_key, self._presence_entry(params))
        rt.hub.add(peer)
        self.authenticated = True
        peer.send_text(dispatch.response_text(request_id, True, self._hello(params)), wake=False)
        observe.connection_opened(rt, peer, params.client.id, params.client.mode, params.role)
        if tracked:
            rt.presence_changed()
        rt.kick_health()

    def _presence_entry(self, params: ConnectParams) -> PresenceEntry:
        c = params.client
        ip = self.peer.remote_ip
        return PresenceEntry(
            ts=self.rt.now_ms(),
            host=c.display_name or c.id,
            ip=None if is_loopback_ip(ip) else ip,
            version=c.version,
            platform=c.platform,
            device_family=c.device_family,
            model_identifier=c.model_identifier,
            mode=c.mode,
            reason="connect",
            device_id=params.device.id if params.device else None,
            roles=[params.role],
            scopes=self.peer.scopes,
            instance_id=(params.device.id if params.device else None) or c.instance_id,
        )

    def _hello(self, params: ConnectParams) -> HelloOk:
        rt = self.rt
        settings = rt.settings
        ws = settings.config.gateway.ws
        health = rt.health.snapshot
        agent_id = default_agent_id(settings.config)
        return HelloOk(
            type="hello-ok",
            protocol=PROTOCOL_VERSION,
            server=ServerInfo(__version__, self.peer.conn_id),
            features=Features(sorted(methods()), sorted(ev.EVENTS)),
            snapshot=Snapshot(
                presence=rt.presence.listing(rt.now_ms()),
                health=health if health is not None else {},
                state_version=rt.state_version(),
                uptime_ms=rt.uptime_ms(),
                session_defaults=SessionDefaultsInfo(
                    agent_id, MAIN_KEY, f"agent:{agent_id}:{MAIN_KEY}", "per-sender"
                ),
                auth_mode=settings.auth.mode,
                config_path=str(settings.paths.config_path),
                state_dir=str(settings.paths.state_dir),
            ),
            auth=HelloAuth(self.peer.role, self.peer.scopes),
            policy=Policy(ws.max_payload, ws.max_buffered_bytes, ws.tick_interval_ms),
        )

    def forget(self) -> None:
        """Unregister from the hub and mark presence; safe to call for unauthenticated peers."""
        rt, peer = self.rt, self.peer
        if not self.authenticated:
            return
        rt.hub.remove(peer)
        if peer.presence_key is not None:
            rt.presence.mark_disconnected(peer.presence_key, rt.now_ms())
            rt.presence_changed()
        observe.connection_closed(rt, peer, self.client_close)

    # -- after hello-ok ----------------------------------------------------------------------

    async def _serve_requests(self, nursery: trio.Nursery) -> None:
        while True:
            text = await self._next_text()
            self._on_frame(text, nursery)

    def _on_frame(self, text: str | None, nursery: trio.Nursery) -> None:
        frame = _parse(text)
        if frame is _UNPARSEABLE:
            log.debug("conn %s: ignoring non-JSON frame", self.peer.conn_id)
            return
        if isinstance(frame, dict) and frame.get("type") == "cancel":
            if validate.problem("CancelFrame", frame) is None:
                scope = self.inflight.get(str(frame["id"]))
                if scope is not None:
                    scope.cancel()
            return
        problem = validate.problem("RequestFrame", frame)
        if problem is not None or not isinstance(frame, dict):
            raw_id = frame.get("id") if isinstance(frame, dict) else None
            request_id = raw_id if isinstance(raw_id, str) and raw_id else "invalid"
            error = ErrorShape(ErrorCode.INVALID_REQUEST, f"invalid request frame: {problem}")
            self.peer.send_text(dispatch.response_text(request_id, False, error=error))
            return
        request_id, name = str(frame["id"]), str(frame["method"])
        if name == "connect":
            error = ErrorShape(
                ErrorCode.INVALID_REQUEST, "connect is only valid as the first request"
            )
            self.peer.send_text(dispatch.response_text(request_id, False, error=error))
            return
        nursery.start_soon(self._request, request_id, name, frame.get("params"))

    async def _request(self, request_id: str, name: str, params: object) -> None:
        ctx = CallContext(self.rt, self.peer, request_id)
        started = trio.current_time()
        with trio.CancelScope() as scope:
            self.inflight[request_id] = scope
            self.rt.request_started()
            try:
                text = await dispatch.call(ctx, name, params)
            finally:
                self.rt.request_finished()
                if self.inflight.get(request_id) is scope:
                    del self.inflight[request_id]
            observe.request_done(self.rt, self.peer, name, started, text, known=name in methods())
            self.peer.send_text(text, wake=False)
            await self.peer.outbox.flush(self._send)
