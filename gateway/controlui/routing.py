"""Which answer a Control UI request gets (CONTROL-UI.md 1, 2). Pure.

The UI is the last HTTP handler before 404. Mounted at ``/`` it would otherwise swallow every
unknown path into its SPA fallback, so paths the gateway owns (probes, ``/v1``, ``/tools``,
``/metrics``, ``/hooks``, the ``/__smart-agent-neo__`` namespace) are never the UI's: a
disabled endpoint stays a plain 404.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import parse_qsl

import attrs

Kind = Literal[
    "not-ui",  # not ours: the router answers 404
    "redirect",  # <base> -> <base>/ (query kept)
    "token-in-query",  # 400: secrets never travel in URLs
    "method",  # 405
    "not-found",  # 404 text: unsafe path
    "api-not-found",  # 404 JSON under <base>/api/
    "file",  # an existing file
    "index",  # index.html (the root, or the SPA fallback)
]

GATEWAY_EXACT = frozenset({"/health", "/healthz", "/ready", "/readyz"})
GATEWAY_PREFIXES = ("/v1", "/tools", "/metrics", "/hooks", "/__smart-agent-neo__")
TOKEN_IN_QUERY = "Token must be passed as #token=… (query parameters are not allowed)."


@attrs.frozen
class Route:
    kind: Kind
    target: str = ""  # the file's relative path, or the redirect location


def normalize_base(base_path: str) -> str:
    """``/`` -> ``""``; ``dash/`` -> ``/dash``: a leading slash and no trailing one."""
    stripped = base_path.strip().strip("/")
    return f"/{stripped}" if stripped else ""


def _owned_by_gateway(path: str) -> bool:
    if path in GATEWAY_EXACT:
        return True
    return any(path == p or path.startswith(p + "/") for p in GATEWAY_PREFIXES)


def route(method: str, path: str, query: bytes, base: str, files: frozenset[str]) -> Route:
    """``base`` is normalized (:func:`normalize_base`); ``files`` the UI's relative paths."""
    if base:
        if path != base and not path.startswith(base + "/"):
            return Route("not-ui")
    elif _owned_by_gateway(path):
        return Route("not-ui")
    # before the redirect: a 302 would carry the token on into the Location header
    if any(key == "token" for key, _ in parse_qsl(query.decode("latin-1"), True)):
        return Route("token-in-query")
    if path == base:
        suffix = "?" + query.decode("latin-1") if query else ""
        return Route("redirect", f"{base}/{suffix}")
    if method not in ("GET", "HEAD"):
        return Route("method")
    rel = path[len(base) + 1 :]
    segments = rel.split("/")
    if "\x00" in rel or "\\" in rel or ".." in segments or any(s.startswith(".") for s in segments):
        return Route("not-found")
    if rel in files:
        return Route("file", rel)
    if rel == "api" or rel.startswith("api/"):
        return Route("api-not-found")
    return Route("index")
