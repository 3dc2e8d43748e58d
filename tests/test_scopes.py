"""Roles and scopes over real sockets with the plain ``websockets`` client.

Sections checked: 2.4 (invalid role row), 3.5 step 9 (scope defaulting), 4.1 (authorization
order: role -> scope -> method lookup), 5.3 (MISSING_SCOPE details, "unauthorized role"),
6.1 (roles), 6.2 (admin satisfies all, write satisfies read, unclassified needs admin),
6.3 (method -> scope table for the system methods).
"""

from __future__ import annotations

from typing import Any

import pytest
from websockets.sync.client import ClientConnection

from gateway.app import Running

from .conftest import connect_frame, handshake, in_thread, open_raw, request
from .test_handshake import client_info, expected_reason, rejected

READ_METHODS = ("health", "status", "system-presence", "last-heartbeat")


def connect_with_scopes(ws: ClientConnection, scopes: list[str] | None) -> dict[str, Any]:
    extra: dict[str, Any] = {} if scopes is None else {"scopes": scopes}
    hello = handshake(ws, role="operator", **extra)
    assert hello["ok"] is True, hello
    return hello


def assert_missing_scope(res: dict[str, Any], scope: str) -> None:
    assert res["ok"] is False, res
    error = res["error"]
    assert error["code"] == "FORBIDDEN"
    assert error["message"] == f"missing scope: {scope}"
    assert error["details"]["code"] == "MISSING_SCOPE"
    assert error["details"]["missingScope"] == scope
    assert error["details"]["requiredScopes"] == [scope]


async def test_read_scope(gateway: Running) -> None:
    """Sections 5.3 / 6.2 / 6.3: operator.read may call read methods; system-event (admin) is
    FORBIDDEN with MISSING_SCOPE details; an unknown method needs admin (default-deny)."""

    def client() -> None:
        with open_raw(gateway.url) as ws:
            hello = connect_with_scopes(ws, ["operator.read"])
            assert hello["payload"]["auth"] == {"role": "operator", "scopes": ["operator.read"]}
            for name in READ_METHODS:
                res = request(ws, name, {})
                assert res["ok"] is True, (name, res)
            assert_missing_scope(request(ws, "system-event", {"text": "x"}), "operator.admin")
            # authorization precedes params validation: bad params still get FORBIDDEN
            assert_missing_scope(request(ws, "system-event", {"text": ""}), "operator.admin")
            assert_missing_scope(request(ws, "no.such.method", {}), "operator.admin")
            assert request(ws, "health", {})["ok"] is True  # connection kept

    await in_thread(client)


async def test_write_scope_satisfies_read(gateway: Running) -> None:
    """Section 6.2: operator.write implies read; it does not grant admin."""

    def client() -> None:
        with open_raw(gateway.url) as ws:
            connect_with_scopes(ws, ["operator.write"])
            for name in READ_METHODS:
                res = request(ws, name, {})
                assert res["ok"] is True, (name, res)
            assert_missing_scope(request(ws, "system-event", {"text": "x"}), "operator.admin")

    await in_thread(client)


@pytest.mark.parametrize(
    "scopes",
    [["operator.pairing"]],  # the others: test_connection.py
)
async def test_other_scopes_do_not_satisfy_read(gateway: Running, scopes: list[str]) -> None:
    """Section 6.2: other classes need the exact scope; they do not grant read."""

    def client() -> None:
        with open_raw(gateway.url) as ws:
            connect_with_scopes(ws, scopes)
            assert_missing_scope(request(ws, "health", {}), "operator.read")

    await in_thread(client)


@pytest.mark.parametrize("scopes", [None, []])
async def test_no_scopes_default_to_admin(gateway: Running, scopes: list[str] | None) -> None:
    """Section 3.5 step 9 / 15: absent or empty scopes with a shared secret -> ["operator.admin"]."""

    def client() -> None:
        with open_raw(gateway.url) as ws:
            hello = connect_with_scopes(ws, scopes)
            assert hello["payload"]["auth"] == {"role": "operator", "scopes": ["operator.admin"]}
            assert request(ws, "system-event", {"text": "x"})["ok"] is True
            res = request(ws, "no.such.method", {})
            assert res["error"]["code"] == "INVALID_REQUEST"  # admin passes; lookup then fails
            assert res["error"]["message"] == "unknown method: no.such.method"

    await in_thread(client)


async def test_admin_scope_satisfies_everything(gateway: Running) -> None:
    """Section 6.2: operator.admin satisfies every operator scope."""

    def client() -> None:
        with open_raw(gateway.url) as ws:
            hello = connect_with_scopes(ws, ["operator.admin"])
            assert hello["payload"]["auth"]["scopes"] == ["operator.admin"]
            for name in READ_METHODS:
                assert request(ws, name, {})["ok"] is True
            assert request(ws, "system-event", {"text": "x"})["ok"] is True

    await in_thread(client)


@pytest.mark.parametrize("protocol", [3, 4])
async def test_node_role_cannot_call_operator_methods(gateway: Running, protocol: int) -> None:
    """Sections 5.3 / 6.1: a node calling health -> INVALID_REQUEST "unauthorized role: node"."""

    def client() -> None:
        with open_raw(gateway.url) as ws:
            hello = handshake(
                ws,
                role="node",
                minProtocol=protocol,
                maxProtocol=protocol,
                client=client_info("node", client_id="node-host"),
            )
            assert hello["ok"] is True, hello
            assert hello["payload"]["auth"] == {"role": "node", "scopes": []}
            for name, params in (
                ("health", {}),
                ("system-event", {"text": "x"}),
                ("no.such.method", {}),
            ):
                res = request(ws, name, params)
                assert res["ok"] is False
                assert res["error"]["code"] == "INVALID_REQUEST"
                assert res["error"]["message"] == "unauthorized role: node"
            assert request(ws, "status", {})["error"]["message"] == "unauthorized role: node"

    await in_thread(client)


@pytest.mark.parametrize("role", ["bogus"])  # the others: test_connection.py
async def test_invalid_role_is_rejected(gateway: Running, role: str) -> None:
    """Section 2.4: role not operator/node -> res INVALID_REQUEST "invalid role", close 1008."""

    def client() -> None:
        res, code, reason = rejected(gateway.url, connect_frame(role=role))
        assert res["error"]["code"] == "INVALID_REQUEST"
        assert res["error"]["message"] == "invalid role"
        assert code == 1008
        assert reason == expected_reason("invalid role")

    await in_thread(client)
