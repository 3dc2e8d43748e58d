"""``open_client``: the one way to get a :class:`GatewayClient`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from gateway import __version__

from ._client import GatewayClient, Options
from ._device import DeviceIdentity
from ._groups import collapse, reraise
from ._handshake import connect_params


@asynccontextmanager
async def open_client(
    url: str,
    *,
    token: str | None = None,
    password: str | None = None,
    client_id: str = "cli",
    client_mode: str = "cli",
    client_version: str = __version__,
    display_name: str | None = None,
    instance_id: str | None = None,
    scopes: list[str] | None = None,
    role: str = "operator",
    caps: list[str] | None = None,
    connect_timeout: float = 10.0,
    reconnect: bool = False,
    max_backoff: float = 30.0,
    device: DeviceIdentity | None = None,
    device_token: str | None = None,
    commands: list[str] | None = None,
    permissions: dict[str, bool] | None = None,
    path_env: str | None = None,
    platform: str | None = None,
    device_family: str | None = None,
) -> AsyncIterator[GatewayClient]:
    """Connect to the gateway at ``url`` (``ws://host:port``) and yield a :class:`GatewayClient`.

    Entering waits for the handshake (challenge, ``connect``, hello-ok) and raises
    :class:`GatewayConnectError` if it fails or takes longer than ``connect_timeout``
    seconds; the first connect is never retried. With ``reconnect=True`` a session that
    drops later is re-established with backoff (1 s doubling to ``max_backoff``, jittered)
    until the context exits or the gateway rejects the credentials (``AUTH_*_MISMATCH`` /
    ``AUTH_*_MISSING``), which ends the client (see :meth:`GatewayClient.wait_connected`).

    ``instance_id`` defaults to a random UUID kept across reconnects, so the gateway's
    presence list sees one client, not one per connection.

    ``device`` signs every connect with that identity (CONTROL-UI.md 9); the gateway's
    ``hello-ok.auth.deviceToken`` is then in ``client.hello`` and can be passed back as
    ``device_token`` to sign in without the shared secret. A node (``role="node"``) also
    declares its ``commands``, ``permissions`` and ``path_env``. ``platform`` defaults to
    ``sys.platform``.

    Exiting closes the socket with 1000 and never raises because the gateway already went
    away; exceptions from the body propagate unchanged (never as an exception group).

    Cancellation: safe at any point; on the way out the close frame is still sent
    (shielded, at most a couple of seconds).
    """
    if connect_timeout <= 0:
        raise ValueError("connect_timeout must be positive")
    if max_backoff <= 0:
        raise ValueError("max_backoff must be positive")
    params = connect_params(
        client_id=client_id,
        client_mode=client_mode,
        client_version=client_version,
        instance_id=instance_id or str(uuid.uuid4()),
        display_name=display_name,
        role=role,
        scopes=scopes,
        caps=caps,
        token=token,
        password=password,
        device_token=device_token,
        commands=commands,
        permissions=permissions,
        path_env=path_env,
        platform=platform,
        device_family=device_family,
    )
    options = Options(url, params, connect_timeout, reconnect, max_backoff, device)
    try:
        async with trio.open_nursery() as nursery:
            client = GatewayClient(options, nursery)
            await nursery.start(client._supervise)
            try:
                yield client
            finally:
                await client._aclose()
    except BaseExceptionGroup as group:
        reraise(collapse(group))
