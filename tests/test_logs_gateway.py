"""The file log of a live gateway: what it records, ``logs.tail`` over the control plane,
secrets kept out of the file and the console, a full disk, and hot log levels."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio
from gateway_client import GatewayConnectError, GatewayRpcError, open_client

from gateway import observe
from gateway.app import serve
from gateway.config.model import Config, Gateway, Logging, Remote
from gateway.protocol.system import HeartbeatPayload

from .conftest import TOKEN, StartGateway, make_settings
from .logkit import Captured, capture_logs


@pytest.fixture
def captured(tmp_path: Path) -> Iterator[Captured]:
    with capture_logs(make_settings(tmp_path), verbose=True) as cap:
        yield cap


async def _tail(url: str, **params: Any) -> dict[str, Any]:
    async with open_client(url, token=TOKEN) as client:
        payload: dict[str, Any] = await client.call("logs.tail", params)
        return payload


async def test_requests_connections_and_system_events_reach_the_file(
    captured: Captured, start_gateway: StartGateway, tmp_path: Path
) -> None:
    running = await start_gateway()
    async with open_client(running.url, token=TOKEN, client_id="test", client_mode="test") as c:
        await c.call("system-event", {"text": "deploy finished on host-7"})
        await c.call("health")
    with trio.fail_after(5):
        await running.runtime.hub.wait_empty()  # the session has been forgotten (and logged)
    rows = captured.lines()
    by_msg = {r["message"]: r for r in rows}
    assert by_msg["system event"]["text"] == "deploy finished on host-7"
    assert by_msg["client connected"]["client"] == "test"
    assert by_msg["client disconnected"]["by"] == "client"
    assert (
        by_msg["listening on " + running.url + f" (pid {running.runtime.pid})"]["level"] == "info"
    )
    # requests are debug: on the (verbose) console, not in an info-level file
    console = captured.console_text()
    assert "debug [rpc] request" in console
    assert "method=system-event outcome=ok" in console
    assert "request" not in by_msg
    # the file sits where the docs say, and logs.tail reads that very file
    path = tmp_path / "logs" / f"smart-agent-neo-{date.today():%Y-%m-%d}.log"
    payload = await _tail(running.url)
    assert payload["file"] == str(path)
    assert any("deploy finished on host-7" in line for line in payload["lines"])


async def test_shutdown_closes_are_logged_with_their_code(
    captured: Captured, tmp_path: Path
) -> None:
    async with trio.open_nursery() as nursery:
        running = await nursery.start(serve, make_settings(tmp_path))
        async with open_client(running.url, token=TOKEN, client_mode="test"):
            running.stop("maintenance")
            with trio.fail_after(5):
                await running.runtime.hub.wait_empty()
    closes = [r for r in captured.lines() if r["message"] == "client disconnected"]
    assert closes[-1]["code"] == 1012
    assert closes[-1]["by"] == "gateway"
    assert closes[-1]["reason"] == "service restart"


async def test_logs_tail_follows_a_cursor(captured: Captured, start_gateway: StartGateway) -> None:
    running = await start_gateway()
    async with open_client(running.url, token=TOKEN) as client:
        first = await client.call("logs.tail", {})
        assert first["cursor"] == first["size"]
        assert (first["truncated"], first["reset"]) == (False, False)
        again = await client.call("logs.tail", {"cursor": first["cursor"]})
        assert again["lines"] == []  # nothing new (our own requests are debug)
        await client.call("system-event", {"text": "marker-1"})
        await client.call("system-event", {"text": "marker-2"})
        new = await client.call("logs.tail", {"cursor": first["cursor"]})
        texts = [json.loads(line).get("text") for line in new["lines"]]
        assert texts == ["marker-1", "marker-2"]
        assert new["cursor"] > first["cursor"]
        last = await client.call("logs.tail", {"cursor": new["cursor"], "limit": 1})
        assert last["lines"] == []
        one = await client.call("logs.tail", {"limit": 1})
        assert len(one["lines"]) == 1
        assert one["truncated"] is True
        rotated = await client.call("logs.tail", {"cursor": 10**9})
        assert rotated["reset"] is True
        small = await client.call("logs.tail", {"maxBytes": 200})
        assert small["truncated"] is True
        assert all(len(line.encode()) < 200 for line in small["lines"])


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 5001}, "limit"),
        ({"maxBytes": 1_000_001}, "maxBytes"),
        ({"cursor": -1}, "cursor"),
        ({"lines": 3}, "unknown field"),
    ],
)
async def test_logs_tail_rejects_bad_params_naming_the_field(
    start_gateway: StartGateway, params: dict[str, Any], problem: str
) -> None:
    running = await start_gateway()
    async with open_client(running.url, token=TOKEN) as client:
        with pytest.raises(GatewayRpcError) as error:
            await client.call("logs.tail", params)
    assert error.value.code == "INVALID_REQUEST"
    assert error.value.message.startswith("invalid logs.tail params: ")
    assert problem in error.value.message


async def test_logs_tail_needs_read_scope(start_gateway: StartGateway) -> None:
    running = await start_gateway()
    async with open_client(running.url, token=TOKEN, scopes=["operator.pairing"]) as client:
        with pytest.raises(GatewayRpcError) as error:
            await client.call("logs.tail", {})
    assert error.value.code == "FORBIDDEN"


async def test_logs_tail_without_a_file_yet_is_empty(start_gateway: StartGateway) -> None:
    running = await start_gateway()  # no pipeline installed: nothing writes the file
    payload = await _tail(running.url)
    assert (payload["lines"], payload["cursor"], payload["size"]) == ([], 0, 0)


# -- secrets: every path, absent from the file and the console (FAILURE-MODES.md item 22) -------

REMOTE_TOKEN = "remote-client-token-5678"
WRONG_TOKEN = "presented-but-wrong-token-4321"
LONG_TOKEN = "L" * 5000
API_KEY = "sk-proj-Abcdefghijklmnopqrstuvwxyz0123456789"
BEARER = "bearer-value-that-is-wrong-999"


async def test_no_secret_reaches_the_file_or_the_console(tmp_path: Path) -> None:
    config = Config(gateway=Gateway(remote=Remote(url="ws://x", token=REMOTE_TOKEN)))
    settings = make_settings(tmp_path, config=config)
    with capture_logs(settings, verbose=True, level="debug") as cap:
        async with trio.open_nursery() as nursery:
            running = await nursery.start(serve, settings)
            # a presented, correct token (connect frame at debug)
            async with open_client(running.url, token=TOKEN) as client:
                text = f"rotated {TOKEN} and {REMOTE_TOKEN}; provider key {API_KEY}"
                await client.call("system-event", {"text": text})
            # a presented, wrong token
            with pytest.raises(GatewayConnectError):
                async with open_client(running.url, token=WRONG_TOKEN):
                    pass
            # a token so long the validator rejects it (and quotes it in its message)
            with pytest.raises(GatewayConnectError):
                async with open_client(running.url, token=LONG_TOKEN):
                    pass
            # an Authorization header (HTTP requests are logged at debug with their headers)
            http = running.url.replace("ws://", "http://")
            async with httpx.AsyncClient() as web:
                denied = await web.get(
                    http + "/metrics", headers={"Authorization": f"Bearer {BEARER}"}
                )
                allowed = await web.get(
                    http + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
                )
            assert (denied.status_code, allowed.status_code) == (401, 200)
            running.stop()
    file_text, console = cap.file_text(), cap.console_text()
    # the paths were exercised...
    for needle in (
        "connect frame",
        "auth failed",
        "handshake rejected",
        "system event",
        "http request",
    ):
        assert needle in file_text, needle
        assert needle in console, needle
    assert '"authorization":"***"' in file_text
    # ...and no secret made it out, whole or as a long fragment
    for secret in (TOKEN, REMOTE_TOKEN, WRONG_TOKEN, API_KEY, BEARER, LONG_TOKEN[:64]):
        assert secret not in file_text, secret
        assert secret not in console, secret


async def test_password_mode_secrets_stay_out(tmp_path: Path) -> None:
    password = "correct-horse-battery"
    settings = make_settings(tmp_path, token=None, password=password, auth_mode="password")
    with capture_logs(settings, verbose=True, level="debug") as cap:
        async with trio.open_nursery() as nursery:
            running = await nursery.start(serve, settings)
            async with open_client(running.url, password=password) as client:
                await client.call("system-event", {"text": f"password is {password}"})
            with pytest.raises(GatewayConnectError):
                async with open_client(running.url, password="wrong-horse-battery"):
                    pass
            running.stop()
    for text in (cap.file_text(), cap.console_text()):
        assert "AUTH_PASSWORD_MISMATCH" in text
        assert password not in text
        assert "wrong-horse-battery" not in text


# -- robustness and hot config -------------------------------------------------------------------


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
async def test_a_full_disk_never_stops_the_gateway(tmp_path: Path) -> None:
    """FAILURE-MODES.md item 27: ENOSPC on the log keeps the gateway alive and answering."""
    settings = make_settings(tmp_path)
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    (logs_dir / f"smart-agent-neo-{date.today():%Y-%m-%d}.log").symlink_to("/dev/full")
    with capture_logs(settings, verbose=False) as cap:
        async with trio.open_nursery() as nursery:
            running = await nursery.start(serve, settings)
            async with open_client(running.url, token=TOKEN) as client:
                for i in range(20):
                    await client.call("system-event", {"text": f"line {i}"})
                health = await client.call("health")
                tail = await client.call("logs.tail", {})
            running.stop()
    assert health["ok"] is True
    assert tail["lines"] == []
    assert cap.console_text().count("cannot write the log file") == 1
    assert "No space left on device" in cap.console_text()
    file = cap.pipeline.file
    assert file is not None
    assert file.dropped_total >= 20


async def test_log_level_follows_a_reloaded_config(
    captured: Captured, start_gateway: StartGateway
) -> None:
    """logging.* is hot (OPERATIONS.md C.5): replacing rt.settings changes the file level."""
    running = await start_gateway()
    rt = running.runtime
    async with open_client(running.url, token=TOKEN) as client:
        await client.call("health")
        assert not any(r["message"] == "request" for r in captured.lines())
        debug = attrs.evolve(rt.settings.config, logging=Logging(level="debug"))
        rt.settings = attrs.evolve(rt.settings, config=debug)  # what a hot reload does
        observe.config_reloaded(rt, "hot", ["logging.level"])
        await client.call("health")
    requests = [r for r in captured.lines() if r["message"] == "request"]
    assert requests[-1]["method"] == "health"
    reload = next(r for r in captured.lines() if r["message"] == "config reload")
    assert reload["paths"] == ["logging.level"]


# -- the events the runbook's checks read ----------------------------------------------------------


async def test_health_and_heartbeat_events_carry_liveness_and_readiness(
    captured: Captured, start_gateway: StartGateway
) -> None:
    """Runbook: readiness = health ok (+ linkChannel when a channel exists); the heartbeat
    event says when the agent heartbeat last ran and how it went."""
    running = await start_gateway()
    rt = running.runtime
    async with open_client(running.url, token=TOKEN) as client:
        async with client.subscribe(["health", "heartbeat"]) as events:
            await client.call("health", {"probe": True})
            with trio.fail_after(5):
                health = await events.receive()
            assert health["event"] == "health"
            assert health["payload"]["ok"] is True
            assert health["payload"]["ts"] > 0
            assert "linkChannel" not in health["payload"]  # no channel configured: not applicable
            assert health["stateVersion"]["health"] >= 2
            beat = HeartbeatPayload(
                ts=rt.now_ms(), status="ok-empty", duration_ms=812, indicator_type="ok"
            )
            observe.heartbeat(rt, beat)
            with trio.fail_after(5):
                event = await events.receive()
        assert event["event"] == "heartbeat"
        assert event["payload"] == {
            "ts": beat.ts,
            "status": "ok-empty",
            "durationMs": 812,
            "indicatorType": "ok",
        }
        assert await client.call("last-heartbeat") == event["payload"]
    (row,) = [r for r in captured.lines() if r["message"] == "heartbeat"]
    assert (row["status"], row["level"]) == ("ok-empty", "info")


async def test_one_shot_cli_connections_log_at_debug_others_at_info(
    captured: Captured, start_gateway: StartGateway
) -> None:
    """A monitor polling `status` must not bury the file log: cli/probe/backend connections
    that open and close normally are debug; a tracked client's are info."""
    running = await start_gateway()
    async with open_client(running.url, token=TOKEN) as cli:  # client mode "cli"
        await cli.call("health")
    async with open_client(running.url, token=TOKEN, client_id="ui", client_mode="ui") as ui:
        await ui.call("health")
    with trio.fail_after(5):
        await running.runtime.hub.wait_empty()
    rows = [
        r for r in captured.lines() if r["message"] in ("client connected", "client disconnected")
    ]
    levels = {(r["message"], r.get("mode") or r.get("by")): r["level"] for r in rows}
    assert levels[("client connected", "ui")] == "info"
    assert ("client connected", "cli") not in levels  # debug: not in the info-level file
