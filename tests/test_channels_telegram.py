"""Telegram end to end: the gateway's real transport against FakeTelegram on loopback
(CHANNELS.md 8.3). Each docstring names the FAILURE-MODES item it covers."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import trio
from gateway_client import open_client
from trio.testing import MockClock

from gateway.app import Running, serve
from gateway.config.load import parse

from .channelkit import (
    BOT_TOKEN,
    OTHER_TOKEN,
    OWNER,
    start_with_telegram,
    telegram_config,
    wait_state,
)
from .conftest import TOKEN, StartGateway, make_settings
from .fakeprovider import chat_sse, start_fake_provider
from .faketelegram import FakeTelegram, start_fake_telegram


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
    update = fake.message(BOT_TOKEN, "hello there", user_id=OWNER)
    assert (await _ledger(running, f"tg:default:{update}")).state == "done"
    reply = fake.sent_to(BOT_TOKEN, OWNER)
    assert len(reply) == 1
    assert "You said:" in reply[0]["text"]
    assert "hello there" in reply[0]["text"]
    assert reply[0]["_params"]["parse_mode"] == "HTML"


@pytest.fixture
def idle_clock() -> MockClock:
    """Virtual time that jumps only after 0.25 s of real idleness: long sleeps and backoffs
    pass at once, while loopback I/O and the database thread (which trio sees as idleness)
    finish long before a jump could fire a timeout under them."""
    return MockClock(autojump_threshold=0.25)


async def _gateway(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path, **telegram: Any
) -> tuple[FakeTelegram, Running]:
    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    running = await start_with_telegram(start_gateway, tmp_path, fake, **telegram)
    await wait_state(running, "running")
    return fake, running


async def _ledger(running: Running, key: str, timeout: float = 20) -> Any:
    """The ledger row of ``key`` once it is final (done or dropped), its replies out."""
    service = running.runtime.channels.service
    assert service is not None
    with trio.fail_after(timeout):
        row = await service.wait_final(key)
        # and whatever the message sent back left the outbox (delivered or given up)
        await running.runtime.channels.outbox.settled(prefix=f"reply:{key}:")
        await running.runtime.channels.outbox.settled(prefix=f"pairing:{key}")
        return row


async def test_stranger_gets_one_pairing_code_then_approval_lets_them_in(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """CHANNELS 8.3.7: a code once an hour, the message is not processed, approval applies to
    the next DM with no restart."""
    fake, running = await _gateway(nursery, start_gateway, tmp_path)
    first = fake.message(BOT_TOKEN, "who are you?", user_id=555, username="stranger")
    with trio.fail_after(20):
        await fake.wait_for(lambda: bool(fake.sent_to(BOT_TOKEN, 555)))
    text = fake.sent_to(BOT_TOKEN, 555)[0]["text"]
    code = re.search(r"Pairing code: ([A-Z2-9]{8})", text)
    assert code is not None
    assert "smart-agent-neo pairing approve telegram " + code.group(1) in text
    assert "555" in text
    second = fake.message(BOT_TOKEN, "hello??", user_id=555)
    assert (await _ledger(running, f"tg:default:{second}")).reason == "pairing"
    assert len(fake.sent_to(BOT_TOKEN, 555)) == 1  # no second code
    assert (await _ledger(running, f"tg:default:{first}")).reason == "pairing"
    assert running.runtime.agents.find(f"tg:default:{first}") is None  # never processed
    # the gateway's config file: the first approval makes the sender the owner
    config_file = running.runtime.settings.paths.config_path
    config_file.write_text(json.dumps({"gateway": {"mode": "local"}, **telegram_config(fake)}))
    async with open_client(running.url, token=TOKEN) as client:
        listing = await client.call("pairing.list", {"channel": "telegram"})
        assert [r["code"] for r in listing["requests"]] == [code.group(1)]
        # the request as stored (CHANNELS 3.5): {id, code, createdAt, lastSeenAt, meta}
        [request] = listing["requests"]
        assert (request["id"], request["meta"]["username"]) == ("555", "stranger")
        assert request["meta"]["accountId"] == "default"
        approved = await client.call(
            "pairing.approve",
            {"channel": "telegram", "code": code.group(1).lower(), "notify": True},
        )
    assert approved == {
        "channel": "telegram",
        "approved": True,
        "id": "555",
        "accountId": "default",
        "notified": True,
        "owner": "telegram:555",
    }
    assert json.loads(config_file.read_text())["commands"] == {"ownerAllowFrom": ["telegram:555"]}
    fake.message(BOT_TOKEN, "now?", user_id=555)
    with trio.fail_after(20):
        await fake.wait_for(lambda: len(fake.sent_to(BOT_TOKEN, 555)) == 3)
    assert "You said:" in fake.sent_to(BOT_TOKEN, 555)[2]["text"]
    assert running.runtime.channels.slots[("telegram", "default")].restarts == 0


async def test_allowlist_stranger_gets_nothing(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    fake, running = await _gateway(
        nursery, start_gateway, tmp_path, dmPolicy="allowlist", allowFrom=[str(OWNER)]
    )
    stranger = fake.message(BOT_TOKEN, "let me in", user_id=777)
    owner = fake.message(BOT_TOKEN, "hi", user_id=OWNER)
    assert (await _ledger(running, f"tg:default:{owner}")).state == "done"
    assert len(fake.sent_to(BOT_TOKEN, OWNER)) == 1
    row = await _ledger(running, f"tg:default:{stranger}")
    assert (row.state, row.reason) == ("dropped", "blocked (allowlist)")
    assert row.raw is None
    assert fake.sent_to(BOT_TOKEN, 777) == []


async def test_active_webhook_is_deleted_once_then_polling(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """CHANNELS 8.3.4: a webhook left by another tool would make every poll a 409."""
    fake = await start_fake_telegram(nursery)
    bot = fake.add_bot(BOT_TOKEN)
    bot.webhook_url = "https://example.invalid/hook"
    running = await start_with_telegram(start_gateway, tmp_path, fake, allowFrom=[str(OWNER)])
    await wait_state(running, "running")
    assert len(fake.calls_of("deleteWebhook")) == 1
    assert fake.calls_of("deleteWebhook")[0].params == {"drop_pending_updates": False}
    update = fake.message(BOT_TOKEN, "ping", user_id=OWNER)
    assert (await _ledger(running, f"tg:default:{update}")).state == "done"
    assert len(fake.sent_to(BOT_TOKEN, OWNER)) == 1
    polls = fake.calls_of("getUpdates")
    assert polls
    assert all(c.status != 409 for c in polls)
    assert polls[0].params["allowed_updates"] == [
        "message",
        "edited_message",
        "channel_post",
        "callback_query",
        "message_reaction",
        "my_chat_member",
    ]


async def test_conflict_storm_is_survived_in_the_same_run(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path, idle_clock: MockClock
) -> None:
    """CHANNELS 8.3.4, FAILURE-MODES 29: a 60 s 409 storm sets conflict, never restarts the
    account, and recovers by itself."""
    fake, running = await _gateway(nursery, start_gateway, tmp_path, allowFrom=[str(OWNER)])
    slot = running.runtime.channels.slots[("telegram", "default")]
    transport = slot.transport
    fake.conflict_from_other_poller(True)
    mgr = running.runtime.channels
    with trio.fail_after(30):
        await mgr.wait_for(lambda: slot.conflict)
    assert not slot.connected
    assert slot.last_error is not None
    assert slot.last_error.startswith("getUpdates conflict: another process is polling")
    async with open_client(running.url, token=TOKEN) as client:
        status = await client.call("channels.status")
    snap = status["channelAccounts"]["telegram"][0]
    assert (snap["conflict"], snap["connected"], snap["state"]) == (True, False, "running")
    await trio.sleep(60)
    conflicts = [c for c in fake.calls_of("getUpdates") if c.status == 409]
    assert len(conflicts) >= 3
    gaps = [b.at - a.at for a, b in itertools.pairwise(conflicts)]
    assert min(gaps) >= 1.5  # backed off (2 s x jitter), not a tight loop
    fake.conflict_from_other_poller(False)
    with trio.fail_after(60):
        await mgr.wait_for(lambda: slot.connected and not slot.conflict)
    assert slot.transport is transport
    assert slot.restarts == 0
    assert slot.state == "running"


async def test_rate_limit_retry_after_is_honoured(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path, idle_clock: MockClock
) -> None:
    """CHANNELS 8.3.5: after 429 retry_after 3 the next call comes >= 3 s later."""
    fake, running = await _gateway(nursery, start_gateway, tmp_path, allowFrom=[str(OWNER)])
    fake.fail("getUpdates", 429, "Too Many Requests: retry after 3", {"retry_after": 3})
    with trio.fail_after(60):
        await fake.wait_for(
            lambda: (
                any(c.status == 429 for c in fake.calls_of("getUpdates"))
                and fake.calls_of("getUpdates")[-1].status != 429
            )
        )
    polls = fake.calls_of("getUpdates")
    limited = next(i for i, c in enumerate(polls) if c.status == 429)
    assert polls[limited + 1].at - polls[limited].at >= 3.0
    # a send lane too: the reply waits out the 429 and then goes through
    fake.fail("sendMessage", 429, "Too Many Requests: retry after 5", {"retry_after": 5})
    update = fake.message(BOT_TOKEN, "hi", user_id=OWNER)
    assert (await _ledger(running, f"tg:default:{update}")).state == "done"
    sends = fake.calls_of("sendMessage")
    assert sends[0].status == 429
    assert sends[1].at - sends[0].at >= 5.0
    assert running.runtime.channels.slots[("telegram", "default")].restarts == 0


async def test_a_webhook_conflict_that_persists_is_backed_off_not_looped(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path, idle_clock: MockClock
) -> None:
    """CHANNELS 3.3: a 409 naming a webhook means deleteWebhook and one immediate retry;
    when the retry meets the same 409 ("terminated by other long poll or webhook": another
    poller), it is a conflict with its 2 s -> 30 s backoff, not a tight delete/poll loop."""
    fake, running = await _gateway(nursery, start_gateway, tmp_path, allowFrom=[str(OWNER)])
    slot = running.runtime.channels.slots[("telegram", "default")]
    fake.fail("getUpdates", 409, "Conflict: terminated by other long poll or webhook", times=8)
    with trio.fail_after(600):
        await fake.wait_for(
            lambda: (
                len([c for c in fake.calls_of("getUpdates") if c.status == 409]) == 8
                and fake.calls_of("getUpdates")[-1].status != 409
            )
        )
    conflicts = [c for c in fake.calls_of("getUpdates") if c.status == 409]
    quick = [b.at - a.at < 1.0 for a, b in itertools.pairwise(conflicts)]
    assert quick.count(True) <= 1  # the one retry right after deleteWebhook
    assert len(fake.calls_of("deleteWebhook")) <= 2
    assert conflicts[-1].at - conflicts[0].at >= 10  # backed off between the others
    with trio.fail_after(60):
        await running.runtime.channels.wait_for(lambda: slot.connected and not slot.conflict)
    assert slot.restarts == 0


async def test_final_ledger_rows_are_pruned_hourly_after_seven_days(
    nursery: trio.Nursery,
    start_gateway: StartGateway,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    idle_clock: MockClock,
) -> None:
    """CHANNELS 6.5: rows pruned after 7 days -- by the running gateway, every hour (here
    every 2 s of virtual time), not only when it starts; open rows and recent ones stay."""
    from gateway.channels import supervisor
    from gateway.channels.ledger import Inbound

    monkeypatch.setattr(supervisor, "LEDGER_PRUNE_EVERY_S", 2.0)

    fake, running = await _gateway(nursery, start_gateway, tmp_path, allowFrom=[str(OWNER)])
    update = fake.message(BOT_TOKEN, "recent", user_id=OWNER)
    assert (await _ledger(running, f"tg:default:{update}")).state == "done"
    service = running.runtime.channels.service
    assert service is not None
    assert service.ledger is not None
    week_ago = running.runtime.now_ms() - 8 * 24 * 3600 * 1000
    old = [
        Inbound("tg:default:1", "telegram", "default", "42", week_ago, None, "done"),
        Inbound("tg:default:2", "telegram", "default", "42", week_ago, None, "dropped", "x"),
        Inbound("tg:default:3", "telegram", "default", "42", week_ago, "{}", "accepted"),
    ]
    await service.ledger.record_batch("telegram", "other", old, None)
    assert await service.ledger.get("tg:default:1") is not None
    await trio.sleep(5)  # virtual: two upkeep rounds
    assert await service.ledger.get("tg:default:1") is None
    assert await service.ledger.get("tg:default:2") is None
    assert await service.ledger.get("tg:default:3") is not None  # not final: kept
    assert await service.ledger.get(f"tg:default:{update}") is not None  # recent: kept


async def test_answered_errors_are_no_polling_stall(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path, idle_clock: MockClock
) -> None:
    """CHANNELS 3.3: a stall is no *completed* getUpdates. A 409 storm or a 429 whose
    retry_after is longer than pollingStallThresholdMs is Telegram answering: handled as
    itself, never as "Polling stall detected" with a rebuilt client."""
    fake, running = await _gateway(
        nursery, start_gateway, tmp_path, allowFrom=[str(OWNER)], pollingStallThresholdMs=30_000
    )
    metrics = running.runtime.metrics.telegram_getupdates
    slot = running.runtime.channels.slots[("telegram", "default")]
    fake.conflict_from_other_poller(True)
    await trio.sleep(100)  # more than three thresholds of nothing but 409s
    fake.conflict_from_other_poller(False)
    fake.fail("getUpdates", 429, "Too Many Requests: retry after 70", {"retry_after": 70})
    with trio.fail_after(300):
        await fake.wait_for(
            lambda: (
                any(c.status == 429 for c in fake.calls_of("getUpdates"))
                and fake.calls_of("getUpdates")[-1].status == 200
            )
        )
    assert metrics.labels(result="conflict")._value.get() >= 3
    assert metrics.labels(result="rate_limited")._value.get() == 1
    assert metrics.labels(result="error")._value.get() == 0  # no stall was detected
    assert slot.restarts == 0


async def test_back_to_back_restarts_never_poll_twice_at_once(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """CHANNELS 8.3.4: one runner per account, always (the reference's self-made 409s)."""
    fake, running = await _gateway(nursery, start_gateway, tmp_path, allowFrom=[str(OWNER)])
    async with open_client(running.url, token=TOKEN) as client:
        for _ in range(20):
            result = await client.call("channels.restart", {"channel": "telegram"})
            assert result == {
                "channel": "telegram",
                "accountId": "default",
                "stopped": True,
                "started": True,
            }
    await wait_state(running, "running")
    update = fake.message(BOT_TOKEN, "still there?", user_id=OWNER)
    assert (await _ledger(running, f"tg:default:{update}")).state == "done"
    assert len(fake.sent_to(BOT_TOKEN, OWNER)) == 1
    assert fake.max_concurrent_polls == 1
    assert not [c for c in fake.calls_of("getUpdates") if c.status == 409]


async def test_long_reply_is_chunked_and_a_parse_error_falls_back_to_plain(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """CHANNELS 8.3.9 end to end: the offline model echoes a 10k-character message."""
    fake, running = await _gateway(nursery, start_gateway, tmp_path, allowFrom=[str(OWNER)])
    words = " ".join(f"w{i}" for i in range(2600))
    fake.fail("sendMessage", 400, "Bad Request: can't parse entities: Unsupported start tag")
    update = fake.message(BOT_TOKEN, words, user_id=OWNER)
    assert (await _ledger(running, f"tg:default:{update}")).state == "done"
    sent = fake.sent_to(BOT_TOKEN, OWNER)
    assert len(sent) == 4  # ~14.7k characters of echo
    assert "parse_mode" not in sent[0]["_params"]  # the rejected chunk went out as plain text
    assert all(m["_params"].get("parse_mode") == "HTML" for m in sent[1:])
    assert [m["message_id"] for m in sent] == sorted(m["message_id"] for m in sent)
    joined = " ".join(m["text"] for m in sent)
    assert "w0 " in joined
    assert "w2599" in joined


async def test_group_mention_gating_end_to_end(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """CHANNELS 8.3.8: unmentioned group chatter starts no run; a mention does; a group not
    in the allowlist is dropped."""
    fake, running = await _gateway(
        nursery, start_gateway, tmp_path, allowFrom=[str(OWNER)], groups={"-1001": {}}
    )
    group: dict[str, Any] = {"chat_id": -1001, "chat_type": "supergroup", "user_id": OWNER}
    quiet = fake.message(BOT_TOKEN, "lunch anyone?", **group)
    other = fake.message(
        BOT_TOKEN,
        "@neo_test_bot hi",
        chat_id=-2002,
        chat_type="group",
        user_id=OWNER,
        entities=[{"type": "mention", "offset": 0, "length": 13}],
    )
    asked = fake.message(
        BOT_TOKEN,
        "@neo_test_bot what did I ask?",
        entities=[{"type": "mention", "offset": 0, "length": 13}],
        **group,
    )
    assert (await _ledger(running, f"tg:default:{asked}")).state == "done"
    reply = fake.sent_to(BOT_TOKEN, -1001)
    assert len(reply) == 1
    assert "lunch anyone?" in reply[0]["text"]  # the pending history went along
    assert (await _ledger(running, f"tg:default:{quiet}")).reason == "history (mention required)"
    row = await _ledger(running, f"tg:default:{other}")
    assert (row.state, row.reason) == (
        "dropped",
        "group -2002 not allowlisted (add it under groups)",
    )
    assert fake.sent_to(BOT_TOKEN, -2002) == []


async def test_an_album_becomes_one_turn_with_media_placeholders(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """CHANNELS 3.2, 3.4: album parts are merged; files land in media/inbound; the agent
    sees <media:image>."""
    fake, running = await _gateway(
        nursery, start_gateway, tmp_path, allowFrom=[str(OWNER)], mediaGroupFlushMs=200
    )
    fake.files["photos/p1.jpg"] = b"\xff\xd8jpeg-one"
    fake.files["photos/p2.jpg"] = b"\xff\xd8jpeg-two"
    base = {
        "chat": {"id": OWNER, "type": "private"},
        "date": 1,
        "from": {"id": OWNER, "is_bot": False, "first_name": "Owner"},
        "media_group_id": "alb1",
    }
    ids = fake.push_updates(
        BOT_TOKEN,
        [
            {
                "message": {
                    **base,
                    "message_id": 1,
                    "caption": "our holiday",
                    "photo": [
                        {"file_id": "p1-small", "file_size": 5},
                        {"file_id": "p1", "file_size": 10, "width": 800},
                    ],
                }
            },
            {"message": {**base, "message_id": 2, "photo": [{"file_id": "p2", "file_size": 10}]}},
        ],
    )
    for update in ids:
        assert (await _ledger(running, f"tg:default:{update}")).state == "done"
    sent = fake.sent_to(BOT_TOKEN, OWNER)
    assert len(sent) == 1  # one turn for the whole album
    text = sent[0]["text"]
    assert "our holiday" in text
    assert text.count("&lt;media:image&gt;") == 2
    saved = sorted((tmp_path / "media" / "inbound").iterdir())
    assert [p.read_bytes() for p in saved] == [b"\xff\xd8jpeg-one", b"\xff\xd8jpeg-two"]


async def test_no_reply_is_not_sent_and_the_route_is_recorded(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """CHANNELS 5.2, OPERATIONS G.4: a reply of only NO_REPLY / HEARTBEAT_OK is suppressed;
    the session keeps lastRoute; the chat sees "typing" while the agent works."""
    model = await start_fake_provider(nursery)
    model.queue(chat_sse("NO_", "REPLY"), chat_sse("HEARTBEAT_OK"), chat_sse("A **real** answer"))
    provider = {
        "models": {
            "providers": {
                "fake": {
                    "baseUrl": model.base_url,
                    "apiKey": "sk-test",
                    "models": [{"id": "fake-model"}],
                }
            }
        },
        "agents": {"defaults": {"model": {"primary": "fake/fake-model"}}},
        "session": {"dmScope": "per-peer"},
    }
    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    running = await start_with_telegram(
        start_gateway, tmp_path, fake, provider, allowFrom=[str(OWNER)], replyToMode="first"
    )
    await wait_state(running, "running")
    for text in ("quiet please", "ping", "now answer"):
        update = fake.message(BOT_TOKEN, text, user_id=OWNER)
        assert (await _ledger(running, f"tg:default:{update}")).state == "done"
    sent = fake.sent_to(BOT_TOKEN, OWNER)
    assert [m["text"] for m in sent] == ["A <b>real</b> answer"]
    assert sent[0]["_params"]["reply_parameters"]["allow_sending_without_reply"] is True
    bot = fake.bots[BOT_TOKEN]
    assert {"chat_id": str(OWNER), "action": "typing"} in bot.actions
    service = running.runtime.channels.service
    assert service is not None
    route = await service.last_route(f"agent:main:direct:{OWNER}")
    assert route is not None
    assert (route.channel, route.account_id, route.to) == ("telegram", "default", str(OWNER))
    async with open_client(running.url, token=TOKEN) as client:  # and the session shows it
        listed = await client.call("sessions.list")
    [row] = [r for r in listed["sessions"] if r["key"] == f"agent:main:direct:{OWNER}"]
    assert row["lastRoute"] == {
        "channel": "telegram",
        "accountId": "default",
        "to": str(OWNER),
        "replyToId": route.reply_to_id,
    }


async def test_a_polling_stall_rebuilds_the_client_in_the_same_run(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path, idle_clock: MockClock
) -> None:
    """CHANNELS 3.3: no completed getUpdates for pollingStallThresholdMs -> log, rebuild the
    HTTP client, carry on (no restart)."""
    fake, running = await _gateway(
        nursery, start_gateway, tmp_path, allowFrom=[str(OWNER)], pollingStallThresholdMs=30_000
    )
    slot = running.runtime.channels.slots[("telegram", "default")]
    transport = slot.transport
    fake.delay("getUpdates", 3600)  # every poll now hangs
    with trio.fail_after(600):
        await fake.wait_for(lambda: len(fake.calls_of("getUpdates")) >= 4)
    fake.delay("getUpdates", 0)
    update = fake.message(BOT_TOKEN, "are you back?", user_id=OWNER)
    assert (await _ledger(running, f"tg:default:{update}", timeout=600)).state == "done"
    assert slot.transport is transport
    assert slot.restarts == 0
    stalled = running.runtime.metrics.telegram_getupdates.labels(result="error")._value.get()
    assert stalled >= 2


async def test_a_forum_topic_gets_its_own_session_agent_and_thread(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """CHANNELS 5.1, 3.4: a topic message -> agent:<topic agent>:telegram:group:<id>:topic:<n>;
    the reply carries message_thread_id."""
    agents = {"agents": {"list": [{"id": "main", "default": True}, {"id": "coder"}]}}
    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    running = await start_with_telegram(
        start_gateway,
        tmp_path,
        fake,
        agents,
        allowFrom=[str(OWNER)],
        groups={"-1003": {"requireMention": False, "topics": {"7": {"agentId": "coder"}}}},
    )
    await wait_state(running, "running")
    update = fake.message(
        BOT_TOKEN,
        "build it",
        chat_id=-1003,
        chat_type="supergroup",
        user_id=OWNER,
        message_thread_id=7,
        is_topic_message=True,
    )
    assert (await _ledger(running, f"tg:default:{update}")).state == "done"
    (reply,) = fake.sent_to(BOT_TOKEN, -1003)
    assert reply["_params"]["message_thread_id"] == 7
    run = running.runtime.agents.find(f"tg:default:{update}")
    assert run is not None
    assert run.session_key == "agent:coder:telegram:group:-1003:topic:7"


async def test_one_accounts_bad_token_file_leaves_the_others_running(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """Bad input: a config error in one account is that account's `failed`, naming the key."""
    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    missing = tmp_path / "nope.token"
    running = await start_with_telegram(
        start_gateway,
        tmp_path,
        fake,
        allowFrom=[str(OWNER)],
        accounts={"default": {"botToken": BOT_TOKEN}, "ops": {"tokenFile": str(missing)}},
    )
    await wait_state(running, "running", "default")
    ops = await wait_state(running, "failed", "ops")
    assert ops.last_error == f"channels.telegram.accounts.ops.tokenFile: {missing} does not exist"
    update = fake.message(BOT_TOKEN, "hi", user_id=OWNER)
    assert (await _ledger(running, f"tg:default:{update}")).state == "done"


async def test_a_bot_endpoint_as_api_root_or_a_shared_token_fails_only_that_account(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """CHANNELS 1.1: an apiBaseUrl ending in /bot<TOKEN> is that account's config error
    (``failed``, naming the key, no token shown; ``doctor --fix`` strips it), and a token two
    accounts share through their token files fails both instead of polling into 409s --
    the gateway and the other accounts run on."""
    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    fake.add_bot(OTHER_TOKEN)
    pasted_token = "555000111:CCH5rPzN0fakeTokenForTests_abcdefgh"
    shared = tmp_path / "shared.token"
    shared.write_text(OTHER_TOKEN)
    running = await start_with_telegram(
        start_gateway,
        tmp_path,
        fake,
        allowFrom=[str(OWNER)],
        accounts={
            "default": {"botToken": BOT_TOKEN},
            "pasted": {
                "botToken": pasted_token,
                "apiBaseUrl": f"{fake.base_url}/bot{pasted_token}",
            },
            "twin1": {"tokenFile": str(shared)},
            "twin2": {"tokenFile": str(shared)},
        },
    )
    await wait_state(running, "running", "default")
    pasted = await wait_state(running, "failed", "pasted")
    assert pasted.last_error is not None
    assert pasted.last_error.startswith(
        "channels.telegram.accounts.pasted.apiBaseUrl: must be the API root without /bot<TOKEN>"
    )
    assert pasted_token not in pasted.last_error
    for twin in ("twin1", "twin2"):
        slot = await wait_state(running, "failed", twin)
        assert slot.last_error == (
            f"channels.telegram.accounts.{twin}: duplicate botToken in accounts twin1, twin2"
        )
    assert not [c for c in fake.calls if c.token in (OTHER_TOKEN, pasted_token)]  # never called
    update = fake.message(BOT_TOKEN, "hi", user_id=OWNER)
    assert (await _ledger(running, f"tg:default:{update}")).state == "done"


async def test_a_root_cancel_mid_burst_loses_nothing_and_repeats_nothing(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """CHANNELS 8.3.1-2 in process: the whole gateway tree cancelled (no graceful stop) while
    a reply is in flight; a new gateway on the same state dir answers the rest once."""
    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    document = telegram_config(fake, dmPolicy="open", allowFrom=["*"])
    document["agents"] = {"defaults": {"maxConcurrent": 1}}
    config, _ = parse(json.dumps(document), {})
    updates = [fake.message(BOT_TOKEN, f"m{i}", user_id=2000 + i % 3) for i in range(12)]
    arrived, _never = fake.hold("sendMessage", after=4)
    with trio.CancelScope() as first:
        async with trio.open_nursery() as inner:
            await inner.start(serve, make_settings(tmp_path, config=config))
            with trio.fail_after(20):
                await arrived.wait()
            first.cancel()
    # four replies were out; the fifth was parked unrecorded (other chats' replies may have
    # gone out meanwhile: the outbox sends to several chats at once)
    before = [m["text"] for m in fake.all_sent(BOT_TOKEN)]
    assert len(before) >= 4
    running: Running = await nursery.start(serve, make_settings(tmp_path, config=config))
    for update in updates:
        assert (await _ledger(running, f"tg:default:{update}")).state == "done"
    texts = [m["text"] for m in fake.all_sent(BOT_TOKEN)]
    assert len(texts) == 12
    assert sorted(t.rsplit("] ", 1)[1] for t in texts) == sorted(f"m{i}" for i in range(12))


async def test_a_message_that_breaks_the_code_is_dropped_not_looped(
    nursery: trio.Nursery,
    start_gateway: StartGateway,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A poison message is marked dropped with the error; the account keeps running."""
    from gateway.channels import service as service_module

    original = service_module.envelope

    def explode(msg: Any, history: Any, notes: Any) -> str:
        if msg.text == "boom":
            raise RuntimeError("envelope bug")
        return original(msg, history, notes)

    monkeypatch.setattr(service_module, "envelope", explode)
    fake, running = await _gateway(nursery, start_gateway, tmp_path, allowFrom=[str(OWNER)])
    bad = fake.message(BOT_TOKEN, "boom", user_id=OWNER)
    good = fake.message(BOT_TOKEN, "fine", user_id=OWNER)
    row = await _ledger(running, f"tg:default:{bad}")
    assert (row.state, row.reason) == ("dropped", "internal error: RuntimeError('envelope bug')")
    assert (await _ledger(running, f"tg:default:{good}")).state == "done"
    slot = running.runtime.channels.slots[("telegram", "default")]
    assert (slot.state, slot.restarts) == ("running", 0)


async def test_a_migrated_group_gets_the_reply_at_its_new_id(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """CHANNELS 3.3: 400 with migrate_to_chat_id -> resend to the supergroup; linkPreview
    false -> link_preview_options."""
    fake, running = await _gateway(
        nursery,
        start_gateway,
        tmp_path,
        allowFrom=[str(OWNER)],
        groups={"-4004": {"requireMention": False}},
        linkPreview=False,
    )
    fake.fail(
        "sendMessage",
        400,
        "Bad Request: group chat was upgraded to a supergroup chat",
        {"migrate_to_chat_id": -1004004},
    )
    update = fake.message(BOT_TOKEN, "hello group", chat_id=-4004, chat_type="group", user_id=OWNER)
    assert (await _ledger(running, f"tg:default:{update}")).state == "done"
    assert fake.sent_to(BOT_TOKEN, -4004) == []
    (moved,) = fake.sent_to(BOT_TOKEN, -1004004)
    assert moved["_params"]["link_preview_options"] == {"is_disabled": True}
