"""Plain HTTP helpers, and the unauthenticated probes.

``/health`` and ``/healthz`` answer whenever the process serves HTTP (liveness);
``/ready`` and ``/readyz`` answer 200 only once start-up is done, the gateway is not
draining for a stop or restart, and the channels pass (CHANNELS.md 7.2: the primary
channel linked, no enabled account failed, breaker-stopped, or backing off past
``readiness.channelGraceMs``); local callers see which account fails. ``/startup`` and
``/startupz`` (the reference's newer probe) answer 200 once start-up is done and the gateway
is not draining, whatever the channels say. All accept GET and HEAD.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..clientip import ClientAddress, attribute
from ..protocol.codec import dumps
from ..runtime import Runtime

Receive = Callable[[], Awaitable[dict[str, Any]]]  # ASGI receive and send
SendFn = Callable[[dict[str, Any]], Awaitable[None]]

BASELINE_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", b"camera=(), geolocation=()"),
    (b"cache-control", b"no-store"),
]
JSON = b"application/json; charset=utf-8"
TEXT = b"text/plain; charset=utf-8"

LIVENESS = frozenset({"/health", "/healthz"})
READINESS = frozenset({"/ready", "/readyz"})
STARTUP = frozenset({"/startup", "/startupz"})  # started and not draining; channels ignored


async def respond(
    send: SendFn,
    status: int,
    body: bytes,
    content_type: bytes,
    *,
    head: bool = False,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        *BASELINE_HEADERS,
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def respond_json(send: SendFn, status: int, value: object, *, head: bool = False) -> None:
    await respond(send, status, dumps(value).encode(), JSON, head=head)


def client_of(rt: Runtime, scope: dict[str, Any]) -> ClientAddress:
    """Who sent this HTTP request: the peer, or behind a trusted proxy the client it names
    (``gateway.trustedProxies``, clientip.py). Resolved once per request and kept in the
    scope."""
    found = scope.get("gateway.client")
    if found is None:
        client = scope.get("client")
        found = attribute(
            str(client[0]) if client else None, scope.get("headers", ()), rt.settings.proxies
        )
        scope["gateway.client"] = found
    return found


async def probe(rt: Runtime, scope: dict[str, Any], receive: Receive, send: SendFn) -> None:
    method = scope["method"]
    if method not in ("GET", "HEAD"):
        await respond(send, 405, b"Method Not Allowed", TEXT, extra=[(b"allow", b"GET, HEAD")])
        return
    head = method == "HEAD"
    if scope["path"] in LIVENESS:
        await respond_json(send, 200, {"ok": True, "status": "live"}, head=head)
    elif scope["path"] in STARTUP:
        if rt.ready and not rt.draining:
            await respond_json(send, 200, {"ok": True, "status": "started"}, head=head)
        else:
            status = "draining" if rt.draining else "starting"
            await respond_json(send, 503, {"ok": False, "status": status}, head=head)
    elif rt.ready and not rt.draining:
        failing = rt.channels.readiness()
        if not failing:
            await respond_json(send, 200, {"ok": True, "status": "ready"}, head=head)
            return
        body: dict[str, object] = {"ok": False, "status": "not-ready"}
        if client_of(rt, scope).local_direct:  # details only for local callers
            body["failing"] = failing
        await respond_json(send, 503, body, head=head)
    else:
        status = "draining" if rt.draining else "starting"
        await respond_json(send, 503, {"ok": False, "status": status}, head=head)


async def not_found(send: SendFn) -> None:
    await respond(send, 404, b"Not Found", TEXT)
