"""Requests after hello-ok, over real sockets with the plain ``websockets`` client.

Sections checked: 2.3 / 2.4 (post-handshake matrix rows: maxPayload, non-JSON, invalid
frames, repeated connect, unknown method, handler crash), 4.1 (id echo, params default {},
concurrency, authorization order), 4.2 (no "accepted" on single-stage methods), 7.1-7.4
(the system methods answer with valid minimal params).
"""

from __future__ import annotations

import hashlib
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from websockets.sync.client import ClientConnection

from gateway.app import Running
from gateway.devices.pairing import DeviceClaim
from gateway.nodes.pairing import NodeSurface
from gateway.rpc import registry as rpc_registry
from gateway.rpc.registry import CallContext, Method, methods
from gateway.runtime import Runtime

from .conftest import (
    StartGateway,
    connect_frame,
    handshake,
    in_thread,
    make_settings,
    open_raw,
    recv_json,
    recv_until,
    request,
)
from .nodekit import fake_node
from .test_handshake import RawClient, client_info, send_json

# Valid minimal params for EVERY registered method (sections 7.1-7.4). A method added to the
# registry without an entry here makes test_every_advertised_method_answers fail by name.
MINIMAL_PARAMS: dict[str, dict[str, Any]] = {
    "health": {},
    "status": {},
    "system-presence": {},
    "system-event": {"text": "x"},
    "last-heartbeat": {},
    # sorted order runs "agent" first, so the others can name its run
    "agent": {"message": "hi", "idempotencyKey": "all-methods-run"},
    "agent.abort": {"runId": "all-methods-run"},
    "agent.wait": {"runId": "all-methods-run"},
    "sessions.list": {},
    "chat.history": {"sessionKey": "main"},
    "chat.send": {"sessionKey": "main", "message": "hi", "idempotencyKey": "all-methods-chat"},
    "send": {"to": "42", "message": "hi", "idempotencyKey": "all-methods-send"},
    "chat.abort": {"sessionKey": "main"},
    "chat.inject": {"sessionKey": "main", "message": "a note"},
    # scheduled far out so the connection under test outlives the call
    "restart": {"reason": "test", "delayMs": 600_000},
    "logs.tail": {},
    "set-heartbeats": {"enabled": True},
    "channels.status": {},
    "channels.start": {"channel": "telegram"},
    "channels.stop": {"channel": "telegram"},
    "channels.restart": {"channel": "telegram"},
    "channels.logout": {"channel": "telegram"},
    "pairing.list": {"channel": "telegram"},
    "pairing.approve": {"channel": "telegram", "code": "ABCD2345"},
    # nodes and devices: ids are filled in by _seed_pairing (stores seeded, a node connected)
    "node.list": {},
    "node.describe": {"nodeId": "<connected node>"},
    "node.invoke": {
        "nodeId": "<connected node>",
        "command": "canvas.present",
        "idempotencyKey": "k",
    },
    "node.invoke.result": {"id": "no-such-invoke", "nodeId": "node-host", "ok": True},
    "node.event": {"event": "node.presence.alive"},
    "node.rename": {"nodeId": "<connected node>", "displayName": "Renamed"},
    "node.pair.request": {"nodeId": "requested-node"},
    "node.pair.list": {},
    "node.pair.approve": {"requestId": "<seeded>"},
    "node.pair.reject": {"requestId": "<seeded>"},
    "node.pair.verify": {"nodeId": "<connected node>", "token": "wrong"},
    "node.pair.remove": {"nodeId": "seed-paired"},
    "device.pair.list": {},
    "device.pair.approve": {"requestId": "<seeded>"},
    "device.pair.reject": {"requestId": "<seeded>"},
    "device.pair.remove": {"deviceId": "seed-paired-device"},
    "device.token.revoke": {"deviceId": "seed-approved-device", "role": "operator"},
    "device.token.rotate": {"deviceId": "seed-approved-device", "role": "operator"},
    # sorted order: apply creates the file ("{}\n"), patch and set name its hash
    "config.apply": {"raw": "{}"},
    "config.get": {},
    "config.patch": {"raw": "{}", "baseHash": hashlib.sha256(b"{}\n").hexdigest()},
    "config.schema": {},
    "config.set": {"raw": "{}", "baseHash": hashlib.sha256(b"{}\n").hexdigest()},
    "skills.bins": {},
    "voicewake.get": {},
    "voicewake.set": {"triggers": ["neo"]},
    "wake": {"mode": "next-heartbeat", "text": "x"},
}
# Methods whose minimal call is refused by design: the message it must start with.
EXPECTED_INVALID = {
    "channels.logout": "channel telegram does not support logout",
    "pairing.approve": "no pending pairing request with code ABCD2345",
    "send": "no messaging channel is configured",
}
# Two-stage methods (section 4.2): an "accepted" res, then the final res with the same id.
TWO_STAGE = {"agent"}


