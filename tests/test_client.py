"""The Python client library (``gateway_client``) against real gateways on 127.0.0.1:0."""

from __future__ import annotations

import itertools
import json
import random
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing
import trio_websocket
from gateway_client import (
    Gap,
    GatewayClientError,
    GatewayClosedError,
    GatewayConnectError,
    GatewayRpcError,
    GatewayTimeoutError,
    open_client,
)
from gateway_client._backoff import Backoff

from bench.procs import free_port  # below the ephemeral range: no race with connect()
from gateway.app import Running, serve
from gateway.config.settings import Settings
from gateway.protocol import events as ev
from gateway.protocol.frames import response_text
from gateway.protocol.system import TickPayload
from gateway.rpc.registry import CallContext, methods

from .conftest import TOKEN, StartGateway, make_settings

Frame = dict[str, Any]


async def serve_until_stopped(
    settings: Settings,
    stopped: trio.Event,
    *,
    task_status: trio.TaskStatus[Running] = trio.TASK_STATUS_IGNORED,
) -> None:
    """``serve`` that also says when it has fully exited (listener closed, port free)."""
    try:
        await serve(settings, task_status=task_status)
    finally:
        stopped.set()


async def next_matching(
    channel: trio.MemoryReceiveChannel[Frame], kind: str, event: str | None = None
) -> Frame:
    async for frame in channel:
        if frame["type"] == kind and (event is None or frame.get("event") == event):
            return frame
    raise AssertionError(f"subscription ended before a {kind} {event or ''} frame")


def replace_handler(monkeypatch: pytest.MonkeyPatch, name: str, handler: Any) -> None:
    registry = methods()
    monkeypatch.setitem(registry, name, attrs.evolve(registry[name], handler=handler))


# -- connect -------------------------------------------------------------------------------


async def test_connect_exposes_hello(gateway: Running) -> None:
    with trio.fail_after(10):
        async with open_client(gateway.url, token=TOKEN) as client:
            assert client.connected
            hello = client.hello
            assert hello["type"] == "hello-ok"
            assert hello["protocol"] == 4
            assert hello["server"]["connId"] in gateway.runtime.hub.peers
            assert {"health", "status", "system-presence"} <= set(hello["features"]["methods"])
            assert hello["auth"] == {"role": "operator", "scopes": ["operator.admin"]}
            assert hello["policy"]["maxPayload"] == 26214400
            peer = gateway.runtime.hub.peers[hello["server"]["connId"]]
            assert (peer.client_id, peer.client_mode) == ("cli", "cli")
            await client.wait_connected()  # already connected: returns at once


async def test_wrong_token_is_a_connect_error(gateway: Running) -> None:
    with trio.fail_after(10), pytest.raises(GatewayConnectError) as info:
        async with open_client(gateway.url, token="not-the-token"):
            pytest.fail("connected with a wrong token")
    error = info.value
    assert str(error).startswith("unauthorized: gateway token mismatch (")
    assert error.error is not None
    assert error.code == "INVALID_REQUEST"
    assert error.detail_code == "AUTH_TOKEN_MISMATCH"
    assert error.terminal
    assert error.close_code == 1008


async def test_missing_token_is_a_connect_error(gateway: Running) -> None:
    with (
        trio.fail_after(10),
        pytest.raises(GatewayConnectError, match="unauthorized: gateway token missing") as info,
    ):
        async with open_client(gateway.url):
            pass
    assert info.value.detail_code == "AUTH_TOKEN_MISSING"


async def test_nothing_listening_is_a_connect_error() -> None:
    url = f"ws://127.0.0.1:{free_port()}"
    with trio.fail_after(10), pytest.raises(GatewayConnectError) as info:
        async with open_client(url, token=TOKEN):
            pass
    assert str(info.value) == f"gateway connect failed: Connection refused ({url})"
    assert isinstance(info.value, GatewayClientError)


async def test_invalid_url_is_a_connect_error() -> None:
    with pytest.raises(
        GatewayConnectError, match=r"^gateway connect failed: invalid url: scheme must be ws"
    ):
        async with open_client("http://127.0.0.1:1", token=TOKEN):
            pass


async def test_close_before_hello_names_code_and_reason(gateway: Running) -> None:
    # A connect frame over the 64 KiB pre-auth cap is closed with 1009 and no res.
    with trio.fail_after(10), pytest.raises(GatewayConnectError) as info:
        async with open_client(gateway.url, token=TOKEN, display_name="x" * 70_000):
            pass
    assert str(info.value) == "gateway closed (1009): preauth payload too large"
    assert info.value.close_code == 1009


