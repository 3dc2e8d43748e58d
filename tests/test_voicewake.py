"""Voice wake words and ``wake`` (PROTOCOL.md 7.14, 8, 3.9), with the plain ``websockets``
client: the methods, the ``voicewake.changed`` broadcast and the node's targeted copy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio
from gateway_client import open_client

from gateway.app import Running
from gateway.config.load import parse
from gateway.errors import InvalidRequest
from gateway.voicewake import DEFAULT_TRIGGERS, normalize

from .conftest import (
    TOKEN,
    StartGateway,
    handshake,
    in_thread,
    make_settings,
    open_raw,
    recv_until,
    request,
)
from .test_handshake import client_info


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ([" hey ", "", "Hey", "computer", "  "], ["hey", "computer"]),
        ([], list(DEFAULT_TRIGGERS)),
        (["", "  "], list(DEFAULT_TRIGGERS)),
        (["x" * 64], ["x" * 64]),
    ],
)
def test_normalize(given: list[str], kept: list[str]) -> None:
    assert normalize(given) == kept


@pytest.mark.parametrize(
    ("given", "named"),
    [
        (["ok", "x" * 65], "triggers.1: longer than 64"),
        ([f"w{i}" for i in range(33)], "at most 32"),
    ],
)
def test_normalize_refuses_too_much_naming_it(given: list[str], named: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        normalize(given)
    assert raised.value.message.startswith("invalid voicewake.set params: triggers")
    assert named in raised.value.message


def is_changed(frame: dict[str, Any]) -> bool:
    return frame.get("type") == "event" and frame.get("event") == "voicewake.changed"


async def test_set_is_stored_broadcast_and_read_back(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    running = await start_gateway()

    def clients() -> tuple[Any, ...]:
        with open_raw(running.url) as setter, open_raw(running.url) as watcher:
            hello = handshake(setter)
            handshake(watcher)
            before = request(setter, "voicewake.get", {})
            done = request(setter, "voicewake.set", {"triggers": [" Jarvis ", "", "jarvis", "neo"]})
            heard = recv_until(watcher, is_changed)
            after = request(watcher, "voicewake.get")
            return hello, before, done, heard, after

    hello, before, done, heard, after = await in_thread(clients)
    methods = hello["payload"]["features"]["methods"]
    assert {"voicewake.get", "voicewake.set", "wake"} <= set(methods)
    assert "voicewake.changed" in hello["payload"]["features"]["events"]
    assert before["payload"] == {"triggers": list(DEFAULT_TRIGGERS)}
    assert done["payload"] == {"triggers": ["Jarvis", "neo"]}
    assert heard["payload"] == {"triggers": ["Jarvis", "neo"]}
    assert isinstance(heard["seq"], int)  # a broadcast: sequenced
    assert after["payload"] == {"triggers": ["Jarvis", "neo"]}
    stored = tmp_path / "settings" / "voicewake.json"
    assert json.loads(stored.read_text())["triggers"] == ["Jarvis", "neo"]
    assert stored.stat().st_mode & 0o777 == 0o600
    running.stop()

    again = await start_gateway()  # a new gateway on the same state dir

    def reread() -> Any:
        with open_raw(again.url) as ws:
            handshake(ws)
            return request(ws, "voicewake.get", {})

    assert (await in_thread(reread))["payload"] == {"triggers": ["Jarvis", "neo"]}


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({}, "triggers: is required"),
        ({"triggers": "neo"}, "triggers"),
        ({"triggers": ["neo", 5]}, "triggers.1"),
        ({"triggers": ["y" * 65]}, "triggers.0: longer than 64"),
    ],
)
async def test_bad_triggers_name_the_field(
    gateway: Running, params: dict[str, Any], named: str
) -> None:
    def client() -> Any:
        with open_raw(gateway.url) as ws:
            handshake(ws)
            return request(ws, "voicewake.set", params), request(ws, "voicewake.get", {})

    res, unchanged = await in_thread(client)
    assert res["ok"] is False
    assert res["error"]["code"] == "INVALID_REQUEST"
    assert res["error"]["message"].startswith("invalid voicewake.set params: ")
    assert named in res["error"]["message"]
    assert unchanged["payload"] == {"triggers": list(DEFAULT_TRIGGERS)}


async def test_set_needs_write_and_get_needs_read(gateway: Running) -> None:
    def client() -> Any:
        with open_raw(gateway.url) as reader, open_raw(gateway.url) as other:
            handshake(reader, scopes=["operator.read"])
            handshake(other, scopes=["operator.approvals"])
            return (
                request(reader, "voicewake.get", {}),
                request(reader, "voicewake.set", {"triggers": ["x"]}),
                request(other, "voicewake.get", {}),
            )

    got, set_refused, get_refused = await in_thread(client)
    assert got["ok"] is True
    assert set_refused["error"]["code"] == "FORBIDDEN"
    assert set_refused["error"]["message"] == "missing scope: operator.write"
    assert get_refused["error"]["message"] == "missing scope: operator.read"


async def test_a_node_gets_the_current_triggers_without_seq_on_connect(gateway: Running) -> None:
    def clients() -> dict[str, Any]:
        with open_raw(gateway.url) as operator:
            handshake(operator)
            request(operator, "voicewake.set", {"triggers": ["computer"]})
        with open_raw(gateway.url) as node:
            node_client = {**client_info("node", client_id="node-host"), "mode": "node"}
            hello = handshake(node, client=node_client, role="node")
            assert hello["ok"] is True, hello
            return recv_until(node, is_changed)

    pushed = await in_thread(clients)
    assert pushed["event"] == "voicewake.changed"
    assert pushed["payload"] == {"triggers": ["computer"]}
    assert "seq" not in pushed  # targeted (PROTOCOL.md 4.3)


async def test_wake_now_runs_the_heartbeat_at_once(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """The heartbeat interval is an hour; ``wake {mode:"now"}`` runs one now."""
    config, _ = parse('{agents: {defaults: {heartbeat: {every: "1h"}}}}', {})
    running = await start_gateway(make_settings(tmp_path, config=config))
    async with open_client(running.url, token=TOKEN) as client:
        async with client.subscribe({"heartbeat"}) as events:
            later = await client.call("wake", {"mode": "next-heartbeat", "text": "later please"})
            now = await client.call("wake", {"mode": "now", "text": "check the build"})
            with trio.fail_after(10):
                beat = await events.receive()
        status = await client.call("status", {})
        history = await client.call("chat.history", {"sessionKey": "main"})
    assert later == {"ok": True}
    assert now == {"ok": True}
    assert beat["event"] == "heartbeat"
    assert beat["payload"]["status"] == "sent"  # the offline model echoes: an "alert"
    # the heartbeat's turn read both queued events (issue 13): the queue is empty again
    assert status["queuedSystemEvents"] == []
    said = json.dumps(history)
    assert "later please" in said
    assert "check the build" in said


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"text": "x"}, "mode: is required"),
        ({"mode": "soon", "text": "x"}, "mode"),
        ({"mode": "now"}, "text: is required"),
        ({"mode": "now", "text": ""}, "text"),
        ({"mode": "now", "text": "   "}, "text: must not be blank"),
    ],
)
async def test_bad_wake_params_name_the_field(
    gateway: Running, params: dict[str, Any], named: str
) -> None:
    def client() -> Any:
        with open_raw(gateway.url) as ws:
            handshake(ws)
            return request(ws, "wake", params)

    res = await in_thread(client)
    assert res["error"]["code"] == "INVALID_REQUEST"
    assert res["error"]["message"].startswith("invalid wake params: ")
    assert named in res["error"]["message"]
