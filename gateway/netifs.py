"""This machine's interface addresses, for ``gateway.bind: "tailnet"`` (OPERATIONS.md B.3).

Only what the tailnet bind needs: the first IPv4 address in Tailscale's range
(100.64.0.0/10). Linux asks the kernel per interface (``SIOCGIFADDR``); elsewhere, or when
the kernel cannot be asked, there is no answer and the bind falls back to loopback.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import sys

TAILNET = ipaddress.ip_network("100.64.0.0/10")
SIOCGIFADDR = 0x8915  # linux/sockios.h


def ipv4_addresses() -> list[str]:
    """The IPv4 address of each interface that has one (Linux; empty elsewhere)."""
    if not sys.platform.startswith("linux"):
        return []
    import fcntl

    found: list[str] = []
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for name in names:
            request = struct.pack("256s", name.encode()[:15])
            try:
                answer = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, request)
            except OSError:  # no IPv4 address on this interface
                continue
            found.append(socket.inet_ntoa(answer[20:24]))
    return found


def tailnet_address(addresses: list[str] | None = None) -> str | None:
    """The first address in 100.64.0.0/10, if this machine is on a tailnet."""
    for address in ipv4_addresses() if addresses is None else addresses:
        if ipaddress.ip_address(address) in TAILNET:
            return address
    return None
