"""Serve the Control UI over HTTP: every answer carries the UI's security headers.

The CSP allows only this origin's scripts, styles, images (and ``data:`` images) and
connections (CSP3 ``'self'`` covers the same host's ``ws:``/``wss:``), no inline script or
style, no plugins, no framing, no forms posting elsewhere. ``Cache-Control: no-cache`` makes
the browser revalidate (cheaply: ``ETag`` / 304), so a tab never runs a stale bundle after
an upgrade.
"""

from __future__ import annotations

from typing import Any

import trio

from ..protocol.codec import dumps
from ..runtime import Runtime
from ..server.http import Receive, SendFn
from . import assets
from .routing import TOKEN_IN_QUERY, normalize_base, route

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'; object-src 'none'"
)
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"cache-control", b"no-cache"),
]
TEXT = "text/plain; charset=utf-8"
JSON = "application/json; charset=utf-8"
MISSING = (
    "Control UI assets not found. Reinstall smart-agent-neo, or set gateway.controlUi.root "
    "to a folder that has index.html ({why})."
)

_cache: dict[tuple[str | None, str], assets.Assets] = {}


async def _assets(root: str | None, base: str) -> assets.Assets:
    """The UI's files (cached once read); raises :class:`assets.AssetsMissing`."""
    key = (root, base)
    cached = _cache.get(key)
    if cached is None:
        cached = await trio.to_thread.run_sync(assets.load, root, base)
        _cache[key] = cached
    return cached


async def _respond(
    send: SendFn,
    status: int,
    body: bytes,
    content_type: str,
    *,
    head: bool = False,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        *SECURITY_HEADERS,
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if bytes(key).lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def handle_control_ui(
    rt: Runtime, scope: dict[str, Any], receive: Receive, send: SendFn
) -> bool:
    """Answer the request if it is the UI's; ``False`` leaves it to the router's 404."""
    ui = rt.settings.config.gateway.control_ui
    if not ui.enabled:
        return False
    base = normalize_base(ui.base_path)
    method = str(scope.get("method", "GET"))
    path = str(scope.get("path", "/"))
    query = bytes(scope.get("query_string", b""))
    try:
        files = await _assets(ui.root, base)
    except (assets.AssetsMissing, OSError) as exc:
        files = None
        problem = str(exc)
    decision = route(method, path, query, base, files.names if files else frozenset())
    head = method == "HEAD"
    if decision.kind == "not-ui":
        return False
    if decision.kind == "redirect":
        await _respond(send, 302, b"", TEXT, extra=[(b"location", decision.target.encode())])
    elif decision.kind == "token-in-query":
        await _respond(send, 400, TOKEN_IN_QUERY.encode(), TEXT)
    elif decision.kind == "method":
        await _respond(send, 405, b"Method Not Allowed", TEXT, extra=[(b"allow", b"GET, HEAD")])
    elif decision.kind == "not-found":
        await _respond(send, 404, b"Not Found", TEXT, head=head)
    elif decision.kind == "api-not-found":
        await _respond(send, 404, dumps({"error": "Not found"}).encode(), JSON, head=head)
    elif files is None:
        await _respond(send, 503, MISSING.format(why=problem).encode(), TEXT, head=head)
    else:
        asset = files.files[decision.target] if decision.kind == "file" else files.index
        etag = [(b"etag", asset.etag.encode())]
        if _header(scope, b"if-none-match") == asset.etag:
            await _respond(send, 304, b"", asset.content_type, head=True, extra=etag)
        else:
            await _respond(send, 200, asset.body, asset.content_type, head=head, extra=etag)
    return True
