"""One WebSocket: TCP (or TLS) connect, upgrade, and a close that always frees the socket.

We open the TCP stream ourselves and hand it to ``trio_websocket.wrap_client_stream``
instead of calling ``connect_websocket_url``: when the *server* closes first (a gateway
restart, a rejected handshake), trio-websocket's ``aclose()`` returns early and nobody
closes the client's socket -- it leaks until garbage collection (``ResourceWarning``).
Owning the stream lets us close it in a ``finally``.
"""

from __future__ import annotations

import math
import os
import ssl
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio
import trio_websocket
from trio_websocket import WebSocketConnection
from wsproto.utilities import ProtocolError

from ._errors import GatewayClosedError, GatewayConnectError
from ._groups import collapse, reraise
from ._wire import close_info

# Long enough for a live gateway to answer our close frame, short enough that leaving the
# client's context never hangs on a dead peer.
CLOSE_TIMEOUT = 2.0
DYING_CLOSE_TIMEOUT = 0.1

Stream = trio.SocketStream | trio.SSLStream[trio.SocketStream]


@attrs.frozen
class Target:
    host: str
    port: int
    resource: str
    host_header: str
    tls: bool


def parse_url(url: str) -> Target:
    """Split a ``ws://`` / ``wss://`` URL; ``ValueError`` for anything else."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError("scheme must be ws:// or wss://")
    if not parts.hostname:
        raise ValueError("no host")
    tls = parts.scheme == "wss"
    default_port = 443 if tls else 80
    port = parts.port or default_port  # .port raises ValueError for a bad port
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == default_port else f"{shown}:{port}"
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(host, port, resource, host_header, tls)


def _os_reason(exc: OSError) -> str:
    # trio.open_tcp_stream raises "all attempts to connect to H:P failed" and hides the
    # per-address errors in __cause__; the user wants "Connection refused".
    cause = exc.__cause__
    leaves = list(cause.exceptions) if isinstance(cause, BaseExceptionGroup) else [exc]
    reasons: dict[str, None] = {}
    for leaf in leaves:
        if isinstance(leaf, ssl.SSLError):  # its errno is an SSL_ERROR_* code, not errno
            reasons[str(leaf)] = None
        elif isinstance(leaf, OSError) and leaf.errno is not None and leaf.errno > 0:
            reasons[os.strerror(leaf.errno)] = None
        elif isinstance(leaf, OSError) and leaf.strerror:
            reasons[leaf.strerror] = None
        else:
            reasons[str(leaf) or type(leaf).__name__] = None
    return "; ".join(reasons)


def connect_failed(reason: str, url: str) -> GatewayConnectError:
    return GatewayConnectError(f"gateway connect failed: {reason} ({url})")


def timed_out(what: str, deadline_s: float, url: str) -> GatewayConnectError:
    return connect_failed(f"{what} within {round(deadline_s * 1000)}ms", url)


def _translate(exc: BaseException, url: str) -> BaseException:
    if isinstance(exc, trio_websocket.ConnectionRejected):
        return connect_failed(f"HTTP {exc.status_code} on websocket upgrade", url)
    if isinstance(exc, trio_websocket.HandshakeError):
        return connect_failed("websocket handshake failed", url)
    if isinstance(exc, trio_websocket.ConnectionClosed):
        return GatewayClosedError(*close_info(exc))
    if isinstance(exc, (ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError)):
        # trio-websocket's reader task can die of these, e.g. it answers a ping that
        # arrives while our close frame is in flight and wsproto refuses the pong.
        error = GatewayClosedError(1006, f"websocket failed: {exc}")
        error.__cause__ = exc
        return error
    if isinstance(exc, OSError):
        return connect_failed(_os_reason(exc), url)
    return exc


async def _open_tls(target: Target, url: str) -> trio.SSLStream[trio.SocketStream]:
    context = ssl.create_default_context()
    stream = await trio.open_ssl_over_tcp_stream(
        target.host, target.port, ssl_context=context, https_compatible=True
    )
    try:
        # Handshake now: left to trio-websocket, a bad certificate would surface only as
        # an upgrade that never completes.
        await stream.do_handshake()
    except BaseException as exc:
        await trio.aclose_forcefully(stream)
        if isinstance(exc, trio.BrokenResourceError):
            raise connect_failed(f"TLS handshake failed: {exc.__cause__ or exc}", url) from None
        raise
    return stream


async def _open_stream(target: Target, url: str, timeout: float) -> Stream:
    with trio.move_on_after(timeout):
        try:
            if target.tls:
                return await _open_tls(target, url)
            return await trio.open_tcp_stream(target.host, target.port)
        except OSError as exc:
            raise connect_failed(_os_reason(exc), url) from None
    raise timed_out("no TCP connection", timeout, url)


async def close_quietly(
    ws: WebSocketConnection,
    code: int = 1000,
    reason: str | None = None,
    *,
    timeout: float = CLOSE_TIMEOUT,
) -> None:
    """Send a close frame and wait up to ``timeout`` for the reply; never raises.

    Cancellation: shielded (and bounded by ``timeout``), so a client that leaves its
    context because it was cancelled still says goodbye with a close frame.
    """
    with trio.move_on_after(timeout, shield=True):
        try:
            await ws.aclose(code, reason)
        except (
            trio_websocket.ConnectionClosed,
            ProtocolError,
            trio.BrokenResourceError,
            trio.ClosedResourceError,
            OSError,
        ):
            pass


@asynccontextmanager
async def open_socket(
    url: str, *, timeout: float, max_message_size: int
) -> AsyncIterator[WebSocketConnection]:
    """An upgraded WebSocket to ``url``; closed (1000) and its socket freed on exit.

    Raises :class:`GatewayConnectError` when the URL is invalid, the TCP connection or the
    HTTP upgrade fails, or together they take longer than ``timeout`` seconds.

    Cancellation: safe at any point; the socket is always closed.
    """
    try:
        target = parse_url(url)
    except ValueError as exc:
        raise connect_failed(f"invalid url: {exc}", url) from None
    started = trio.current_time()
    stream = await _open_stream(target, url, timeout)
    try:
        async with trio.open_nursery() as nursery:  # holds trio-websocket's reader task
            remaining = max(0.0, timeout - (trio.current_time() - started))
            with trio.move_on_after(remaining) as upgrade:
                ws = await trio_websocket.wrap_client_stream(
                    nursery,
                    stream,
                    target.host_header,
                    target.resource,
                    max_message_size=max_message_size,
                )
            if upgrade.cancelled_caught:
                raise timed_out("no websocket upgrade", timeout, url)
            try:
                yield ws
            finally:
                # trio-websocket reads the gateway's close reply in its reader task, which
                # lives in this nursery: if we are being cancelled, so is it, and waiting for
                # the reply would only burn CLOSE_TIMEOUT. Send the frame and go.
                dying = trio.current_effective_deadline() == -math.inf
                await close_quietly(ws, timeout=DYING_CLOSE_TIMEOUT if dying else CLOSE_TIMEOUT)
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        reraise(_translate(collapse(group), url))
    finally:
        await trio.aclose_forcefully(stream)
