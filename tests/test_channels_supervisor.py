"""The channel supervisor with the real Telegram transport against FakeTelegram: reload
isolation, the crash-loop breaker, retrying forever, failed tokens, offsets, bad updates,
and what health, status, /readyz, channels status and the logs show (CHANNELS.md 2, 7, 8.3)."""

from __future__ import annotations

import io
import itertools
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from gateway_client import open_client
from rich.console import Console
from trio.testing import MockClock

from gateway.app import Running
from gateway.channels.db import Database
from gateway.channels.pairing import PairingStore
from gateway.channels.slot import AccountSlot
from gateway.channels.supervisor import ChannelManager
from gateway.channels.telegram.api import BotNetworkError
from gateway.cli.main import main
from gateway.cli.status_view import channel_lines
from gateway.config.load import load_file, parse
from gateway.config.target import Target
from gateway.runtime import Runtime
from gateway.service.status import probe_rpc

from .channelkit import (
    BOT_TOKEN,
    OTHER_TOKEN,
    OWNER,
    QUIET,
    start_with_telegram,
    telegram_config,
    wait_state,
)
from .conftest import TOKEN, StartGateway, make_settings
from .faketelegram import FakeTelegram, start_fake_telegram
from .logkit import capture_logs


@pytest.fixture
def idle_clock() -> MockClock:
    return MockClock(autojump_threshold=0.25)


async def _final(running: Running, key: str) -> Any:
    service = running.runtime.channels.service
    assert service is not None
    with trio.fail_after(30):
        row = await service.wait_final(key)
        # and whatever the message sent back left the outbox (delivered or given up)
        await running.runtime.channels.outbox.settled(prefix=f"reply:{key}:")
        await running.runtime.channels.outbox.settled(prefix=f"pairing:{key}")
        return row


def _apply(running: Running, tmp_path: Path, document: dict[str, Any]) -> None:
    config, _ = parse(json.dumps(document), {})
    running.runtime.apply_settings(make_settings(tmp_path, config=config))


async def test_policy_edit_applies_hot_and_a_token_edit_restarts_only_that_account(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """CHANNELS 8.3.10, FAILURE-MODES 13: allowFrom applies to the next message with no
    restart; a new botToken for one account restarts that account only."""
    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    fake.add_bot(OTHER_TOKEN, username="ops_bot")
    third = "555555555:CCH5rPzN0fakeTokenForTests_abcdefgh"
    fake.add_bot(third, username="ops2_bot")
    accounts = {"default": {"botToken": BOT_TOKEN}, "ops": {"botToken": OTHER_TOKEN}}
    document = telegram_config(fake, dmPolicy="allowlist", allowFrom=["1"], accounts=accounts)
    config, _ = parse(json.dumps(document), {})
    running = await start_gateway(make_settings(tmp_path, config=config))
    default = await wait_state(running, "running", "default")
    ops = await wait_state(running, "running", "ops")
    transports = (default.transport, ops.transport)
    blocked = fake.message(BOT_TOKEN, "hi", user_id=OWNER)
    assert (await _final(running, f"tg:default:{blocked}")).reason == "blocked (allowlist)"

    document["channels"]["telegram"]["allowFrom"] = ["1", str(OWNER)]
    _apply(running, tmp_path, document)
    allowed = fake.message(BOT_TOKEN, "hi again", user_id=OWNER)
    assert (await _final(running, f"tg:default:{allowed}")).state == "done"
    assert len(fake.sent_to(BOT_TOKEN, OWNER)) == 1
    assert (default.transport, ops.transport) == transports  # nothing restarted

    get_me = len([c for c in fake.calls_of("getMe") if c.token == BOT_TOKEN])
    document["channels"]["telegram"]["accounts"]["ops"]["botToken"] = third
    _apply(running, tmp_path, document)
    mgr = running.runtime.channels
    with trio.fail_after(20):
        await mgr.wait_for(
            lambda: ops.transport not in (None, transports[1]) and ops.state == "running"
        )
    assert default.transport is transports[0]
    assert len([c for c in fake.calls_of("getMe") if c.token == BOT_TOKEN]) == get_me
    assert ops.extra["bot"]["username"] == "ops2_bot"
    # the untouched account kept polling throughout
    again = fake.message(BOT_TOKEN, "still polling?", user_id=OWNER)
    assert (await _final(running, f"tg:default:{again}")).state == "done"
    # removing an account stops and forgets it
    del document["channels"]["telegram"]["accounts"]["ops"]
    _apply(running, tmp_path, document)
    with trio.fail_after(20):
        await mgr.wait_for(lambda: ("telegram", "ops") not in mgr.slots)
    assert default.transport is transports[0]


def _unclean_boots(state_dir: Path, count: int) -> None:
    now = int(time.time() * 1000)
    boots = [
        {"pid": 10 + i, "startedAt": now - 1000 * (i + 1), "clean": False} for i in range(count)
    ]
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "boot-history.json").write_text(json.dumps({"boots": boots}))


