"""An acknowledged ``send`` survives kill -9 of the real gateway process (CHANNELS.md 6.4).

Telegram (FakeTelegram, in this process) refuses every ``sendMessage`` with a 5xx -- a
known not-sent error -- so each ``send`` is acknowledged as ``queued`` and sits in the
outbox. The gateway is killed with SIGKILL, Telegram heals, the gateway starts again:
every acknowledged message arrives exactly once, and a retry of each key answers with the
original message.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import trio
from gateway_client import open_client

from .channelkit import BOT_TOKEN
from .faketelegram import FakeTelegram, start_fake_telegram
from .test_cli_process import gateway_process

TOK = "tok-outbox-0123456789"
SENDS = 20


def write_config(home: Path, fake: FakeTelegram) -> None:
    state = home / ".smart-agent-neo"
    state.mkdir(parents=True, exist_ok=True)
    config = {
        "gateway": {"mode": "local", "auth": {"token": TOK}},
        "agents": {"defaults": {"heartbeat": {"every": "0m"}}},
        "send": {"ackWaitMs": 2000},
        "channels": {"telegram": {"botToken": BOT_TOKEN, "apiBaseUrl": fake.base_url}},
    }
    (state / "smart-agent-neo.json").write_text(json.dumps(config))


async def test_acknowledged_sends_survive_kill_9_and_arrive_exactly_once(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    write_config(tmp_path, fake)
    fake.fail("sendMessage", 502, "Bad Gateway", times=10_000)
    acks = []
    async with gateway_process(tmp_path, "gateway", "--port", "0") as proc:
        async with open_client(proc.url, token=TOK) as client:
            for i in range(SENDS):
                acks.append(
                    await client.call(
                        "send",
                        {"to": str(100 + i % 4), "message": f"s{i}", "idempotencyKey": f"k{i}"},
                    )
                )
        proc.process.send_signal(signal.SIGKILL)
        with trio.fail_after(10):
            await proc.process.wait()
    assert {a["deliveryState"] for a in acks} == {"queued"}
    assert fake.all_sent(BOT_TOKEN) == []
    fake.heal()
    async with gateway_process(tmp_path, "gateway", "--port", "0") as proc:
        with trio.fail_after(60):
            await fake.wait_for(lambda: len(fake.all_sent(BOT_TOKEN)) >= SENDS)
        async with open_client(proc.url, token=TOK) as client:
            again = [
                await client.call(
                    "send",
                    {"to": str(100 + i % 4), "message": f"s{i}", "idempotencyKey": f"k{i}"},
                )
                for i in range(SENDS)
            ]
        code, _ = await proc.stop()
        assert code == 0
    texts = sorted(m["text"] for m in fake.all_sent(BOT_TOKEN))
    assert texts == sorted(f"s{i}" for i in range(SENDS))  # each exactly once
    assert {a["deliveryState"] for a in again} == {"sent"}
    assert len({a["messageId"] for a in again}) == SENDS
    for chat in range(4):  # each chat's messages in the order they were acknowledged
        numbers = [int(m["text"][1:]) for m in fake.sent_to(BOT_TOKEN, 100 + chat)]
        assert numbers == sorted(numbers)
