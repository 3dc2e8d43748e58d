"""``GatewayClient``: a session to the gateway (or a self-healing series of them).

Task tree (all inside ``open_client``'s nursery, so nothing outlives the ``async with``)::

    open_client nursery
    ├── _supervise            connect -> read until closed -> back off -> reconnect ...
    │   └── open_socket       TCP + upgrade; its nursery holds trio-websocket's reader
    ├── _refresh_after_gap    one per detected seq gap: health + system-presence
    └── _cancel_remote        one per abandoned call: best-effort ``cancel`` frame

Apart from the first connect (whose failure ``nursery.start`` hands to ``open_client``),
background tasks report through state -- ``_final``, failed waiters, closed subscriptions --
never by raising: the client never cancels the user's code behind its back, and the only
exception the nursery can carry is the body's own, which is unwrapped from its group.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import trio
import trio_websocket
from trio_websocket import WebSocketConnection

from gateway.protocol.frames import MAX_PAYLOAD_BYTES, TICK_INTERVAL_MS

from ._backoff import Backoff
from ._device import DeviceIdentity
from ._errors import (
    GatewayClientError,
    GatewayClosedError,
    GatewayConnectError,
    GatewayRpcError,
    GatewayTimeoutError,
)
from ._events import Fanout, Frame, Gap
from ._handshake import handshake
from ._transport import CLOSE_TIMEOUT, close_quietly, open_socket
from ._waiter import Waiter
from ._wire import close_info, decode, encode

log = logging.getLogger("gateway_client")

TICK_TIMEOUT = 4000  # PROTOCOL.md 2.5: the client's own "tick timeout" close code


@dataclass(frozen=True, slots=True)
class Options:
    """What ``open_client`` was asked for; fixed for the client's lifetime."""

    url: str
    params: dict[str, Any]
    connect_timeout: float
    reconnect: bool
    max_backoff: float
    device: DeviceIdentity | None = None


def _silence_limit(hello: dict[str, Any]) -> float:
    policy = hello.get("policy")
    tick = policy.get("tickIntervalMs") if isinstance(policy, dict) else None
    if not isinstance(tick, int) or isinstance(tick, bool) or tick <= 0:
        tick = TICK_INTERVAL_MS
    return 2 * tick / 1000


def _event_filter(events: Iterable[str] | None) -> frozenset[str] | None:
    if events is None:
        return None
    if isinstance(events, str):
        return frozenset({events})  # one name, not a set of its letters
    return frozenset(events)


def _closed_copy(error: GatewayClientError) -> GatewayClosedError:
    if isinstance(error, GatewayClosedError):
        return GatewayClosedError(error.code, error.reason)
    return GatewayClosedError(None, str(error))


