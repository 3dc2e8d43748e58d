"""The agent heartbeat (OPERATIONS.md G.4): classification, the periodic loop, the
`heartbeat` event, `last-heartbeat`, `set-heartbeats`, and what health/status report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
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


async def test_system_events_wait_for_the_sessions_next_turn(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """PROTOCOL 7.4: a queued system event is read by the next agent turn of its session
    (then it is gone from the queue); ``sessionKey`` picks another session; ``wake:true``
    runs a heartbeat at once, which reads it."""
    config, _ = parse('{agents: {defaults: {heartbeat: {every: "0m"}}}}', {})
    running = await start_gateway(make_settings(tmp_path, config=config))
    async with open_client(running.url, token=GW_TOKEN) as client:
        await client.call("system-event", {"text": "Calendar: standup moved to 10:30"})
        await client.call("system-event", {"text": "only for ops", "sessionKey": "agent:main:ops"})
        status = await client.call("status")
        assert status["queuedSystemEvents"] == ["Calendar: standup moved to 10:30"]
        final = await client.call(
            "agent", {"message": "what's new?", "idempotencyKey": "se-1"}, expect_final=True
        )
        text = final["result"]["payloads"][0]["text"]
        assert "System: [" in text
        assert "standup moved to 10:30" in text
        assert "only for ops" not in text
        assert (await client.call("status"))["queuedSystemEvents"] == []
        async with client.subscribe({"heartbeat"}) as events:
            await client.call("system-event", {"text": "Door bell", "wake": True})
            with trio.fail_after(20):
                event = await events.receive()
        assert event["payload"]["status"] == "sent"
        history = await client.call("chat.history", {"sessionKey": "main"})
        assert "Door bell" in str(history)
        ops = await client.call(
            "agent",
            {"message": "and here?", "idempotencyKey": "se-2", "sessionKey": "agent:main:ops"},
            expect_final=True,
        )
        assert "only for ops" in ops["result"]["payloads"][0]["text"]
        with pytest.raises(GatewayRpcError, match=r"wake is not allowed"):
            await client.call("system-event", {"text": "Node: host (1.2.3.4)", "wake": True})


async def test_an_alert_goes_to_the_main_sessions_last_route(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """``target: last`` (the default): the owner wrote to the bot, so the main session's
    last route is that chat; an alert heartbeat is delivered there through the outbox and
    the event says where. ``target: none`` keeps alerts in the gateway."""
    from .channelkit import BOT_TOKEN, OWNER, telegram_gateway

    fake, running = await telegram_gateway(
        nursery, start_gateway, tmp_path, allowFrom=[str(OWNER)], dmPolicy="allowlist"
    )
    fake.message(BOT_TOKEN, "hello", user_id=OWNER)
    with trio.fail_after(20):
        await fake.wait_for(lambda: len(fake.sent_to(BOT_TOKEN, OWNER)) == 1)
    running.runtime.system_events.enqueue("agent:main:main", "Disk 95% full", 0)
    with trio.fail_after(20):
        payload = await beat(running.runtime)
    assert payload.status == "sent"
    assert (payload.channel, payload.account_id, payload.to) == ("telegram", "default", str(OWNER))
    with trio.fail_after(20):
        await fake.wait_for(lambda: len(fake.sent_to(BOT_TOKEN, OWNER)) == 2)
    assert "Disk 95% full" in fake.sent_to(BOT_TOKEN, OWNER)[1]["text"]
    health = await running.runtime.current_health(probe=False)
    assert health.agents[0].heartbeat.target == "last"

    config = running.runtime.settings.config
    defaults = config.agents.defaults
    none = attrs.evolve(
        config,
        agents=attrs.evolve(
            config.agents,
            defaults=attrs.evolve(
                defaults, heartbeat=attrs.evolve(defaults.heartbeat, target="none")
            ),
        ),
    )
    running.runtime.apply_settings(attrs.evolve(running.runtime.settings, config=none))
    with trio.fail_after(20):
        quiet = await beat(running.runtime)
    assert quiet.status == "sent"
    assert quiet.channel is None
    assert quiet.reason is None
    assert len(fake.sent_to(BOT_TOKEN, OWNER)) == 2


async def test_a_configured_channel_and_recipient_get_the_alert(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    from .channelkit import BOT_TOKEN, start_with_telegram, wait_state
    from .faketelegram import start_fake_telegram

    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    running = await start_with_telegram(
        start_gateway,
        tmp_path,
        fake,
        extra={
            "agents": {
                "defaults": {"heartbeat": {"every": "0m", "target": "telegram", "to": "777"}}
            }
        },
    )
    await wait_state(running, "running")
    with trio.fail_after(20):
        payload = await beat(running.runtime)
    assert (payload.status, payload.channel, payload.to) == ("sent", "telegram", "777")
    with trio.fail_after(20):
        await fake.wait_for(lambda: bool(fake.sent_to(BOT_TOKEN, 777)))


async def test_without_a_route_an_alert_says_so(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    from .channelkit import BOT_TOKEN, telegram_gateway

    fake, running = await telegram_gateway(nursery, start_gateway, tmp_path)
    with trio.fail_after(20):
        payload = await beat(running.runtime)
    assert (payload.status, payload.reason, payload.channel) == ("sent", "no-target", None)
    assert fake.all_sent(BOT_TOKEN) == []


async def test_node_beacons_reach_the_agent_only_when_something_changed(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """PROTOCOL 7.4 (2): a ``Node:`` beacon is queued for the agent when the node is new,
    or its host/ip/version/mode changed, or its reason changed to a non-periodic one."""
    running = await start_gateway(make_settings(tmp_path))
    first = "Node: studio (10.0.0.5) · app 1.2.3 · mode ui · reason launch"
    same = "Node: studio (10.0.0.5) · app 1.2.3 · mode ui · reason periodic"
    upgraded = "Node: studio (10.0.0.5) · app 1.2.4 · mode ui · reason periodic"
    woke = "Node: studio (10.0.0.5) · app 1.2.4 · mode ui · reason screen-unlocked"
    async with open_client(running.url, token=GW_TOKEN) as client:
        for text in (first, same, same, upgraded, woke, woke):
            await client.call("system-event", {"text": text})
        status = await client.call("status")
    assert status["queuedSystemEvents"] == [first, upgraded, woke]


async def test_wake_and_the_system_cli(start_gateway: StartGateway, tmp_path: Path) -> None:
    """PROTOCOL 7.14 ``wake`` (write scope) and OPERATIONS G.4's ``system event --text ...
    --mode now|next-heartbeat`` / ``system heartbeat last``, as a real CLI process."""
    import subprocess
    import sys

    from .test_cli_process import cli_env

    config, _ = parse('{agents: {defaults: {heartbeat: {every: "0m"}}}}', {})
    running = await start_gateway(make_settings(tmp_path, config=config))

    async def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
        with trio.fail_after(60):
            return await trio.run_process(
                [sys.executable, "-m", "gateway", *args, "--url", running.url, "--token", GW_TOKEN],
                env=cli_env(tmp_path),
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )

    later = await cli("system", "event", "--text", "Parcel arrived", "--mode", "next-heartbeat")
    assert later.returncode == 0, later.stderr
    assert b"Queued for the agent (the next turn reads it)." in later.stdout
    async with open_client(running.url, token=GW_TOKEN, scopes=["operator.write"]) as writer:
        assert (await writer.call("status"))["queuedSystemEvents"] == ["Parcel arrived"]
        with pytest.raises(GatewayRpcError, match="text"):
            await writer.call("wake", {"mode": "now", "text": " "})
        async with writer.subscribe({"heartbeat"}) as events:
            assert await writer.call("wake", {"text": "Door bell", "mode": "now"}) == {"ok": True}
            with trio.fail_after(20):
                event = await events.receive()
    assert event["payload"]["status"] == "sent"
    last = await cli("system", "heartbeat", "last", "--json")
    assert last.returncode == 0, last.stderr
    assert json.loads(last.stdout)["id"] == event["payload"]["id"]
    paused = await cli("system", "heartbeat", "disable")
    assert paused.returncode == 0
    assert b"Heartbeats paused." in paused.stdout
    assert running.runtime.process.heartbeats_enabled is False


async def test_a_heartbeats_agent_events_say_is_heartbeat(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """PROTOCOL 8, AgentEvent ``isHeartbeat``: set on every event of a heartbeat's run, absent
    on other runs."""
    config, _ = parse('{agents: {defaults: {heartbeat: {every: "0m"}}}}', {})
    running = await start_gateway(make_settings(tmp_path, config=config))
    async with open_client(running.url, token=GW_TOKEN) as client:
        async with client.subscribe({"agent"}) as events:
            with trio.fail_after(20):
                payload = await beat(running.runtime)
            await client.call(
                "agent", {"message": "hi", "idempotencyKey": "not-a-beat"}, expect_final=True
            )
            seen: list[dict[str, Any]] = []
            with trio.fail_after(20):
                while not any(
                    e["runId"] == "not-a-beat" and e["data"].get("phase") == "end" for e in seen
                ):
                    seen.append((await events.receive())["payload"])
    beats = [e for e in seen if e["runId"] == payload.id]
    others = [e for e in seen if e["runId"] == "not-a-beat"]
    assert beats
    assert all(e.get("isHeartbeat") is True for e in beats)
    assert others
    assert all("isHeartbeat" not in e for e in others)
