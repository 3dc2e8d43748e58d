"""Agent runs over a live WebSocket (PROTOCOL.md 4.2, 7.6-7.8, 8, 10).

The model is either the built-in offline model or a real HTTP server on loopback speaking
the provider's wire format (``fakeprovider.py``); the gateway's provider code is unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from gateway_client import GatewayClient, GatewayRpcError, open_client

from gateway.app import Running, serve
from gateway.config.load import parse
from gateway.config.model import Config

from .conftest import (
    TOKEN,
    StartGateway,
    handshake,
    in_thread,
    make_settings,
    open_raw,
    recv_json,
    recv_until,
)
from .fakeprovider import FakeProvider, Reply, chat_sse, error_reply, start_fake_provider


def provider_config(
    fake: FakeProvider,
    *,
    api: str = "openai-completions",
    agents: dict[str, Any] | None = None,
    drain_ms: int | None = None,
    **provider: Any,
) -> Config:
    raw: dict[str, Any] = {
        "models": {
            "providers": {
                "fake": {
                    "baseUrl": fake.base_url,
                    "apiKey": "sk-test",
                    "api": api,
                    "models": [{"id": "fake-model", "name": "Fake"}],
                    **provider,
                }
            }
        },
        "agents": {"defaults": {"model": {"primary": "fake/fake-model"}, **(agents or {})}},
    }
    if drain_ms is not None:
        raw["gateway"] = {"drainTimeoutMs": drain_ms}
    config, warnings = parse(json.dumps(raw), {})
    assert not warnings
    return config


def client(running: Running) -> Any:
    return open_client(running.url, token=TOKEN)


async def run_agent(c: GatewayClient, key: str, message: str = "hello", **params: Any) -> Any:
    return await c.call(
        "agent", {"message": message, "idempotencyKey": key, **params}, expect_final=True
    )


# -- two-stage over the wire ---------------------------------------------------------------


async def test_agent_is_two_stage_with_ordered_events(gateway: Running) -> None:
    """Section 4.2 / 7.6 / 8: accepted res, agent events (per-run seq from 1, lifecycle start
    first and end last), then the final res with the same id; offline model out of the box."""

    def talk() -> list[dict[str, Any]]:
        with open_raw(gateway.url) as ws:
            handshake(ws)
            params = {"message": "hello world", "idempotencyKey": "run-1"}
            ws.send(json.dumps({"type": "req", "id": "r1", "method": "agent", "params": params}))
            frames = []
            while True:
                frame = recv_json(ws)
                frames.append(frame)
                if frame.get("id") == "r1" and frame["payload"]["status"] != "accepted":
                    return frames

    frames = await in_thread(talk)
    responses = [f for f in frames if f.get("type") == "res"]
    assert [r["payload"]["status"] for r in responses] == ["accepted", "ok"]
    ack, final = responses
    assert ack["payload"]["runId"] == "run-1"
    assert isinstance(ack["payload"]["acceptedAt"], int)
    assert frames.index(ack) < frames.index(final)
    events = [f["payload"] for f in frames if f.get("event") == "agent"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert {e["runId"] for e in events} == {"run-1"}
    assert events[0]["stream"] == "lifecycle"
    assert events[0]["data"]["phase"] == "start"
    assert events[-1]["data"]["phase"] == "end"
    assert frames.index(final) > max(i for i, f in enumerate(frames) if f.get("event") == "agent")
    deltas = "".join(e["data"]["delta"] for e in events if e["stream"] == "assistant")
    text = final["payload"]["result"]["payloads"][0]["text"]
    assert deltas == text
    assert "No model provider is configured" in text
    assert text.endswith("You said: hello world")
    assert final["payload"]["result"]["meta"]["agentMeta"]["provider"] == "offline"


async def test_provider_receives_message_and_model_and_answer_reaches_client(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """The configured model id, API key and the user's message reach the provider; its
    streamed answer is the run's result."""
    fake = await start_fake_provider(nursery)
    fake.queue(chat_sse("Hel", "lo from ", "the model"))
    running = await start_gateway(make_settings(tmp_path, config=provider_config(fake)))
    async with client(running) as c:
        final = await run_agent(c, "k-provider", "what is up?")
    assert final["result"]["payloads"] == [{"text": "Hello from the model"}]
    meta = final["result"]["meta"]["agentMeta"]
    assert (meta["provider"], meta["model"]) == ("fake", "fake-model")
    assert meta["usage"] == {"input": 11, "output": 7, "total": 18}
    (seen,) = fake.requests
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["authorization"] == "Bearer sk-test"
    assert seen.body["model"] == "fake-model"
    assert seen.body["stream"] is True
    assert seen.body["messages"][-1] == {"role": "user", "content": "what is up?"}
    assert seen.body["messages"][0]["role"] == "system"


