"""Python client for the gateway's WebSocket control plane (protocol 4, PROTOCOL.md).

Example::

    async with open_client("ws://127.0.0.1:18789", token=token) as client:
        health = await client.call("health")
        async with client.subscribe(["presence"]) as events:
            async for frame in events:
                ...
"""

from ._client import GatewayClient
from ._device import DeviceIdentity
from ._errors import (
    GatewayClientError,
    GatewayClosedError,
    GatewayConnectError,
    GatewayRpcError,
    GatewayTimeoutError,
)
from ._events import Gap
from ._open import open_client

__all__ = [
    "DeviceIdentity",
    "Gap",
    "GatewayClient",
    "GatewayClientError",
    "GatewayClosedError",
    "GatewayConnectError",
    "GatewayRpcError",
    "GatewayTimeoutError",
    "open_client",
]
