"""Who a request comes from: the client IP behind trusted proxies (OPERATIONS.md B.5). Pure.

The socket's peer address is the client -- unless that address is one of
``gateway.trustedProxies`` (IPs or CIDR ranges). Only then are forwarding headers believed:
``X-Forwarded-For`` (or, without it, RFC 7239 ``Forwarded: for=``) is walked right to left
and the first hop that is not itself a trusted proxy is the client; with
``gateway.allowRealIpFallback`` an ``X-Real-IP`` stands in when every hop is trusted.
Otherwise the client is *unknown*, which fails closed: it shares one limiter bucket and is
never local.

*Local direct* (FAILURE-MODES 21) is the one notion of "this is the machine's own user": a
loopback peer that is not a trusted proxy and sent no forwarding header at all. A same-host
reverse proxy that nobody declared makes every client look like loopback; the headers it
adds are what give it away, so any forwarding header from an untrusted peer makes the
request non-local. Everything that asks "is this local" -- the failed-auth limiter's
loopback exemption, device pairing's silent approval, detailed probe answers, ``/metrics``'
loopback opt-in -- asks :attr:`ClientAddress.local_direct`.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence

import attrs

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

FORWARDING_HEADERS = frozenset(
    {
        b"forwarded",
        b"x-forwarded-for",
        b"x-forwarded-host",
        b"x-forwarded-proto",
        b"x-forwarded-port",
        b"x-real-ip",
    }
)
UNKNOWN = "unknown"  # the limiter's bucket for a client a trusted proxy did not name
MAX_HOPS = 64  # a longer X-Forwarded-For chain is not walked further (and fails closed)


@attrs.frozen
class ProxyPolicy:
    """``gateway.trustedProxies`` (parsed) and ``gateway.allowRealIpFallback``."""

    trusted: tuple[Network, ...] = ()
    real_ip_fallback: bool = False

    def trusts(self, ip: str | None) -> bool:
        address = parse_ip(ip)
        return address is not None and any(address in net for net in self.trusted)


NO_PROXIES = ProxyPolicy()


@functools.lru_cache(maxsize=16)
def proxy_policy(entries: tuple[str, ...], real_ip_fallback: bool = False) -> ProxyPolicy:
    """The policy for the config's entries (cached: it is read on every request)."""
    return ProxyPolicy(tuple(parse_network(e) for e in entries), real_ip_fallback)


def parse_network(entry: str) -> Network:
    """``10.0.0.1``, ``10.0.0.0/8``, ``::1``, ``fd00::/8``; ``ValueError`` otherwise."""
    return ipaddress.ip_network(entry.strip(), strict=False)


@functools.lru_cache(maxsize=1024)  # every connection asks; parsing an address is slow
def parse_ip(value: str | None) -> Address | None:
    """An address from a socket or a header hop (``[v6]``, ``v4:port``, IPv4-mapped v6
    and zone ids allowed); ``None`` when it is not one."""
    if not value:
        return None
    text = value.strip().strip('"')
    if text.startswith("["):  # [v6] or [v6]:port
        text = text[1 : text.find("]")] if "]" in text else text[1:]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    text = text.split("%", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@attrs.frozen
class ClientAddress:
    """Where one request comes from."""

    ip: str | None  # the client as attributed; None only without a peer (a socket pair)
    peer: str | None  # the socket's peer address
    via_proxy: bool = False  # the peer is a trusted proxy
    forwarded: bool = False  # a forwarding header was present

    @property
    def local_direct(self) -> bool:
        """A loopback peer, not a trusted proxy, with no forwarding header."""
        if self.via_proxy or self.forwarded:
            return False
        address = parse_ip(self.peer)
        return address is not None and address.is_loopback

    @property
    def limiter_key(self) -> str | None:
        return self.ip


def attribute(
    peer: str | None, headers: Iterable[tuple[bytes, bytes]], policy: ProxyPolicy = NO_PROXIES
) -> ClientAddress:
    """Resolve the client of a request from its peer address and its headers (names
    lower-case bytes, as h11 and hypercorn hand them over)."""
    forwarded_for: list[bytes] = []
    rfc7239: list[bytes] = []
    real_ip: bytes | None = None
    forwarded = False
    for name, value in headers:
        if name in FORWARDING_HEADERS:
            forwarded = True
            if name == b"x-forwarded-for":
                forwarded_for.append(value)
            elif name == b"forwarded":
                rfc7239.append(value)
            elif name == b"x-real-ip" and real_ip is None:
                real_ip = value
    if not policy.trusted or not policy.trusts(peer):
        return ClientAddress(_normal(peer), peer, False, forwarded)
    hops = _hops(forwarded_for) if forwarded_for else _forwarded_for(rfc7239)
    for hop in reversed(hops[-MAX_HOPS:]):
        address = parse_ip(hop)
        if address is None:
            break  # garbage in the chain: stop believing it
        if not any(address in net for net in policy.trusted):
            return ClientAddress(str(address), peer, True, forwarded)
    if policy.real_ip_fallback and real_ip is not None:
        address = parse_ip(real_ip.decode("latin-1"))
        if address is not None:
            return ClientAddress(str(address), peer, True, forwarded)
    return ClientAddress(UNKNOWN, peer, True, forwarded)


def _normal(peer: str | None) -> str | None:
    address = parse_ip(peer)
    return str(address) if address is not None else peer


def _hops(values: Sequence[bytes]) -> list[str]:
    """Every hop of (possibly repeated) ``X-Forwarded-For`` headers, in order."""
    return [
        hop.strip() for value in values for hop in value.decode("latin-1").split(",") if hop.strip()
    ]


def _forwarded_for(values: Sequence[bytes]) -> list[str]:
    """The ``for=`` of each element of RFC 7239 ``Forwarded`` headers, in order."""
    hops: list[str] = []
    for value in values:
        for element in value.decode("latin-1").split(","):
            for pair in element.split(";"):
                key, _, found = pair.strip().partition("=")
                if key.strip().lower() == "for":
                    hops.append(found.strip().strip('"'))
    return hops