async def run_fake_gateway(
    nursery: trio.Nursery, send_first: Frame | None, closes: list[tuple[int, str | None]]
) -> str:
    """A WebSocket server that is *not* a gateway: it sends ``send_first`` (if any), then
    only records how the client closes. For handshake failures a real gateway never shows."""

    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        if send_first is not None:
            await ws.send_message(json.dumps(send_first))
        try:
            await ws.get_message()
        except trio_websocket.ConnectionClosed:
            reason = ws.closed
            closes.append((reason.code, reason.reason) if reason else (-1, None))

    server: trio_websocket.WebSocketServer = await nursery.start(
        partial(trio_websocket.serve_websocket, handler, "127.0.0.1", 0, ssl_context=None)
    )
    return f"ws://127.0.0.1:{server.port}"


async def test_no_challenge_within_connect_timeout(
    nursery: trio.Nursery, mock_clock: trio.testing.MockClock
) -> None:
    mock_clock.autojump_threshold = 0.05
    closes: list[tuple[int, str | None]] = []
    url = await run_fake_gateway(nursery, None, closes)
    with trio.fail_after(60), pytest.raises(GatewayConnectError) as info:
        async with open_client(url, token=TOKEN, connect_timeout=5):
            pass
    assert str(info.value) == f"gateway connect failed: no connect.challenge within 5000ms ({url})"
    assert closes == [(1008, "connect challenge timeout")]


async def test_challenge_without_nonce_is_refused(
    nursery: trio.Nursery, mock_clock: trio.testing.MockClock
) -> None:
    mock_clock.autojump_threshold = 0.05
    closes: list[tuple[int, str | None]] = []
    challenge = {"type": "event", "event": "connect.challenge", "payload": {"ts": 1}}
    url = await run_fake_gateway(nursery, challenge, closes)
    with trio.fail_after(60), pytest.raises(GatewayConnectError) as info:
        async with open_client(url, token=TOKEN):
            pass
    assert str(info.value) == f"gateway connect failed: connect challenge missing nonce ({url})"
    assert closes == [(1008, "connect challenge missing nonce")]


# -- calls ---------------------------------------------------------------------------------


async def test_calls_return_payloads(gateway: Running) -> None:
    with trio.fail_after(10):
        async with open_client(gateway.url, token=TOKEN) as client:
            health = await client.call("health")
            assert health["ok"] is True
            assert "channels" in health
            status = await client.call("status", {})
            assert status["gateway"]["port"] == gateway.port
            presence = await client.call("system-presence")
            assert any(entry.get("reason") == "self" for entry in presence)


async def test_unknown_method_is_an_rpc_error(gateway: Running) -> None:
    with trio.fail_after(10):
        async with open_client(gateway.url, token=TOKEN) as client:
            with pytest.raises(GatewayRpcError) as info:
                await client.call("no.such.method")
            assert info.value.code == "INVALID_REQUEST"
            assert info.value.message == "unknown method: no.such.method"
            assert str(info.value) == "INVALID_REQUEST: unknown method: no.such.method"
            assert info.value.method == "no.such.method"
            assert await client.call("health")  # the session survives


async def test_bad_params_are_an_rpc_error(gateway: Running) -> None:
    with trio.fail_after(10):
        async with open_client(gateway.url, token=TOKEN) as client:
            with pytest.raises(
                GatewayRpcError, match=r"^INVALID_REQUEST: invalid health params: "
            ) as info:
                await client.call("health", {"probe": "yes"})
            assert info.value.code == "INVALID_REQUEST"


async def test_missing_scope_carries_details(gateway: Running) -> None:
    with trio.fail_after(10):
        async with open_client(gateway.url, token=TOKEN, scopes=["operator.read"]) as client:
            assert client.hello["auth"]["scopes"] == ["operator.read"]
            with pytest.raises(GatewayRpcError) as info:
                await client.call("system-event", {"text": "hello"})
            assert info.value.code == "FORBIDDEN"
            assert info.value.details["code"] == "MISSING_SCOPE"


