"""``GET /metrics``: the Prometheus scrape endpoint.

Bearer auth like every other gateway API (``Authorization: Bearer <token or password>``),
with the same failed-attempt limiter (429 + ``Retry-After`` while an IP is locked out).
``gateway.metrics.allowLoopbackWithoutAuth`` lets a scraper on the same host in without a
secret -- only a direct loopback connection: a request that carries proxy headers came from
somewhere else through a local reverse proxy and must authenticate (FAILURE-MODES.md item 21).
``gateway.metrics.enabled: false`` makes the path a plain 404.
"""

from __future__ import annotations

from typing import Any

from ..errors import GatewayError
from ..metrics import CONTENT_TYPE
from ..runtime import Runtime
from .http import Receive, SendFn, client_of, not_found, respond
from .httpapi import authorize, check_method, send_error


async def metrics_endpoint(
    rt: Runtime, scope: dict[str, Any], receive: Receive, send: SendFn
) -> None:
    cfg = rt.settings.config.gateway.metrics
    if not cfg.enabled:
        await not_found(send)
        return
    try:
        check_method(scope, ("GET", "HEAD"))
        if not (cfg.allow_loopback_without_auth and client_of(rt, scope).local_direct):
            authorize(rt, scope)  # the same Bearer check and limiter as every gateway API
    except GatewayError as error:
        await send_error(send, error)
        return
    body = rt.metrics.render()
    await respond(send, 200, body, CONTENT_TYPE.encode(), head=scope["method"] == "HEAD")
