"""Nodes over real sockets: connect, node.list/describe, and the node.invoke relay.

PROTOCOL.md 7.11 (relay, error shapes, late/unknown results, idempotency), 6.1 (node-only
methods), 8 (``node.invoke.request`` is unicast, no seq), CONTROL-UI.md 8 (command policy).
The node is our own client with a signed device identity (tests/nodekit.py); the operator
is our client too.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from gateway_client import DeviceIdentity, GatewayRpcError, open_client

from gateway.app import Running
from gateway.config.model import Config, Nodes

from .conftest import TOKEN, StartGateway, make_settings
from .nodekit import fake_node


async def wait_gone(presence: Any, device_id: str) -> None:
    """Until a ``presence`` event shows the device's connection gone (PROTOCOL.md 9)."""
    async for frame in presence:
        entries = frame["payload"]["presence"]
        if any(e.get("deviceId") == device_id and e.get("reason") == "disconnect" for e in entries):
            return


def by_id(listing: dict[str, Any], node_id: str) -> dict[str, Any]:
    rows = [n for n in listing["nodes"] if n["nodeId"] == node_id]
    assert len(rows) == 1, listing
    row: dict[str, Any] = rows[0]
    return row


async def rpc_error(client: Any, method: str, params: dict[str, Any], **kw: Any) -> GatewayRpcError:
    with pytest.raises(GatewayRpcError) as info:
        await client.call(method, params, **kw)
    return info.value


async def test_signed_node_is_listed_and_answers_an_invoke(gateway: Running) -> None:
    identity = DeviceIdentity.generate()
    with trio.fail_after(20):
        async with (
            fake_node(gateway.url, device=identity) as node,
            open_client(gateway.url, token=TOKEN) as operator,
        ):
            row = by_id(await operator.call("node.list"), identity.device_id)
            assert row["connected"] is True
            assert row["paired"] is True  # loopback: approved on the spot
            assert row["caps"] == ["canvas"]
            assert row["commands"] == ["canvas.present", "canvas.hide"]
            assert row["platform"] == "ios"
            params = {"url": "https://example.invalid/a", "width": 320}
            result = await operator.call(
                "node.invoke",
                {
                    "nodeId": identity.device_id,
                    "command": "canvas.present",
                    "params": params,
                    "idempotencyKey": "k-1",
                },
            )
            assert result["ok"] is True
            assert result["nodeId"] == identity.device_id
            assert result["command"] == "canvas.present"
            assert result["payload"] == {"echo": params}
            assert json.loads(result["payloadJSON"]) == {"echo": params}
            [request] = node.requests
            assert request["nodeId"] == identity.device_id
            assert request["command"] == "canvas.present"
            assert json.loads(request["paramsJSON"]) == params
            assert request["timeoutMs"] == 30_000
            assert request["idempotencyKey"] == "k-1"
            assert request["id"]


async def test_invoke_request_is_unicast_without_seq(gateway: Running) -> None:
    frames: list[dict[str, Any]] = []
    with trio.fail_after(20):
        async with (
            fake_node(gateway.url) as node,
            open_client(gateway.url, token=TOKEN) as operator,
            operator.subscribe(["node.invoke.request"]) as operator_events,
            node.client.subscribe(["node.invoke.request"]) as node_events,
        ):
            await operator.call(
                "node.invoke",
                {"nodeId": node.node_id, "command": "canvas.hide", "idempotencyKey": "k"},
            )
            frames.append(await node_events.receive())
            with pytest.raises(trio.WouldBlock):
                operator_events.receive_nowait()  # the operator never sees it
    assert "seq" not in frames[0]
    assert frames[0]["payload"]["paramsJSON"] is None  # no params -> null


async def test_node_failure_is_unavailable_with_the_nodes_error(gateway: Running) -> None:
    def refuse(request: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": False,
            "error": {
                "code": "NODE_BACKGROUND_UNAVAILABLE",
                "message": "canvas needs the foreground",
            },
        }

    with trio.fail_after(20):
        async with (
            fake_node(gateway.url, answer=refuse) as node,
            open_client(gateway.url, token=TOKEN) as operator,
        ):
            error = await rpc_error(
                operator,
                "node.invoke",
                {"nodeId": node.node_id, "command": "canvas.present", "idempotencyKey": "k"},
            )
    assert error.code == "UNAVAILABLE"
    assert error.message == "canvas needs the foreground"
    assert error.details == {
        "nodeError": {
            "code": "NODE_BACKGROUND_UNAVAILABLE",
            "message": "canvas needs the foreground",
        }
    }


