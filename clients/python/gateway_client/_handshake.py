"""The connect handshake, client side (PROTOCOL.md 3 and 13.1)."""

from __future__ import annotations

import sys
import time
import uuid
from typing import Any

import trio
import trio_websocket
from trio_websocket import WebSocketConnection

from gateway.protocol.frames import PROTOCOL_VERSION, CloseCode

from ._device import DeviceIdentity
from ._errors import GatewayConnectError
from ._transport import CLOSE_TIMEOUT, close_quietly, connect_failed, timed_out
from ._wire import close_info, closed_before_hello, decode, encode


def connect_params(
    *,
    client_id: str,
    client_mode: str,
    client_version: str,
    instance_id: str,
    display_name: str | None,
    role: str,
    scopes: list[str] | None,
    caps: list[str] | None,
    token: str | None,
    password: str | None,
    device_token: str | None = None,
    commands: list[str] | None = None,
    permissions: dict[str, bool] | None = None,
    path_env: str | None = None,
    platform: str | None = None,
    device_family: str | None = None,
) -> dict[str, Any]:
    """``connect`` params as the reference clients send them (the device block, if any, is
    added by :func:`handshake` once the challenge nonce is known)."""
    client: dict[str, Any] = {
        "id": client_id,
        "version": client_version,
        "platform": platform or sys.platform,
        "mode": client_mode,
        "instanceId": instance_id,
    }
    if device_family:
        client["deviceFamily"] = device_family
    if display_name:
        client["displayName"] = display_name
    params: dict[str, Any] = {
        "minProtocol": PROTOCOL_VERSION,
        "maxProtocol": PROTOCOL_VERSION,
        "client": client,
        "caps": list(caps or []),
        "role": role,
    }
    # Absent scopes mean "whatever the shared secret grants" (admin on this gateway); an
    # explicit list, even an empty one, is the caller's choice and is sent as is.
    if scopes is not None:
        params["scopes"] = list(scopes)
    if commands is not None:
        params["commands"] = list(commands)
    if permissions is not None:
        params["permissions"] = dict(permissions)
    if path_env is not None:
        params["pathEnv"] = path_env
    auth = {
        k: v
        for k, v in (("token", token), ("password", password), ("deviceToken", device_token))
        if v is not None
    }
    if auth:
        params["auth"] = auth
    return params


async def _next_frame(ws: WebSocketConnection) -> dict[str, Any]:
    while True:
        try:
            message = await ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            raise closed_before_hello(exc) from None
        frame = decode(message)
        if frame is not None:
            return frame


async def _challenge(ws: WebSocketConnection) -> dict[str, Any]:
    while True:
        frame = await _next_frame(ws)
        if frame.get("type") == "event" and frame.get("event") == "connect.challenge":
            payload = frame.get("payload")
            return payload if isinstance(payload, dict) else {}


async def _response(ws: WebSocketConnection, request_id: str) -> dict[str, Any]:
    while True:
        frame = await _next_frame(ws)
        if frame.get("type") == "res" and frame.get("id") == request_id:
            return frame


async def _close_code(ws: WebSocketConnection) -> tuple[int | None, str]:
    # The gateway sends the error res first and the close right after (PROTOCOL.md 2.4);
    # wait for that close briefly so the error can carry its code.
    with trio.move_on_after(CLOSE_TIMEOUT):
        try:
            while True:
                await ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            return close_info(exc)
    return None, ""


async def handshake(
    ws: WebSocketConnection,
    params: dict[str, Any],
    *,
    timeout: float,
    url: str,
    device: DeviceIdentity | None = None,
) -> dict[str, Any]:
    """Wait for ``connect.challenge``, send ``connect``, return the hello-ok payload.

    With ``device``, ``connect`` carries a ``device`` block signed over the challenge nonce
    (payload v3, ``signedAt`` = the challenge's ``ts``).

    Raises :class:`GatewayConnectError` when no challenge or response arrives within
    ``timeout`` seconds, the challenge has no nonce, the gateway answers ``ok:false``
    (message = the gateway's, ``error``/``close_code`` attached) or closes the socket first.

    Cancellation: safe; the caller owns (and closes) the socket.
    """
    waiting_for = "no connect.challenge"
    res: dict[str, Any] | None = None
    with trio.move_on_after(timeout):
        challenge = await _challenge(ws)
        nonce = challenge.get("nonce")
        if not isinstance(nonce, str) or not nonce:
            await close_quietly(ws, CloseCode.POLICY, "connect challenge missing nonce")
            raise connect_failed("connect challenge missing nonce", url)
        if device is not None:
            ts = challenge.get("ts")
            signed_at = ts if isinstance(ts, int) else int(time.time() * 1000)
            params = {**params, "device": device.device_block(params, nonce, signed_at)}
        waiting_for = "no connect response"
        request_id = str(uuid.uuid4())
        frame = {"type": "req", "id": request_id, "method": "connect", "params": params}
        try:
            await ws.send_message(encode(frame))
        except trio_websocket.ConnectionClosed as exc:
            raise closed_before_hello(exc) from None
        res = await _response(ws, request_id)
    if res is None:
        # The reference client's close reasons (PROTOCOL.md 3.2), so gateway logs match.
        why = (
            "connect challenge timeout"
            if waiting_for == "no connect.challenge"
            else "connect timeout"
        )
        await close_quietly(ws, CloseCode.POLICY, why)
        raise timed_out(waiting_for, timeout, url)
    if res.get("ok") is not True:
        error = res.get("error")
        shape: dict[str, Any] = error if isinstance(error, dict) else {}
        message = shape.get("message")
        code, reason = await _close_code(ws)
        raise GatewayConnectError(
            message if isinstance(message, str) and message else "gateway rejected connect",
            error=shape,
            close_code=code,
            close_reason=reason,
        )
    payload = res.get("payload")
    if not isinstance(payload, dict) or payload.get("type") != "hello-ok":
        await close_quietly(ws, CloseCode.PROTOCOL_MISMATCH, "unexpected connect response")
        raise connect_failed("unexpected connect response (no hello-ok)", url)
    return payload
