"""Telegram through the whole gateway: inbound -> ledger -> agent (offline model) -> reply.

The Bot API is ``tests/faketelegram.FakeTelegram``, a real HTTP server on loopback run in
this harness process; the gateway is a real process whose only difference from production
is ``apiBaseUrl``. Three numbers:

* **messages/s**: a burst of messages from many chats, pushed at once, until every reply
  is at the fake (one lane per chat, ``agents.defaults.maxConcurrent`` lanes at a time);
* **added latency per message**, p50/p99: one message at a time, update queued -> reply
  received, minus the model's own time (the gateway's provider-latency histogram) --
  what the gateway adds: long-poll wake-up, the ledger transaction, policy, the run's
  transcript writes, the sendMessage call;
* **RSS per configured account**: a gateway with N running bots minus one with none.
"""

from __future__ import annotations

import json
import re
from functools import partial
from pathlib import Path
from typing import Any

import trio

from tests.faketelegram import FakeTelegram, start_fake_telegram

from .. import procs
from ..client import open_session
from ..plan import Plan
from ..report import Measurement
from ..stats import percentile

REPLY = re.compile(r"\] (m\d+)$")
SETTLE_TIMEOUT = 60.0


def _token(i: int) -> str:
    return f"{100000000 + i}:BENCHfakeTokenForTheChannelBench{i:03d}x"


def _config(fake: FakeTelegram, bots: int, max_concurrent: int = 4) -> dict[str, Any]:
    config = procs.gateway_config()
    config["agents"] = {"defaults": {"maxConcurrent": max_concurrent, "heartbeat": {"every": "0m"}}}
    config["session"] = {"dmScope": "per-channel-peer"}
    if bots:
        accounts = {f"bot{i}": {"botToken": _token(i)} for i in range(bots)}
        config["channels"] = {
            "telegram": {
                "apiBaseUrl": fake.base_url,
                "dmPolicy": "open",
                "allowFrom": ["*"],
                "accounts": accounts,
            }
        }
    return config


async def _running(port: int, token: str, bots: int) -> None:
    """Until every account reports ``running`` (channels.status over the control plane)."""
    conn = await open_session(procs.HOST, port, token)
    try:
        with trio.fail_after(SETTLE_TIMEOUT):
            n = 0
            while True:
                n += 1
                raw = await conn.call(f"cs{n}".encode(), b"channels.status")
                payload = json.loads(raw)["payload"]
                accounts = payload["channelAccounts"].get("telegram", [])
                if sum(1 for a in accounts if a.get("state") == "running") >= bots:
                    return
                await trio.sleep(0.05)
    finally:
        await conn.close()


async def _provider_mean_s(port: int, token: str) -> float:
    """Mean model time so far, from the gateway's own metrics (``status`` has no model time)."""
    import httpx

    async with httpx.AsyncClient() as http:
        text = (
            await http.get(
                f"http://{procs.HOST}:{port}/metrics", headers={"authorization": f"Bearer {token}"}
            )
        ).text
    total = count = 0.0
    for line in text.splitlines():
        if line.startswith("smart_agent_neo_provider_request_duration_seconds_sum"):
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith("smart_agent_neo_provider_request_duration_seconds_count"):
            count += float(line.rsplit(" ", 1)[1])
    return total / count if count else 0.0


def _more_than(fake: FakeTelegram, token: str, count: int) -> bool:
    return _answered(fake, token) > count


def _answered(fake: FakeTelegram, token: str) -> int:
    return sum(1 for m in fake.all_sent(token) if REPLY.search(str(m.get("text", "")).strip()))


async def run(plan: Plan, workdir: Path) -> list[Measurement]:
    burst, chats = plan.channel_burst, plan.channel_chats
    sequential, accounts = plan.channel_sequential, plan.channel_accounts
    rows: list[Measurement] = []
    async with trio.open_nursery() as nursery:
        fake = await start_fake_telegram(nursery, poll_cap_s=25.0)
        for i in range(accounts):
            fake.add_bot(_token(i), username=f"bench{i}_bot")
        token = _token(0)

        # -- throughput and latency: one bot ------------------------------------------------
        async with procs.gateway(workdir, config=_config(fake, 1)) as gw:
            await _running(gw.port, gw.token, 1)
            # warm-up: the first turn loads the agent code paths
            fake.message(token, "m999999", user_id=1)
            with trio.fail_after(SETTLE_TIMEOUT):
                await fake.wait_for(lambda: _answered(fake, token) >= 1)
            latencies: list[float] = []
            for i in range(sequential):
                before = _answered(fake, token)
                t0 = trio.current_time()
                fake.message(token, f"m{i}", user_id=2)
                with trio.fail_after(SETTLE_TIMEOUT):
                    await fake.wait_for(partial(_more_than, fake, token, before))
                latencies.append(trio.current_time() - t0)
            model_s = await _provider_mean_s(gw.port, gw.token)
            added = sorted(max(0.0, t - model_s) for t in latencies)
            p50 = (percentile(added, 50) or 0.0) * 1000
            rows.append(
                Measurement(
                    "channels",
                    "telegram added latency per message (one at a time)",
                    p50,
                    "ms",
                    p50_ms=p50,
                    p99_ms=(percentile(added, 99) or 0.0) * 1000,
                    note=f"{sequential} messages; model time {model_s * 1000:.2f} ms excluded",
                    detail={"seconds": latencies, "model_s": model_s},
                    lower_is_better=True,
                )
            )
            done_before = _answered(fake, token)
            t0 = trio.current_time()
            for i in range(burst):
                fake.message(token, f"m{i}", user_id=1000 + i % chats)
            with trio.fail_after(SETTLE_TIMEOUT * 4):
                await fake.wait_for(lambda: _answered(fake, token) >= done_before + burst)
            elapsed = trio.current_time() - t0
            rows.append(
                Measurement(
                    "channels",
                    "telegram messages/s (inbound -> ledger -> agent -> reply)",
                    burst / elapsed,
                    "msg/s",
                    note=f"burst of {burst} from {chats} chats, maxConcurrent 4, offline model",
                    detail={"seconds": elapsed, "messages": burst},
                )
            )

        # -- memory: RSS with no account vs N running accounts -----------------------------
        async with procs.gateway(workdir, config=_config(fake, 0)) as idle:
            await trio.sleep(plan.settle)
            base = idle.rss()
        async with procs.gateway(workdir, config=_config(fake, accounts)) as gw:
            await _running(gw.port, gw.token, accounts)
            await trio.sleep(plan.settle)
            full = gw.rss()
        per = (full - base) / accounts / 1024 / 1024
        rows.append(
            Measurement(
                "channels",
                "RSS per configured Telegram account",
                per,
                "MB",
                note=f"{accounts} running accounts: {full / 2**20:.1f} MB vs {base / 2**20:.1f} MB",
                detail={"rss": full, "idle_rss": base, "accounts": accounts},
                lower_is_better=True,
            )
        )
        nursery.cancel_scope.cancel()
    return rows