async def test_session_history_is_sent_on_the_next_run(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    fake = await start_fake_provider(nursery)
    fake.queue(chat_sse("first answer"), chat_sse("second answer"))
    running = await start_gateway(make_settings(tmp_path, config=provider_config(fake)))
    async with client(running) as c:
        await run_agent(c, "h1", "first question", sessionKey="agent:main:talk")
        await run_agent(c, "h2", "second question", sessionKey="talk")  # same session
        listing = await c.call("sessions.list", {})
    turns = [(m["role"], m["content"]) for m in fake.requests[1].body["messages"][1:]]
    assert turns == [
        ("user", "first question"),
        ("assistant", "first answer"),
        ("user", "second question"),
    ]
    assert [s["key"] for s in listing["sessions"]] == ["agent:main:talk"]


# -- idempotency ----------------------------------------------------------------------------


async def test_repeated_key_after_the_run_returns_the_cached_outcome(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """Section 10: a retry with the same idempotencyKey gets the same runId and outcome in one
    res (no 'accepted'), and the provider is not asked again."""
    fake = await start_fake_provider(nursery)
    fake.queue(chat_sse("only once"))
    running = await start_gateway(make_settings(tmp_path, config=provider_config(fake)))
    async with client(running) as c:
        first = await run_agent(c, "same-key")
        again = await c.call("agent", {"message": "hello", "idempotencyKey": "same-key"})
    assert again == first
    assert again["runId"] == "same-key"
    assert len(fake.requests) == 1


async def test_concurrent_duplicates_wait_for_the_first_run(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """A duplicate sent while the run is going gets the ack, then the first run's outcome."""
    fake = await start_fake_provider(nursery)
    release = trio.Event()
    fake.queue(chat_sse("shared ", "answer", hold_after=2, release=release))
    running = await start_gateway(make_settings(tmp_path, config=provider_config(fake)))
    joined = trio.Event()
    params = {"message": "hello", "idempotencyKey": "dup-key"}

    def duplicate() -> list[dict[str, Any]]:
        with open_raw(running.url) as ws:
            handshake(ws)
            ws.send(json.dumps({"type": "req", "id": "d", "method": "agent", "params": params}))
            ack = recv_until(ws, lambda f: f.get("id") == "d")
            trio.from_thread.run_sync(joined.set)
            return [ack, recv_until(ws, lambda f: f.get("id") == "d")]

    results: list[Any] = []

    async def first() -> None:
        async with client(running) as c:
            results.append(await run_agent(c, "dup-key"))

    with trio.fail_after(10):
        async with trio.open_nursery() as group:
            group.start_soon(first)
            await fake.streaming.wait()
            group.start_soon(_run_duplicate, duplicate, results)
            await joined.wait()
            release.set()
    (original,) = [r for r in results if isinstance(r, dict)]
    ((ack, final),) = [r for r in results if isinstance(r, list)]
    assert ack["payload"] == {
        "runId": "dup-key",
        "status": "accepted",
        "acceptedAt": ack["payload"]["acceptedAt"],
    }
    assert final["payload"] == original
    assert original["result"]["payloads"] == [{"text": "shared answer"}]
    assert len(fake.requests) == 1


async def _run_duplicate(fn: Any, results: list[Any]) -> None:
    results.append(await in_thread(fn))


# -- timeout, abort, disconnect -----------------------------------------------------------


async def test_run_deadline_gives_agent_timeout(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    fake = await start_fake_provider(nursery)
    fake.queue(chat_sse("thinking...", hold_after=2))  # never finishes
    running = await start_gateway(make_settings(tmp_path, config=provider_config(fake)))
    async with client(running) as c:
        with trio.fail_after(10), pytest.raises(GatewayRpcError) as raised:
            await run_agent(c, "slow", timeoutMs=300)
        waited = await c.call("agent.wait", {"runId": "slow", "timeoutMs": 0})
        history = await c.call("chat.history", {"sessionKey": "main"})
    assert raised.value.code == "AGENT_TIMEOUT"
    assert raised.value.payload == {
        "runId": "slow",
        "status": "error",
        "summary": raised.value.message,
    }
    assert "timed out after 0.3 s" in raised.value.message
    assert waited["status"] == "error"
    roles = [(m["role"], m.get("stopReason")) for m in history["messages"]]
    assert roles == [("user", None), ("assistant", "timeout"), ("system", "timeout")]


async def test_agent_abort_stops_the_run_and_keeps_the_partial_text(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    fake = await start_fake_provider(nursery)
    fake.queue(chat_sse("partial ", "words", hold_after=3))
    running = await start_gateway(make_settings(tmp_path, config=provider_config(fake)))
    outcome: list[BaseException] = []
    async with client(running) as c:

        async def start() -> None:
            try:
                await run_agent(c, "to-abort", sessionKey="work")
            except GatewayRpcError as exc:
                outcome.append(exc)

        with trio.fail_after(10):
            async with trio.open_nursery() as group:
                group.start_soon(start)
                await fake.streaming.wait()
                aborted = await c.call("agent.abort", {"runId": "to-abort"})
        again = await c.call("agent.abort", {"sessionKey": "work"})
        history = await c.call("chat.history", {"sessionKey": "work"})
    assert aborted == {"ok": True, "aborted": True, "runIds": ["to-abort"]}
    assert again == {"ok": True, "aborted": False, "runIds": []}
    (error,) = outcome
    assert isinstance(error, GatewayRpcError)
    assert error.code == "UNAVAILABLE"
    assert error.message == "aborted by agent.abort"
    messages = history["messages"]
    assert messages[1]["content"][0]["text"] == "partial words"
    assert messages[2]["content"][0]["text"] == "Run aborted: aborted by agent.abort"


async def test_websocket_disconnect_leaves_the_run_to_agent_wait(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """A WebSocket client that goes away does not abort its run: another connection can
    wait for it (the runId is the client's own idempotencyKey)."""
    fake = await start_fake_provider(nursery)
    release = trio.Event()
    fake.queue(chat_sse("still ", "here", hold_after=2, release=release))
    running = await start_gateway(make_settings(tmp_path, config=provider_config(fake)))
    with trio.fail_after(10):
        async with client(running) as c, trio.open_nursery() as group:
            group.start_soon(run_agent, c, "survivor")
            await fake.streaming.wait()
            group.cancel_scope.cancel()
        async with client(running) as c:
            pending = await c.call("agent.wait", {"runId": "survivor", "timeoutMs": 0})
            release.set()
            done = await c.call("agent.wait", {"runId": "survivor"})
            replay = await c.call("agent", {"message": "x", "idempotencyKey": "survivor"})
    assert pending["status"] == "timeout"
    assert done["status"] == "ok"
    assert replay["result"]["payloads"] == [{"text": "still here"}]


async def test_restart_mid_run_keeps_the_transcript(nursery: trio.Nursery, tmp_path: Path) -> None:
    """FAILURE-MODES.md 30: a stop during a run interrupts it within the drain budget and
    records it; a new gateway on the same state dir serves the intact transcript."""
    fake = await start_fake_provider(nursery)
    fake.queue(chat_sse("half an ", "answer", hold_after=3))
    settings = make_settings(tmp_path, config=provider_config(fake, drain_ms=200))
    outcome: list[BaseException] = []
    with trio.fail_after(15):
        async with trio.open_nursery() as first:
            running: Running = await first.start(serve, settings)
            async with client(running) as c:

                async def start() -> None:
                    try:
                        await run_agent(c, "cut-short", "please think slowly")
                    except Exception as exc:
                        outcome.append(exc)

                first.start_soon(start)
                await fake.streaming.wait()
                running.stop("gateway restarting")
        async with trio.open_nursery() as second:
            again: Running = await second.start(serve, settings)
            async with client(again) as c:
                history = await c.call("chat.history", {"sessionKey": "main"})
                forgotten = await c.call("agent.wait", {"runId": "cut-short", "timeoutMs": 50})
            again.stop()
    assert outcome, "the first client must hear that its run did not finish"
    messages = [(m["role"], m["content"][0]["text"]) for m in history["messages"]]
    assert messages == [
        ("user", "please think slowly"),
        ("assistant", "half an answer"),
        ("system", "Run interrupted: gateway restarting"),
    ]
    # a new process keeps no run state: the transcript is the record of the old run
    assert forgotten == {"runId": "cut-short", "status": "timeout"}


# -- provider failures become clear run errors ------------------------------------------------


async def test_provider_errors_and_retries(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """429 with Retry-After and 5xx are retried; a 401 fails at once with the provider's
    message; a provider that stops sending hits the read timeout; nobody hangs."""
    fake = await start_fake_provider(nursery)
    fake.queue(
        error_reply(429, "slow down", ("retry-after", "0")),
        error_reply(503, "overloaded"),
        chat_sse("third time lucky"),
        error_reply(401, "invalid api key"),
        chat_sse("never ", "finished", hold_after=1),
    )
    config = provider_config(fake, readTimeoutMs=300)
    running = await start_gateway(make_settings(tmp_path, config=config))
    async with client(running) as c:
        with trio.fail_after(20):
            ok = await run_agent(c, "retry")
            with pytest.raises(GatewayRpcError) as unauthorized:
                await run_agent(c, "denied")
            with pytest.raises(GatewayRpcError) as stalled:
                await run_agent(c, "stalled")
    assert ok["result"]["payloads"] == [{"text": "third time lucky"}]
    assert len(fake.requests) == 5
    assert unauthorized.value.message == "provider fake returned HTTP 401: invalid api key"
    assert stalled.value.message == "provider fake sent nothing for 300 ms (read timeout)"


async def test_unreachable_provider_and_bad_model_reference(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    closed = FakeProvider(base_url="http://127.0.0.1:9/v1")  # discard port: nothing listens
    config = provider_config(closed, maxRetries=0)
    running = await start_gateway(make_settings(tmp_path, config=config))
    async with client(running) as c:
        with pytest.raises(GatewayRpcError) as unreachable:
            await run_agent(c, "nowhere")
        with pytest.raises(GatewayRpcError) as unknown_agent:
            await run_agent(c, "who", agentId="nobody")
    assert unreachable.value.message.startswith(
        "provider fake: cannot connect to http://127.0.0.1:9/v1/chat/completions"
    )
    assert unknown_agent.value.code == "INVALID_REQUEST"
    assert unknown_agent.value.message == 'invalid agent params: unknown agent id "nobody"'
    assert unknown_agent.value.details == {"agentId": "nobody", "configured": ["main"]}

    raw = {"agents": {"defaults": {"model": {"primary": "missing/model"}}}}
    bad, _ = parse(json.dumps(raw), {})
    running = await start_gateway(make_settings(tmp_path / "bad", config=bad))
    async with client(running) as c:
        with pytest.raises(GatewayRpcError) as misconfigured:
            await run_agent(c, "misconfigured")
    assert misconfigured.value.message == (
        'agents.defaults.model.primary: unknown provider "missing" (models.providers: none configured)'
    )


async def test_empty_model_output_is_a_visible_error(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """FAILURE-MODES.md 31: an empty model output is an error, not a blank success."""
    fake = await start_fake_provider(nursery)
    fake.queue(chat_sse())
    running = await start_gateway(make_settings(tmp_path, config=provider_config(fake)))
    async with client(running) as c:
        with pytest.raises(GatewayRpcError) as raised:
            await run_agent(c, "empty")
    assert raised.value.message == "the model (fake/fake-model) returned an empty reply"


async def test_agent_wait_for_an_unknown_run_times_out(gateway: Running) -> None:
    """PROTOCOL.md 7.7 (as the reference): a run that never shows up is a ``timeout``."""
    async with client(gateway) as c:
        with trio.fail_after(10):
            waited = await c.call("agent.wait", {"runId": "never-started", "timeoutMs": 20})
        with pytest.raises(GatewayRpcError) as no_target:
            await c.call("agent.abort", {})
    assert waited == {"runId": "never-started", "status": "timeout"}
    assert no_target.value.message == "invalid agent.abort params: runId or sessionKey is required"


async def test_agent_wait_called_before_the_run_starts_sees_it_end(gateway: Running) -> None:
    """``agent.wait`` may race ahead of the ``agent`` request it waits for."""
    waited: list[Any] = []
    async with client(gateway) as c, client(gateway) as other:
        with trio.fail_after(10):
            async with trio.open_nursery() as group:

                async def wait() -> None:
                    waited.append(await other.call("agent.wait", {"runId": "late"}))

                group.start_soon(wait)
                while gateway.runtime.inflight_requests == 0:  # until agent.wait is served
                    await trio.testing.wait_all_tasks_blocked()
                final = await run_agent(c, "late")
    assert final["status"] == "ok"
    assert waited[0]["runId"] == "late"
    assert waited[0]["status"] == "ok"
    assert isinstance(waited[0]["endedAt"], int)


async def test_session_key_validation(gateway: Running) -> None:
    async with client(gateway) as c:
        with pytest.raises(GatewayRpcError) as malformed:
            await run_agent(c, "bad-key", sessionKey="agent:main")
        with pytest.raises(GatewayRpcError) as mismatch:
            await c.call("chat.history", {"sessionKey": "agent:main:x", "agentId": "other"})
    assert malformed.value.message == (
        'invalid agent params: session key "agent:main" must look like agent:<agentId>:<key>'
    )
    assert mismatch.value.message == (
        'agentId "other" does not match the agent of sessionKey "agent:main:x" (main)'
    )


@pytest.mark.parametrize("reply", [Reply(200, body=b"{}")])
async def test_provider_answering_without_a_stream_is_an_empty_reply(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path, reply: Reply
) -> None:
    fake = await start_fake_provider(nursery)
    fake.queue(reply)
    running = await start_gateway(make_settings(tmp_path, config=provider_config(fake)))
    async with client(running) as c:
        with pytest.raises(GatewayRpcError) as raised:
            await run_agent(c, "json-instead")
    assert "empty reply" in raised.value.message
