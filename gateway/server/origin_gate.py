"""The origin policy at the server's edges, as admission checks (``server/admission.py``):
before the WebSocket upgrade (403, never a 101) and again inside ``connect`` (refused as
``CONTROL_UI_ORIGIN_NOT_ALLOWED``, close 1008). The decision itself is :mod:`gateway.origins`
(pure); this module feeds it the settings and the upgrade request."""

from __future__ import annotations

from .. import observe
from ..config.settings import Settings
from ..errors import Forbidden, GatewayError, InvalidRequest
from ..origins import (
    CONNECT_MESSAGE,
    DETAIL_CODE,
    NOT_ALLOWED,
    OriginPolicy,
    OriginRequest,
    OriginVerdict,
    check_origin,
)
from ..protocol.upgrade import Upgrade
from ..runtime import Runtime
from .admission import ConnectAttempt


def policy(settings: Settings) -> OriginPolicy:
    """Read on every check: ``allowedOrigins`` reloads without a restart."""
    ui = settings.config.gateway.control_ui
    return OriginPolicy(
        tuple(ui.allowed_origins), ui.dangerously_allow_host_header_origin_fallback, settings.port
    )


def request_of(upgrade: Upgrade) -> OriginRequest:
    address = upgrade.address
    return OriginRequest.from_headers(
        upgrade.headers, address.peer, trusted_proxy=address.via_proxy
    )


def verdict(settings: Settings, upgrade: Upgrade) -> OriginVerdict:
    return check_origin(request_of(upgrade), policy(settings))


def upgrade_check(rt: Runtime, upgrade: Upgrade) -> GatewayError | None:
    """Before the 101: a browser page on an origin that may not drive the gateway gets 403."""
    found = verdict(rt.settings, upgrade)
    if found.allowed:
        return None
    observe.origin_refused(rt, upgrade.client_ip, upgrade.origin, found.reason, "upgrade")
    return Forbidden(NOT_ALLOWED, details={"code": DETAIL_CODE, "reason": found.reason})


async def connect_check(rt: Runtime, attempt: ConnectAttempt) -> None:
    """Inside ``connect``, before the secret is looked at: the same policy again (the
    allowlist may have been reloaded since the upgrade)."""
    found = verdict(rt.settings, attempt.upgrade)
    if found.allowed:
        return
    observe.origin_refused(rt, attempt.ip, attempt.upgrade.origin, found.reason, "connect")
    raise InvalidRequest(CONNECT_MESSAGE, details={"code": DETAIL_CODE, "reason": found.reason})
