"""What the HTTP upgrade request said (pure data): the checks before and during ``connect``
read it -- a browser's ``Origin``, the ``Host`` it asked for, the peer's address."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

Headers = Sequence[tuple[bytes, bytes]]


@attrs.frozen(slots=True)
class Upgrade:
    path: str  # the request target, query included
    headers: Headers  # as received; names lower-cased
    client: tuple[str, int] | None  # the peer's address (None on a socket pair)
    server: tuple[str, int] | None = None  # our address as the peer reached it

    def header(self, name: bytes) -> str | None:
        """The first value of header ``name`` (lower-case bytes), decoded as latin-1."""
        for key, value in self.headers:
            if key == name:
                return value.decode("latin-1")
        return None

    @property
    def client_ip(self) -> str | None:
        return self.client[0] if self.client else None

    @property
    def origin(self) -> str | None:
        return self.header(b"origin")

    @property
    def host(self) -> str | None:
        return self.header(b"host")
