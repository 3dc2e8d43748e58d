"""The origin policy at the server's edges, as admission checks (``server/admission.py``):
before the WebSocket upgrade (403, never a 101) and again inside ``connect`` (refused as
``CONTROL_UI_ORIGIN_NOT_ALLOWED``, close 1008). The decision itself is :mod:`gateway.origins`
(pure); this module feeds it the settings and the upgrade request."""

from __future__ import annotations

from typing import Any

from .. import observe
from ..clientip import ClientAddress
from ..config.settings import Settings, is_loopback_host
from ..errors import Forbidden, GatewayError, InvalidRequest
from ..origins import (
    CONNECT_MESSAGE,
    DETAIL_CODE,
    HOST_NOT_ALLOWED,
    NOT_ALLOWED,
    OriginPolicy,
    OriginRequest,
    OriginVerdict,
    check_host,
    check_origin,
)
from ..protocol.upgrade import Upgrade
from ..runtime import Runtime
from .admission import ConnectAttempt

_policy: tuple[Settings, OriginPolicy] | None = None


def policy(settings: Settings) -> OriginPolicy:
    """The policy of these settings, made once per settings object: ``allowedOrigins``
    reloads without a restart (a reload replaces the settings), and a handshake asks twice."""
    global _policy
    if _policy is None or _policy[0] is not settings:
        ui = settings.config.gateway.control_ui
        made = OriginPolicy(
            tuple(ui.allowed_origins),
            ui.dangerously_allow_host_header_origin_fallback,
            settings.port,
            is_loopback_host(settings.host),
        )
        _policy = (settings, made)
    return _policy[1]


def verdict(settings: Settings, upgrade: Upgrade) -> OriginVerdict:
    return check_origin(upgrade.origin_request, policy(settings))


def upgrade_check(rt: Runtime, upgrade: Upgrade) -> GatewayError | None:
    """Before the 101: a ``Host`` a loopback gateway does not answer to (DNS rebinding), or
    a browser page on an origin that may not drive the gateway, gets 403."""
    request, rules = upgrade.origin_request, policy(rt.settings)
    host = check_host(request, rules)
    if not host.allowed:
        observe.origin_refused(rt, upgrade.client_ip, upgrade.host, host.reason, "upgrade")
        return Forbidden(HOST_NOT_ALLOWED, details={"code": "HOST_NOT_ALLOWED"})
    found = check_origin(request, rules)
    if found.allowed:
        return None
    observe.origin_refused(rt, upgrade.client_ip, upgrade.origin, found.reason, "upgrade")
    return Forbidden(NOT_ALLOWED, details={"code": DETAIL_CODE, "reason": found.reason})


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def http_check(rt: Runtime, scope: dict[str, Any], client: ClientAddress) -> GatewayError | None:
    """Every HTTP request on the gateway port: the ``Host`` check (DNS rebinding) for all
    of them; for anything but GET/HEAD/OPTIONS -- what a browser page can send across
    sites, a ``text/plain`` or form POST needing no preflight -- the origin policy, as on
    the WebSocket. Requests without ``Origin`` are not browsers' (the CLI, SDKs, webhooks
    from WhatsApp's servers) and pass; a browser sends ``Origin`` with every POST, and
    ``Sec-Fetch-Site: cross-site`` without one is refused too."""
    headers = scope.get("headers", ())
    request = OriginRequest.from_headers(headers, client.peer, trusted_proxy=client.via_proxy)
    rules = policy(rt.settings)
    host = check_host(request, rules)
    if not host.allowed:
        observe.origin_refused(rt, client.ip, request.host, host.reason, "http")
        return Forbidden(HOST_NOT_ALLOWED, details={"code": "HOST_NOT_ALLOWED"})
    if scope.get("method") in SAFE_METHODS:
        return None
    found = check_origin(request, rules)
    if found.allowed and not request.is_browser:
        fetch_site = next(
            (bytes(v) for k, v in headers if bytes(k).lower() == b"sec-fetch-site"), b""
        )
        if fetch_site.strip().lower() == b"cross-site":
            found = OriginVerdict(False, "cross-site request")
    if found.allowed:
        return None
    observe.origin_refused(rt, client.ip, request.origin, found.reason, "http")
    return Forbidden(NOT_ALLOWED, details={"code": DETAIL_CODE, "reason": found.reason})


async def connect_check(rt: Runtime, attempt: ConnectAttempt) -> None:
    """Inside ``connect``, before the secret is looked at: the same policy again (the
    allowlist may have been reloaded since the upgrade)."""
    found = verdict(rt.settings, attempt.upgrade)
    if found.allowed:
        return
    observe.origin_refused(rt, attempt.ip, attempt.upgrade.origin, found.reason, "connect")
    raise InvalidRequest(CONNECT_MESSAGE, details={"code": DETAIL_CODE, "reason": found.reason})
