"""What the HTTP upgrade request said (pure data): the checks before and during ``connect``
read it -- a browser's ``Origin``, the ``Host`` it asked for, the peer's address."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from ..clientip import NO_PROXIES, ClientAddress, ProxyPolicy, attribute
from ..origins import OriginRequest

Headers = Sequence[tuple[bytes, bytes]]


@attrs.frozen(slots=True)
class Upgrade:
    path: str  # the request target, query included
    headers: Headers  # as received; names lower-cased
    client: tuple[str, int] | None  # the peer's address (None on a socket pair)
    server: tuple[str, int] | None = None  # our address as the peer reached it
    proxies: ProxyPolicy = attrs.field(default=NO_PROXIES, eq=False, repr=False)
    # the client behind any trusted proxy (clientip.py), resolved once per upgrade
    address: ClientAddress = attrs.field(
        init=False,
        eq=False,
        default=attrs.Factory(
            lambda self: attribute(
                self.client[0] if self.client else None, self.headers, self.proxies
            ),
            takes_self=True,
        ),
    )
    # what the origin policy reads (origins.py); the upgrade and the connect check both ask
    origin_request: OriginRequest = attrs.field(
        init=False,
        eq=False,
        repr=False,
        default=attrs.Factory(
            lambda self: OriginRequest.from_headers(
                self.headers, self.address.peer, trusted_proxy=self.address.via_proxy
            ),
            takes_self=True,
        ),
    )

    def header(self, name: bytes) -> str | None:
        """The first value of header ``name`` (lower-case bytes), decoded as latin-1."""
        for key, value in self.headers:
            if key == name:
                return value.decode("latin-1")
        return None

    @property
    def client_ip(self) -> str | None:
        """The client's address: the peer's, or behind a trusted proxy the one it names."""
        return self.address.ip

    @property
    def local_direct(self) -> bool:
        """A loopback peer with no forwarding header, not through a proxy (clientip.py)."""
        return self.address.local_direct

    @property
    def origin(self) -> str | None:
        return self.header(b"origin")

    @property
    def host(self) -> str | None:
        return self.header(b"host")
