"""Which browser origins may drive the gateway: the CSWSH defence (CONTROL-UI.md 3). Pure.

A web page can open a WebSocket to any address; the browser then sends the page's
``Origin``. Since a shared secret can be pasted into a hostile page as easily as into ours,
and auth mode ``none`` has no secret at all, the gateway decides from the origin (and how
the request reached it) whether a browser may talk to it:

1. ``Origin`` longer than 256 characters, unparseable, or the literal ``null`` -> refused.
2. ``X-Forwarded-Host`` from a peer that is not a trusted proxy -> refused (a proxy we do
   not know cannot vouch for the host).
3. Behind a trusted proxy, the forwarded scheme must be the origin's scheme.
4. Allowed if ``allowedOrigins`` holds ``*``, the origin itself (lower-cased), or the origin
   without its default port (``:80`` for http, ``:443`` for https).
5. With ``dangerouslyAllowHostHeaderOriginFallback``, allowed if the origin's host is the
   ``Host`` header's (or, behind a trusted proxy, the forwarded host).
6. Allowed if the client is *local-direct* (a loopback peer, not a proxy, no forwarding
   headers) and the origin is a loopback name (``localhost``, ``127.0.0.0/8``, ``::1``) **on
   the gateway's own port**: a page served by some other local program cannot drive the
   gateway, and DNS rebinding fails because a rebound name is not a loopback name.
7. Otherwise refused.

Requests without an ``Origin`` (the CLI, nodes, server-side clients) are not browsers and are
not subject to this policy. The same function answers for a WebSocket upgrade (403 before the
101), for ``connect`` (checked again), and for any browser-reachable HTTP request a caller
wants to protect; callers build an :class:`OriginRequest` from whatever header list their
server layer hands them.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

import attrs

MAX_ORIGIN_CHARS = 256
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
FORWARDING_HEADERS = frozenset(
    {"forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip"}
)
# what every current browser sends with every request, and HTTP libraries and the CLI do not
BROWSER_HEADERS = frozenset({"sec-fetch-site", "sec-fetch-mode", "sec-fetch-dest"})
NOT_ALLOWED = "origin not allowed"
CONNECT_MESSAGE = (
    "origin not allowed (open the Control UI from the gateway host or allow it in "
    "gateway.controlUi.allowedOrigins)"
)
DETAIL_CODE = "CONTROL_UI_ORIGIN_NOT_ALLOWED"


@attrs.frozen
class OriginPolicy:
    """What the config allows; ``gateway_port`` is the port the gateway actually listens on."""

    allowed_origins: tuple[str, ...] = ()
    host_header_fallback: bool = False
    gateway_port: int = 0
    loopback_bind: bool = False  # the gateway listens on a loopback address only


@attrs.frozen
class OriginRequest:
    """What the policy looks at in one request (header names lower-cased)."""

    origin: str | None
    host: str | None = None
    forwarded_host: str | None = None
    forwarded_proto: str | None = None
    peer_ip: str | None = None
    peer_is_trusted_proxy: bool = False
    forwarded: bool = False  # any forwarding header was present
    browser: bool = False  # a browser sent it: Origin, Sec-Fetch-*, or a Mozilla/ User-Agent

    @classmethod
    def from_headers(
        cls,
        headers: Iterable[tuple[bytes, bytes]],
        peer_ip: str | None,
        *,
        trusted_proxy: bool = False,
    ) -> OriginRequest:
        """From raw (ASGI / h11 style) header pairs; a repeated header keeps its first value."""
        seen: dict[str, str] = {}
        for raw_name, raw_value in headers:
            name = bytes(raw_name).decode("latin-1").lower()
            seen.setdefault(name, bytes(raw_value).decode("latin-1").strip())
        proto = seen.get("x-forwarded-proto") or _forwarded_proto(seen.get("forwarded"))
        return cls(
            origin=seen.get("origin"),
            host=seen.get("host"),
            forwarded_host=seen.get("x-forwarded-host"),
            forwarded_proto=proto,
            peer_ip=peer_ip,
            peer_is_trusted_proxy=trusted_proxy,
            forwarded=any(name in FORWARDING_HEADERS for name in seen),
            browser=bool(seen.get("origin"))
            or any(name in BROWSER_HEADERS for name in seen)
            or seen.get("user-agent", "").lower().startswith("mozilla/"),
        )

    @property
    def is_browser(self) -> bool:
        """An ``Origin`` header was sent (an empty one counts as absent)."""
        return bool(self.origin)

    @property
    def local_direct(self) -> bool:
        return (
            is_loopback_ip(self.peer_ip) and not self.peer_is_trusted_proxy and not self.forwarded
        )


@attrs.frozen
class OriginVerdict:
    allowed: bool
    reason: str  # why: "no-origin", "allowlist", "host-header", "loopback", or the refusal


@attrs.frozen
class ParsedOrigin:
    scheme: str
    host: str  # lower-cased, IPv6 without brackets
    port: int
    explicit_port: bool

    def serialize(self, *, with_default_port: bool) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.explicit_port and (with_default_port or self.port != DEFAULT_PORTS[self.scheme]):
            return f"{self.scheme}://{host}:{self.port}"
        return f"{self.scheme}://{host}"


def parse_origin(value: str) -> ParsedOrigin | None:
    """``scheme://host[:port]`` with nothing after it; ``None`` when it is not one."""
    if not value or len(value) > MAX_ORIGIN_CHARS or value.strip() != value:
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return None
    return ParsedOrigin(
        scheme,
        parts.hostname.lower(),
        port if port is not None else DEFAULT_PORTS[scheme],
        port is not None,
    )