async def test_expect_final_skips_the_accepted_ack(
    gateway: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def two_stage(ctx: CallContext, params: object) -> object:
        ack = {"runId": "r1", "status": "accepted", "acceptedAt": 1}
        ctx.peer.send_text(response_text(ctx.request_id, True, ack))
        return {"runId": "r1", "status": "ok", "summary": "completed"}

    replace_handler(monkeypatch, "status", two_stage)
    with trio.fail_after(10):
        async with open_client(gateway.url, token=TOKEN) as client:
            final = await client.call("status", expect_final=True)
            assert final == {"runId": "r1", "status": "ok", "summary": "completed"}
            first = await client.call("status")
            assert first["status"] == "accepted"
            assert await client.call("health")  # the orphaned final res was dropped quietly


async def test_call_timeout_cancels_the_request(
    gateway: Running, mock_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    cancelled = trio.Event()

    async def never_answers(ctx: CallContext, params: object) -> object:
        try:
            await trio.sleep_forever()
        finally:
            cancelled.set()

    replace_handler(monkeypatch, "status", never_answers)
    async with open_client(gateway.url, token=TOKEN) as client:
        # Time stands still until now; from here it jumps whenever everything waits.
        mock_clock.autojump_threshold = 0.05
        with trio.fail_after(60):
            with pytest.raises(GatewayTimeoutError, match=r"^gateway timeout after 10000ms$"):
                await client.call("status")
            await cancelled.wait()  # the client sent {"type":"cancel"} and the gateway obeyed
            assert client.connected
            assert (await client.call("health"))["ok"] is True


async def test_call_fails_when_the_gateway_goes_away(
    start_gateway: StartGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = trio.Event()

    async def slow(ctx: CallContext, params: object) -> object:
        started.set()
        await trio.sleep_forever()

    replace_handler(monkeypatch, "status", slow)
    running = await start_gateway()
    with trio.fail_after(10):
        async with open_client(running.url, token=TOKEN) as client, client.subscribe() as events:

            async def stop_when_busy() -> None:
                await started.wait()
                running.stop()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(stop_when_busy)
                with pytest.raises(GatewayClosedError) as info:
                    await client.call("status", timeout=None)
            assert (info.value.code, info.value.reason) == (1012, "service restart")
            # Without reconnect the subscription ends after the last frames.
            names = [frame.get("event") async for frame in events]
            assert "shutdown" in names
            assert not client.connected
            with pytest.raises(
                GatewayClosedError, match=r"^gateway closed \(1012\): service restart$"
            ):
                await client.call("health")
            with pytest.raises(GatewayClosedError):
                await client.wait_connected()
        # Leaving the context after the gateway went away does not raise.


async def test_oversized_request_is_refused_locally(gateway: Running) -> None:
    with trio.fail_after(10):
        async with open_client(gateway.url, token=TOKEN) as client:
            client.hello["policy"]["maxPayload"] = 1000
            with pytest.raises(
                GatewayClientError, match=r"^request too large: \d+ bytes \(gateway limit 1000\)$"
            ):
                await client.call("system-event", {"text": "x" * 2000})
            assert client.connected


# -- leaving the context -------------------------------------------------------------------


async def test_exit_closes_the_socket(gateway: Running) -> None:
    with trio.fail_after(10):
        async with open_client(gateway.url, token=TOKEN) as client:
            assert client.hello["server"]["connId"] in gateway.runtime.hub.peers
        await gateway.runtime.hub.wait_empty()
        assert not client.connected
        with pytest.raises(GatewayClosedError, match=r"^gateway closed \(1000\): client closed$"):
            await client.call("health")
        with pytest.raises(GatewayClosedError):
            await client.wait_connected()


async def test_body_exceptions_propagate_unwrapped(gateway: Running) -> None:
    with trio.fail_after(10), pytest.raises(ValueError, match="boom") as info:
        async with open_client(gateway.url, token=TOKEN):
            raise ValueError("boom")
    assert not isinstance(info.value, BaseExceptionGroup)
    with trio.fail_after(10):
        await gateway.runtime.hub.wait_empty()


async def test_cancelled_body_still_closes(gateway: Running) -> None:
    with trio.CancelScope() as scope:
        async with open_client(gateway.url, token=TOKEN):
            scope.cancel()
            await trio.sleep_forever()
    assert scope.cancelled_caught
    with trio.fail_after(10):
        await gateway.runtime.hub.wait_empty()


# -- events --------------------------------------------------------------------------------


async def test_subscribe_sees_presence_of_another_client(gateway: Running) -> None:
    with trio.fail_after(10):
        async with (
            open_client(gateway.url, token=TOKEN) as watcher,
            watcher.subscribe(["presence"]) as events,
        ):
            async with open_client(
                gateway.url,
                token=TOKEN,
                client_id="test",
                client_mode="test",
                instance_id="inst-42",
                display_name="probe box",
            ):
                frame = await next_matching(events, "event", "presence")
            assert isinstance(frame["seq"], int)
            assert frame["stateVersion"]["presence"] >= 1
            entries = {entry.get("instanceId"): entry for entry in frame["payload"]["presence"]}
            assert entries["inst-42"]["mode"] == "test"
            assert entries["inst-42"]["host"] == "probe box"


async def test_subscribers_filter_and_never_block_the_reader(gateway: Running) -> None:
    hub, rt = gateway.runtime.hub, gateway.runtime
    with trio.fail_after(10):
        async with (
            open_client(gateway.url, token=TOKEN) as client,
            client.subscribe(["tick"], buffer=1) as ticks,
            client.subscribe("presence") as presence,
        ):
            for _ in range(5):
                hub.broadcast(ev.TICK, TickPayload(rt.now_ms()))
            # The reply comes after the five ticks on the wire, so they have all been read.
            assert (await client.call("health"))["ok"] is True
            first = ticks.receive_nowait()
            assert first["event"] == "tick"
            with pytest.raises(trio.WouldBlock):
                ticks.receive_nowait()  # the other four were dropped for this subscriber
            with pytest.raises(trio.WouldBlock):
                presence.receive_nowait()
            assert client.gaps == []  # dropped by us, not by the gateway: no seq gap


async def test_seq_gap_is_reported_with_fresh_state(gateway: Running) -> None:
    rt = gateway.runtime
    with trio.fail_after(10):
        async with open_client(gateway.url, token=TOKEN) as client, client.subscribe() as events:
            peer = rt.hub.peers[client.hello["server"]["connId"]]
            # What the hub does for a slow consumer: consume seqs without sending the events.
            expected = peer.machine.last_seq + 1
            peer.next_seq()
            peer.next_seq()
            rt.hub.broadcast(ev.TICK, TickPayload(rt.now_ms()))
            tick = await next_matching(events, "event", "tick")
            assert tick["seq"] == expected + 2
            gap = await next_matching(events, "gap")
            assert (gap["expected"], gap["received"]) == (expected, expected + 2)
            assert gap["health"]["ok"] is True
            assert any(entry.get("mode") == "gateway" for entry in gap["presence"])
            assert client.gaps == [Gap(expected, expected + 2)]
            assert client.gaps[0].missed == 2


async def test_silent_gateway_trips_the_tick_watchdog(
    gateway: Running, mock_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_client(gateway.url, token=TOKEN) as client, client.subscribe() as events:
        peer = gateway.runtime.hub.peers[client.hello["server"]["connId"]]
        # A black hole: the gateway's ticks (every 30 s) never reach us from now on (no
        # direct write, and the outbox drops everything).
        monkeypatch.setattr(peer, "direct", None)
        monkeypatch.setattr(
            peer.outbox, "offer", lambda text, droppable=False, wake=True: "dropped"
        )
        mock_clock.autojump_threshold = 0.05
        start = trio.current_time()
        with trio.fail_after(120):
            async for frame in events:  # ends when the client gives up (no reconnect)
                pytest.fail(f"unexpected frame {frame}")
        # 2 x tickIntervalMs of silence, plus at most the wait for a close reply that the
        # black hole swallows.
        assert 60 <= trio.current_time() - start <= 60 + 2 + 0.5
        assert not client.connected
        with pytest.raises(GatewayClosedError) as info:
            await client.wait_connected()
        assert (info.value.code, info.value.reason) == (4000, "tick timeout")


# -- reconnect -----------------------------------------------------------------------------


async def test_reconnects_after_gateway_restart_on_same_port(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    first_stopped = trio.Event()
    with trio.fail_after(30):
        async with trio.open_nursery() as servers:
            first: Running = await servers.start(serve_until_stopped, settings, first_stopped)
            async with (
                open_client(first.url, token=TOKEN, reconnect=True) as client,
                client.subscribe(["shutdown"]) as events,
            ):
                old_conn = client.hello["server"]["connId"]
                for _ in range(10):  # push the old connection's seq well past 10
                    first.runtime.hub.broadcast(ev.TICK, TickPayload(first.runtime.now_ms()))
                first.stop("restarting for test")
                shutdown = await events.receive()
                assert shutdown["payload"]["reason"] == "restarting for test"
                await first_stopped.wait()
                await trio.testing.wait_all_tasks_blocked()  # let the client see the 1012
                assert not client.connected
                with pytest.raises(GatewayClosedError, match=r"\(1012\): service restart"):
                    await client.call("health")

                second: Running = await servers.start(
                    serve, attrs.evolve(settings, port=first.port)
                )
                await client.wait_connected()
                assert client.hello["server"]["connId"] != old_conn
                peer = second.runtime.hub.peers[client.hello["server"]["connId"]]
                assert (await client.call("health"))["ok"] is True

                # seq tracking restarted with the connection: a one-event loss at the
                # new connection's small seqs is still a gap.
                expected = peer.machine.last_seq + 1
                peer.next_seq()
                second.runtime.hub.broadcast(ev.TICK, TickPayload(second.runtime.now_ms()))
                gap = await next_matching(events, "gap")
                assert (gap["expected"], gap["received"]) == (expected, expected + 1)
                assert client.gaps == [Gap(expected, expected + 1)]
            second.stop()


async def test_terminal_auth_error_stops_reconnecting(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    first_stopped = trio.Event()
    with trio.fail_after(30):
        async with trio.open_nursery() as servers:
            first: Running = await servers.start(serve_until_stopped, settings, first_stopped)
            async with (
                open_client(first.url, token=TOKEN, reconnect=True) as client,
                client.subscribe() as events,
            ):
                first.stop()
                await first_stopped.wait()
                await trio.testing.wait_all_tasks_blocked()
                assert not client.connected

                rotated = attrs.evolve(
                    make_settings(tmp_path, token="rotated-token-000000"), port=first.port
                )
                second: Running = await servers.start(serve, rotated)
                with pytest.raises(
                    GatewayConnectError, match=r"^unauthorized: gateway token mismatch \("
                ) as info:
                    await client.wait_connected()
                assert info.value.detail_code == "AUTH_TOKEN_MISMATCH"
                assert not client.connected
                with pytest.raises(GatewayConnectError, match="unauthorized"):
                    await client.call("health")
                async for _ in events:  # the client gave up: subscriptions end
                    pass
            second.stop()


async def test_reconnect_backoff_doubles_up_to_max(
    tmp_path: Path, mock_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[float] = []
    enough = trio.Event()
    real_open_tcp_stream = trio.open_tcp_stream

    async def counting_open(host: str, port: int, **kwargs: Any) -> trio.SocketStream:
        attempts.append(trio.current_time())
        if len(attempts) == 6:
            enough.set()
        return await real_open_tcp_stream(host, port, **kwargs)

    stopped = trio.Event()
    async with trio.open_nursery() as servers:
        running: Running = await servers.start(
            serve_until_stopped, make_settings(tmp_path), stopped
        )
        async with open_client(running.url, token=TOKEN, reconnect=True, max_backoff=4.0) as client:
            monkeypatch.setattr(trio, "open_tcp_stream", counting_open)
            running.stop()  # and never come back: every attempt is refused
            await stopped.wait()
            await trio.testing.wait_all_tasks_blocked()
            assert not client.connected
            dropped_at = trio.current_time()  # the clock has not moved yet
            mock_clock.autojump_threshold = 0.05
            with trio.fail_after(120):
                await enough.wait()
    delays = [attempts[0] - dropped_at] + [b - a for a, b in itertools.pairwise(attempts)]
    for delay, nominal in zip(delays, [1, 2, 4, 4, 4, 4], strict=True):
        assert nominal * 0.8 - 1e-6 <= delay <= nominal + 1e-6, delays


# -- backoff arithmetic --------------------------------------------------------------------


def test_backoff_without_jitter_doubles_and_caps() -> None:
    backoff = Backoff(maximum=30.0, jitter=0)
    assert [backoff.next() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    backoff.reset()
    assert backoff.next() == 1


def test_backoff_jitter_stays_under_the_cap() -> None:
    backoff = Backoff(maximum=5.0, rng=random.Random(7))
    for nominal in [1, 2, 4, 5, 5, 5]:
        assert nominal * 0.8 <= backoff.next() <= nominal


def test_backoff_cap_below_initial() -> None:
    assert Backoff(maximum=0.5, jitter=0).next() == 0.5
    with pytest.raises(ValueError, match="backoff needs"):
        Backoff(maximum=0)
