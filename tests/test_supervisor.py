"""Hot reload and in-process restart, with the real supervisor and real config files
(FAILURE-MODES 3, 8, 12, 13)."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from gateway_client import open_client
from rich.console import Console
from websockets.exceptions import ConnectionClosed

from bench.procs import free_port  # below the ephemeral range: no race with connect()
from gateway.cli.render import StatusReport
from gateway.config.load import load_file
from gateway.config.paths import Paths
from gateway.config.settings import Overrides, Settings, resolve
from gateway.supervisor import Supervisor, supervise

from .conftest import TOKEN, StartGateway, handshake, in_thread, open_raw, recv_until
from .test_cli_process import drain


class ConfigFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, gateway: dict[str, Any], **top: Any) -> None:
        body = {"gateway": {"mode": "local", **gateway}, **top}
        self.path.write_text(json.dumps(body))

    def write_text(self, text: str) -> None:
        self.path.write_text(text)


def rereader(paths: Paths) -> Callable[[], Settings]:
    def reread() -> Settings:
        loaded = load_file(paths.config_path, {})
        return resolve(loaded, paths, Overrides(token=TOKEN), {}, lambda: "generated")

    return reread


@asynccontextmanager
async def supervised(
    tmp_path: Path, **gateway: Any
) -> AsyncIterator[tuple[Supervisor, ConfigFile]]:
    paths = Paths(None, tmp_path, tmp_path / "smart-agent-neo.json")
    config = ConfigFile(paths.config_path)
    base = {"port": free_port(), "reload": {"debounceMs": 50}}
    base.update(gateway)
    config.write(base)
    reread = rereader(paths)
    async with trio.open_nursery() as nursery:
        lc: Supervisor = await nursery.start(supervise, reread(), reread)
        try:
            yield lc, config
        finally:
            lc.request_stop()


def shutdown_watcher(
    url: str, token: str = TOKEN
) -> tuple[threading.Event, Callable[[], tuple[dict[str, Any], int]]]:
    """A thread-side client that reports the shutdown event and the close code it saw."""
    ready = threading.Event()

    def watch() -> tuple[dict[str, Any], int]:
        with open_raw(url) as ws:
            handshake(ws, token=token)
            ready.set()
            shutdown = recv_until(ws, lambda f: f.get("event") == "shutdown", timeout=10)
            with pytest.raises(ConnectionClosed) as closed:
                drain(ws)
            assert closed.value.rcvd is not None
            payload: dict[str, Any] = shutdown["payload"]
            return payload, closed.value.rcvd.code

    return ready, watch


async def test_hybrid_hot_applies_without_restart(tmp_path: Path) -> None:
    async with supervised(tmp_path) as (lc, config):
        running = await lc.wait_started(1)
        port = running.port
        config.write({"port": port, "reload": {"debounceMs": 50}, "ws": {"tickIntervalMs": 1234}})
        with trio.fail_after(10):
            await lc.wait_checked(1)
        assert lc.generation == 1
        assert running.runtime.settings.config.gateway.ws.tick_interval_ms == 1234
        assert running.runtime.settings.port == port


async def test_hybrid_restart_moves_the_port_and_clients_get_shutdown(tmp_path: Path) -> None:
    """FAILURE-MODES 12: an in-process restart re-reads the file (the new port) and never
    writes its boot snapshot back to it."""
    async with supervised(tmp_path) as (lc, config):
        first = await lc.wait_started(1)
        ready, watch = shutdown_watcher(first.url)
        new_port = free_port()
        async with trio.open_nursery() as nursery:
            result: list[tuple[dict[str, Any], int]] = []

            async def run_watch() -> None:
                result.append(await in_thread(watch))

            nursery.start_soon(run_watch)
            await trio.to_thread.run_sync(ready.wait)
            config.write({"port": new_port, "reload": {"debounceMs": 50}})
            written = config.path.read_text()
            with trio.fail_after(10):
                second = await lc.wait_started(2)
        assert config.path.read_text() == written
        payload, code = result[0]
        assert payload["restartExpectedMs"] > 0
        assert code == 1012
        assert second.port == new_port
        assert second.runtime.pid == first.runtime.pid
        assert lc.process.restarts == 1
        async with open_client(second.url, token=TOKEN) as client:
            status = await client.call("status")
        assert status["config"]["restarts"] == 1
        assert status["config"]["valid"] is True


async def test_hot_mode_applies_hot_keys_and_ignores_restart_keys(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with supervised(tmp_path, reload={"mode": "hot", "debounceMs": 50}) as (lc, config):
        running = await lc.wait_started(1)
        config.write(
            {
                "port": free_port(),
                "reload": {"mode": "hot", "debounceMs": 50},
                "ws": {"tickIntervalMs": 777},
            }
        )
        with trio.fail_after(10):
            await lc.wait_checked(1)
        assert lc.generation == 1
        assert running.runtime.settings.config.gateway.ws.tick_interval_ms == 777
        assert running.runtime.settings.port == running.port
        assert "hot mode ignoring (gateway.port)" in caplog.text


async def test_restart_mode_restarts_on_any_change(tmp_path: Path) -> None:
    async with supervised(tmp_path, reload={"mode": "restart", "debounceMs": 50}) as (lc, config):
        first = await lc.wait_started(1)
        config.write(
            {
                "port": first.port,
                "reload": {"mode": "restart", "debounceMs": 50},
                "ws": {"tickIntervalMs": 999},
            }
        )
        with trio.fail_after(10):
            second = await lc.wait_started(2)
        assert second.runtime.settings.config.gateway.ws.tick_interval_ms == 999


async def test_off_mode_ignores_changes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gateway")
    async with supervised(tmp_path, reload={"mode": "off", "debounceMs": 50}) as (lc, config):
        running = await lc.wait_started(1)
        config.write(
            {
                "port": free_port(),
                "reload": {"mode": "off", "debounceMs": 50},
                "ws": {"tickIntervalMs": 555},
            }
        )
        with trio.fail_after(10):
            await lc.wait_checked(1)
        assert lc.generation == 1
        assert running.runtime.settings.config.gateway.ws.tick_interval_ms == 30_000
        assert "config reload disabled (gateway.reload.mode=off)" in caplog.text


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        (
            '{ gateway: { mode: "local", port: "abc" } }',
            'gateway.port: expected an integer 1-65535, got "abc"',
        ),
        (
            '{ gateway: { mode: "local", prot: 1 } }',
            'gateway.prot: unknown key (did you mean "port"?)',
        ),
        ('{ gateway: { mode: "local", port: 1', "syntax error"),
        ("", "syntax error"),
    ],
)
async def test_invalid_edit_keeps_serving_and_is_reported(
    tmp_path: Path, bad: str, needle: str
) -> None:
    """FAILURE-MODES 8: last good config stays live; the file is never written by us."""
    async with supervised(tmp_path) as (lc, config):
        running = await lc.wait_started(1)
        config.write_text(bad)
        with trio.fail_after(10):
            await lc.wait_checked(1)
        assert config.path.read_text() == bad
        async with open_client(running.url, token=TOKEN) as client:
            status = await client.call("status")
            assert status["config"]["valid"] is False
            assert needle in status["config"]["problem"]
            assert (await client.call("health"))["ok"] is True
        console = Console(width=400, record=True, no_color=True)
        console.print(StatusReport(running.url, 1, status))
        shown = console.export_text()
        assert "invalid: " in shown
        assert "still serving the last good config" in shown
        config.write(
            {"port": running.port, "reload": {"debounceMs": 50}, "ws": {"tickIntervalMs": 4321}}
        )
        with trio.fail_after(10):
            await lc.wait_checked(2)
        assert lc.process.config_problem is None
        assert running.runtime.settings.config.gateway.ws.tick_interval_ms == 4321
        assert lc.generation == 1


async def test_same_content_rewrite_is_not_a_change(tmp_path: Path) -> None:
    async with supervised(tmp_path) as (lc, config):
        running = await lc.wait_started(1)
        original = config.path.read_text()
        config.write_text(original + " ")  # different bytes: examined, but no config change
        with trio.fail_after(10):
            await lc.wait_checked(1)
        assert lc.process.reloads == 0
        assert lc.generation == 1
        assert running.runtime.restart_requested is False


async def test_restart_requests_coalesce(tmp_path: Path) -> None:
    """FAILURE-MODES 3: many restart requests at once -> exactly one restart, none stuck."""
    async with supervised(tmp_path) as (lc, _config):
        first = await lc.wait_started(1)
        results = [lc.request_restart("burst") for _ in range(5)]
        assert results == [True, False, False, False, False]
        with trio.fail_after(10):
            second = await lc.wait_started(2)
        async with open_client(second.url, token=TOKEN) as client:
            answer = await client.call("restart", {"reason": "rpc"})
            assert answer["scheduled"] is True
        with trio.fail_after(10):
            await lc.wait_started(3)
        assert lc.process.restarts == 2
        assert first.runtime.pid == second.runtime.pid


async def test_restart_that_cannot_bind_falls_back_to_the_last_good_settings(
    tmp_path: Path,
) -> None:
    async with supervised(tmp_path) as (lc, config):
        first = await lc.wait_started(1)
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", 0))
            squatter.listen()
            taken = squatter.getsockname()[1]
            config.write({"port": taken, "reload": {"debounceMs": 50}})
            with trio.fail_after(10):
                second = await lc.wait_started(2)
        assert second.port == first.port
        assert lc.process.config_problem is not None
        assert "cannot apply the new config" in lc.process.config_problem


async def test_in_flight_request_is_drained_before_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import attrs

    from gateway.rpc.registry import REGISTRY, CallContext

    release = trio.Event()
    entered = trio.Event()

    async def slow(ctx: CallContext, params: object) -> dict[str, bool]:
        entered.set()
        await release.wait()
        return {"slow": True}

    monkeypatch.setitem(
        REGISTRY, "last-heartbeat", attrs.evolve(REGISTRY["last-heartbeat"], handler=slow)
    )
    async with supervised(tmp_path, drainTimeoutMs=5000) as (lc, _config):
        running = await lc.wait_started(1)
        async with open_client(running.url, token=TOKEN) as client, trio.open_nursery() as nursery:
            answers: list[object] = []

            async def call() -> None:
                answers.append(await client.call("last-heartbeat", timeout=10))

            nursery.start_soon(call)
            await entered.wait()
            lc.request_restart("drain test")
            release.set()
        assert answers == [{"slow": True}]
        with trio.fail_after(10):
            await lc.wait_started(2)


@pytest.mark.parametrize("state", ["starting", "draining"])
async def test_connect_while_starting_or_draining_gets_1013(
    start_gateway: StartGateway, state: str
) -> None:
    """FAILURE-MODES 17: a connect during start-up or drain gets a retry hint, not a hang."""
    running = await start_gateway()
    if state == "starting":
        running.runtime.ready = False
    else:
        running.runtime.draining = True

    def client() -> tuple[dict[str, Any], int]:
        with open_raw(running.url) as ws:
            res = handshake(ws)
            with pytest.raises(ConnectionClosed) as closed:
                drain(ws)
            assert closed.value.rcvd is not None
            return res, closed.value.rcvd.code

    res, code = await in_thread(client)
    assert code == 1013
    assert res["error"]["code"] == "UNAVAILABLE"
    assert res["error"]["retryable"] is True
    assert res["error"]["retryAfterMs"] in (500, 1000)
    assert res["error"]["message"] == f"gateway {state}; retry shortly"