async def test_crash_loop_breaker_suppresses_autostart_until_started(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """CHANNELS 8.3.13, 2.4: three unclean boots in 5 minutes keep the accounts stopped."""
    _unclean_boots(tmp_path, 3)
    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    document = telegram_config(fake, allowFrom=[str(OWNER)])
    config, _ = parse(json.dumps(document), {})
    settings = make_settings(tmp_path, config=config)
    with capture_logs(settings) as logs:
        running = await start_gateway(settings)
        slot = await wait_state(running, "stopped")
        assert slot.stop_reason == "crash-loop-breaker"
        assert fake.calls_of("getMe") == []
        assert (
            "channel autostart suppressed by crash-loop breaker; refusing automatic start for "
            "telegram. Start a channel manually with: smart-agent-neo gateway call channels.start"
            ' --params \'{"channel":"telegram"}\''
        ) in [line["message"] for line in logs.lines()]
        async with httpx.AsyncClient() as http:
            ready = await http.get(running.url.replace("ws://", "http://") + "/readyz")
        assert ready.status_code == 503
        assert ready.json()["failing"][0]["state"] == "stopped"
        async with open_client(running.url, token=TOKEN) as client:
            result = await client.call("channels.start", {"channel": "telegram"})
        assert result["started"] is True
        await wait_state(running, "running")


async def test_breaker_lifts_after_fifteen_minutes(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path, idle_clock: MockClock
) -> None:
    _unclean_boots(tmp_path, 3)
    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    running = await start_with_telegram(
        start_gateway, tmp_path, fake, QUIET, allowFrom=[str(OWNER)]
    )
    slot = await wait_state(running, "stopped")
    started = trio.current_time()
    await wait_state(running, "running", timeout=3600)
    assert trio.current_time() - started >= 15 * 60
    assert slot.breaker is False


class _FlakyTransport:
    """Fails its first ``failures`` starts like a network that is down, then runs."""

    attempts: list[float] = []

    def __init__(self, slot: AccountSlot, failures: int) -> None:
        self.slot, self.failures = slot, failures

    async def run(self) -> None:
        self.attempts.append(trio.current_time())
        if len(self.attempts) <= self.failures:
            raise BotNetworkError(
                "getMe", "ConnectError: [Errno 111] Connection refused", sent=False
            )
        self.slot.mark_running()
        await trio.sleep_forever()

    async def probe(self, timeout_s: float) -> dict[str, Any]:
        return {"ok": True}


async def test_failed_starts_back_off_forever_and_recover(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    """CHANNELS 8.3.6, FAILURE-MODES 29: 30 failed starts leave the account in backoff with
    delays of at most 5 min +-20 %, never "given up"; it recovers when the network heals."""
    document = {"channels": {"telegram": {"botToken": BOT_TOKEN, "allowFrom": [str(OWNER)]}}}
    config, _ = parse(json.dumps(document), {})
    rt = Runtime(make_settings(tmp_path, config=config))
    _FlakyTransport.attempts = []
    mgr = ChannelManager(rt, env={}, factory=lambda slot: _FlakyTransport(slot, 30))
    rt.channels = mgr
    async with trio.open_nursery() as nursery:
        await nursery.start(mgr.run)
        slot = mgr.slots[("telegram", "default")]
        await mgr.wait_for(lambda: slot.reconnect_attempts >= 30)
        assert slot.state == "backoff"
        assert slot.next_retry_at is not None
        assert slot.last_error == "getMe: ConnectError: [Errno 111] Connection refused"
        assert slot.snapshot()["restartPending"] is True
        await mgr.wait_for(lambda: slot.state == "running")
        assert slot.snapshot()["restartPending"] is False
        nursery.cancel_scope.cancel()
    gaps = [b - a for a, b in itertools.pairwise(_FlakyTransport.attempts)]
    assert len(gaps) == 30
    assert 4.0 <= gaps[0] <= 6.0
    assert max(gaps) <= 360.0
    assert min(gaps[7:]) >= 240.0  # about 5 minutes, forever
    assert slot.reconnect_attempts == 30  # reset only after 10 min of stable running
    assert (
        rt.metrics.channel_restarts.labels(channel="telegram", account="default")._value.get() == 30
    )


async def test_rejected_token_fails_with_the_hint_and_a_config_fix_recovers(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """CHANNELS 8.3.6: 401 is not retried fast; fixing the config starts the account."""
    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    unknown = "111111111:ZZH5rPzN0fakeTokenForTests_abcdefgh"
    document = telegram_config(fake, botToken=unknown, allowFrom=[str(OWNER)])
    config, _ = parse(json.dumps(document), {})
    running = await start_gateway(make_settings(tmp_path, config=config))
    slot = await wait_state(running, "failed")
    assert slot.last_error == "getMe returned 401 (token rejected; update botToken/tokenFile)"
    async with open_client(running.url, token=TOKEN) as client:
        status = await client.call("channels.status")
        snap = status["channelAccounts"]["telegram"][0]
        assert (snap["state"], snap["linked"], snap["running"]) == ("failed", False, False)
        health = await client.call("health")
        assert health["linkChannel"] == {
            "id": "telegram",
            "label": "Telegram",
            "linked": False,
            "authAgeMs": None,
        }
    document["channels"]["telegram"]["botToken"] = BOT_TOKEN
    _apply(running, tmp_path, document)
    await wait_state(running, "running")


def _store_offset(state_dir: Path, last: int, bot_id: str, saved_at: int) -> None:
    db = Database.open_sync(state_dir)
    db.transaction_sync(
        lambda conn: conn.execute(
            "INSERT INTO offsets VALUES ('telegram', 'default', ?, ?, ?)", (last, bot_id, saved_at)
        )
    )
    db.close_sync()


@pytest.mark.parametrize(
    ("bot_id", "age_ms"),
    [("999", 1000), ("123456789", 25 * 3600 * 1000)],
    ids=["other-bot", "stale"],
)
async def test_an_offset_of_another_bot_or_older_than_a_day_is_ignored(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path, bot_id: str, age_ms: int
) -> None:
    """CHANNELS 8.3.13: a wrong watermark must not skip (lose) the queued updates."""
    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    update = fake.message(BOT_TOKEN, "queued while we were away", user_id=OWNER)
    _store_offset(tmp_path, update + 10_000, bot_id, int(time.time() * 1000) - age_ms)
    running = await start_with_telegram(start_gateway, tmp_path, fake, allowFrom=[str(OWNER)])
    assert (await _final(running, f"tg:default:{update}")).state == "done"
    first_poll = fake.calls_of("getUpdates")[0]
    assert "offset" not in first_poll.params


async def test_a_fresh_offset_of_this_bot_is_used(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    _store_offset(tmp_path, 123_000, "123456789", int(time.time() * 1000))
    running = await start_with_telegram(start_gateway, tmp_path, fake, allowFrom=[str(OWNER)])
    await wait_state(running, "running")
    with trio.fail_after(10):
        await fake.wait_for(lambda: bool(fake.calls_of("getUpdates")))
    assert fake.calls_of("getUpdates")[0].params["offset"] == 123_001


async def test_malformed_updates_are_dropped_and_polling_goes_on(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """Bad input: logged once, marked dropped with a reason, never stops the poller."""
    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    running = await start_with_telegram(start_gateway, tmp_path, fake, allowFrom=[str(OWNER)])
    await wait_state(running, "running")
    bad = fake.push_updates(
        BOT_TOKEN,
        [
            {"edited_message": {"message_id": 1}},
            {"message": "not an object"},
            {"message": {"message_id": 2, "chat": {"id": OWNER}}},
            {"poll": {"id": "x"}},
            {
                "message": {
                    "message_id": 3,
                    "chat": {"id": OWNER, "type": "private"},
                    "from": {"id": OWNER, "is_bot": False, "first_name": "A"},
                    "text": "x" * 20_000,
                }
            },
        ],
    )
    good = fake.message(BOT_TOKEN, "and a good one", user_id=OWNER)
    reasons = [(await _final(running, f"tg:default:{u}")).reason for u in bad]
    assert reasons == [
        "edited_message ignored",
        "message is not an object",
        "message without a sender",
        "unsupported update type: poll",
        "text too long (20000 characters)",
    ]
    assert (await _final(running, f"tg:default:{good}")).state == "done"
    assert len(fake.sent_to(BOT_TOKEN, OWNER)) == 1


async def test_skip_channels_env_keeps_accounts_stopped(
    nursery: trio.Nursery,
    start_gateway: StartGateway,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SMART_AGENT_NEO_SKIP_CHANNELS", "1")
    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    running = await start_with_telegram(start_gateway, tmp_path, fake, allowFrom=[str(OWNER)])
    slot = await wait_state(running, "stopped")
    assert slot.stop_reason == "skipped"
    assert fake.calls_of("getMe") == []
    assert slot.start()
    await wait_state(running, "running")


async def test_status_health_readyz_and_the_cli_agree(
    nursery: trio.Nursery,
    start_gateway: StartGateway,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """CHANNELS 7.1, 7.2: channels status lines, health block + linkChannel, status summary."""
    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    running = await start_with_telegram(
        start_gateway, tmp_path, fake, dmPolicy="allowlist", allowFrom=[str(OWNER), "7", "8"]
    )
    await wait_state(running, "running")
    update = fake.message(BOT_TOKEN, "hi", user_id=OWNER)
    assert (await _final(running, f"tg:default:{update}")).state == "done"
    async with open_client(running.url, token=TOKEN) as client:
        status = await client.call("channels.status", {"probe": True, "timeoutMs": 5000})
        health = await client.call("health", {"probe": True})
        summary = await client.call("status")
    assert status["channelOrder"] == ["telegram"]
    assert status["channelLabels"] == {"telegram": "Telegram"}
    assert status["channelDefaultAccountId"] == {"telegram": "default"}
    snap = status["channelAccounts"]["telegram"][0]
    for key, value in {
        "accountId": "default",
        "enabled": True,
        "configured": True,
        "linked": True,
        "running": True,
        "connected": True,
        "mode": "polling",
        "dmPolicy": "allowlist",
        "allowFrom": [str(OWNER), "7", "8"],
        "tokenSource": "config",
        "baseUrl": fake.base_url,
        "state": "running",
        "bot": {"id": 123456789, "username": "neo_test_bot"},
    }.items():
        assert snap[key] == value, key
    assert snap["probe"]["ok"] is True
    assert snap["probe"]["bot"]["username"] == "neo_test_bot"
    assert snap["lastInboundAt"]
    assert snap["lastOutboundAt"]
    assert BOT_TOKEN not in json.dumps(status)
    tg = health["channels"]["telegram"]
    assert (tg["configured"], tg["linked"]) == (True, True)
    assert tg["accounts"]["default"]["connected"] is True
    assert health["channelOrder"] == ["telegram"]
    assert health["linkChannel"]["id"] == "telegram"
    assert health["linkChannel"]["linked"] is True
    assert isinstance(health["linkChannel"]["authAgeMs"], int)
    queues = health["deliveryQueues"]  # CHANNELS 7.3: the channel metrics in health too
    assert queues["channel_account_state"] == [
        {"channel": "telegram", "account": "default", "state": "running"}
    ]
    assert {"channel": "telegram", "result": "accepted", "value": 1.0} in queues[
        "inbound_messages_total"
    ]
    assert any(s["result"] == "ok" and s["value"] >= 1 for s in queues["telegram_getupdates_total"])
    assert {"result": "sent", "value": 1.0} in queues["outbox_sends_total"]
    assert (queues["outbox_pending"], queues["outbox_oldest_pending_age_seconds"]) == (0, 0.0)
    assert queues["channel_restarts_total"] == []
    assert summary["linkChannel"] == health["linkChannel"] | {
        "authAgeMs": summary["linkChannel"]["authAgeMs"]
    }
    assert summary["channelSummary"][0].startswith(
        "Telegram default: linked (auth age 0m), running"
    )
    async with httpx.AsyncClient() as http:
        base = running.url.replace("ws://", "http://")
        ready = await http.get(base + "/readyz")
        metrics = (
            await http.get(base + "/metrics", headers={"authorization": f"Bearer {TOKEN}"})
        ).text
    assert ready.status_code == 200
    assert (
        'smart_agent_neo_channel_account_state{account="default",channel="telegram",state="running"} 1.0'
        in metrics
    )
    assert 'smart_agent_neo_telegram_getupdates_total{result="ok"}' in metrics
    assert (
        'smart_agent_neo_inbound_messages_total{channel="telegram",result="accepted"} 1.0'
        in metrics
    )

    argv = ["channels", "status", "--probe", "--url", running.url, "--token", TOKEN]
    code = await trio.to_thread.run_sync(main, argv)
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Gateway reachable."
    assert lines[1].startswith(
        "- Telegram default: enabled, configured, linked, running, connected, in:"
    )
    for bit in (
        "mode:polling",
        "bot:@neo_test_bot",
        "dm:allowlist",
        f"allow:{OWNER},7…",
        "token:config",
        "works",
    ):
        assert bit in lines[1], bit
    code = await trio.to_thread.run_sync(main, [*argv[:2], "--json", *argv[3:]])
    assert json.loads(capsys.readouterr().out)["channelOrder"] == ["telegram"]
    stop = ["channels", "stop", "--channel", "telegram", "--url", running.url, "--token", TOKEN]
    assert await trio.to_thread.run_sync(main, stop) == 0
    assert capsys.readouterr().out.strip() == "Stopped telegram/default."
    assert await trio.to_thread.run_sync(main, ["channels", "status", *argv[3:]]) == 0
    assert "state:stopped (manual)" in capsys.readouterr().out
    start = ["channels", "start", "--channel", "telegram", "--url", running.url, "--token", TOKEN]
    assert await trio.to_thread.run_sync(main, start) == 0
    assert capsys.readouterr().out.strip() == "Started telegram/default."
    await wait_state(running, "running")
    overview = ["status", "--url", running.url, "--token", TOKEN]
    assert await trio.to_thread.run_sync(main, overview) == 0
    assert "Telegram default: linked (auth age 0m), running" in capsys.readouterr().out
    health_argv = ["health", "--probe", "--url", running.url, "--token", TOKEN]
    assert await trio.to_thread.run_sync(main, health_argv) == 0
    health_out = capsys.readouterr().out
    assert re.search(r"^Telegram: ok \(@neo_test_bot\) \(\d+ms\)$", health_out, re.M), health_out
    deep = await probe_rpc(Target(running.url, TOKEN, None, "explicit --url"), 5000, channels=True)
    assert deep.channels is not None
    assert deep.channels["channelAccounts"]["telegram"][0]["probe"]["ok"] is True
    console = Console(width=300, record=True, file=io.StringIO())
    console.print(*channel_lines(deep.channels))
    assert "- Telegram default: enabled, configured, linked, running" in console.export_text()
    async with open_client(running.url, token=TOKEN) as client:
        with pytest.raises(Exception, match="channel telegram does not support logout"):
            await client.call("channels.logout", {"channel": "telegram"})
        with pytest.raises(Exception, match="unsupported channel: irc"):
            await client.call("channels.start", {"channel": "irc"})


async def test_the_bot_token_never_reaches_the_log(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """OPERATIONS H.3: the token is in every Bot API URL; no line may carry it."""
    token_file = tmp_path / "bot.token"
    token_file.write_text(BOT_TOKEN + "\n")
    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    fake.fail("getMe", 500, f"Internal error for /bot{BOT_TOKEN}/getMe")
    document = telegram_config(fake, tokenFile=str(token_file), allowFrom=[str(OWNER)])
    config, _ = parse(json.dumps(document), {})
    settings = make_settings(tmp_path, config=config)
    with capture_logs(settings, level="debug") as logs:
        running = await start_gateway(settings)
        slot = await wait_state(running, "backoff")
        assert slot.start()
        await wait_state(running, "running")
        fake.conflict_from_other_poller(True)
        await running.runtime.channels.wait_for(lambda: slot.conflict)
        fake.conflict_from_other_poller(False)
        text = logs.file_text() + logs.console_text()
    assert "getMe returned 500" in text
    assert BOT_TOKEN not in text
    assert BOT_TOKEN.split(":")[1] not in text
    assert slot.last_error is None or BOT_TOKEN not in slot.last_error
    # CHANNELS 7.3: the lines' subsystems are channels, channels/telegram (and outbox)
    lines = [json.loads(line) for line in logs.file_text().splitlines() if line.strip()]
    by_message = {line["message"]: line["subsystem"] for line in lines}
    assert by_message["[telegram:default] starting (mode:polling)"] == "channels"
    assert by_message["[telegram:default] running (bot @neo_test_bot)"] == "channels/telegram"
    assert not [s for s in by_message.values() if s.startswith("gateway/channels")]


async def test_a_network_failure_message_carries_no_token(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    fake = FakeTelegram()
    fake.base_url = "http://127.0.0.1:9"  # nothing listens on the discard port
    running = await start_with_telegram(start_gateway, tmp_path, fake, allowFrom=[str(OWNER)])
    slot = await wait_state(running, "backoff")
    assert slot.last_error is not None
    assert slot.last_error.startswith("getMe: ConnectError")
    assert BOT_TOKEN not in slot.last_error


def test_pairing_cli_works_with_the_gateway_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """CHANNELS 3.5: the CLI edits the files itself (same lock) when no gateway answers."""
    state = tmp_path / "state"
    monkeypatch.setenv("SMART_AGENT_NEO_STATE_DIR", str(state))
    monkeypatch.setenv("SMART_AGENT_NEO_GATEWAY_PORT", str(_closed_port()))
    monkeypatch.setenv("SMART_AGENT_NEO_GATEWAY_TOKEN", "x" * 24)
    assert main(["pairing", "list", "telegram"]) == 0
    assert capsys.readouterr().out.strip() == "No pending telegram pairing requests."
    assert not (state / "credentials").exists()  # a read creates nothing
    store = PairingStore(state, "telegram")
    req, _ = store.request(
        "31337", "default", int(time.time() * 1000), username="mallory", name="M"
    )
    assert req is not None
    assert main(["pairing", "list", "telegram"]) == 0
    out = capsys.readouterr().out
    assert req.code in out
    assert "31337" in out
    assert main(["pairing", "approve", "telegram", "ZZZZZZZZ"]) == 1
    assert "no pending pairing request with code ZZZZZZZZ for telegram" in capsys.readouterr().err
    assert main(["pairing", "approve", "telegram", req.code, "--notify"]) == 0
    assert capsys.readouterr().out.strip() == (
        "Approved telegram sender 31337 (account default)"
        " (gateway not reachable: the sender was not notified)."
    )
    assert store.approved("default", True) == {"31337"}
    assert main(["pairing", "list", "irc"]) == 1
    assert "unsupported channel: irc" in capsys.readouterr().err


def test_the_first_approval_makes_the_sender_the_command_owner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """CHANNELS 3.5: the first approval sets an unset commands.ownerAllowFrom to
    telegram:<id>; later approvals leave it alone; the user's comments survive."""
    state = tmp_path / "state"
    state.mkdir()
    config_path = state / "smart-agent-neo.json"
    config_path.write_text(
        "// my gateway\n{\n  gateway: { mode: 'local' }, // local only\n"
        "  commands: { restart: true },\n}\n"
    )
    monkeypatch.setenv("SMART_AGENT_NEO_STATE_DIR", str(state))
    monkeypatch.setenv("SMART_AGENT_NEO_GATEWAY_PORT", str(_closed_port()))
    monkeypatch.setenv("SMART_AGENT_NEO_GATEWAY_TOKEN", "x" * 24)
    store = PairingStore(state, "telegram")
    now = int(time.time() * 1000)
    first, _ = store.request("31337", "default", now)
    second, _ = store.request("4242", "default", now)
    assert first is not None
    assert second is not None
    assert main(["pairing", "approve", "telegram", first.code]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "Approved telegram sender 31337 (account default).",
        "Command owner configured telegram:31337 (commands.ownerAllowFrom was empty).",
    ]
    text = config_path.read_text()
    assert "// my gateway" in text
    assert "// local only" in text
    loaded = load_file(config_path, {}).config
    assert loaded.commands.owner_allow_from == ["telegram:31337"]
    assert loaded.commands.restart is True
    assert main(["pairing", "approve", "telegram", second.code, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["owner"] is None
    assert load_file(config_path, {}).config.commands.owner_allow_from == ["telegram:31337"]


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_restart_rereads_a_rotated_token_file(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """A token rotated in its tokenFile is picked up by `channels restart` (no config edit)."""
    token_file = tmp_path / "bot.token"
    token_file.write_text(BOT_TOKEN)
    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    fake.add_bot(OTHER_TOKEN, username="rotated_bot")
    document = telegram_config(fake, tokenFile=str(token_file), allowFrom=[str(OWNER)])
    config, _ = parse(json.dumps(document), {})
    running = await start_gateway(make_settings(tmp_path, config=config))
    slot = await wait_state(running, "running")
    token_file.write_text(OTHER_TOKEN + "\n")
    async with open_client(running.url, token=TOKEN) as client:
        result = await client.call("channels.restart", {"channel": "telegram"})
    assert result["started"] is True
    mgr = running.runtime.channels
    with trio.fail_after(20):
        await mgr.wait_for(
            lambda: slot.state == "running" and slot.extra["bot"]["username"] == "rotated_bot"
        )


async def test_a_saved_config_edit_restarts_only_the_edited_account(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """CHANNELS 1.3 through the real config watcher: the edit is a hot reload (no gateway
    restart); only the account whose token changed restarts."""
    from .test_supervisor import supervised

    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    fake.add_bot(OTHER_TOKEN, username="ops_bot")
    third = "555555555:CCH5rPzN0fakeTokenForTests_abcdefgh"
    fake.add_bot(third, username="ops2_bot")

    def channels(ops_token: str) -> dict[str, Any]:
        accounts = {"default": {"botToken": BOT_TOKEN}, "ops": {"botToken": ops_token}}
        found: dict[str, Any] = telegram_config(fake, allowFrom=[str(OWNER)], accounts=accounts)
        return dict(found["channels"])

    async with supervised(tmp_path) as (lc, config):
        running = await lc.wait_started(1)
        port = running.port
        config.write({"port": port, "reload": {"debounceMs": 50}}, channels=channels(OTHER_TOKEN))
        with trio.fail_after(10):
            await lc.wait_checked(1)
        default = await wait_state(running, "running", "default")
        ops = await wait_state(running, "running", "ops")
        kept, replaced = default.transport, ops.transport
        config.write({"port": port, "reload": {"debounceMs": 50}}, channels=channels(third))
        with trio.fail_after(10):
            await lc.wait_checked(2)
        mgr = running.runtime.channels
        with trio.fail_after(20):
            await mgr.wait_for(
                lambda: ops.transport not in (None, replaced) and ops.state == "running"
            )
        assert lc.generation == 1  # no gateway restart
        assert default.transport is kept
        assert ops.extra["bot"]["username"] == "ops2_bot"
