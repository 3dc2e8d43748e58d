"""The node pairing store over real sockets (PROTOCOL.md 7.12, 8 ``node.pair.*`` events).

node.pair.request|list|approve|reject|verify|remove and node.rename; pairing made by a node's
own connect (silent on loopback, pending for a proxied device-less node); what an unapproved
node may be sent; persistence across a restart (0600 files).
"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from gateway_client import GatewayRpcError, open_client

from gateway.app import Running

from .conftest import TOKEN, StartGateway, in_thread, make_settings
from .nodekit import REMOTE, Key, fake_node, node_client, raw_signed_connect
from .test_handshake import RawClient

EVENTS = ["node.pair.requested", "node.pair.resolved"]


async def test_request_list_approve_verify(gateway: Running) -> None:
    with trio.fail_after(20):
        async with (
            open_client(gateway.url, token=TOKEN) as operator,
            operator.subscribe(EVENTS) as events,
        ):
            asked = await operator.call(
                "node.pair.request",
                {
                    "nodeId": "phone-1",
                    "displayName": "Phone",
                    "platform": "ios",
                    "caps": ["canvas"],
                },
            )
            assert asked["status"] == "pending"
            assert asked["created"] is True
            request = asked["request"]
            assert request["nodeId"] == "phone-1"
            assert request["isRepair"] is False
            requested = await events.receive()
            assert requested["event"] == "node.pair.requested"
            assert requested["payload"] == request
            again = await operator.call("node.pair.request", {"nodeId": "phone-1"})
            assert again["created"] is False
            assert again["request"]["requestId"] == request["requestId"]
            listing = await operator.call("node.pair.list")
            assert [r["requestId"] for r in listing["pending"]] == [request["requestId"]]
            assert listing["paired"] == []
            approved = await operator.call("node.pair.approve", {"requestId": request["requestId"]})
            assert approved["requestId"] == request["requestId"]
            node = approved["node"]
            assert node["nodeId"] == "phone-1"
            assert node["displayName"] == "Phone"
            assert re.fullmatch(r"[0-9a-f]{32}", node["token"])
            resolved = await events.receive()
            assert resolved["event"] == "node.pair.resolved"
            assert resolved["payload"]["decision"] == "approved"
            assert resolved["payload"]["nodeId"] == "phone-1"
            listing = await operator.call("node.pair.list")
            assert listing["pending"] == []
            [paired] = listing["paired"]
            assert "token" not in paired
            verified = await operator.call(
                "node.pair.verify", {"nodeId": "phone-1", "token": node["token"]}
            )
            assert verified["ok"] is True
            assert "token" not in verified["node"]
            assert await operator.call(
                "node.pair.verify", {"nodeId": "phone-1", "token": "nope"}
            ) == {"ok": False}
            assert await operator.call(
                "node.pair.verify", {"nodeId": "nobody", "token": node["token"]}
            ) == {"ok": False}
            row = [
                n for n in (await operator.call("node.list"))["nodes"] if n["nodeId"] == "phone-1"
            ]
            assert row
            assert row[0]["paired"] is True
            assert row[0]["connected"] is False


async def test_reject_remove_rename_and_unknown_ids(gateway: Running) -> None:
    with trio.fail_after(20):
        async with (
            open_client(gateway.url, token=TOKEN) as operator,
            operator.subscribe(EVENTS) as events,
        ):
            request = (await operator.call("node.pair.request", {"nodeId": "n1"}))["request"]
            await events.receive()
            rejected = await operator.call("node.pair.reject", {"requestId": request["requestId"]})
            assert rejected == {"requestId": request["requestId"], "nodeId": "n1"}
            assert (await events.receive())["payload"]["decision"] == "rejected"
            for method in ("node.pair.approve", "node.pair.reject"):
                with pytest.raises(GatewayRpcError) as info:
                    await operator.call(method, {"requestId": request["requestId"]})
                assert (info.value.code, info.value.message) == (
                    "INVALID_REQUEST",
                    "unknown requestId",
                )
            request = (await operator.call("node.pair.request", {"nodeId": "n1"}))["request"]
            await operator.call("node.pair.approve", {"requestId": request["requestId"]})
            assert await operator.call(
                "node.rename", {"nodeId": "n1", "displayName": " Kitchen "}
            ) == {
                "nodeId": "n1",
                "displayName": "Kitchen",
            }
            paired = (await operator.call("node.pair.list"))["paired"]
            assert paired[0]["displayName"] == "Kitchen"
            with pytest.raises(GatewayRpcError) as info:
                await operator.call("node.rename", {"nodeId": "nobody", "displayName": "x"})
            assert info.value.message == "unknown nodeId"
            with pytest.raises(GatewayRpcError) as info:
                await operator.call("node.rename", {"nodeId": "n1", "displayName": "   "})
            assert info.value.message == "displayName required"
            while (await events.receive())["payload"].get("decision") != "approved":
                pass
            assert await operator.call("node.pair.remove", {"nodeId": "n1"}) == {"nodeId": "n1"}
            removed = await events.receive()
            assert removed["payload"]["decision"] == "removed"
            assert removed["payload"]["requestId"] == ""
            with pytest.raises(GatewayRpcError) as info:
                await operator.call("node.pair.remove", {"nodeId": "n1"})
            assert info.value.message == "unknown nodeId"


async def test_approving_needs_write_or_admin_for_what_the_node_declares(gateway: Running) -> None:
    with trio.fail_after(20):
        async with (
            open_client(gateway.url, token=TOKEN) as admin,
            open_client(gateway.url, token=TOKEN, scopes=["operator.pairing"]) as pairer,
            open_client(
                gateway.url, token=TOKEN, scopes=["operator.pairing", "operator.write"]
            ) as writer,
        ):
            plain = (await admin.call("node.pair.request", {"nodeId": "a"}))["request"]
            canvas = (
                await admin.call(
                    "node.pair.request", {"nodeId": "b", "commands": ["canvas.present"]}
                )
            )["request"]
            shell = (
                await admin.call("node.pair.request", {"nodeId": "c", "commands": ["system.run"]})
            )["request"]
            assert (await pairer.call("node.pair.approve", {"requestId": plain["requestId"]}))[
                "node"
            ]
            with pytest.raises(GatewayRpcError) as info:
                await pairer.call("node.pair.approve", {"requestId": canvas["requestId"]})
            assert (info.value.code, info.value.details["missingScope"]) == (
                "FORBIDDEN",
                "operator.write",
            )
            assert (await writer.call("node.pair.approve", {"requestId": canvas["requestId"]}))[
                "node"
            ]
            with pytest.raises(GatewayRpcError) as info:
                await writer.call("node.pair.approve", {"requestId": shell["requestId"]})
            assert info.value.details["missingScope"] == "operator.admin"
            assert (await admin.call("node.pair.approve", {"requestId": shell["requestId"]}))[
                "node"
            ]
            with pytest.raises(GatewayRpcError) as info:
                await open_client_call_read_only(gateway.url)
            assert info.value.details["missingScope"] == "operator.pairing"


async def open_client_call_read_only(url: str) -> Any:
    async with open_client(url, token=TOKEN, scopes=["operator.read"]) as reader:
        return await reader.call("node.pair.list")


def remote_node_session(url: str) -> RawClient:
    client = RawClient(url, headers=REMOTE)
    res = client.handshake(
        role="node", scopes=[], client=node_client("proxied-node"), commands=["canvas.present"]
    )
    assert res["ok"] is True, res  # device-less nodes may connect; relaying waits for approval
    return client


async def test_remote_node_waits_for_node_approval(gateway: Running) -> None:
    with trio.fail_after(20):
        async with (
            open_client(gateway.url, token=TOKEN) as operator,
            operator.subscribe(EVENTS) as events,
        ):
            client = await in_thread(remote_node_session, gateway.url)
            try:
                requested = await events.receive()
                assert requested["event"] == "node.pair.requested"
                request = requested["payload"]
                assert request["nodeId"] == "proxied-node"
                assert request["commands"] == ["canvas.present"]
                row = next(
                    n
                    for n in (await operator.call("node.list"))["nodes"]
                    if n["nodeId"] == "proxied-node"
                )
                assert row["connected"] is True
                assert row["paired"] is False
                assert row["commands"] == []
                assert row["pendingRequestId"] == request["requestId"]
                invoke = {
                    "nodeId": "proxied-node",
                    "command": "canvas.present",
                    "idempotencyKey": "k",
                }
                with pytest.raises(GatewayRpcError) as info:
                    await operator.call("node.invoke", invoke)
                assert info.value.code == "INVALID_REQUEST"
                assert info.value.details == {
                    "reason": "node not paired",
                    "command": "canvas.present",
                    "requestId": request["requestId"],
                }
                assert f"nodes approve {request['requestId']}" in info.value.message
                await operator.call("node.pair.approve", {"requestId": request["requestId"]})

                def answer_once() -> str:
                    while True:
                        frame = client.recv_json()
                        if frame.get("event") == "node.invoke.request":
                            break
                    payload = frame["payload"]
                    client.send_json(
                        {
                            "type": "req",
                            "id": "r1",
                            "method": "node.invoke.result",
                            "params": {
                                "id": payload["id"],
                                "nodeId": payload["nodeId"],
                                "ok": True,
                                "payloadJSON": '{"shown":true}',
                            },
                        }
                    )
                    return str(payload["command"])

                async with trio.open_nursery() as nursery:
                    commands: list[str] = []

                    async def node_side() -> None:
                        commands.append(await in_thread(answer_once))

                    nursery.start_soon(node_side)
                    result = await operator.call("node.invoke", invoke)
                assert result["payload"] == {"shown": True}
                assert json.loads(result["payloadJSON"]) == {"shown": True}
                assert commands == ["canvas.present"]
            finally:
                client.close()


async def test_widened_surface_from_a_remote_node_needs_approval(gateway: Running) -> None:
    with trio.fail_after(20):
        async with (
            open_client(gateway.url, token=TOKEN) as operator,
            operator.subscribe(["node.pair.requested"]) as requests,
        ):
            first = await in_thread(remote_node_session, gateway.url)
            first.close()
            pending = (await requests.receive())["payload"]
            await operator.call("node.pair.approve", {"requestId": pending["requestId"]})

            def wider() -> RawClient:
                client = RawClient(gateway.url, headers=REMOTE)
                res = client.handshake(
                    role="node",
                    scopes=[],
                    client=node_client("proxied-node"),
                    commands=["canvas.present", "canvas.hide"],
                )
                assert res["ok"] is True
                return client

            client = await in_thread(wider)
            try:
                widened = (await requests.receive())["payload"]
                assert widened["isRepair"] is True
                assert widened["commands"] == ["canvas.present", "canvas.hide"]
                row = next(
                    n
                    for n in (await operator.call("node.list"))["nodes"]
                    if n["nodeId"] == "proxied-node"
                )
                assert row["paired"] is True
                assert row["commands"] == ["canvas.present"]  # the approved part only
                with pytest.raises(GatewayRpcError) as info:
                    await operator.call(
                        "node.invoke",
                        {"nodeId": "proxied-node", "command": "canvas.hide", "idempotencyKey": "k"},
                    )
                assert info.value.details["reason"] == "command not approved"
            finally:
                client.close()


async def test_remove_disconnects_the_node(gateway: Running) -> None:
    with trio.fail_after(20):
        async with (
            open_client(gateway.url, token=TOKEN) as operator,
            fake_node(gateway.url) as node,
        ):
            closed = trio.Event()
            codes: list[Any] = []

            async def watch() -> None:
                await node.client._stopped.wait()
                codes.append(node.client._last_close)
                closed.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch)
                await operator.call("node.pair.remove", {"nodeId": node.node_id})
                await closed.wait()
    assert "4001" in str(codes[0])
    assert "node pairing removed" in str(codes[0])


async def test_node_pairing_survives_a_restart(start_gateway: StartGateway, tmp_path: Path) -> None:
    first = await start_gateway(make_settings(tmp_path))
    async with open_client(first.url, token=TOKEN) as operator:
        request = (await operator.call("node.pair.request", {"nodeId": "keeper"}))["request"]
        token = (await operator.call("node.pair.approve", {"requestId": request["requestId"]}))[
            "node"
        ]["token"]
        waiting = (await operator.call("node.pair.request", {"nodeId": "waiting"}))["request"]
    first.stop()
    second = await start_gateway(make_settings(tmp_path))
    async with open_client(second.url, token=TOKEN) as operator:
        listing = await operator.call("node.pair.list")
        verified = await operator.call("node.pair.verify", {"nodeId": "keeper", "token": token})
    assert [n["nodeId"] for n in listing["paired"]] == ["keeper"]
    assert [r["requestId"] for r in listing["pending"]] == [waiting["requestId"]]
    assert verified["ok"] is True
    for name in ("pending.json", "paired.json"):
        assert stat.S_IMODE((tmp_path / "nodes" / name).stat().st_mode) == 0o600


async def test_requests_expire_on_their_own(
    gateway: Running, mock_clock: trio.testing.MockClock
) -> None:
    """Pending requests older than 5 minutes are expired by serve()'s sweep, with an event,
    and are gone from the store on disk -- without anyone listing them."""
    rt = gateway.runtime
    async with (
        open_client(gateway.url, token=TOKEN) as operator,
        operator.subscribe(["node.pair.resolved", "device.pair.resolved"]) as events,
    ):
        node_request = (await operator.call("node.pair.request", {"nodeId": "late"}))["request"]
        key = Key()
        res, client = await in_thread(lambda: raw_signed_connect(gateway.url, key, headers=REMOTE))
        client.close()
        device_request = res["error"]["details"]["requestId"]
        later = rt.now_ms() + 300_001
        rt.nodes.now_ms = lambda: later  # the wall clock, five minutes on
        rt.devices.now_ms = lambda: later
        mock_clock.autojump_threshold = 0.05  # and trio's clock jumps to the next sweep
        with trio.fail_after(120):
            seen: dict[str, dict[str, Any]] = {}
            while len(seen) < 2:
                frame = await events.receive()
                seen[frame["event"]] = frame["payload"]
    assert seen["node.pair.resolved"]["decision"] == "expired"
    assert seen["node.pair.resolved"]["requestId"] == node_request["requestId"]
    assert seen["device.pair.resolved"]["decision"] == "expired"
    assert seen["device.pair.resolved"]["requestId"] == device_request
    state = rt.settings.paths.state_dir
    assert node_request["requestId"] not in (state / "nodes" / "pending.json").read_text()
    assert device_request not in (state / "devices" / "pending.json").read_text()


async def test_a_state_dir_that_cannot_be_written_does_not_stop_nodes(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    (tmp_path / "nodes").write_text("a file where the folder should be")
    running = await start_gateway(make_settings(tmp_path))
    with trio.fail_after(20):
        async with (
            fake_node(running.url) as node,
            open_client(running.url, token=TOKEN) as operator,
        ):
            listing = await operator.call("node.list")
            assert [n["nodeId"] for n in listing["nodes"]] == [node.node_id]
            result = await operator.call(
                "node.invoke",
                {"nodeId": node.node_id, "command": "canvas.hide", "idempotencyKey": "k"},
            )
            assert result["ok"] is True