async def test_node_failure_without_a_message_says_so(gateway: Running) -> None:
    with trio.fail_after(20):
        async with (
            fake_node(gateway.url, answer=lambda r: {"ok": False}) as node,
            open_client(gateway.url, token=TOKEN) as operator,
        ):
            error = await rpc_error(
                operator,
                "node.invoke",
                {"nodeId": node.node_id, "command": "canvas.present", "idempotencyKey": "k"},
            )
    assert (error.code, error.message) == ("UNAVAILABLE", "node invoke failed")


async def test_invoke_times_out_and_a_late_answer_is_ignored(
    gateway: Running, mock_clock: trio.testing.MockClock
) -> None:
    async with (
        fake_node(gateway.url, answer=lambda r: None) as node,
        open_client(gateway.url, token=TOKEN) as operator,
    ):
        mock_clock.autojump_threshold = 0.05
        with trio.fail_after(120):
            error = await rpc_error(
                operator,
                "node.invoke",
                {"nodeId": node.node_id, "command": "canvas.present", "idempotencyKey": "slow"},
                timeout=None,
            )
            assert error.code == "UNAVAILABLE"
            assert error.message == "node invoke timed out"
            assert error.details == {
                "nodeError": {"code": "TIMEOUT", "message": "node invoke timed out"}
            }
            [request] = node.requests
            late = await node.client.call(
                "node.invoke.result", {"id": request["id"], "nodeId": node.node_id, "ok": True}
            )
            assert late == {"ok": True, "ignored": True}


async def test_timeout_ms_is_honoured_and_forwarded(gateway: Running) -> None:
    with trio.fail_after(20):
        async with (
            fake_node(gateway.url, answer=lambda r: None) as node,
            open_client(gateway.url, token=TOKEN) as operator,
        ):
            start = trio.current_time()
            error = await rpc_error(
                operator,
                "node.invoke",
                {
                    "nodeId": node.node_id,
                    "command": "canvas.present",
                    "timeoutMs": 150,
                    "idempotencyKey": "k",
                },
            )
            assert error.message == "node invoke timed out"
            assert trio.current_time() - start < 10
            assert node.requests[0]["timeoutMs"] == 150


async def test_node_disconnect_mid_invoke_fails_the_call(gateway: Running) -> None:
    outcome: list[GatewayRpcError] = []
    with trio.fail_after(20):
        async with open_client(gateway.url, token=TOKEN) as operator:
            async with fake_node(gateway.url, answer=lambda r: None) as node:

                async def invoke() -> None:
                    outcome.append(
                        await rpc_error(
                            operator,
                            "node.invoke",
                            {
                                "nodeId": node.node_id,
                                "command": "canvas.present",
                                "idempotencyKey": "k",
                            },
                        )
                    )

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(invoke)
                    await node.received.wait()
                    node.hang_up()
            row_gone = await operator.call("node.list")
    [error] = outcome
    assert error.code == "UNAVAILABLE"
    assert error.message == "node disconnected (canvas.present)"
    assert error.details["nodeError"]["code"] == "DISCONNECTED"
    assert all(n["connected"] is False for n in row_gone["nodes"] if n["nodeId"] == node.node_id)


async def test_node_not_connected(gateway: Running) -> None:
    with trio.fail_after(20):
        async with open_client(gateway.url, token=TOKEN) as operator:
            error = await rpc_error(
                operator,
                "node.invoke",
                {"nodeId": "nobody", "command": "canvas.present", "idempotencyKey": "k"},
            )
    assert error.code == "UNAVAILABLE"
    assert error.message == "node not connected"
    assert error.details["code"] == "NOT_CONNECTED"
    assert error.details["nodeError"] == {"code": "NOT_CONNECTED", "message": "node not connected"}


