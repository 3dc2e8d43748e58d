"""``send`` and the durable outbox end to end: the real gateway against FakeTelegram on
loopback (CHANNELS.md 5.4, 6, 8.3.2-3; PROTOCOL.md 7.5)."""

from __future__ import annotations

import base64
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import trio
from gateway_client import GatewayRpcError, open_client
from trio.testing import MockClock

from gateway.app import Running, serve
from gateway.config.load import parse

from .channelkit import (
    BOT_TOKEN,
    OWNER,
    follow_trio_clock,
    telegram_config,
    telegram_gateway,
    wait_state,
)
from .conftest import TOKEN, StartGateway, make_settings
from .faketelegram import start_fake_telegram

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BAAQAB/wH+N0fXfwAAAABJRU5ErkJggg=="
)


@pytest.fixture
def idle_clock() -> MockClock:
    """Virtual time that jumps after 0.25 s of real idleness (loopback I/O and the
    database thread finish long before)."""
    return MockClock(autojump_threshold=0.25)


async def call(running: Running, method: str, params: dict[str, Any]) -> Any:
    async with open_client(running.url, token=TOKEN) as client:
        return await client.call(method, params)


async def send(running: Running, key: str, **params: Any) -> Any:
    body = {"to": str(OWNER), "message": "hello", "idempotencyKey": key, **params}
    return await call(running, "send", body)


async def refused(running: Running, key: str, **params: Any) -> GatewayRpcError:
    with pytest.raises(GatewayRpcError) as caught:
        await send(running, key, **params)
    return caught.value


async def settled(running: Running, key: str, timeout: float = 60) -> Any:
    with trio.fail_after(timeout):
        [record] = await running.runtime.channels.outbox.settled([key])
    return record


def metric(running: Running, result: str) -> float:
    value = running.runtime.metrics.outbox_sends.labels(result=result)._value.get()
    return float(value)


