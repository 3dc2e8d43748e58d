"""hello-ok's text (server/admission.hello_ok) is spliced from pieces encoded once per
settings, presence version and health snapshot; it must be exactly the encoding of the wire
model (PROTOCOL.md 3.8) in every state those pieces depend on. No sockets."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import trio

from gateway.events import Peer
from gateway.outbox import Outbox
from gateway.protocol.codec import dumps, from_wire, to_wire
from gateway.protocol.connection import Limits, ServerConnection
from gateway.protocol.devices import DeviceTokenRecord
from gateway.protocol.handshake import ConnectParams
from gateway.protocol.system import PresenceEntry
from gateway.protocol.upgrade import Upgrade
from gateway.rpc.registry import methods
from gateway.runtime import Runtime
from gateway.server import admission

from .conftest import connect_frame, make_settings

NOW_MS = 1_760_000_000_123
UPTIME_MS = 4_321


@attrs.define(eq=False)
class FixedClock(Runtime):
    """A runtime whose wall clock and uptime stand still (the model is built separately)."""

    def now_ms(self) -> int:
        return NOW_MS

    def uptime_ms(self) -> int:
        return UPTIME_MS


def attempt_and_peer(rt: Runtime, **params: object) -> tuple[admission.ConnectAttempt, Peer]:
    raw = {**connect_frame()["params"], **params}
    machine = ServerConnection(
        nonce="n-1", rules=methods(), gate=rt, limits=Limits(), now=trio.current_time()
    )
    peer = Peer(machine, Outbox(1 << 20), Upgrade("/", ((b"host", b"127.0.0.1"),), None))
    attempt = admission.attempt_for(rt, peer, from_wire(ConnectParams, raw), "n-1")
    return attempt, peer


def model_text(rt: Runtime, peer: Peer, attempt: admission.ConnectAttempt) -> str:
    return dumps(to_wire(admission.hello_ok_model(rt, peer, attempt, NOW_MS, UPTIME_MS)))


async def test_hello_ok_is_the_models_encoding(tmp_path: Path) -> None:
    rt = FixedClock(make_settings(tmp_path))
    attempt, peer = attempt_and_peer(rt)
    text = admission.hello_ok(rt, peer, attempt)
    assert text == model_text(rt, peer, attempt)
    hello = json.loads(text)
    assert hello["type"] == "hello-ok"
    assert hello["server"]["connId"] == peer.conn_id
    assert hello["snapshot"]["health"] == {}  # no snapshot yet
    assert hello["snapshot"]["uptimeMs"] == UPTIME_MS

    # presence grows (another version), a health snapshot is stored (another version)
    rt.presence.upsert(
        "ui-1", PresenceEntry(ts=NOW_MS - 5, host='ui "quoted" ü', mode="ui", reason="connect")
    )
    await rt.refresh_health()
    attempt, peer = attempt_and_peer(rt, role="operator", scopes=["operator.read"])
    text = admission.hello_ok(rt, peer, attempt)
    assert text == model_text(rt, peer, attempt)
    hello = json.loads(text)
    assert [p["host"] for p in hello["snapshot"]["presence"]][1] == 'ui "quoted" ü'
    assert hello["snapshot"]["health"]["ok"] is True
    assert hello["snapshot"]["stateVersion"] == {
        "presence": rt.presence.version,
        "health": rt.health.version,
    }
    assert hello["auth"] == {"role": "operator", "scopes": ["operator.read"]}


async def test_hello_ok_with_a_device_token(tmp_path: Path) -> None:
    rt = FixedClock(make_settings(tmp_path))
    attempt, peer = attempt_and_peer(rt)
    attempt.device_token = DeviceTokenRecord("dev-tok", "operator", ["operator.read"], 5, 7)
    text = admission.hello_ok(rt, peer, attempt)
    assert text == model_text(rt, peer, attempt)
    assert json.loads(text)["auth"]["deviceToken"] == "dev-tok"
    assert json.loads(text)["auth"]["issuedAtMs"] == 7


async def test_hello_ok_follows_new_settings(tmp_path: Path) -> None:
    """A reload replaces the settings object: the pieces made for the old one go."""
    rt = FixedClock(make_settings(tmp_path, tick_interval_ms=1234))
    attempt, peer = attempt_and_peer(rt)
    assert json.loads(admission.hello_ok(rt, peer, attempt))["policy"]["tickIntervalMs"] == 1234
    rt.settings = make_settings(tmp_path, tick_interval_ms=4321, password="pw", token=None)
    text = admission.hello_ok(rt, peer, attempt)
    assert text == model_text(rt, peer, attempt)
    hello = json.loads(text)
    assert hello["policy"]["tickIntervalMs"] == 4321
    assert hello["snapshot"]["authMode"] == "password"