@pytest.mark.parametrize(
    ("command", "reason", "message"),
    [
        (
            "canvas.eval",
            "command not declared by node",
            'node command not allowed: the node (platform: ios) does not support "canvas.eval"',
        ),
        (
            "camera.snap",
            "command not allowlisted",
            'node command not allowed: "camera.snap" needs an explicit gateway.nodes.allowCommands entry',
        ),
        (
            "system.run",
            "command not allowlisted",
            'node command not allowed: "system.run" is not in the allowlist for platform "ios"',
        ),
        (
            "system.execApprovals.set",
            "command never relayed",
            'node command not allowed: "system.execApprovals.set" is never relayed '
            "(a node's exec approvals are managed on the node)",
        ),
    ],
)
async def test_commands_outside_the_policy_are_refused(
    gateway: Running, command: str, reason: str, message: str
) -> None:
    declared = ["canvas.present", "camera.snap", "system.run", "system.execApprovals.set"]
    with trio.fail_after(20):
        async with (
            fake_node(gateway.url, commands=declared) as node,
            open_client(gateway.url, token=TOKEN) as operator,
        ):
            row = by_id(await operator.call("node.list"), node.node_id)
            assert row["commands"] == ["canvas.present"]
            assert row["declaredCommands"] == declared
            error = await rpc_error(
                operator,
                "node.invoke",
                {"nodeId": node.node_id, "command": command, "idempotencyKey": "k"},
            )
            assert not node.requests  # nothing reached the node
    assert error.code == "INVALID_REQUEST"
    assert error.message == message
    assert error.details == {"reason": reason, "command": command}


async def test_allow_and_deny_commands_from_config(
    start_gateway: StartGateway, tmp_path: Any
) -> None:
    config = Config()
    config = attrs.evolve(
        config,
        gateway=attrs.evolve(
            config.gateway,
            nodes=Nodes(allow_commands=["camera.snap"], deny_commands=["canvas.hide"]),
        ),
    )
    running = await start_gateway(make_settings(tmp_path, config=config))
    with trio.fail_after(20):
        async with (
            fake_node(
                running.url, commands=["canvas.present", "canvas.hide", "camera.snap"]
            ) as node,
            open_client(running.url, token=TOKEN) as operator,
        ):
            row = by_id(await operator.call("node.list"), node.node_id)
            assert row["commands"] == ["canvas.present", "camera.snap"]
            result = await operator.call(
                "node.invoke",
                {"nodeId": node.node_id, "command": "camera.snap", "idempotencyKey": "k"},
            )
            assert result["ok"] is True
            error = await rpc_error(
                operator,
                "node.invoke",
                {"nodeId": node.node_id, "command": "canvas.hide", "idempotencyKey": "k2"},
            )
            assert "gateway.nodes.denyCommands" in error.message


async def test_admin_commands_need_operator_admin(gateway: Running) -> None:
    with trio.fail_after(20):
        async with (
            fake_node(
                gateway.url, commands=["system.run", "system.which"], platform="linux"
            ) as node,
            open_client(gateway.url, token=TOKEN, scopes=["operator.write"]) as writer,
            open_client(gateway.url, token=TOKEN) as admin,
        ):
            params = {"nodeId": node.node_id, "command": "system.run", "idempotencyKey": "k"}
            error = await rpc_error(writer, "node.invoke", params)
            assert error.code == "FORBIDDEN"
            assert error.details["missingScope"] == "operator.admin"
            assert (await admin.call("node.invoke", params))["ok"] is True
            which = {"nodeId": node.node_id, "command": "system.which", "idempotencyKey": "w"}
            assert (await writer.call("node.invoke", which))["ok"] is True  # a lookup: write


async def test_same_idempotency_key_reaches_the_node_once(gateway: Running) -> None:
    """A retry with the same key (in flight or finished) gets the one outcome; the node sees
    one request. A new key is a new call."""
    with trio.fail_after(20):
        async with (
            fake_node(gateway.url, answer=lambda r: None) as node,
            open_client(gateway.url, token=TOKEN) as operator,
        ):
            params = {
                "nodeId": node.node_id,
                "command": "canvas.present",
                "params": {"n": 1},
                "idempotencyKey": "same",
            }
            results: list[Any] = []

            async def call(p: dict[str, Any]) -> None:
                results.append(await operator.call("node.invoke", p))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(call, params)
                await node.received.wait()
                nursery.start_soon(call, params)  # joins the call in flight (or replays it)
                await node.client.call(
                    "node.invoke.result",
                    {
                        "id": node.requests[0]["id"],
                        "nodeId": node.node_id,
                        "ok": True,
                        "payload": {"x": 1},
                    },
                )
            await call(params)  # finished: replayed, not re-sent
            assert len(node.requests) == 1
            async with trio.open_nursery() as nursery:
                nursery.start_soon(call, {**params, "idempotencyKey": "other"})
                await node.received.wait()
                await node.client.call(
                    "node.invoke.result",
                    {
                        "id": node.requests[1]["id"],
                        "nodeId": node.node_id,
                        "ok": True,
                        "payload": {"x": 2},
                    },
                )
    assert [r["payload"] for r in results] == [{"x": 1}, {"x": 1}, {"x": 1}, {"x": 2}]
    assert all(r["payloadJSON"] is None for r in results)