async def test_send_delivers_once_however_often_the_key_is_retried(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """CHANNELS 8.3.2: one key, one platform message, the same messageId every time."""
    fake, running = await telegram_gateway(nursery, start_gateway, tmp_path)
    first = await send(running, "k-1", message="**hi** there")
    assert first == {
        "runId": "k-1",
        "messageId": "1",
        "channel": "telegram",
        "chatId": str(OWNER),
        "deliveryState": "sent",
    }
    for _ in range(3):
        assert await send(running, "k-1", message="**hi** there") == first
    [message] = fake.sent_to(BOT_TOKEN, OWNER)
    assert message["text"] == "<b>hi</b> there"
    assert message["_params"]["parse_mode"] == "HTML"


async def test_concurrent_duplicates_wait_for_the_same_delivery(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """PROTOCOL 7.5: a duplicate in flight awaits the first delivery instead of sending."""
    fake, running = await telegram_gateway(nursery, start_gateway, tmp_path)
    arrived, release = fake.hold("sendMessage")
    results: list[Any] = []

    async def one() -> None:
        results.append(await send(running, "dup"))

    async with trio.open_nursery() as both:
        both.start_soon(one)
        both.start_soon(one)
        with trio.fail_after(20):
            await arrived.wait()
        await trio.sleep(0.2)  # the second call reaches the outbox too
        release.set()
    assert results[0] == results[1]
    assert results[0]["deliveryState"] == "sent"
    assert len(fake.sent_to(BOT_TOKEN, OWNER)) == 1


async def test_a_retry_after_a_restart_gets_the_original_result(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """CHANNELS 6.4: the key is kept 7 days in the database, not in memory."""
    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    config, _ = parse(json.dumps(telegram_config(fake)), {})
    settings = make_settings(tmp_path, config=config)
    async with trio.open_nursery() as first:
        running: Running = await first.start(serve, settings)
        await wait_state(running, "running")
        before = await send(running, "restart-key")
        running.stop()
    again: Running = await nursery.start(serve, settings)
    await wait_state(again, "running")
    assert await send(again, "restart-key") == before
    assert len(fake.sent_to(BOT_TOKEN, OWNER)) == 1


async def test_a_send_to_a_stopped_account_is_queued_and_delivered_when_it_is_back(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """The ack means "durably queued": the CLI says so, the outbox delivers later."""
    fake, running = await telegram_gateway(nursery, start_gateway, tmp_path)
    await call(running, "channels.stop", {"channel": "telegram"})
    queued = await send(running, "later", message="one")
    await send(running, "later-2", message="two")
    assert queued == {
        "runId": "later",
        "messageId": "",
        "channel": "telegram",
        "chatId": str(OWNER),
        "deliveryState": "queued",
    }
    status = await call(running, "channels.status", {})
    assert status["channelAccounts"]["telegram"][0]["outbox"] == {"pending": 2, "failed": 0}
    await call(running, "channels.start", {"channel": "telegram"})
    await settled(running, "later-2")
    assert [m["text"] for m in fake.sent_to(BOT_TOKEN, OWNER)] == ["one", "two"]  # FIFO
    again = await send(running, "later", message="one")
    assert (again["deliveryState"], again["messageId"]) == ("sent", "1")
    status = await call(running, "channels.status", {})
    assert status["channelAccounts"]["telegram"][0]["outbox"] == {"pending": 0, "failed": 0}


async def test_an_account_whose_token_is_rejected_is_not_linked_and_nothing_is_queued(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """CHANNELS 4.4, 8.3.11: NOT_LINKED, and no record to deliver later."""
    fake = await start_fake_telegram(nursery)  # no bot: every token is unknown (401)
    from .channelkit import start_with_telegram

    running = await start_with_telegram(start_gateway, tmp_path, fake)
    await wait_state(running, "failed")
    error = await refused(running, "nl")
    assert error.code == "NOT_LINKED"
    assert error.message.startswith("telegram not linked (account default): getMe returned 401")
    assert await running.runtime.channels.outbox.lookup("nl") is None


async def test_send_refuses_what_it_cannot_deliver_with_a_clear_error(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """PROTOCOL 7.5's rules, each with the text that names the problem."""
    _fake, running = await telegram_gateway(nursery, start_gateway, tmp_path)
    cases = [
        ({"message": "  "}, "INVALID_REQUEST", "invalid send params: text or media is required"),
        ({"channel": "webchat"}, "INVALID_REQUEST", "unsupported channel: webchat"),
        ({"channel": "signal"}, "INVALID_REQUEST", "unsupported channel: signal"),
        ({"to": "bob"}, "INVALID_REQUEST", 'invalid target for telegram: "bob"'),
        ({"accountId": "ops"}, "INVALID_REQUEST", 'unknown account "ops" for telegram'),
        ({"channel": "whatsapp"}, "NOT_LINKED", "whatsapp not linked (account default)"),
        ({"mediaUrl": "/etc/passwd"}, "INVALID_REQUEST", "invalid send params: mediaUrl must"),
        ({"buffer": "%%%"}, "INVALID_REQUEST", "invalid send params: buffer is not"),
    ]
    for i, (params, code, text) in enumerate(cases):
        error = await refused(running, f"bad-{i}", **params)
        assert (error.code, error.message[: len(text)]) == (code, text), params
    error = await refused(running, "webchat", channel="webchat")
    assert "chat.send" in error.message


async def test_without_channels_send_says_what_to_configure(gateway: Running) -> None:
    with pytest.raises(GatewayRpcError, match="no messaging channel is configured"):
        await send(gateway, "none")


async def test_a_failure_on_part_two_never_resends_part_one(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path, idle_clock: MockClock
) -> None:
    """CHANNELS 6.4: only unsent parts are retried."""
    fake, running = await telegram_gateway(nursery, start_gateway, tmp_path)
    text = "\n\n".join(f"{i}. " + "word " * 700 for i in range(3))  # three chunks
    fake.fail("sendMessage", 500, "Internal Server Error", after=1)
    answer = await send(running, "three", message=text)
    assert answer["deliveryState"] == "queued"  # part 2 waits for its retry
    record = await settled(running, "three")
    assert (record.state, record.attempts) == ("sent", 1)
    sent = fake.sent_to(BOT_TOKEN, OWNER)
    assert [m["text"].split(".", 1)[0] for m in sent] == ["0", "1", "2"]
    calls = fake.calls_of("sendMessage")
    assert [c.status for c in calls] == [200, 500, 200, 200]
    assert calls[2].at - calls[1].at >= 4.0  # the first retry waits 5 s (x0.8-1.2)
    assert (await send(running, "three", message=text))["messageId"] == "3"


async def test_a_permanent_failure_on_part_two_ends_the_record_partially_failed(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    fake, running = await telegram_gateway(nursery, start_gateway, tmp_path)
    text = "\n\n".join(f"{i}. " + "word " * 700 for i in range(3))
    fake.fail("sendMessage", 403, "Forbidden: bot was blocked by the user", after=1)
    error = await refused(running, "blocked", message=text)
    assert (error.code, error.message) == (
        "UNAVAILABLE",
        "sendMessage returned 403: Forbidden: bot was blocked by the user",
    )
    assert error.details["deliveryState"] == "partial_failed"
    assert len(fake.sent_to(BOT_TOKEN, OWNER)) == 1
    again = await refused(running, "blocked", message=text)  # the stored error, no new try
    assert again.message == error.message
    assert len(fake.calls_of("sendMessage")) == 2
    status = await call(running, "channels.status", {})
    assert status["channelAccounts"]["telegram"][0]["outbox"] == {"pending": 0, "failed": 1}
    fake.fail("sendMessage", 400, "Bad Request: chat not found")
    chat_missing = await refused(running, "gone", to="777", message="x")
    assert chat_missing.code == "INVALID_REQUEST"  # Telegram's 400: the caller's target


@pytest.mark.parametrize("policy", ["resend", "drop"])
async def test_an_ambiguous_send_follows_the_policy_and_is_counted(
    nursery: trio.Nursery,
    start_gateway: StartGateway,
    tmp_path: Path,
    idle_clock: MockClock,
    policy: str,
) -> None:
    """CHANNELS 8.3.3: the request went out, the answer never came back. ``resend``: at
    most two copies and the metric; ``drop``: at most one and lastErrorClass ambiguous."""
    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    from .channelkit import start_with_telegram

    running = await start_with_telegram(
        start_gateway, tmp_path, fake, extra={"outbox": {"ambiguous": policy}}
    )
    await wait_state(running, "running")
    fake.drop_after_commit("sendMessage")
    if policy == "resend":
        assert (await send(running, "amb"))["deliveryState"] == "queued"
        record = await settled(running, "amb")
        assert record.state == "sent"
        assert len(fake.sent_to(BOT_TOKEN, OWNER)) == 2  # one extra copy, no more
        assert metric(running, "ambiguous_resent") == 1
    else:
        error = await refused(running, "amb")
        assert error.details["errorClass"] == "ambiguous"
        record = await settled(running, "amb")
        assert (record.state, record.last_error_class) == ("failed", "ambiguous")
        assert len(fake.sent_to(BOT_TOKEN, OWNER)) == 1
        assert metric(running, "ambiguous_resent") == 0


@pytest.mark.parametrize("policy", ["resend", "drop"])
async def test_a_send_cut_off_by_a_crash_is_settled_by_the_policy_at_the_next_start(
    nursery: trio.Nursery, tmp_path: Path, policy: str
) -> None:
    """CHANNELS 6.4: the gateway dies after committing ``sending`` and before Telegram
    answered; the next run finds the part ``sending`` (ambiguous)."""
    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    document = telegram_config(fake)
    document["outbox"] = {"ambiguous": policy}
    config, _ = parse(json.dumps(document), {})
    settings = make_settings(tmp_path, config=config)
    arrived, _never = fake.hold("sendMessage")  # parked before the fake records it
    with trio.CancelScope() as crash:
        async with trio.open_nursery() as inner:
            first: Running = await inner.start(serve, settings)
            await wait_state(first, "running")

            async def send_it() -> None:
                await send(first, "cut")

            inner.start_soon(send_it)
            with trio.fail_after(20):
                await arrived.wait()
            crash.cancel()
    assert fake.sent_to(BOT_TOKEN, OWNER) == []
    again: Running = await nursery.start(serve, settings)
    follow_trio_clock(again)
    await wait_state(again, "running")
    record = await settled(again, "cut")
    if policy == "resend":
        assert record.state == "sent"
        assert len(fake.sent_to(BOT_TOKEN, OWNER)) == 1
        assert metric(again, "ambiguous_resent") == 1
    else:
        assert (record.state, record.last_error_class) == ("failed", "ambiguous")
        assert fake.sent_to(BOT_TOKEN, OWNER) == []


async def test_a_chat_is_paced_three_at_once_then_one_a_second(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path, idle_clock: MockClock
) -> None:
    """CHANNELS 6.3: about one message a second per chat (short bursts allowed); another
    chat is not held up by it."""
    fake, running = await telegram_gateway(nursery, start_gateway, tmp_path)
    await call(running, "channels.stop", {"channel": "telegram"})
    for i in range(6):
        await send(running, f"p{i}", message=f"m{i}")
    await send(running, "other", to="43", message="elsewhere")
    await call(running, "channels.start", {"channel": "telegram"})
    await settled(running, "p5")
    await settled(running, "other")
    times = [c.at for c in fake.calls_of("sendMessage") if c.params["chat_id"] == str(OWNER)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(g < 0.5 for g in gaps[:2])
    assert all(g >= 0.9 for g in gaps[2:])
    other = next(c.at for c in fake.calls_of("sendMessage") if c.params["chat_id"] == "43")
    assert other - times[0] < 0.5


async def test_a_record_that_cannot_be_delivered_in_time_expires(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path, idle_clock: MockClock
) -> None:
    """CHANNELS 6.3: retried after 5 s, 25 s, 2 min, ... and ``expired`` once older than
    outbox.maxAgeMs (24 h by default; the shortest allowed here)."""
    fake = await start_fake_telegram(nursery, poll_cap_s=3600)
    fake.add_bot(BOT_TOKEN)
    from .channelkit import QUIET, start_with_telegram

    running = await start_with_telegram(
        start_gateway, tmp_path, fake, extra={**QUIET, "outbox": {"maxAgeMs": 60_000}}
    )
    await wait_state(running, "running")
    fake.fail("sendMessage", 502, "Bad Gateway", times=1000)
    assert (await send(running, "doomed"))["deliveryState"] == "queued"
    record = await settled(running, "doomed", timeout=3600)
    assert record.state == "expired"
    calls = fake.calls_of("sendMessage")
    gaps = [b.at - a.at for a, b in itertools.pairwise(calls)]
    assert len(calls) == 3
    assert 4.0 <= gaps[0] <= 6.0
    assert 20.0 <= gaps[1] <= 30.0
    error = await refused(running, "doomed")
    assert error.details["deliveryState"] == "expired"
    assert "expired after" in error.message


async def test_a_sent_message_is_mirrored_into_the_peers_session_once(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """CHANNELS 5.5: the agent sees what was sent on its behalf, once per key and part."""
    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    from .channelkit import start_with_telegram

    running = await start_with_telegram(
        start_gateway, tmp_path, fake, extra={"session": {"dmScope": "per-channel-peer"}}
    )
    await wait_state(running, "running")
    await send(running, "mirror-me", message="the meeting moved to 3pm")
    await send(running, "mirror-me", message="the meeting moved to 3pm")
    session = f"agent:main:telegram:direct:{OWNER}"

    async def mirrored() -> list[dict[str, Any]]:
        history = await call(running, "chat.history", {"sessionKey": session})
        return [m for m in history["messages"] if m["role"] == "assistant"]

    outbox = running.runtime.channels.outbox
    with trio.fail_after(20):
        while True:
            changed = outbox.any_change()
            if await mirrored():
                break
            await changed.wait()  # the mirror is written after the part is confirmed
    [message] = await mirrored()
    assert message["content"][0]["text"] == "the meeting moved to 3pm"
    path = tmp_path / "agents" / "main" / "sessions"
    records = [
        json.loads(line) for f in path.glob("*.jsonl") for line in f.read_text().splitlines()
    ]
    [entry] = [r for r in records if r.get("mirror")]
    assert (entry["idempotencyKey"], entry["messageId"]) == ("mirror-me", "1")


async def test_media_goes_by_url_or_upload_with_the_text_as_caption(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    fake, running = await telegram_gateway(nursery, start_gateway, tmp_path)
    by_url = await send(running, "m-url", message="a cat", mediaUrl="https://example.com/cat.png")
    uploaded = await send(
        running,
        "m-file",
        message="",
        buffer=base64.b64encode(PNG).decode(),
        filename="dot.png",
        contentType="image/png",
    )
    assert (by_url["deliveryState"], uploaded["deliveryState"]) == ("sent", "sent")
    first, second = fake.sent_to(BOT_TOKEN, OWNER)
    assert first["_params"]["photo"] == "https://example.com/cat.png"
    assert first["_params"]["caption"] == "a cat"
    upload = second["_params"]["photo"]
    assert (upload["filename"], upload["content_type"], upload["data"]) == (
        "dot.png",
        "image/png",
        PNG,
    )
    media_dir = tmp_path / "channels" / "outbox-media"
    assert [p.stat().st_mode & 0o777 for p in media_dir.iterdir()] == [0o600]


async def test_pairing_approval_notifies_through_the_outbox(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    fake, running = await telegram_gateway(nursery, start_gateway, tmp_path)
    fake.message(BOT_TOKEN, "hi", user_id=555)
    with trio.fail_after(20):
        await fake.wait_for(lambda: bool(fake.sent_to(BOT_TOKEN, 555)))
    code = fake.sent_to(BOT_TOKEN, 555)[0]["text"].split("Pairing code: ")[1][:8]
    approved = await call(
        running, "pairing.approve", {"channel": "telegram", "code": code, "notify": True}
    )
    assert approved["notified"] is True
    records = await running.runtime.channels.outbox.settled(prefix="notify:pairing:")
    assert [r.state for r in records] == ["sent"]
    assert len(fake.sent_to(BOT_TOKEN, 555)) == 2


async def test_health_reports_the_delivery_queues(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """CHANNELS 7.3: ``health.deliveryQueues`` has the outbox's depth and its sends by
    result, as /metrics does."""
    fake, running = await telegram_gateway(nursery, start_gateway, tmp_path)
    assert (await send(running, "dq-1"))["deliveryState"] == "sent"
    fake.fail("sendMessage", 400, "Bad Request: chat not found")
    with pytest.raises(GatewayRpcError):
        await send(running, "dq-2")
    health = await call(running, "health", {"probe": True})
    queues = health["deliveryQueues"]
    assert queues["outbox_pending"] == 0
    sends = {s["result"]: s["value"] for s in queues["outbox_sends_total"]}
    assert sends["sent"] == 1
    assert sends["failed"] == 1