class GatewayClient:
    """A client connected to the gateway. Obtain one from :func:`open_client`.

    Attributes:
        hello: the latest ``hello-ok`` payload (replaced after every reconnect).
        gaps: every ``seq`` gap seen, oldest first.
    """

    hello: dict[str, Any]
    gaps: list[Gap]

    def __init__(self, options: Options, nursery: trio.Nursery) -> None:
        self.hello = {}
        self.gaps = []
        self._opts = options
        self._nursery = nursery
        self._fanout = Fanout()
        self._pending: dict[str, Waiter] = {}
        self._ws: WebSocketConnection | None = None
        self._last_seq = 0
        self._sessions = 0
        self._last_close: GatewayClientError = GatewayClosedError(None, "not connected yet")
        self._final: GatewayClientError | None = None  # set once we stop reconnecting
        self._closing = False
        self._changed = trio.Event()
        self._read_scope = trio.CancelScope()
        self._stopped = trio.Event()

    # -- public API ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while a session (after hello-ok) is up."""
        return self._ws is not None

    async def wait_connected(self) -> None:
        """Return once a session is up: at once if connected, else after the next reconnect.

        Raises the error that ended the client for good: :class:`GatewayConnectError` for a
        terminal auth failure while reconnecting, :class:`GatewayClosedError` when the socket
        closed and ``reconnect`` is off.

        Cancellation: safe; bound the wait with ``trio.fail_after``.
        """
        while self._ws is None:
            if self._final is not None:
                raise self._final.with_traceback(None)
            changed = self._changed
            await changed.wait()

    async def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        timeout: float | None = 10.0,
        expect_final: bool = False,
    ) -> Any:
        """Send one request and return the ``res`` payload.

        With ``expect_final=True`` a ``res`` whose payload has ``status: "accepted"`` is
        taken as the interim ack of a two-stage method (``agent``) and the call waits for
        the final ``res`` with the same id.

        Raises :class:`GatewayRpcError` for ``ok:false``, :class:`GatewayTimeoutError` after
        ``timeout`` seconds (``None`` waits forever), :class:`GatewayClosedError` if there is
        no session or the socket closes before the answer. Requests are never replayed on
        another session, even with ``reconnect=True``.

        Cancellation: safe. A call that is cancelled or times out sends the gateway a
        best-effort ``cancel`` frame so the server stops the work too.
        """
        ws = self._ws
        if ws is None:
            raise self._not_connected()
        request_id = str(uuid.uuid4())
        text = encode(
            {
                "type": "req",
                "id": request_id,
                "method": method,
                "params": {} if params is None else params,
            }
        )
        self._check_size(text)
        waiter = Waiter(expect_final)
        self._pending[request_id] = waiter
        limit = math.inf if timeout is None else timeout
        try:
            with trio.move_on_after(limit):
                try:
                    await ws.send_message(text)
                except trio_websocket.ConnectionClosed as exc:
                    waiter.fail(GatewayClosedError(*close_info(exc)))
                await waiter.done.wait()
        finally:
            self._pending.pop(request_id, None)
            if not waiter.done.is_set():
                self._send_cancel(ws, request_id)
        if not waiter.done.is_set():
            raise GatewayTimeoutError(limit, method)
        if waiter.error is not None:
            raise waiter.error
        frame = waiter.frame or {}
        if frame.get("ok") is True:
            return frame.get("payload")
        raise GatewayRpcError(method, frame.get("error"), frame.get("payload"))

    def subscribe(
        self, events: Iterable[str] | None = None, *, buffer: int = 256
    ) -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[dict[str, Any]]]:
        """Receive event frames (whole frames: ``type``, ``event``, ``payload``, ``seq``).

        ``events`` limits delivery to those event names (``None``: all). Every subscriber
        also gets the synthetic ``{"type": "gap", "expected", "received", "health",
        "presence"}`` frame after a ``seq`` gap, once state has been re-fetched (``health``/
        ``presence`` are ``None`` if that failed). Subscriptions survive reconnects; the
        channel ends when the client stops for good (closed without ``reconnect``, or a
        terminal auth failure).

        A subscriber is never allowed to slow the connection down: when its ``buffer`` is
        full, it misses events.

        Cancellation: safe; leaving the ``async with`` unsubscribes.
        """
        return self._fanout.subscription(_event_filter(events), buffer)

    # -- calls -----------------------------------------------------------------------------

    def _not_connected(self) -> GatewayClientError:
        if self._final is not None:
            return self._final.with_traceback(None)
        return _closed_copy(self._last_close)

    def _check_size(self, text: str) -> None:
        # The gateway would close the whole session with 1009; refuse just this request.
        policy = self.hello.get("policy")
        limit = policy.get("maxPayload") if isinstance(policy, dict) else None
        limit = limit if isinstance(limit, int) and limit > 0 else MAX_PAYLOAD_BYTES
        size = len(text.encode())
        if size > limit:
            raise GatewayClientError(f"request too large: {size} bytes (gateway limit {limit})")

    def _send_cancel(self, ws: WebSocketConnection, request_id: str) -> None:
        if self._closing or ws is not self._ws:
            return  # a new session never knew this request
        try:
            self._nursery.start_soon(self._cancel_remote, ws, request_id)
        except RuntimeError:
            pass  # nursery already closed: the session is gone anyway

    async def _cancel_remote(self, ws: WebSocketConnection, request_id: str) -> None:
        try:
            await ws.send_message(encode({"type": "cancel", "id": request_id}))
        except (
            trio_websocket.ConnectionClosed,
            trio.BrokenResourceError,
            trio.ClosedResourceError,
        ):
            pass

    # -- inbound frames --------------------------------------------------------------------

    def _dispatch(self, frame: Frame) -> None:
        kind = frame.get("type")
        if kind == "res":
            request_id = frame.get("id")
            waiter = self._pending.get(request_id) if isinstance(request_id, str) else None
            if waiter is not None and waiter.offer(frame):
                del self._pending[str(request_id)]
        elif kind == "event" and isinstance(frame.get("event"), str):
            self._track_seq(frame.get("seq"))
            self._fanout.publish(frame)

    def _track_seq(self, seq: object) -> None:
        if not isinstance(seq, int) or isinstance(seq, bool):
            return  # unicast events carry no seq and cannot reveal a gap
        expected = self._last_seq + 1
        if seq > expected:
            gap = Gap(expected, seq)
            self.gaps.append(gap)
            log.info("event gap: expected seq %d, received %d; refreshing state", expected, seq)
            self._nursery.start_soon(self._refresh_after_gap, gap)
        self._last_seq = max(self._last_seq, seq)

    async def _refresh_after_gap(self, gap: Gap) -> None:
        # Events are never replayed (PROTOCOL.md 4.3): re-fetch what they would have told us.
        health = await self._try_call("health")
        presence = await self._try_call("system-presence")
        self._fanout.publish(
            {
                "type": "gap",
                "expected": gap.expected,
                "received": gap.received,
                "health": health,
                "presence": presence,
            }
        )

    async def _try_call(self, method: str) -> Any:
        try:
            return await self.call(method)
        except GatewayClientError as exc:
            log.info("refresh after gap: %s failed: %s", method, exc)
            return None

    # -- sessions --------------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _attach(self, ws: WebSocketConnection, hello: dict[str, Any]) -> None:
        self._ws = ws
        self.hello = hello
        self._last_seq = 0  # seq is per connection: a new one starts at 1
        self._sessions += 1
        self._notify()

    def _detach(self, ended: GatewayClientError) -> None:
        self._ws = None
        self._last_close = ended
        waiters = list(self._pending.values())
        self._pending.clear()
        for waiter in waiters:
            waiter.fail(_closed_copy(ended))
        self._notify()

    async def _read(self, ws: WebSocketConnection, silence_limit: float) -> GatewayClientError:
        while True:
            message: str | bytes | None = None
            with trio.move_on_after(silence_limit):
                try:
                    message = await ws.get_message()
                except trio_websocket.ConnectionClosed as exc:
                    return GatewayClosedError(*close_info(exc))
            if message is None:
                # The gateway ticks every tickIntervalMs; this much silence means the peer
                # or the path to it is dead, and TCP alone may not notice for many minutes.
                await close_quietly(ws, TICK_TIMEOUT, "tick timeout")
                return GatewayClosedError(TICK_TIMEOUT, "tick timeout")
            frame = decode(message)
            if frame is not None:
                self._dispatch(frame)

    async def _session(self, ready: Callable[[], None]) -> GatewayClientError:
        """One connection, from TCP connect to close. Returns why it ended; raises only
        ``Cancelled``."""
        opts = self._opts
        started = trio.current_time()
        ended: GatewayClientError | None = None
        try:
            async with open_socket(
                opts.url, timeout=opts.connect_timeout, max_message_size=MAX_PAYLOAD_BYTES
            ) as ws:
                remaining = max(0.0, opts.connect_timeout - (trio.current_time() - started))
                hello = await handshake(
                    ws, opts.params, timeout=remaining, url=opts.url, device=opts.device
                )
                self._read_scope = trio.CancelScope()
                self._attach(ws, hello)
                ready()
                try:
                    with self._read_scope:
                        ended = await self._read(ws, _silence_limit(hello))
                    if self._read_scope.cancelled_caught:
                        ended = GatewayClosedError(1000, "client closed")
                finally:
                    self._detach(ended or GatewayClosedError(None, "connection lost"))
            # Leaving open_socket sent our close frame, if one was still due.
        except GatewayClientError as exc:
            # Prefer the reader's verdict (say, a tick timeout) over the socket layer's
            # complaint about how the close then went.
            return ended or exc
        return ended or GatewayClosedError(None, "connection lost")

    def _give_up(self, error: GatewayClientError) -> None:
        self._final = error
        self._fanout.close()
        self._notify()

    async def _supervise(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        try:
            await self._reconnect_loop(task_status)
        finally:
            self._stopped.set()

    async def _reconnect_loop(self, task_status: trio.TaskStatus[None]) -> None:
        def ready() -> None:
            if self._sessions == 1:
                task_status.started()  # open_client's body may run now

        backoff = Backoff(maximum=self._opts.max_backoff)
        while True:
            sessions = self._sessions
            ended = await self._session(ready)
            if self._sessions == 0:
                raise ended  # the first connect failed: open_client raises it
            if self._closing:
                return
            if self._sessions != sessions:
                backoff.reset()  # it worked for a while: start over at 1 s
            terminal = isinstance(ended, GatewayConnectError) and ended.terminal
            if not self._opts.reconnect or terminal:
                log.info("gateway client stopped: %s", ended)
                self._give_up(ended)
                return
            delay = backoff.next()
            if isinstance(ended, GatewayConnectError) and ended.retry_after_ms is not None:
                delay = max(delay, ended.retry_after_ms / 1000)
            log.info("%s; reconnecting in %.1fs", ended, delay)
            await trio.sleep(delay)

    async def _aclose(self) -> None:
        self._closing = True
        if self._final is None:
            self._give_up(GatewayClosedError(1000, "client closed"))  # for use after exit
        if self._ws is not None:
            # Let the session close its own socket: trio-websocket completes the close
            # handshake only while its reader task runs, and that task belongs to the
            # session. Cancelling everything first would cut the handshake short.
            self._read_scope.cancel()
            with trio.move_on_after(CLOSE_TIMEOUT + 1, shield=True):
                await self._stopped.wait()
        self._nursery.cancel_scope.cancel()
