"""The dashboard's address, as printed by ``gateway run`` and ``dashboard`` (pure)."""

from __future__ import annotations

from ..config.settings import format_host
from .routing import normalize_base

WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


def dashboard_url(host: str, port: int, base_path: str) -> str:
    """``http://<host>:<port><base>/``; a gateway listening on every address is opened
    through loopback (the origin the UI allows without configuration). No secret is in it."""
    shown = "127.0.0.1" if host in WILDCARD_HOSTS else host
    return f"http://{format_host(shown)}:{port}{normalize_base(base_path)}/"
