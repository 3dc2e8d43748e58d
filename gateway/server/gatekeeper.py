"""Who may open a connection at all: per-address caps and the file limit (issue 16).

Checked in the accept loop, before a connection costs anything but its descriptor:

* **unauthenticated connections per address** (``gateway.ws.maxPreAuthPerIp``, 64 as in
  the reference): every accepted connection counts until it completes a WebSocket
  ``connect`` -- an idle socket, a half-sent request head, an HTTP keep-alive, a WebSocket
  waiting in its handshake. 1,500 idle sockets from one address no longer lock everyone
  else out until the handshake timeout clears them;
* **connections per address** (``gateway.ws.maxConnectionsPerIp``, 1,024), authenticated
  WebSockets included;
* **the file limit**: past ``RLIMIT_NOFILE`` minus a reserve (files, logs, the channel
  database, outbound HTTP need descriptors too) a new connection is refused at once -- with
  a log line -- instead of failing ``accept()`` with ``EMFILE`` and leaving every client,
  good or bad, waiting in the kernel's backlog.

A refused connection gets a canned ``503`` (written without waiting; best effort) and is
closed. Trusted proxies (``gateway.trustedProxies``) carry many clients and are exempt
from the per-address caps, not from the file limit. Refusals are logged once a second per
address and reason, with a count, so a flood cannot flood the log.
"""

from __future__ import annotations

import logging
import resource
import socket
import time
from collections.abc import Callable

import attrs

from ..clientip import ProxyPolicy

log = logging.getLogger("gateway.http")

REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Retry-After: 1\r\nConnection: close\r\nContent-Length: 28\r\n\r\n"
    b"too many connections; retry\n"
)
LOG_EVERY_S = 1.0


@attrs.frozen
class Caps:
    max_preauth_per_ip: int
    max_per_ip: int
    proxies: ProxyPolicy


def fd_budget(reserve_fraction: int = 16, minimum_reserve: int = 32) -> int:
    """How many connections the file limit leaves room for."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 30
    return max(16, soft - max(minimum_reserve, soft // reserve_fraction))


class Gatekeeper:
    """Counts connections by address; :meth:`admit` says whether one more may come in."""

    def __init__(self, caps: Callable[[], Caps], max_open: int | None = None) -> None:
        self._caps = caps  # read on every accept: the settings are hot
        self._max_open = max_open  # None: from the file limit, read on every accept
        self.open = 0
        self.preauth: dict[str, int] = {}
        self.total: dict[str, int] = {}
        self._refused: dict[tuple[str, str], int] = {}
        self._logged_at = 0.0

    @property
    def max_open(self) -> int:
        """Connections the file limit leaves room for (``prlimit`` may change it)."""
        return fd_budget() if self._max_open is None else self._max_open

    def admit(self, ip: str) -> str | None:
        """``None`` if a connection from ``ip`` may come in, else why not (a log reason)."""
        if self.open >= self.max_open:  # a getrlimit per accept: ~1 us
            return f"{self.open} connections open, near the file limit (raise it: ulimit -n)"
        caps = self._caps()
        if caps.proxies.trusted and caps.proxies.trusts(ip):
            return None
        if self.preauth.get(ip, 0) >= caps.max_preauth_per_ip:
            return (
                f"{caps.max_preauth_per_ip} unauthenticated connections from that address "
                "(gateway.ws.maxPreAuthPerIp)"
            )
        if self.total.get(ip, 0) >= caps.max_per_ip:
            return (
                f"{caps.max_per_ip} connections from that address (gateway.ws.maxConnectionsPerIp)"
            )
        return None

    def opened(self, ip: str) -> None:
        self.open += 1
        self.preauth[ip] = self.preauth.get(ip, 0) + 1
        self.total[ip] = self.total.get(ip, 0) + 1

    def authenticated(self, ip: str) -> None:
        """A connection from ``ip`` completed a WebSocket ``connect``."""
        _decrement(self.preauth, ip)

    def closed(self, ip: str, authenticated: bool) -> None:
        self.open -= 1
        if not authenticated:
            _decrement(self.preauth, ip)
        _decrement(self.total, ip)

    def refuse(self, sock: socket.socket, ip: str, reason: str) -> None:
        """Answer 503 without waiting (best effort), close, and count it for the log."""
        try:
            sock.send(REFUSED)
        except OSError:
            pass
        sock.close()
        key = (ip, reason)
        self._refused[key] = self._refused.get(key, 0) + 1
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_S:
            self._logged_at = now
            for (who, why), count in self._refused.items():
                log.warning("refused %d connection(s) from %s: %s", count, who, why)
            self._refused.clear()


def _decrement(counts: dict[str, int], ip: str) -> None:
    left = counts.get(ip, 0) - 1
    if left > 0:
        counts[ip] = left
    else:
        counts.pop(ip, None)