async def test_results_from_the_wrong_node_or_for_unknown_ids(gateway: Running) -> None:
    with trio.fail_after(20):
        async with fake_node(gateway.url, answer=lambda r: None) as node:
            error = await rpc_error(
                node.client, "node.invoke.result", {"id": "x", "nodeId": "someone-else", "ok": True}
            )
            assert (error.code, error.message) == ("INVALID_REQUEST", "nodeId mismatch")
            ack = await node.client.call(
                "node.invoke.result", {"id": "never-sent", "nodeId": node.node_id, "ok": True}
            )
            assert ack == {"ok": True, "ignored": True}


async def test_node_only_and_operator_only_methods(gateway: Running) -> None:
    with trio.fail_after(20):
        async with (
            fake_node(gateway.url) as node,
            open_client(gateway.url, token=TOKEN) as operator,
        ):
            error = await rpc_error(
                operator, "node.invoke.result", {"id": "x", "nodeId": "n", "ok": True}
            )
            assert error.message == "unauthorized role: operator"
            error = await rpc_error(node.client, "node.list", {})
            assert error.message == "unauthorized role: node"
            assert await node.client.call("node.event", {"event": "node.presence.alive"}) == {
                "ok": True,
                "event": "node.presence.alive",
                "handled": True,
            }
            assert (
                await node.client.call("node.event", {"event": "x.custom", "payloadJSON": "{}"})
            )["handled"] is False
            # PROTOCOL.md 6.1: skills.bins is a node-role method (no skills here: empty)
            assert await node.client.call("skills.bins", {}) == {"bins": []}
            error = await rpc_error(operator, "skills.bins", {})
            assert error.message == "unauthorized role: operator"


async def test_node_describe(gateway: Running) -> None:
    with trio.fail_after(20):
        async with (
            fake_node(gateway.url) as node,
            open_client(gateway.url, token=TOKEN) as operator,
        ):
            described = await operator.call("node.describe", {"nodeId": node.node_id})
            assert described["nodeId"] == node.node_id
            assert described["connected"] is True
            assert isinstance(described["ts"], int)
            error = await rpc_error(operator, "node.describe", {"nodeId": "nobody"})
            assert (error.code, error.message) == ("INVALID_REQUEST", "unknown nodeId")


async def test_paired_node_stays_listed_offline(gateway: Running) -> None:
    with trio.fail_after(20):
        async with (
            open_client(gateway.url, token=TOKEN) as operator,
            operator.subscribe(["presence"]) as presence,
        ):
            async with fake_node(gateway.url) as node:
                pass
            await wait_gone(presence, node.node_id)
            row = by_id(await operator.call("node.list"), node.node_id)
            assert row["connected"] is False
            assert row["paired"] is True
            assert row["commands"] == ["canvas.present", "canvas.hide"]
            error = await rpc_error(
                operator,
                "node.invoke",
                {"nodeId": node.node_id, "command": "canvas.present", "idempotencyKey": "k"},
            )
            assert error.message == "node not connected"


async def test_node_presence_alive_refreshes_the_nodes_presence(gateway: Running) -> None:
    with trio.fail_after(20):
        async with (
            fake_node(gateway.url) as node,
            open_client(gateway.url, token=TOKEN) as operator,
            operator.subscribe(["presence"]) as presence,
        ):
            await node.client.call(
                "node.event",
                {"event": "node.presence.alive", "payloadJSON": '{"lastInputSeconds": 42}'},
            )
            async for frame in presence:
                mine = [
                    e for e in frame["payload"]["presence"] if e.get("deviceId") == node.node_id
                ]
                if mine and mine[0].get("lastInputSeconds") == 42:
                    break
            assert mine[0]["mode"] == "node"
