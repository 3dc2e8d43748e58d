"""HTTP/1.1 and nothing else on the gateway port: hypercorn's h11 protocol without HTTP/2.

hypercorn switches a connection to HTTP/2 in two ways: a request carrying ``Upgrade: h2c``
(answered with ``101 Switching Protocols``) and a connection that opens with the HTTP/2
preface (``PRI * HTTP/2.0``, "prior knowledge"). Both are cleartext HTTP/2 (h2c). We turn
it off (issue 16): no client of the gateway uses it (browsers speak HTTP/2 only over TLS;
the CLI, the SDKs and the reference's clients speak HTTP/1.1), and it would be a second
protocol on the port -- multiplexed streams, HPACK state, flow-control windows -- outside
the connection driver, the limits and the tests that guard this one.

* ``Upgrade: h2c`` is ignored, as RFC 9110 7.8 allows: the request is answered in HTTP/1.1.
* The HTTP/2 preface is an HTTP/1.1 request for ``*`` with method ``PRI`` (answered 404),
  and the binary frames after it are a malformed request (400, connection closed): an
  HTTP/2 client fails at once instead of being served.
"""

from __future__ import annotations

import h11
from hypercorn.protocol.h11 import H11Protocol


class Http11Protocol(H11Protocol):
    """hypercorn's ``H11Protocol`` that never hands the connection to HTTP/2."""

    async def _check_protocol(self, event: h11.Request) -> None:
        return None  # no h2c upgrade, no prior-knowledge switch