def is_origin(value: str) -> bool:
    """A valid ``allowedOrigins`` entry: ``*`` or a full origin such as ``https://host:8443``."""
    parsed = parse_origin(value)
    return value == "*" or (parsed is not None and parsed.scheme in ("http", "https"))


def check_origin(request: OriginRequest, policy: OriginPolicy) -> OriginVerdict:
    """May this request's browser page talk to the gateway? (The steps in the module doc.)"""
    if not request.is_browser:
        return OriginVerdict(True, "no-origin")
    raw = request.origin or ""
    parsed = parse_origin(raw) if raw.lower() != "null" else None
    if parsed is None:
        return OriginVerdict(False, "origin missing or invalid")
    if request.forwarded_host and not request.peer_is_trusted_proxy:
        return OriginVerdict(False, "forwarded host from an untrusted proxy")
    if request.peer_is_trusted_proxy and request.forwarded_proto:
        if request.forwarded_proto.lower() != parsed.scheme:
            return OriginVerdict(False, "forwarded scheme does not match the origin")
    allowed = {entry.strip().lower().rstrip("/") for entry in policy.allowed_origins}
    if (
        "*" in allowed
        or {
            parsed.serialize(with_default_port=True),
            parsed.serialize(with_default_port=False),
        }
        & allowed
    ):
        return OriginVerdict(True, "allowlist")
    if policy.host_header_fallback:
        host = request.forwarded_host if request.peer_is_trusted_proxy else None
        host = host or request.host
        if host and _host_of(host) == parsed.host:
            return OriginVerdict(True, "host-header")
    if (
        request.local_direct
        and _is_loopback_name(parsed.host)
        and parsed.port == policy.gateway_port
    ):
        return OriginVerdict(True, "loopback")
    return OriginVerdict(False, NOT_ALLOWED)


HOST_NOT_ALLOWED = "host not allowed"


def check_host(request: OriginRequest, policy: OriginPolicy) -> OriginVerdict:
    """DNS rebinding: may a request that names this ``Host`` reach a loopback gateway?

    A page on ``evil.example`` whose name the attacker rebinds to 127.0.0.1 talks to the
    gateway as *its own* origin -- same-origin requests, readable answers, and no foreign
    ``Origin`` to refuse. What gives it away is the ``Host`` it asks for. On a loopback bind,
    only loopback names (``localhost``, ``*.localhost``, 127.0.0.0/8, ``::1``) and the hosts
    of ``allowedOrigins`` are accepted (any port); with the Host-header fallback any host is.
    DNS rebinding is an attack through a browser, so only requests a browser sent are
    checked (an ``Origin``, ``Sec-Fetch-*`` headers or a ``Mozilla/`` User-Agent): the CLI,
    SDKs and scripts may name the host as they like. A request through a trusted proxy is
    the proxy's business, and a gateway bound to another address is reached under names it
    cannot know (and needs auth there anyway)."""
    if (
        not policy.loopback_bind
        or not request.browser
        or request.peer_is_trusted_proxy
        or not request.host
    ):
        return OriginVerdict(True, "not-checked")
    host = _host_of(request.host)
    if host == "localhost" or host.endswith(".localhost") or is_loopback_ip(host):
        return OriginVerdict(True, "loopback")
    if policy.host_header_fallback or "*" in policy.allowed_origins:
        return OriginVerdict(True, "allowlist")
    for entry in policy.allowed_origins:
        parsed = parse_origin(entry.strip().rstrip("/"))
        if parsed is not None and parsed.host == host:
            return OriginVerdict(True, "allowlist")
    return OriginVerdict(False, HOST_NOT_ALLOWED)


def _forwarded_proto(value: str | None) -> str | None:
    """``proto=`` of the first element of an RFC 7239 ``Forwarded`` header."""
    if not value:
        return None
    for pair in value.split(",")[0].split(";"):
        key, _, proto = pair.strip().partition("=")
        if key.strip().lower() == "proto":
            return proto.strip().strip('"') or None
    return None


def _host_of(host_header: str) -> str:
    """The host part of a ``Host`` header value (port and IPv6 brackets removed)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


@functools.lru_cache(maxsize=1024)  # asked on every handshake; parsing an address is slow
def is_loopback_ip(ip: str | None) -> bool:
    """Is ``ip`` a literal loopback address (``127.0.0.1``, ``::1``)? A name, an address
    with a port or nothing is not."""
    if not ip:
        return False
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def _is_loopback_name(host: str) -> bool:
    return host == "localhost" or is_loopback_ip(host)
