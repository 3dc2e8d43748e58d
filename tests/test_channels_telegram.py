"""Telegram end to end: the gateway's real transport against FakeTelegram on loopback
(CHANNELS.md 8.3). Each docstring names the FAILURE-MODES item it covers."""

from __future__ import annotations

from pathlib import Path

import trio

from .channelkit import BOT_TOKEN, OWNER, start_with_telegram, wait_state
from .conftest import StartGateway
from .faketelegram import start_fake_telegram


async def test_allowed_dm_gets_a_reply(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """The runbook's promise: a DM from the owner reaches the agent and is answered in the
    same chat (offline model)."""
    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    running = await start_with_telegram(
        start_gateway, tmp_path, fake, dmPolicy="allowlist", allowFrom=[str(OWNER)]
    )
    slot = await wait_state(running, "running")
    assert slot.extra["bot"]["username"] == "neo_test_bot"
    fake.message(BOT_TOKEN, "hello there", user_id=OWNER)
    with trio.fail_after(20):
        await fake.wait_for(lambda: bool(fake.sent_to(BOT_TOKEN, OWNER)))
    reply = fake.sent_to(BOT_TOKEN, OWNER)
    assert len(reply) == 1
    assert "You said:" in reply[0]["text"]
    assert "hello there" in reply[0]["text"]
    assert reply[0]["_params"]["parse_mode"] == "HTML"
