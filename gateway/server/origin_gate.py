"""The origin policy at the server's edges: the WebSocket upgrade (403 before the 101) and
``connect`` (checked again, refused as ``CONTROL_UI_ORIGIN_NOT_ALLOWED``). The decision itself
is :mod:`gateway.origins` (pure); this module only feeds it the settings and the request."""

from __future__ import annotations

from collections.abc import Iterable

from ..config.settings import Settings
from ..errors import InvalidRequest
from ..origins import (
    CONNECT_MESSAGE,
    DETAIL_CODE,
    NOT_ALLOWED,
    OriginPolicy,
    OriginRequest,
    OriginVerdict,
    check_origin,
)
from .http import SendFn

Headers = Iterable[tuple[bytes, bytes]]


def policy(settings: Settings) -> OriginPolicy:
    """Read on every check: ``allowedOrigins`` reloads without a restart."""
    ui = settings.config.gateway.control_ui
    return OriginPolicy(
        tuple(ui.allowed_origins), ui.dangerously_allow_host_header_origin_fallback, settings.port
    )


def check(settings: Settings, request: OriginRequest) -> OriginVerdict:
    return check_origin(request, policy(settings))


def connect_refusal(verdict: OriginVerdict) -> InvalidRequest:
    """What ``connect`` answers a browser whose origin is not allowed (then close 1008)."""
    return InvalidRequest(
        CONNECT_MESSAGE, details={"code": DETAIL_CODE, "reason": verdict.reason}
    )


def limiter_key(request: OriginRequest) -> str | None:
    """Failed-auth bucket: per IP, and for browsers per IP and origin -- never loopback-exempt,
    since a hostile page runs on the user's own machine (CONTROL-UI.md 3)."""
    if request.is_browser:
        return f"{request.peer_ip or '?'} origin {request.origin}"
    return request.peer_ip


async def refuse_upgrade(send: SendFn) -> None:
    """Answer the upgrade request with 403 instead of 101 (ASGI websocket denial response)."""
    body = NOT_ALLOWED.encode()
    await send(
        {
            "type": "websocket.http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "websocket.http.response.body", "body": body})
