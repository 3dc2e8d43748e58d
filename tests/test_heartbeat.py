"""The agent heartbeat (OPERATIONS.md G.4): classification, the periodic loop, the
`heartbeat` event, `last-heartbeat`, `set-heartbeats`, and what health/status report."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from gateway_client import GatewayRpcError, open_client

from gateway.agent.heartbeat import TOKEN, beat, classify, parse_every
from gateway.config.load import parse
from gateway.errors import ConfigError

from .conftest import TOKEN as GW_TOKEN
from .conftest import StartGateway, make_settings
from .fakeprovider import chat_sse, start_fake_provider
from .test_agent_runs import provider_config


@pytest.mark.parametrize(
    ("every", "ms"),
    [("30m", 1_800_000), ("1h", 3_600_000), ("45s", 45_000), ("250ms", 250), ("0m", None)],
)
def test_parse_every(every: str, ms: int | None) -> None:
    assert parse_every(every) == ms


def test_a_bad_interval_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError) as raised:
        parse('{agents: {defaults: {heartbeat: {every: "soon"}}}}', {})
    assert 'agents.defaults.heartbeat.every: expected a duration like "30m"' in str(raised.value)


@pytest.mark.parametrize(
    ("reply", "status", "indicator"),
    [
        (TOKEN, "ok-token", "ok"),
        (f"{TOKEN} all quiet", "ok-token", "ok"),
        (f"Checked the inbox. {TOKEN}", "ok-token", "ok"),
        ("", "ok-empty", "ok"),
        ("   ", "ok-empty", "ok"),
        ("Your 3pm meeting moved to 4pm.", "sent", "alert"),
        (f"{TOKEN} " + "x" * 400, "sent", "alert"),  # token plus more than ackMaxChars
    ],
)
def test_classify(reply: str, status: str, indicator: str) -> None:
    verdict = classify(reply, 300)
    assert (verdict.status, verdict.indicator) == (status, indicator)


async def test_loop_emits_heartbeat_events_and_last_heartbeat(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """With the built-in offline model every reply is an echo: an "alert" heartbeat."""
    config, _ = parse('{agents: {defaults: {heartbeat: {every: "200ms"}}}}', {})
    running = await start_gateway(make_settings(tmp_path, config=config))
    async with open_client(running.url, token=GW_TOKEN) as client:
        async with client.subscribe({"heartbeat"}) as events:
            with trio.fail_after(10):
                event = await events.receive()
        payload = event["payload"]
        assert payload["status"] == "sent"
        assert payload["indicatorType"] == "alert"
        assert payload["durationMs"] >= 0
        assert "seq" in event
        last = await client.call("last-heartbeat")
        assert last["id"].startswith("heartbeat-")
        status = await client.call("status")
        assert status["heartbeat"]["agents"][0]["enabled"] is True
        assert status["heartbeat"]["agents"][0]["everyMs"] == 200
        health = await client.call("health", {"probe": True})
        assert health["agents"][0]["heartbeat"]["every"] == "200ms"


async def test_set_heartbeats_pauses_and_needs_admin(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    config, _ = parse('{agents: {defaults: {heartbeat: {every: "1h"}}}}', {})
    running = await start_gateway(make_settings(tmp_path, config=config))
    async with open_client(running.url, token=GW_TOKEN) as client:
        assert await client.call("set-heartbeats", {"enabled": False}) == {
            "ok": True,
            "enabled": False,
        }
        status = await client.call("status")
        assert status["heartbeat"]["agents"][0]["enabled"] is False
        with pytest.raises(GatewayRpcError, match="enabled"):
            await client.call("set-heartbeats", {"enabled": "no"})
    async with open_client(running.url, token=GW_TOKEN, scopes=["operator.read"]) as reader:
        with pytest.raises(GatewayRpcError, match=r"missing scope: operator\.admin"):
            await reader.call("set-heartbeats", {"enabled": True})
    assert running.runtime.process.heartbeats_enabled is False


async def test_a_model_that_says_heartbeat_ok_is_ok_token(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    fake = await start_fake_provider(nursery)
    fake.queue(chat_sse(TOKEN))
    config = provider_config(fake, agents={"heartbeat": {"every": "0m"}})
    running = await start_gateway(make_settings(tmp_path / "state", config=config))
    with trio.fail_after(10):
        payload = await beat(running.runtime)
    assert payload.status == "ok-token"
    assert payload.indicator_type == "ok"
    (request,) = fake.requests
    assert any("scheduled heartbeat" in str(m.get("content")) for m in request.body["messages"])
    assert running.runtime.last_heartbeat == payload


async def test_a_failing_provider_is_a_failed_heartbeat(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    from .fakeprovider import error_reply

    fake = await start_fake_provider(nursery)
    fake.queue(error_reply(400, "bad request"))
    config = provider_config(fake, agents={"heartbeat": {"every": "0m"}})
    running = await start_gateway(make_settings(tmp_path / "state", config=config))
    with trio.fail_after(20):
        payload = await beat(running.runtime)
    assert payload.status == "failed"
    assert payload.indicator_type == "error"
    assert payload.reason
