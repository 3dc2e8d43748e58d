"""``agent`` with ``to`` / ``deliver`` (CHANNELS.md 5.3; PROTOCOL.md 7.6; OPERATIONS.md F.9):
the reply goes out through the outbox to FakeTelegram, and ``deliveryStatus`` says how."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from gateway_client import GatewayRpcError, open_client

from .channelkit import BOT_TOKEN, OWNER, start_with_telegram, telegram_gateway, wait_state
from .conftest import TOKEN, StartGateway
from .fakeprovider import chat_sse, start_fake_provider
from .faketelegram import start_fake_telegram
from .test_cli_process import cli_env


async def agent(running: Any, **params: Any) -> Any:
    async with open_client(running.url, token=TOKEN) as client:
        return await client.call("agent", params, expect_final=True, timeout=60)


async def test_to_picks_the_peers_session_and_deliver_sends_the_reply_there(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """The runbook's ``agent --message hi --to <num>``: the peer's session (dmScope), the
    reply delivered once even when the request is retried, lastRoute remembered."""
    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    running = await start_with_telegram(
        start_gateway, tmp_path, fake, extra={"session": {"dmScope": "per-channel-peer"}}
    )
    await wait_state(running, "running")
    final = await agent(
        running, message="remind me", idempotencyKey="a-1", to=str(OWNER), deliver=True
    )
    assert final["status"] == "ok"
    assert final["result"]["deliveryStatus"] == "sent"
    assert final["result"]["meta"]["agentMeta"]["sessionKey"] == (
        f"agent:main:telegram:direct:{OWNER}"
    )
    [sent] = fake.sent_to(BOT_TOKEN, OWNER)
    assert "remind me" in sent["text"]
    again = await agent(
        running, message="remind me", idempotencyKey="a-1", to=str(OWNER), deliver=True
    )
    assert again["result"]["deliveryStatus"] == "sent"
    assert len(fake.sent_to(BOT_TOKEN, OWNER)) == 1
    # the session now remembers the chat: a later deliver needs no `to`
    later = await agent(
        running,
        message="anything else?",
        idempotencyKey="a-2",
        sessionKey=f"agent:main:telegram:direct:{OWNER}",
        deliver=True,
    )
    assert later["result"]["deliveryStatus"] == "sent"
    assert len(fake.sent_to(BOT_TOKEN, OWNER)) == 2
    # without deliver, `to` only chooses the session
    quiet = await agent(running, message="just think", idempotencyKey="a-3", to=str(OWNER))
    assert "deliveryStatus" not in quiet["result"]
    assert len(fake.sent_to(BOT_TOKEN, OWNER)) == 2


async def test_deliver_uses_the_sessions_last_route_from_an_inbound_message(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    fake, running = await telegram_gateway(
        nursery, start_gateway, tmp_path, allowFrom=[str(OWNER)], dmPolicy="allowlist"
    )
    fake.message(BOT_TOKEN, "hello", user_id=OWNER)
    with trio.fail_after(20):
        await fake.wait_for(lambda: len(fake.sent_to(BOT_TOKEN, OWNER)) == 1)
    final = await agent(running, message="status?", idempotencyKey="lr", deliver=True)
    assert final["result"]["deliveryStatus"] == "sent"
    assert "status?" in fake.sent_to(BOT_TOKEN, OWNER)[1]["text"]


async def test_deliver_without_a_route_is_refused_unless_best_effort(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    fake, running = await telegram_gateway(nursery, start_gateway, tmp_path)
    with pytest.raises(GatewayRpcError) as caught:
        await agent(running, message="x", idempotencyKey="nr", deliver=True)
    assert caught.value.code == "INVALID_REQUEST"
    assert caught.value.message.startswith("invalid agent params: deliver needs a route")
    best = await agent(
        running, message="x", idempotencyKey="nr2", deliver=True, bestEffortDeliver=True
    )
    assert best["status"] == "ok"
    assert "deliveryStatus" not in best["result"]
    with pytest.raises(GatewayRpcError, match='unknown channel "smoke"'):
        await agent(running, message="x", idempotencyKey="uc", channel="smoke")
    with pytest.raises(GatewayRpcError, match="invalid target for telegram"):
        await agent(running, message="x", idempotencyKey="bt", to="nobody", deliver=True)
    assert fake.all_sent(BOT_TOKEN) == []


async def test_a_silent_reply_is_suppressed_and_a_failed_one_reported(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    provider = await start_fake_provider(nursery)
    provider.queue(chat_sse("NO_REPLY"), chat_sse("this one fails"))
    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    models = {
        "models": {
            "providers": {
                "fake": {
                    "baseUrl": provider.base_url,
                    "apiKey": "sk",
                    "models": [{"id": "m"}],
                }
            }
        },
        "agents": {"defaults": {"model": {"primary": "fake/m"}}},
    }
    running = await start_with_telegram(start_gateway, tmp_path, fake, extra=models)
    await wait_state(running, "running")
    silent = await agent(running, message="x", idempotencyKey="s", to=str(OWNER), deliver=True)
    assert silent["result"]["deliveryStatus"] == "suppressed"
    fake.fail("sendMessage", 403, "Forbidden: bot was blocked by the user")
    failed = await agent(running, message="y", idempotencyKey="f", to=str(OWNER), deliver=True)
    assert failed["result"]["deliveryStatus"] == "failed"
    assert fake.all_sent(BOT_TOKEN) == []


async def test_agent_cli_to_and_deliver(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """OPERATIONS F.9: ``agent --message ... --to ... --deliver`` waits for the final and
    says how the delivery went; ``--to`` is never read as ``--token``."""
    fake, running = await telegram_gateway(nursery, start_gateway, tmp_path)
    with trio.fail_after(60):
        done = await trio.run_process(
            [
                sys.executable,
                "-m",
                "gateway",
                "agent",
                "--url",
                running.url,
                "--token",
                TOKEN,
                "--message",
                "ping",
                "--to",
                str(OWNER),
                "--deliver",
                "--json",
            ],
            env=cli_env(tmp_path),
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["result"]["deliveryStatus"] == "sent"
    assert len(fake.sent_to(BOT_TOKEN, OWNER)) == 1
    abbreviated = await trio.run_process(
        [sys.executable, "-m", "gateway", "agent", "--message", "x", "--tok", "abc"],
        env=cli_env(tmp_path),
        capture_stderr=True,
        check=False,
    )
    assert abbreviated.returncode == 2
    assert b"unrecognized arguments: --tok" in abbreviated.stderr
