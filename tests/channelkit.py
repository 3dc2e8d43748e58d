"""Helpers for the channel tests: a gateway whose Telegram points at a FakeTelegram."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import trio

from gateway.app import Running
from gateway.channels.slot import AccountSlot
from gateway.config.load import parse

from .conftest import StartGateway, make_settings
from .faketelegram import FakeTelegram, start_fake_telegram

# shaped like real tokens (<bot id>:<35 characters>), so the log redaction patterns apply too
BOT_TOKEN = "123456789:AAH5rPzN0fakeTokenForTests_abcdefgh"
OTHER_TOKEN = "987654321:BBH5rPzN0fakeTokenForTests_abcdefgh"
OWNER = 42


# for tests on a MockClock: no periodic work but the channels' own, so virtual hours pass in
# a few real wake-ups
QUIET = {
    "gateway": {
        "ws": {"tickIntervalMs": 3_600_000, "pingIntervalMs": 0},
        "health": {"refreshIntervalMs": 3_600_000},
    },
    "agents": {"defaults": {"heartbeat": {"every": "0m"}}},
}


def telegram_config(fake: FakeTelegram, **telegram: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"apiBaseUrl": fake.base_url, **telegram}
    if "botToken" not in body and "accounts" not in body and "tokenFile" not in body:
        body["botToken"] = BOT_TOKEN
    return {"channels": {"telegram": body}}


async def start_with_telegram(
    start_gateway: StartGateway,
    tmp_path: Path,
    fake: FakeTelegram,
    extra: dict[str, Any] | None = None,
    **telegram: Any,
) -> Running:
    document = telegram_config(fake, **telegram)
    document.update(extra or {})
    config, _ = parse(json.dumps(document), {})
    running = await start_gateway(make_settings(tmp_path, config=config))
    follow_trio_clock(running)
    return running


def follow_trio_clock(running: Running) -> None:
    """The outbox schedules retries in wall-clock ms (they are persisted); on a MockClock
    the wall clock must move with trio's, or a retry 5 s away would take 5 real seconds."""
    wall0, trio0 = time.time() * 1000, trio.current_time()
    running.runtime.channels.outbox.clock = lambda: int(
        wall0 + (trio.current_time() - trio0) * 1000
    )


async def telegram_gateway(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path, **telegram: Any
) -> tuple[FakeTelegram, Running]:
    """A FakeTelegram with the test bot, and a gateway whose account is running."""
    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    running = await start_with_telegram(start_gateway, tmp_path, fake, **telegram)
    await wait_state(running, "running")
    return fake, running


async def wait_state(
    running: Running, state: str, account: str = "default", *, timeout: float = 20
) -> AccountSlot:
    mgr = running.runtime.channels
    with trio.fail_after(timeout):
        await mgr.wait_for(lambda: ("telegram", account) in mgr.slots)
        slot = mgr.slots[("telegram", account)]
        await mgr.wait_for(lambda: slot.state == state)
    return slot
