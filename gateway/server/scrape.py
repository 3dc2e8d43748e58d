"""``GET /metrics``: the Prometheus scrape endpoint.

Bearer auth like every other gateway API (``Authorization: Bearer <token or password>``),
with the same failed-attempt limiter (429 + ``Retry-After`` while an IP is locked out).
``gateway.metrics.allowLoopbackWithoutAuth`` lets a scraper on the same host in without a
secret -- only a direct loopback connection: a request that carries proxy headers came from
somewhere else through a local reverse proxy and must authenticate (FAILURE-MODES.md item 21).
``gateway.metrics.enabled: false`` makes the path a plain 404.
"""

from __future__ import annotations

import math
from typing import Any

from .. import observe
from ..auth import check_bearer, is_loopback_ip
from ..metrics import CONTENT_TYPE
from ..protocol.codec import dumps
from ..runtime import Runtime
from .http import Receive, not_found, respond, respond_json
from .outbox import SendFn

PROXY_HEADERS = frozenset({b"forwarded", b"x-forwarded-for", b"x-real-ip", b"x-forwarded-host"})
UNAUTHORIZED = {"error": {"message": "Unauthorized", "type": "unauthorized"}}
RATE_LIMITED = {
    "error": {
        "message": "Too many failed authentication attempts. Please try again later.",
        "type": "rate_limited",
    }
}


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _local_direct(scope: dict[str, Any]) -> bool:
    client = scope.get("client")
    if not client or not is_loopback_ip(str(client[0])):
        return False
    return not any(key.lower() in PROXY_HEADERS for key, _ in scope.get("headers", []))


async def metrics_endpoint(
    rt: Runtime, scope: dict[str, Any], receive: Receive, send: SendFn
) -> None:
    cfg = rt.settings.config.gateway.metrics
    if not cfg.enabled:
        await not_found(send)
        return
    method = scope["method"]
    if method not in ("GET", "HEAD"):
        await respond(
            send,
            405,
            b"Method Not Allowed",
            b"text/plain; charset=utf-8",
            extra=[(b"allow", b"GET, HEAD")],
        )
        return
    client = scope.get("client")
    ip = str(client[0]) if client else None
    open_here = cfg.allow_loopback_without_auth and _local_direct(scope)
    if not open_here:
        now = rt.now_ms()
        wait_ms = rt.limiter.retry_after_ms(ip, now)
        if wait_ms is not None:
            observe.auth_failed(rt, "http", ip, "AUTH_RATE_LIMITED")
            await respond(
                send,
                429,
                _json(RATE_LIMITED),
                b"application/json; charset=utf-8",
                extra=[(b"retry-after", str(math.ceil(wait_ms / 1000)).encode())],
            )
            return
        header = _header(scope, b"authorization")
        if not check_bearer(rt.settings.auth, header):
            if header:  # only a wrong secret counts toward the lockout, not a missing one
                rt.limiter.record_failure(ip, now)
            reason = "AUTH_BEARER_MISMATCH" if header else "AUTH_BEARER_MISSING"
            observe.auth_failed(rt, "http", ip, reason)
            await respond_json(send, 401, UNAUTHORIZED)
            return
        rt.limiter.record_success(ip)
    body = rt.metrics.render()
    await respond(send, 200, body, CONTENT_TYPE.encode(), head=method == "HEAD")


def _json(value: object) -> bytes:
    return dumps(value).encode()
