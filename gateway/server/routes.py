"""The HTTP route table of the gateway port: exact paths first, then prefixes, else 404."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .. import observe
from ..controlui.handler import handle_control_ui
from ..runtime import Runtime
from . import origin_gate
from .bodies import release
from .hooks_http import handle_hooks, owns
from .http import LIVENESS, READINESS, STARTUP, Receive, SendFn, client_of, not_found, probe
from .httpapi import send_error
from .openai_chat import MODELS_PREFIX, chat_completions, model_detail, models
from .openai_responses import responses
from .scrape import metrics_endpoint
from .tools_http import tools_invoke

if TYPE_CHECKING:
    from ..channels.slot import AccountSlot

Handler = Callable[[Runtime, dict[str, Any], Receive, SendFn], Awaitable[None]]

EXACT: dict[str, Handler] = {
    **{path: probe for path in (*LIVENESS, *READINESS, *STARTUP)},
    "/metrics": metrics_endpoint,
    "/tools/invoke": tools_invoke,
    "/v1/responses": responses,
    "/v1/chat/completions": chat_completions,
    "/v1/models": models,
}
PREFIXES: tuple[tuple[str, Handler], ...] = ((MODELS_PREFIX, model_detail),)


def _whatsapp_account(rt: Runtime, path: str) -> AccountSlot | None:
    """The WhatsApp account whose webhook ``path`` is; the webhook module (and the ledger
    with it) loads only in a gateway that has a WhatsApp account (idle RSS)."""
    if not any(channel == "whatsapp" for channel, _ in rt.channels.slots):
        return None
    from ..channels.whatsapp import webhook

    return webhook.find_account(rt, path)


def route_of(path: str, rt: Runtime | None = None) -> str:
    """The route a path matched, as a metrics label (never the raw path: it is unbounded)."""
    if rt is not None and owns(rt, path):
        return "hooks"
    if path in EXACT:
        return path
    if rt is not None and _whatsapp_account(rt, path) is not None:
        return "whatsapp-webhook"
    return next((prefix for prefix, _ in PREFIXES if path.startswith(prefix)), "unmatched")


async def handle_http(rt: Runtime, scope: dict[str, Any], receive: Receive, send: SendFn) -> None:
    path: str = scope["path"]
    client = client_of(rt, scope)  # who it is (behind trusted proxies): checks, log lines
    send = observe.watch_http(rt, scope, send, route_of(path, rt))
    refusal = origin_gate.http_check(rt, scope, client)
    if refusal is not None:  # a rebound Host, or a browser page from another site
        await send_error(send, refusal)
        return
    if owns(rt, path):  # hooks first (OPERATIONS.md A.0), with their own token
        try:
            await handle_hooks(rt, scope, receive, send)
        finally:
            release(rt.bodies, scope)
        return
    handler = EXACT.get(path)
    account = _whatsapp_account(rt, path) if handler is None else None
    if account is not None:  # Meta's webhook for a WhatsApp account (HMAC, not the token)
        from ..channels.whatsapp import webhook

        try:
            await webhook.handle(rt, account, scope, receive, send)
        finally:
            release(rt.bodies, scope)
        return
    if handler is None:
        handler = next((h for prefix, h in PREFIXES if path.startswith(prefix)), None)
    if handler is None:
        # the Control UI is the last handler before 404 (OPERATIONS.md A.0)
        if not await handle_control_ui(rt, scope, receive, send):
            await not_found(send)
        return
    try:
        await handler(rt, scope, receive, send)
    finally:
        release(rt.bodies, scope)  # the body budget a big request reserved (bodies.py)
