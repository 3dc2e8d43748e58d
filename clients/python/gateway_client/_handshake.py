"""The connect handshake, client side (PROTOCOL.md 3 and 13.1)."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import attrs
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
    added by :class:`ClientHandshake` once the challenge nonce is known)."""
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


@attrs.frozen
class SendText:
    """Send this frame (the ``connect`` request)."""

    text: str


@attrs.frozen
class Abandon:
    """Close with ``code``/``reason`` and fail with ``message``."""

    code: int
    reason: str
    message: str


@attrs.frozen
class Accepted:
    """The gateway said hello-ok; ``hello`` is its payload."""

    hello: dict[str, Any]


@attrs.frozen
class Refused:
    """The gateway answered ``ok:false``; its close follows."""

    error: dict[str, Any]
    message: str


Step = SendText | Abandon | Accepted | Refused


class ClientHandshake:
    """The client side of the connect handshake, sans-IO (PROTOCOL.md 3.2, 13.1).

    Feed it every message the gateway sends; it answers the challenge with ``connect`` and
    tells how the handshake ended. Frames that are not JSON objects, and events other than
    the challenge, are skipped (the reference client's guards drop them too). With a
    ``device``, ``connect`` carries a ``device`` block signed over the challenge nonce
    (payload v3, ``signedAt`` = the challenge's ``ts``, or ``now_ms()`` if it has none).
    """

    def __init__(
        self,
        params: dict[str, Any],
        *,
        request_id: str | None = None,
        device: DeviceIdentity | None = None,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.params = params
        self.device = device
        self.now_ms = now_ms
        self.request_id = request_id or str(uuid.uuid4())
        self.nonce: str | None = None
        self.waiting_for = "no connect.challenge"

    def receive(self, message: str | bytes) -> list[Step]:
        frame = decode(message)
        if frame is None:
            return []
        if self.nonce is None:
            return self._challenge(frame)
        if frame.get("type") != "res" or frame.get("id") != self.request_id:
            return []
        if frame.get("ok") is not True:
            error = frame.get("error")
            shape: dict[str, Any] = error if isinstance(error, dict) else {}
            said = shape.get("message")
            text = said if isinstance(said, str) and said else "gateway rejected connect"
            return [Refused(shape, text)]
        payload = frame.get("payload")
        if not isinstance(payload, dict) or payload.get("type") != "hello-ok":
            why = "unexpected connect response"
            return [Abandon(CloseCode.PROTOCOL_MISMATCH, why, f"{why} (no hello-ok)")]
        return [Accepted(payload)]

    def _challenge(self, frame: dict[str, Any]) -> list[Step]:
        if frame.get("type") != "event" or frame.get("event") != "connect.challenge":
            return []
        payload = frame.get("payload")
        nonce = payload.get("nonce") if isinstance(payload, dict) else None
        if not isinstance(nonce, str) or not nonce:
            why = "connect challenge missing nonce"
            return [Abandon(CloseCode.POLICY, why, why)]
        self.nonce = nonce
        self.waiting_for = "no connect response"
        params = self.params
        if self.device is not None:
            ts = payload.get("ts") if isinstance(payload, dict) else None
            signed_at = ts if isinstance(ts, int) and not isinstance(ts, bool) else self.now_ms()
            params = {**params, "device": self.device.device_block(params, nonce, signed_at)}
        request = {"type": "req", "id": self.request_id, "method": "connect", "params": params}
        return [SendText(encode(request))]


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

    Raises :class:`GatewayConnectError` when no challenge or response arrives within
    ``timeout`` seconds, the challenge has no nonce, the gateway answers ``ok:false``
    (message = the gateway's, ``error``/``close_code`` attached) or closes the socket first.

    Cancellation: safe; the caller owns (and closes) the socket.
    """
    machine = ClientHandshake(params, device=device)
    with trio.move_on_after(timeout):
        while True:
            try:
                message = await ws.get_message()
            except trio_websocket.ConnectionClosed as exc:
                raise closed_before_hello(exc) from None
            for step in machine.receive(message):
                match step:
                    case SendText(text):
                        try:
                            await ws.send_message(text)
                        except trio_websocket.ConnectionClosed as exc:
                            raise closed_before_hello(exc) from None
                    case Accepted(hello):
                        return hello
                    case Refused(error, message):
                        code, reason = await _close_code(ws)
                        raise GatewayConnectError(
                            message, error=error, close_code=code, close_reason=reason
                        )
                    case Abandon(code, reason, message):
                        await close_quietly(ws, code, reason)
                        raise connect_failed(message, url)
    # The reference client's close reasons (PROTOCOL.md 3.2), so gateway logs match.
    waiting_for = machine.waiting_for
    why = "connect challenge timeout" if machine.nonce is None else "connect timeout"
    await close_quietly(ws, CloseCode.POLICY, why)
    raise timed_out(waiting_for, timeout, url)
