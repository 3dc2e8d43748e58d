"""Shared fixtures: a real gateway on 127.0.0.1:0 and raw protocol helpers.

``gateway`` starts ``serve()`` in the test's nursery and yields :class:`Running`;
``start_gateway`` does the same with custom settings. ``raw_ws`` helpers use the plain
``websockets`` sync client in a worker thread, written from PROTOCOL.md, not our client.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from websockets.sync.client import ClientConnection, connect

from gateway.app import Running, serve
from gateway.config.load import Loaded
from gateway.config.model import Config
from gateway.config.paths import ENV_SKIP_CANVAS_HOST, Paths
from gateway.config.settings import Overrides, Settings, resolve

TOKEN = "test-token-0123456789"

StartGateway = Callable[..., Awaitable[Running]]


def make_settings(
    state_dir: Path,
    *,
    config: Config | None = None,
    token: str | None = TOKEN,
    password: str | None = None,
    auth_mode: str | None = None,
    canvas: bool = False,
    **ws: Any,
) -> Settings:
    """Settings for a loopback gateway on port 0; ``ws`` overrides ``gateway.ws`` fields;
    ``canvas`` also runs the canvas host (on any free port)."""
    config = config or Config()
    if ws:
        config = attrs.evolve(
            config, gateway=attrs.evolve(config.gateway, ws=attrs.evolve(config.gateway.ws, **ws))
        )
    paths = Paths(None, state_dir, state_dir / "smart-agent-neo.json")
    overrides = Overrides(port=0, token=token, password=password, auth_mode=auth_mode)
    env = {} if canvas else {ENV_SKIP_CANVAS_HOST: "1"}  # most tests need no canvas host
    return resolve(
        Loaded(config, paths.config_path, False), paths, overrides, env, lambda: "generated"
    )


@pytest.fixture(autouse=True)
def _close_raw_clients() -> Iterator[None]:
    yield
    from .rawws import close_all  # rawws imports this module: import late

    close_all()


@pytest.fixture
async def start_gateway(nursery: trio.Nursery, tmp_path: Path) -> StartGateway:
    async def start(settings: Settings | None = None, **kwargs: Any) -> Running:
        settings = settings or make_settings(tmp_path, **kwargs)
        running: Running = await nursery.start(serve, settings)
        return running

    return start


@pytest.fixture
async def gateway(start_gateway: StartGateway) -> Running:
    return await start_gateway()


def connect_frame(
    *,
    token: str | None = TOKEN,
    request_id: str | None = None,
    client: dict[str, Any] | None = None,
    **params: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "minProtocol": 4,
        "maxProtocol": 4,
        "client": client
        or {
            "id": "test",
            "version": "1.0.0",
            "platform": "linux",
            "mode": "test",
            "instanceId": str(uuid.uuid4()),
        },
        "caps": [],
    }
    if token is not None:
        body["auth"] = {"token": token}
    body.update(params)
    return {
        "type": "req",
        "id": request_id or str(uuid.uuid4()),
        "method": "connect",
        "params": body,
    }


def recv_json(ws: ClientConnection, timeout: float = 5) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ws.recv(timeout=timeout))
    return data


def recv_until(
    ws: ClientConnection, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5
) -> dict[str, Any]:
    """Read frames until one matches; events in between are skipped."""
    while True:
        frame = recv_json(ws, timeout)
        if predicate(frame):
            return frame


def open_raw(url: str, **kwargs: Any) -> ClientConnection:
    ws: ClientConnection = connect(url, open_timeout=5, close_timeout=2, **kwargs)
    return ws


def handshake(ws: ClientConnection, **kwargs: Any) -> dict[str, Any]:
    """Read the challenge, send connect, return the hello-ok ``res``."""
    challenge = recv_json(ws)
    assert challenge["event"] == "connect.challenge"
    frame = connect_frame(**kwargs)
    ws.send(json.dumps(frame))
    return recv_until(ws, lambda f: f.get("type") == "res" and f.get("id") == frame["id"])


def request(
    ws: ClientConnection, method: str, params: Any = None, request_id: str | None = None
) -> dict[str, Any]:
    rid = request_id or str(uuid.uuid4())
    frame: dict[str, Any] = {"type": "req", "id": rid, "method": method}
    if params is not None:
        frame["params"] = params
    ws.send(json.dumps(frame))
    return recv_until(ws, lambda f: f.get("type") == "res" and f.get("id") == rid)


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Run blocking client code (the sync ``websockets`` client) off the trio thread."""
    with trio.fail_after(30):
        return await trio.to_thread.run_sync(fn, *args)


@pytest.fixture
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HOME is the test's tmp dir and no SMART_AGENT_NEO_* variable leaks in from outside."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for key in [k for k in os.environ if k.startswith("SMART_AGENT_NEO_")]:
        monkeypatch.delenv(key)
