"""Helpers for device and node tests: signed connects over the plain client, a node that
answers invokes (our own client, in the test's nursery), and Ed25519 keys.

The signing here is written from CONTROL-UI.md section 9 (the client's side), independently
of ``gateway.devices.identity``, so a test that passes is not the server agreeing with itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from gateway_client import DeviceIdentity, GatewayClient, open_client
from websockets.sync.client import ClientConnection

from .conftest import TOKEN, connect_frame, recv_json, recv_until


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@attrs.define
class Key:
    """An Ed25519 device key and the fields a client derives from it."""

    private: Ed25519PrivateKey = attrs.field(factory=Ed25519PrivateKey.generate)

    @property
    def raw(self) -> bytes:
        return self.private.public_key().public_bytes_raw()

    @property
    def device_id(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    @property
    def public_key(self) -> str:
        return b64url(self.raw)

    @property
    def pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def sign(self, text: str) -> str:
        return b64url(self.private.sign(text.encode()))


def lower_ascii(value: str | None) -> str:
    return "".join(c.lower() if "A" <= c <= "Z" else c for c in (value or "").strip())


def payload(
    params: dict[str, Any], device_id: str, signed_at: int, nonce: str, version: str
) -> str:
    client = params["client"]
    auth = params.get("auth") or {}
    token = next((auth[k] for k in ("token", "deviceToken", "bootstrapToken") if k in auth), "")
    fields = [
        version,
        device_id,
        client["id"],
        client["mode"],
        params.get("role", "operator"),
        ",".join(params.get("scopes") or []),
        str(signed_at),
        token,
        nonce,
    ]
    if version == "v3":
        fields += [lower_ascii(client.get("platform")), lower_ascii(client.get("deviceFamily"))]
    return "|".join(fields)


def sign_params(
    params: dict[str, Any],
    key: Key,
    challenge: str,
    /,
    *,
    signed_at: int | None = None,
    version: str = "v3",
    **overrides: Any,
) -> dict[str, Any]:
    """``params`` with a device block; ``overrides`` replace device fields after signing."""
    at = signed_at if signed_at is not None else int(time.time() * 1000)
    device = {
        "id": key.device_id,
        "publicKey": key.public_key,
        "signature": key.sign(payload(params, key.device_id, at, challenge, version)),
        "signedAt": at,
        "nonce": challenge,
    }
    device.update(overrides)
    return {**params, "device": {k: v for k, v in device.items() if v is not None}}


def signed_handshake(
    ws: ClientConnection,
    key: Key,
    *,
    token: str | None = TOKEN,
    version: str = "v3",
    sign: Callable[[dict[str, Any], str], dict[str, Any]] | None = None,
    **params: Any,
) -> dict[str, Any]:
    """Read the challenge, send a signed connect, return its ``res``."""
    challenge = recv_json(ws)
    assert challenge["event"] == "connect.challenge", challenge
    nonce = challenge["payload"]["nonce"]
    frame = connect_frame(token=token, **params)
    frame["params"] = (
        sign(frame["params"], nonce)
        if sign is not None
        else sign_params(frame["params"], key, nonce, version=version)
    )
    ws.send(json.dumps(frame))
    return recv_until(ws, lambda f: f.get("type") == "res" and f.get("id") == frame["id"])


def node_client(client_id: str = "node-host", platform: str = "ios") -> dict[str, Any]:
    return {
        "id": client_id,
        "version": "1.0.0",
        "platform": platform,
        "mode": "node",
        "instanceId": str(uuid.uuid4()),
    }


Answer = Callable[[dict[str, Any]], dict[str, Any]]


def echo(request: dict[str, Any]) -> dict[str, Any]:
    """Answer every invoke with its own params."""
    return {
        "ok": True,
        "payloadJSON": json.dumps({"echo": json.loads(request["paramsJSON"] or "null")}),
    }


@attrs.define
class FakeNode:
    """A node on our own client: records each ``node.invoke.request``, answers with ``answer``
    (``None`` = stay silent), and can be told to hang up."""

    client: GatewayClient
    node_id: str
    requests: list[dict[str, Any]] = attrs.field(factory=list)
    received: trio.Event = attrs.field(factory=trio.Event)

    def hang_up(self) -> None:
        """Close the node's socket (code 1000) without ending the test's block."""
        self.client._read_scope.cancel()

    async def serve(self, answer: Callable[[dict[str, Any]], dict[str, Any] | None]) -> None:
        async with self.client.subscribe(["node.invoke.request"]) as events:
            async for frame in events:
                request = frame["payload"]
                self.requests.append(request)
                self.received.set()
                self.received = trio.Event()
                reply = answer(request)
                if reply is not None:
                    await self.client.call(
                        "node.invoke.result",
                        {"id": request["id"], "nodeId": request["nodeId"], **reply},
                    )


@asynccontextmanager
async def fake_node(
    url: str,
    *,
    answer: Callable[[dict[str, Any]], dict[str, Any] | None] = echo,
    device: DeviceIdentity | None = None,
    commands: list[str] | None = None,
    platform: str = "ios",
    client_id: str = "test-node",
    caps: list[str] | None = None,
) -> AsyncIterator[FakeNode]:
    """A connected node answering invokes until the block ends."""
    identity = device if device is not None else DeviceIdentity.generate()
    async with open_client(
        url,
        token=TOKEN,
        client_id=client_id,
        client_mode="node",
        role="node",
        scopes=[],
        caps=caps if caps is not None else ["canvas"],
        commands=commands if commands is not None else ["canvas.present", "canvas.hide"],
        device=identity,
        platform=platform,
    ) as client:
        node = FakeNode(client, identity.device_id)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(node.serve, answer)
            yield node
            nursery.cancel_scope.cancel()


REMOTE = {"X-Forwarded-For": "203.0.113.7"}  # a proxied peer: not local-direct


def raw_signed_connect(
    url: str,
    key: Key,
    *,
    headers: dict[str, str] | None = None,
    token: str | None = TOKEN,
    sign: Callable[[dict[str, Any], str], dict[str, Any]] | None = None,
    **params: Any,
) -> tuple[dict[str, Any], Any]:
    """A signed connect on a raw client: ``(res, client)``; the caller closes the client."""
    from .test_handshake import RawClient  # test_handshake imports conftest: import late

    client = RawClient(url, headers=headers)
    nonce = client.read_challenge()["payload"]["nonce"]
    frame = connect_frame(token=token, **params)
    frame["params"] = (
        sign(frame["params"], nonce)
        if sign is not None
        else sign_params(frame["params"], key, nonce)
    )
    client.send_json(frame)
    while True:
        res = client.recv_json()
        if res.get("type") == "res" and res.get("id") == frame["id"]:
            return res, client
