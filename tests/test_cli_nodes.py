"""``smart-agent-neo nodes ...`` and ``devices ...``: the CLI against a real gateway, and the
Rich views as golden text (width 100) next to their ``--json`` twins.

The CLI runs in a worker thread (it owns its own ``trio.run``), in-process, with stdout and
stderr captured.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio
from gateway_client import DeviceIdentity, open_client

from gateway.app import Running
from gateway.cli.main import main
from gateway.cli.nodes import pick
from gateway.cli.nodes_view import DeviceList, NodeDetail, NodeList, NodePending
from gateway.errors import PeerError

from .conftest import TOKEN
from .goldens import assert_golden, render_text
from .nodekit import REMOTE, Key, fake_node, raw_signed_connect

NOW = 1_760_000_000_000


async def cli(
    capsys: pytest.CaptureFixture[str], running: Running, *argv: str
) -> tuple[int, str, str]:
    args = [*argv, "--url", running.url, "--token", TOKEN]
    code = await trio.to_thread.run_sync(main, args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.usefixtures("isolated_env")
async def test_done_when_a_signed_node_is_listed_and_invoked_from_the_cli(
    gateway: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    identity = DeviceIdentity.generate()
    with trio.fail_after(30):
        async with fake_node(gateway.url, device=identity) as node:
            code, out, _ = await cli(capsys, gateway, "nodes", "list")
            assert code == 0
            assert identity.device_id[:12] in out
            assert "connected, paired" in out
            assert "canvas.present" in out
            code, out, _ = await cli(capsys, gateway, "nodes", "list", "--json")
            listing = json.loads(out)
            assert [n["nodeId"] for n in listing["nodes"]] == [identity.device_id]
            params = {"url": "https://example.invalid/x"}
            code, out, err = await cli(
                capsys,
                gateway,
                "nodes",
                "invoke",
                "--node",
                identity.device_id[:8],  # a unique prefix is enough
                "--command",
                "canvas.present",
                "--params",
                json.dumps(params),
                "--json",
            )
            assert code == 0, err
            result = json.loads(out)
            assert result["payload"] == {"echo": params}
            assert node.requests[0]["command"] == "canvas.present"
            code, out, _ = await cli(
                capsys,
                gateway,
                "nodes",
                "invoke",
                "--node",
                identity.device_id,
                "--command",
                "canvas.hide",
            )
            assert code == 0
            assert out.startswith("ok canvas.hide on ")
            assert '"echo": {}' in out
            code, out, _ = await cli(
                capsys, gateway, "nodes", "describe", identity.device_id, "--json"
            )
            assert json.loads(out)["nodeId"] == identity.device_id
            code, _, err = await cli(
                capsys,
                gateway,
                "nodes",
                "invoke",
                "--node",
                identity.device_id,
                "--command",
                "camera.snap",
            )
            assert code == 1
            assert err.startswith("INVALID_REQUEST: node command not allowed")
            code, _, err = await cli(
                capsys,
                gateway,
                "nodes",
                "invoke",
                "--node",
                "nothing-here",
                "--command",
                "canvas.hide",
            )
            assert code == 1
            assert "no node matches 'nothing-here'" in err


@pytest.mark.usefixtures("isolated_env")
async def test_node_pairing_from_the_cli(
    gateway: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    with trio.fail_after(30):
        async with open_client(gateway.url, token=TOKEN) as operator:
            request = (
                await operator.call(
                    "node.pair.request", {"nodeId": "kitchen-tablet", "displayName": "Tablet"}
                )
            )["request"]
            other = (await operator.call("node.pair.request", {"nodeId": "other"}))["request"]
        code, out, _ = await cli(capsys, gateway, "nodes", "pending")
        assert code == 0
        assert request["requestId"][:8] in out
        assert "Tablet" in out
        code, out, _ = await cli(capsys, gateway, "nodes", "pending", "--json")
        assert {r["requestId"] for r in json.loads(out)["pending"]} == {
            request["requestId"],
            other["requestId"],
        }
        code, out, _ = await cli(capsys, gateway, "nodes", "approve", request["requestId"][:8])
        assert (code, out.strip()) == (0, "ok approved node Tablet (kitchen-tablet)")
        code, out, _ = await cli(capsys, gateway, "nodes", "reject", other["requestId"], "--json")
        assert json.loads(out) == {"requestId": other["requestId"], "nodeId": "other"}
        code, out, _ = await cli(capsys, gateway, "nodes", "rename", "Tablet", "--name", "Kitchen")
        assert (code, out.strip()) == (0, "ok renamed kitchen-tablet to Kitchen")
        code, out, _ = await cli(capsys, gateway, "nodes", "remove", "--node", "kitchen")
        assert (code, out.strip()) == (0, "ok removed node kitchen-tablet")
        code, _, err = await cli(capsys, gateway, "nodes", "approve", request["requestId"])
        assert code == 1
        assert f"no node request matches '{request['requestId']}'" in err


@pytest.mark.usefixtures("isolated_env")
async def test_devices_from_the_cli(gateway: Running, capsys: pytest.CaptureFixture[str]) -> None:
    key = Key()
    client = {"id": "cli", "version": "1.0.0", "platform": "linux", "mode": "cli"}

    def remote_attempt() -> dict[str, Any]:
        res, raw = raw_signed_connect(gateway.url, key, headers=REMOTE, client=client)
        raw.close()
        return res

    with trio.fail_after(30):
        res = await trio.to_thread.run_sync(remote_attempt)
        request_id = res["error"]["details"]["requestId"]
        code, out, _ = await cli(capsys, gateway, "devices", "list")
        assert code == 0
        assert request_id[:8] in out
        assert "not-paired" in out
        code, out, _ = await cli(capsys, gateway, "devices", "approve", "--latest")
        assert code == 0
        assert out.startswith("ok approved device cli")
        assert "operator" in out
        code, out, _ = await cli(capsys, gateway, "devices", "list", "--json")
        [device] = json.loads(out)["paired"]
        assert device["deviceId"] == key.device_id
        assert "token" not in device["tokens"][0]
        code, out, _ = await cli(
            capsys,
            gateway,
            "devices",
            "rotate",
            "--device",
            key.device_id[:10],
            "--role",
            "operator",
        )
        assert code == 0
        assert "the device gets it on its next connect" in out
        code, out, _ = await cli(
            capsys,
            gateway,
            "devices",
            "revoke",
            "--device",
            key.device_id,
            "--role",
            "operator",
            "--json",
        )
        assert json.loads(out)["role"] == "operator"
        code, out, _ = await cli(capsys, gateway, "devices", "remove", key.device_id)
        assert (code, out.strip()) == (0, f"ok removed device {key.device_id}")
        code, _, err = await cli(capsys, gateway, "devices", "approve", "--latest")
        assert code == 1
        assert "no pending device pairing requests" in err


def test_pick_names_ids_prefixes_and_ambiguity() -> None:
    rows = [
        {"nodeId": "a1b2c3d4e5", "displayName": "Phone"},
        {"nodeId": "a1b2ffff00", "displayName": "Laptop"},
        {"nodeId": "zzz", "displayName": "phone 2"},
    ]
    assert pick("zzz", rows, "nodeId", names=("displayName",), kind="node") == "zzz"
    assert pick("phone", rows, "nodeId", names=("displayName",), kind="node") == "a1b2c3d4e5"
    assert pick("a1b2c", rows, "nodeId", names=("displayName",), kind="node") == "a1b2c3d4e5"
    with pytest.raises(PeerError, match="ambiguous"):
        pick("a1b2", rows, "nodeId", names=("displayName",), kind="node")
    with pytest.raises(PeerError, match="no node matches 'a1'"):
        pick("a1", rows, "nodeId", names=("displayName",), kind="node")  # too short a prefix


# -- golden views -----------------------------------------------------------------------------------


NODE_ROWS: list[dict[str, Any]] = [
    {
        "nodeId": "3f1ce9a0b7c2d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d",
        "displayName": "Kitchen iPad",
        "platform": "ios",
        "deviceFamily": "iPad",
        "caps": ["canvas", "camera"],
        "commands": ["canvas.present", "canvas.hide", "camera.list"],
        "declaredCommands": ["canvas.present", "canvas.hide", "camera.list", "camera.snap"],
        "paired": True,
        "connected": True,
        "connectedAtMs": NOW - 90_000,
        "approvedAtMs": NOW - 86_400_000,
        "remoteIp": "192.168.1.20",
        "permissions": {"camera.capture": False},
    },
    {
        "nodeId": "node-host",
        "displayName": "build box",
        "platform": "linux",
        "caps": ["system"],
        "commands": [],
        "paired": False,
        "connected": True,
        "pendingRequestId": "7d0c2a4e-1111-2222-3333-444455556666",
    },
    {
        "nodeId": "c0ffee",
        "caps": [],
        "commands": ["canvas.present"],
        "paired": True,
        "connected": False,
        "lastSeenAtMs": NOW - 3 * 3_600_000,
    },
]


def test_node_list_view() -> None:
    assert_golden("nodes-list.txt", render_text(NodeList(NODE_ROWS, NOW)))
    assert render_text(NodeList([], NOW)).startswith("No nodes.")


def test_node_detail_view() -> None:
    assert_golden("nodes-describe.txt", render_text(NodeDetail(NODE_ROWS[0], NOW)))


def test_node_pending_view() -> None:
    pending = [
        {
            "requestId": "7d0c2a4e-1111-2222-3333-444455556666",
            "nodeId": "node-host",
            "displayName": "build box",
            "platform": "linux",
            "commands": ["system.run", "system.which"],
            "isRepair": False,
            "ts": NOW - 20_000,
        }
    ]
    assert_golden("nodes-pending.txt", render_text(NodePending(pending, NOW)))


def test_device_list_view() -> None:
    pending = [
        {
            "requestId": "a7e1c6d2-9999-8888-7777-666655554444",
            "deviceId": "9b1f00aa" * 8,
            "publicKey": "x",
            "clientId": "openclaw-control-ui",
            "role": "operator",
            "roles": ["operator"],
            "scopes": ["operator.admin"],
            "reason": "not-paired",
            "remoteIp": "192.168.1.30",
            "isRepair": False,
            "ts": NOW - 45_000,
        }
    ]
    paired = [
        {
            "deviceId": "3f1ce9a0" * 8,
            "publicKey": "y",
            "displayName": "Kitchen iPad",
            "roles": ["node", "operator"],
            "scopes": ["operator.read"],
            "tokens": [
                {"role": "node", "scopes": [], "createdAtMs": NOW},
                {
                    "role": "operator",
                    "scopes": ["operator.read"],
                    "createdAtMs": NOW,
                    "revokedAtMs": NOW,
                },
            ],
            "createdAtMs": NOW - 86_400_000,
            "approvedAtMs": NOW - 86_400_000,
            "connected": True,
        }
    ]
    assert_golden("devices-list.txt", render_text(DeviceList(pending, paired, NOW)))
    assert "none" in render_text(DeviceList([], [], NOW))


def test_views_never_show_tokens(tmp_path: Path) -> None:
    rows = [{**NODE_ROWS[0], "token": "secret-token-value"}]
    assert "secret-token-value" not in render_text(NodeList(rows, NOW))