def next_res(ws: ClientConnection, timeout: float = 5) -> dict[str, Any]:
    """The next ``res`` frame, whatever its id (events in between are skipped)."""
    return recv_until(ws, lambda f: f.get("type") == "res", timeout)


def assert_invalid(res: dict[str, Any], message_prefix: str) -> str:
    assert res["ok"] is False, res
    assert res["error"]["code"] == "INVALID_REQUEST", res
    message: str = res["error"]["message"]
    assert message.startswith(message_prefix), message
    return message


def assert_health_ok(ws: ClientConnection) -> None:
    """The connection is still usable: a fresh health request gets its own ok res."""
    rid = f"health-{uuid.uuid4()}"
    send_json(ws, {"type": "req", "id": rid, "method": "health", "params": {}})
    res = next_res(ws)
    assert res["id"] == rid, f"unexpected res before health's: {res}"
    assert res["ok"] is True
    assert res["payload"]["ok"] is True


# -- 2.4 post-handshake frame errors --------------------------------------------------------------


async def test_post_handshake_frame_over_max_payload_closes_1009(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """Section 2.3 / 2.4: after hello-ok a frame > policy.maxPayload -> close 1009, no res."""
    running = await start_gateway(make_settings(tmp_path, max_payload=65536))

    def client() -> None:
        with RawClient(running.url) as conn:
            hello = conn.handshake()
            assert hello["payload"]["policy"]["maxPayload"] == 65536
            big = {"type": "req", "id": "big", "method": "health", "params": {"pad": "x" * 70_000}}
            conn.send_json(big)
            frames, close = conn.until_close()
        assert close.code == 1009
        assert [f for f in frames if f.get("type") == "res"] == []

    await in_thread(client)


async def test_post_handshake_frame_within_max_payload_is_served(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """Section 2.3: with maxPayload 65536 a post-handshake 60 000-byte frame is still read."""
    running = await start_gateway(make_settings(tmp_path, max_payload=65536))

    def client() -> None:
        with open_raw(running.url) as ws:
            handshake(ws)
            res = request(ws, "system-event", {"text": "y" * 60_000})
            assert res["ok"] is True, res

    await in_thread(client)


@pytest.mark.parametrize("garbage", ["{not json", b"\xff\xfe\x00"])
async def test_post_handshake_non_json_is_ignored(gateway: Running, garbage: str | bytes) -> None:
    """Section 2.4: post-handshake non-JSON is ignored -- no res, connection stays open."""

    def client() -> None:
        with open_raw(gateway.url) as ws:
            handshake(ws)
            ws.send(garbage)
            assert_health_ok(ws)

    await in_thread(client)


@pytest.mark.parametrize(
    ("frame", "expected_id"),
    [  # the whole matrix: test_connection.py
        ({"type": "req", "id": "no-method"}, "no-method"),
        ([1, 2], "invalid"),
    ],
)
async def test_post_handshake_invalid_frame(
    gateway: Running, frame: object, expected_id: str
) -> None:
    """Section 2.4: JSON that is not a valid req -> res INVALID_REQUEST "invalid request frame: ..."
    with id = the frame's id or "invalid"; the connection is kept."""

    def client() -> None:
        with open_raw(gateway.url) as ws:
            handshake(ws)
            send_json(ws, frame)
            res = next_res(ws)
            assert res["id"] == expected_id
            assert_invalid(res, "invalid request frame: ")
            assert_health_ok(ws)

    await in_thread(client)


async def test_second_connect_is_refused_but_connection_kept(gateway: Running) -> None:
    """Section 2.4: connect after the handshake -> "connect is only valid as the first request"."""

    def client() -> None:
        with open_raw(gateway.url) as ws:
            handshake(ws)
            res = request(
                ws, "connect", {"minProtocol": 4, "maxProtocol": 4, "client": client_info()}
            )
            message = assert_invalid(res, "connect is only valid as the first request")
            assert message == "connect is only valid as the first request"
            assert_health_ok(ws)

    await in_thread(client)


# -- 2.4 / 4.1 method lookup and params --------------------------------------------------------------


async def test_unknown_method(gateway: Running) -> None:
    """Section 2.4: unknown method -> INVALID_REQUEST "unknown method: <m>", connection kept."""

    def client() -> None:
        with open_raw(gateway.url) as ws:
            handshake(ws)
            for name in ("no.such.method", "HEALTH", "health "):
                res = request(ws, name, {})
                assert assert_invalid(res, "unknown method: ") == f"unknown method: {name}"
            assert_health_ok(ws)

    await in_thread(client)


@pytest.mark.parametrize(
    ("method", "params", "field"),
    [
        ("system-event", {"text": ""}, "text"),
        ("system-event", {}, "text required"),  # PROTOCOL.md 7.4
        ("system-event", {"text": ""}, "text required"),
        ("system-event", {"text": " \n "}, "text required"),
        ("system-event", {"text": 5}, "text"),
        ("system-event", {"text": "x", "lastInputSeconds": -1}, "lastInputSeconds"),
        ("system-event", {"text": "x", "bogusField": 1}, "bogusField"),
        ("health", {"probe": "yes"}, "probe"),
        ("health", {"surprise": True}, "surprise"),
        ("status", {"includeChannelSummary": 1}, "includeChannelSummary"),
        ("system-presence", {"x": 1}, "x"),
        ("health", [], ""),
        ("health", "params", ""),
    ],
)
async def test_invalid_params_name_the_field(
    gateway: Running, method: str, params: object, field: str
) -> None:
    """Section 4.1 / 7: invalid params -> INVALID_REQUEST "invalid <method> params: <field>...", kept open."""

    def client() -> None:
        with open_raw(gateway.url) as ws:
            handshake(ws)
            rid = f"p-{uuid.uuid4()}"
            send_json(ws, {"type": "req", "id": rid, "method": method, "params": params})
            res = recv_until(ws, lambda f: f.get("type") == "res" and f.get("id") == rid)
            message = assert_invalid(res, f"invalid {method} params: ")
            assert field in message.removeprefix(f"invalid {method} params: "), message
            assert_health_ok(ws)

    await in_thread(client)


async def test_absent_params_are_treated_as_empty_object(gateway: Running) -> None:
    """Section 2.2 / 4.1: a req without params is handled as params {} (null too)."""

    def client() -> None:
        with open_raw(gateway.url) as ws:
            handshake(ws)
            for name in ("health", "status", "system-presence", "last-heartbeat"):
                res = request(ws, name)  # no "params" key at all
                assert res["ok"] is True, res
            send_json(ws, {"type": "req", "id": "null-params", "method": "health", "params": None})
            assert next_res(ws)["ok"] is True
            res = request(ws, "system-event")
            assert_invalid(res, "invalid system-event params: text")

    await in_thread(client)


# -- 2.4 handler crash, 4.1 concurrency ----------------------------------------------------------------


async def test_handler_crash_is_unavailable_and_connection_kept(
    gateway: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Section 2.4: a handler that throws -> res UNAVAILABLE with the error text; connection kept."""

    async def boom(ctx: CallContext, params: Any) -> object:
        raise RuntimeError("boom")

    registry = gateway_registry()
    monkeypatch.setitem(registry, "status", attrs.evolve(registry["status"], handler=boom))

    def client() -> None:
        with open_raw(gateway.url) as ws:
            handshake(ws)
            res = request(ws, "status", {}, request_id="crash-1")
            assert res["id"] == "crash-1"
            assert res["ok"] is False
            assert res["error"]["code"] == "UNAVAILABLE"
            assert res["error"]["message"] == "boom"
            assert_health_ok(ws)

    await in_thread(client)


def gateway_registry() -> dict[str, Method]:
    """The live ``REGISTRY`` dict (importing the handler modules fills it)."""
    methods()
    return rpc_registry.REGISTRY


async def test_slow_handler_does_not_block_other_requests(
    gateway: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Section 4.1: requests are handled concurrently; a slow status does not hold up health."""
    entered = trio.Event()
    release = trio.Event()

    async def slow_status(ctx: CallContext, params: Any) -> object:
        entered.set()
        await release.wait()
        return {"slow": True}

    registry = gateway_registry()
    monkeypatch.setitem(registry, "status", attrs.evolve(registry["status"], handler=slow_status))

    def client() -> None:
        with open_raw(gateway.url) as ws:
            handshake(ws)
            send_json(ws, {"type": "req", "id": "slow", "method": "status", "params": {}})
            send_json(ws, {"type": "req", "id": "fast", "method": "health", "params": {}})
            first = next_res(ws)
            assert first["id"] == "fast", f"health was held up behind status: {first}"
            assert first["ok"] is True
            assert trio.from_thread.run_sync(entered.is_set), "status handler never started"
            trio.from_thread.run_sync(release.set)
            second = next_res(ws)
            assert second["id"] == "slow"
            assert second["ok"] is True
            assert second["payload"] == {"slow": True}

    await in_thread(client)


# -- 4.1 / 4.2 response ids and single-stage results ---------------------------------------------------


async def test_response_ids_echo_request_ids(gateway: Running) -> None:
    """Section 2.2 / 4.1: every res carries its request's id verbatim, also for errors."""
    ids = ["1", "a b c", "ünïcødé-✓", "x" * 200, str(uuid.uuid4()), '{"quoted"}']

    def client() -> None:
        with open_raw(gateway.url) as ws:
            handshake(ws)
            for rid in ids:
                send_json(ws, {"type": "req", "id": rid, "method": "health", "params": {}})
            send_json(ws, {"type": "req", "id": "err-id", "method": "nope", "params": {}})
            got = [next_res(ws) for _ in range(len(ids) + 1)]
        assert sorted(r["id"] for r in got) == sorted([*ids, "err-id"])
        by_id = {r["id"]: r for r in got}
        assert all(by_id[rid]["ok"] is True for rid in ids)
        assert by_id["err-id"]["ok"] is False

    await in_thread(client)


def _seed_pairing(rt: Runtime, node_id: str) -> dict[str, dict[str, Any]]:
    """Pairing state the node/device methods act on; returns their params with real ids."""
    now = rt.now_ms()
    nodes, devices = rt.nodes.pairing, rt.devices.pairing
    to_approve, _ = nodes.request(NodeSurface("seed-approve"), now)
    to_reject, _ = nodes.request(NodeSurface("seed-reject"), now)
    paired, _ = nodes.request(NodeSurface("seed-paired"), now)
    nodes.approve(paired.request_id, now)

    def device(device_id: str) -> DeviceClaim:
        return DeviceClaim(device_id, f"key-{device_id}", "operator", ["operator.read"])

    dev_approve, _ = devices.request(
        device("seed-approved-device"), "not-paired", now, silent=False
    )
    dev_reject, _ = devices.request(device("seed-rejected-device"), "not-paired", now, silent=False)
    dev_paired, _ = devices.request(device("seed-paired-device"), "not-paired", now, silent=False)
    devices.approve(dev_paired.request_id, now)
    return {
        **MINIMAL_PARAMS,
        "node.describe": {"nodeId": node_id},
        "node.invoke": {
            "nodeId": node_id,
            "command": "canvas.present",
            "params": {"url": "https://example.invalid/"},
            "idempotencyKey": "all-methods-invoke",
        },
        "node.rename": {"nodeId": node_id, "displayName": "Renamed"},
        "node.pair.verify": {"nodeId": node_id, "token": "wrong"},
        "node.pair.approve": {"requestId": to_approve.request_id},
        "node.pair.reject": {"requestId": to_reject.request_id},
        "device.pair.approve": {"requestId": dev_approve.request_id},
        "device.pair.reject": {"requestId": dev_reject.request_id},
    }


async def test_every_advertised_method_answers(start_gateway: StartGateway, tmp_path: Path) -> None:
    """Sections 3.8 / 4.2 / 7.1-7.4: every method in features.methods (and every registered one)
    answers ok:true with valid minimal params, in exactly one res without status "accepted"."""
    running = await start_gateway(make_settings(tmp_path))
    registered = gateway_registry()
    async with fake_node(running.url) as node:
        params = _seed_pairing(running.runtime, node.node_id)
        names = await in_thread(partial(_call_every_method, running, registered, params))
    assert names


def _call_every_method(
    running: Running, registered: dict[str, Method], params: dict[str, dict[str, Any]]
) -> list[str]:
    with open_raw(running.url) as ws:
        hello = handshake(ws)
        advertised: list[str] = hello["payload"]["features"]["methods"]
        names = sorted(set(advertised) | set(registered))
        missing = [n for n in names if n not in MINIMAL_PARAMS]
        assert not missing, f"methods without an entry in MINIMAL_PARAMS: {missing}; add one"
        stale = sorted(set(MINIMAL_PARAMS) - set(names))
        assert not stale, f"MINIMAL_PARAMS names methods the gateway does not have: {stale}"
        assert "connect" not in advertised
        for name in names:
            role = registered[name].role
            if role != "operator":
                res = _call_as_node(running.url, name, params[name])
            else:
                res = request(ws, name, params[name], request_id=f"all-{name}")
                assert res["id"] == f"all-{name}"
                if name in TWO_STAGE:
                    assert res["ok"] is True, res
                    assert res["payload"]["status"] == "accepted", res
                    res = recv_until(ws, partial(_is_res, f"all-{name}"))
            if name in EXPECTED_INVALID:
                assert_invalid(res, EXPECTED_INVALID[name])
                continue
            assert res["ok"] is True, f"{name}: {res}"
            assert "error" not in res, f"{name}: {res}"
            payload = res.get("payload")
            if isinstance(payload, dict):
                assert payload.get("status") != "accepted", f"{name} is single-stage: {res}"
        # exactly one res per request: a trailing health gets the next res
        assert_health_ok(ws)
        return names


def _is_res(request_id: str, frame: dict[str, Any]) -> bool:
    return frame.get("type") == "res" and frame.get("id") == request_id


def _call_as_node(url: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
    with open_raw(url) as ws:
        hello = handshake(ws, role="node", client=client_info("node", client_id="node-host"))
        assert hello["ok"] is True, hello
        return request(ws, name, params)


async def test_method_results_have_documented_shapes(gateway: Running) -> None:
    """Sections 7.1-7.4: health is a HealthSummary, status has heartbeat/sessions/queuedSystemEvents,
    system-presence is a bare array, system-event returns {ok:true}."""

    def client() -> None:
        with open_raw(gateway.url) as ws:
            handshake(ws)
            health = request(ws, "health", {})["payload"]
            for key in (
                "ok",
                "ts",
                "durationMs",
                "channels",
                "channelOrder",
                "channelLabels",
                "heartbeatSeconds",
                "defaultAgentId",
                "agents",
                "sessions",
            ):
                assert key in health, key
            assert health["ok"] is True
            assert isinstance(health["ts"], int)
            assert {"path", "count", "recent"} <= set(health["sessions"])
            status = request(ws, "status", {})["payload"]
            assert isinstance(status["heartbeat"], dict)
            assert isinstance(status["sessions"]["count"], int)
            assert isinstance(status["queuedSystemEvents"], list)
            presence = request(ws, "system-presence", {})["payload"]
            assert isinstance(presence, list)
            assert request(ws, "system-event", {"text": "hello"})["payload"] == {"ok": True}

    await in_thread(client)


async def test_connect_sent_before_reading_challenge(gateway: Running) -> None:
    """Section 3.1 / 3.2: the challenge is pushed on open, before any client frame; a connect
    sent without waiting for it is still answered after it."""

    def client() -> None:
        with open_raw(gateway.url) as ws:
            frame = connect_frame()
            send_json(ws, frame)  # send connect before reading the challenge
            first = recv_json(ws)
            assert first["event"] == "connect.challenge"
            res = next_res(ws)
            assert res["id"] == frame["id"]
            assert res["ok"] is True

    await in_thread(client)
