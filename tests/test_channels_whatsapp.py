"""WhatsApp Cloud API end to end: the gateway's webhook route and Graph client against
FakeMeta on loopback, signed like Meta signs (CHANNELS.md 4, 8.2, 8.3). Each docstring names
the CHANNELS 8.3 / FAILURE-MODES item it covers."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import trio
from gateway_client import GatewayRpcError, open_client
from trio.testing import MockClock

from gateway.app import Running
from gateway.config.load import parse

from .channelkit import follow_trio_clock
from .conftest import TOKEN, StartGateway, make_settings
from .fakemeta import FakeMeta, WebhookSender, start_fake_meta

PNID = "1098765432"
WA_TOKEN = "EAAGfakeSystemUserTokenForTests0123456789"
SECRET = "app-secret-for-tests"
VERIFY = "verify-me-please"
USER = "15551234567"


def wa_config(fake: FakeMeta, **whatsapp: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "phoneNumberId": PNID,
        "accessToken": WA_TOKEN,
        "appSecret": SECRET,
        "verifyToken": VERIFY,
        "apiBaseUrl": fake.base_url,
        "dmPolicy": "allowlist",
        "allowFrom": [f"+{USER}"],
        **whatsapp,
    }
    return {"channels": {"whatsapp": body}}


async def start(
    nursery: trio.Nursery,
    start_gateway: StartGateway,
    tmp_path: Path,
    extra: dict[str, Any] | None = None,
    *,
    number: bool = True,
    state: str = "running",
    **whatsapp: Any,
) -> tuple[FakeMeta, Running, WebhookSender]:
    fake = await start_fake_meta(nursery)
    if number:
        fake.add_number(PNID, WA_TOKEN)
    document = wa_config(fake, **whatsapp)
    document.update(extra or {})
    config, _ = parse(json.dumps(document), {})
    running = await start_gateway(make_settings(tmp_path, config=config))
    follow_trio_clock(running)
    sender = WebhookSender(running.url, "/webhooks/whatsapp", SECRET, PNID)
    fake.webhook = sender
    mgr = running.runtime.channels
    with trio.fail_after(20):
        await mgr.wait_for(lambda: ("whatsapp", "default") in mgr.slots)
        slot = mgr.slots[("whatsapp", "default")]
        await mgr.wait_for(lambda: slot.state == state)
    return fake, running, sender


async def call(running: Running, method: str, params: dict[str, Any]) -> Any:
    async with open_client(running.url, token=TOKEN) as client:
        return await client.call(method, params, timeout=60)


async def settled(running: Running, **kwargs: Any) -> Any:
    with trio.fail_after(150):  # (virtual time, under MockClock: past the 60 s grace)
        return await running.runtime.channels.outbox.settled(**kwargs)


async def answered(running: Running, wamid: str) -> None:
    """The inbound message's ledger row is final and its replies left the outbox."""
    service = running.runtime.channels.service
    assert service is not None
    key = f"wa:default:{wamid}"
    with trio.fail_after(30):
        await service.wait_final(key)
        await running.runtime.channels.outbox.settled(prefix=f"reply:{key}:")


async def test_the_verification_handshake_echoes_the_challenge_only_for_the_token(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """CHANNELS 8.3.11: 200 text/plain with exactly the challenge; 403 otherwise."""
    _fake, running, meta = await start(nursery, start_gateway, tmp_path)
    ok = await meta.verify(VERIFY, "1158201444")
    assert (ok.status_code, ok.text) == (200, "1158201444")
    assert ok.headers["content-type"].startswith("text/plain")
    for token, mode in ((VERIFY + "x", "subscribe"), ("", "subscribe"), (VERIFY, "unsubscribe")):
        refused = await meta.verify(token, "42", mode=mode)
        assert refused.status_code == 403
    metric = running.runtime.metrics.whatsapp_webhook_requests
    assert metric.labels(result="verify_ok")._value.get() == 1
    assert metric.labels(result="verify_fail")._value.get() == 3


async def test_a_bad_or_missing_signature_is_401_and_nothing_is_stored(
    nursery: trio.Nursery,
    start_gateway: StartGateway,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """CHANNELS 8.3.11: the body is never parsed without a valid HMAC."""
    fake, running, meta = await start(nursery, start_gateway, tmp_path)
    caplog.set_level(logging.WARNING, "gateway.channels.whatsapp")
    for sign in (False, "wrong"):
        answer = await meta.deliver(meta.message(USER, "hello?"), sign=sign)
        assert answer.status_code == 401
    warned = [r.getMessage() for r in caplog.records if "signature mismatch" in r.getMessage()]
    assert len(warned) == 1  # at most once a minute
    assert "whatsapp webhook signature mismatch (account default)" in warned[0]
    service = running.runtime.channels.service
    assert service is not None
    ledger = await service.open_ledger()
    assert await ledger.counts("whatsapp", "default") == {}
    assert fake.numbers[PNID].sent == []
    metric = running.runtime.metrics.whatsapp_webhook_requests
    assert metric.labels(result="bad_signature")._value.get() == 2


async def test_a_dm_is_answered_once_however_often_meta_redelivers_it(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """CHANNELS 8.3.2: a repeated webhook yields one turn and one reply; the reply goes out
    through the Graph API, marked with our opaque data; a read receipt is sent."""
    fake, running, meta = await start(nursery, start_gateway, tmp_path)
    payload = meta.message(USER, "**what** is up?", "wamid.IN-dup")
    for _ in range(3):
        answer = await meta.deliver(payload)
        assert (answer.status_code, answer.text) == (200, "")
    await answered(running, "wamid.IN-dup")
    [reply] = fake.sent_to(PNID, USER)
    assert reply["type"] == "text"
    assert "You said:" in reply["text"]["body"]
    assert reply["text"]["preview_url"] is False
    assert reply["biz_opaque_callback_data"].endswith(":0")
    assert fake.numbers[PNID].reads == ["wamid.IN-dup"]
    service = running.runtime.channels.service
    assert service is not None
    row = await service.wait_final("wa:default:wamid.IN-dup")
    assert row.state == "done"
    runs = [r for r in (running.runtime.agents.find("wa:default:wamid.IN-dup"),) if r]
    assert len(runs) == 1
    duplicates = running.runtime.metrics.inbound_messages.labels(
        channel="whatsapp", result="duplicate"
    )._value.get()
    assert duplicates == 2


async def test_a_stranger_gets_a_pairing_code_and_approval_lets_them_in(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    fake, running, meta = await start(
        nursery, start_gateway, tmp_path, dmPolicy="pairing", allowFrom=[]
    )
    await meta.deliver(meta.message("4915112345678", "hi"))
    with trio.fail_after(20):
        await fake.wait_for(lambda: bool(fake.sent_to(PNID, "4915112345678")))
    text = fake.sent_to(PNID, "4915112345678")[0]["text"]["body"]
    assert "smart-agent-neo pairing approve whatsapp " in text
    code = text.split("Pairing code: ")[1][:8]
    approved = await call(
        running, "pairing.approve", {"channel": "whatsapp", "code": code, "notify": True}
    )
    assert approved["notified"] is True  # CHANNELS 3.5: --notify tells the sender (outbox)
    with trio.fail_after(20):
        await fake.wait_for(lambda: len(fake.sent_to(PNID, "4915112345678")) == 2)
    assert "approved" in fake.sent_to(PNID, "4915112345678")[1]["text"]["body"].lower()
    await meta.deliver(meta.message("4915112345678", "now?"))
    with trio.fail_after(20):
        await fake.wait_for(lambda: len(fake.sent_to(PNID, "4915112345678")) == 3)
    assert "You said:" in fake.sent_to(PNID, "4915112345678")[2]["text"]["body"]


async def test_statuses_move_delivery_forward_and_a_closed_window_fails_the_record(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """CHANNELS 8.3.12: delivered, read, a late delivered -> read; failed 131047 -> the
    record fails with the 24-hour-window hint."""
    _fake, running, meta = await start(nursery, start_gateway, tmp_path)
    sent = await call(
        running, "send", {"to": f"+{USER}", "message": "ping", "idempotencyKey": "st-1"}
    )
    assert (sent["deliveryState"], sent["toJid"]) == ("sent", f"{USER}@s.whatsapp.net")
    [record] = await settled(running, keys=["st-1"])
    opaque = f"{record.id}:0"
    for state in ("delivered", "read", "delivered"):
        await meta.deliver(meta.status(sent["messageId"], state, opaque))
    outbox = running.runtime.channels.outbox

    async def part_state(key: str) -> str | None:
        found = await outbox.lookup(key)
        assert found is not None
        return found.parts[0].delivery_state

    with trio.fail_after(20):
        while await part_state("st-1") != "read":
            await outbox.any_change().wait()
    await trio.sleep(0.2)
    assert await part_state("st-1") == "read"  # the late `delivered` did not undo it
    late = await call(
        running, "send", {"to": f"+{USER}", "message": "again", "idempotencyKey": "st-2"}
    )
    [second] = await settled(running, keys=["st-2"])
    errors = [
        {
            "code": 131047,
            "title": "Re-engagement message",
            "message": "Re-engagement message",
            "error_data": {
                "details": "Message failed to send because more than 24 hours have passed"
            },
        }
    ]
    await meta.deliver(meta.status(late["messageId"], "failed", f"{second.id}:0", errors))
    with trio.fail_after(20):
        while (await outbox.lookup("st-2")).state != "failed":  # type: ignore[union-attr]
            await outbox.any_change().wait()
    failed = await outbox.lookup("st-2")
    assert failed is not None
    assert "131047" in (failed.last_error or "")
    assert "they have to write first" in (failed.last_error or "")
    with pytest.raises(GatewayRpcError, match="131047"):
        await call(
            running, "send", {"to": f"+{USER}", "message": "again", "idempotencyKey": "st-2"}
        )


async def test_an_ambiguous_send_is_settled_by_its_status_webhook_without_a_resend(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path, idle_clock: MockClock
) -> None:
    """CHANNELS 8.3.3: the answer is cut off after Meta recorded the message; the status
    webhook carrying our opaque data settles the part: one copy, even under ``resend``."""
    fake, running, _meta = await start(nursery, start_gateway, tmp_path)
    fake.auto_statuses = ["sent", "delivered"]
    fake.drop_after_commit("messages")
    await call(running, "send", {"to": f"+{USER}", "message": "once", "idempotencyKey": "amb"})
    [record] = await settled(running, keys=["amb"])
    assert record.state == "sent"
    assert len(fake.sent_to(PNID, USER)) == 1
    assert record.parts[0].platform_message_id == fake.sent_to(PNID, USER)[0]["_wamid"]
    metric = running.runtime.metrics.outbox_sends.labels(result="ambiguous_resent")
    assert metric._value.get() == 0


async def test_without_a_status_the_grace_runs_out_and_the_policy_decides(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path, idle_clock: MockClock
) -> None:
    fake, running, _meta = await start(nursery, start_gateway, tmp_path)
    fake.drop_after_commit("messages")
    await call(running, "send", {"to": f"+{USER}", "message": "twice?", "idempotencyKey": "g"})
    [record] = await settled(running, keys=["g"])
    assert record.state == "sent"
    assert len(fake.sent_to(PNID, USER)) == 2  # resend: one extra copy, counted
    assert running.runtime.metrics.outbox_sends.labels(result="ambiguous_resent")._value.get() == 1


async def test_a_rejected_token_is_not_linked_and_send_refuses(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """CHANNELS 4.4, 8.3.11: 190 on the probe -> failed, linked false -> NOT_LINKED, nothing
    enqueued; the primary channel's linkChannel says so and /readyz is 503."""
    _fake, running, _meta = await start(
        nursery, start_gateway, tmp_path, number=False, state="failed"
    )
    slot = running.runtime.channels.slots[("whatsapp", "default")]
    assert slot.linked is False
    assert slot.last_error is not None
    assert "190" in slot.last_error
    with pytest.raises(GatewayRpcError) as caught:
        await call(running, "send", {"to": f"+{USER}", "message": "x", "idempotencyKey": "nl"})
    assert caught.value.code == "NOT_LINKED"
    assert caught.value.message.startswith("whatsapp not linked (account default): ")
    assert await running.runtime.channels.outbox.lookup("nl") is None
    health = await call(running, "health", {})
    assert health["linkChannel"]["id"] == "whatsapp"
    assert health["linkChannel"]["linked"] is False


async def test_a_token_revoked_during_a_send_fails_the_account_and_keeps_the_message(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """CHANNELS 4.4: a 190 during a send -> linked false, state failed; the outbox keeps
    the record pending for a new token."""
    fake, running, _meta = await start(nursery, start_gateway, tmp_path)
    fake.revoke(WA_TOKEN)
    answer = await call(
        running, "send", {"to": f"+{USER}", "message": "later", "idempotencyKey": "rv"}
    )
    assert answer["deliveryState"] == "queued"
    mgr = running.runtime.channels
    slot = mgr.slots[("whatsapp", "default")]
    with trio.fail_after(20):
        await mgr.wait_for(lambda: slot.state == "failed")
    assert slot.linked is False
    record = await mgr.outbox.lookup("rv")
    assert record is not None
    assert (record.state, record.last_error_class) == ("pending", "auth")


async def test_send_chunks_long_text_and_renders_whatsapp_marks(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    fake, running, _meta = await start(nursery, start_gateway, tmp_path)
    text = "# Report\n\n" + "\n\n".join(f"**item {i}** " + "word " * 500 for i in range(3))
    first = await call(
        running, "send", {"to": f"+{USER}", "message": text, "idempotencyKey": "long"}
    )
    again = await call(
        running, "send", {"to": f"+{USER}", "message": text, "idempotencyKey": "long"}
    )
    assert first == again
    bodies = [m["text"]["body"] for m in fake.sent_to(PNID, USER)]
    assert len(bodies) == 3  # 7,600 characters at textChunkLimit 4000, cut at paragraphs
    assert all(len(b) <= 4096 for b in bodies)
    assert bodies[0].startswith("*Report*")
    assert "*item 0*" in bodies[0] or "*item 0*" in bodies[1]
    assert first["messageId"] == fake.sent_to(PNID, USER)[-1]["_wamid"]


async def test_logout_unlinks_and_start_links_again(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """CHANNELS 2.5: channels.logout on WhatsApp Cloud stops the account, linked false,
    the credentials stay in the config."""
    _fake, running, _meta = await start(nursery, start_gateway, tmp_path)
    result = await call(running, "channels.logout", {"channel": "whatsapp"})
    assert result == {
        "channel": "whatsapp",
        "accountId": "default",
        "cleared": False,
        "loggedOut": True,
    }
    with pytest.raises(GatewayRpcError) as caught:
        await call(running, "send", {"to": f"+{USER}", "message": "x", "idempotencyKey": "lo"})
    assert caught.value.code == "NOT_LINKED"
    await call(running, "channels.start", {"channel": "whatsapp"})
    mgr = running.runtime.channels
    slot = mgr.slots[("whatsapp", "default")]
    with trio.fail_after(20):
        await mgr.wait_for(lambda: slot.state == "running")
    assert slot.linked is True
    status = await call(running, "channels.status", {"probe": True})
    [snap] = status["channelAccounts"]["whatsapp"]
    assert (snap["mode"], snap["linked"], snap["probe"]["ok"]) == ("cloud-api", True, True)
    assert snap["probe"]["phone"]["displayPhoneNumber"] == "+1 555-010-0001"


async def test_media_in_is_downloaded_and_the_agent_sees_it(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    fake, running, meta = await start(nursery, start_gateway, tmp_path)
    fake.add_media("media-in-1", b"\x89PNG fake", "image/png")
    await meta.deliver(
        meta.message(
            USER,
            None,
            "wamid.IMG",
            extra={
                "type": "image",
                "image": {"id": "media-in-1", "mime_type": "image/png", "caption": "look"},
            },
        )
    )
    await answered(running, "wamid.IMG")
    [reply] = fake.sent_to(PNID, USER)
    assert "<media:image>" in reply["text"]["body"]
    saved = list((tmp_path / "media" / "inbound").glob("wa-default-*.png"))
    assert [p.read_bytes() for p in saved] == [b"\x89PNG fake"]


async def test_a_webhook_for_another_number_is_ignored(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    fake, running, meta = await start(nursery, start_gateway, tmp_path)
    answer = await meta.deliver(meta.message(USER, "hi", phone_number_id="999"))
    assert answer.status_code == 200
    service = running.runtime.channels.service
    assert service is not None
    assert await (await service.open_ledger()).counts("whatsapp", "default") == {}
    bad = await meta.deliver({"object": "page", "entry": []})
    assert bad.status_code == 400
    assert fake.numbers[PNID].sent == []


@pytest.fixture
def idle_clock() -> MockClock:
    return MockClock(autojump_threshold=0.25)


async def test_a_telegram_token_change_leaves_whatsapp_alone(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """CHANNELS 8.3.10, FAILURE-MODES 13: a new botToken restarts only Telegram; WhatsApp's
    webhooks keep answering and its outbox keeps draining; the primary channel is WhatsApp."""
    from .channelkit import BOT_TOKEN, OTHER_TOKEN
    from .faketelegram import start_fake_telegram

    telegram = await start_fake_telegram(nursery)
    telegram.add_bot(BOT_TOKEN)
    telegram.add_bot(OTHER_TOKEN, username="other_bot")
    tg = {"telegram": {"botToken": BOT_TOKEN, "apiBaseUrl": telegram.base_url}}
    fake, running, meta = await start(nursery, start_gateway, tmp_path)
    document = wa_config(fake)
    document["channels"].update(tg)
    config, _ = parse(json.dumps(document), {})
    running.runtime.apply_settings(make_settings(tmp_path, config=config))
    mgr = running.runtime.channels
    with trio.fail_after(20):
        await mgr.wait_for(lambda: ("telegram", "default") in mgr.slots)
        await mgr.wait_for(lambda: mgr.slots[("telegram", "default")].state == "running")
    wa = mgr.slots[("whatsapp", "default")]
    wa_run = wa.transport
    document["channels"]["telegram"]["botToken"] = OTHER_TOKEN
    config, _ = parse(json.dumps(document), {})
    running.runtime.apply_settings(make_settings(tmp_path, config=config))
    await meta.deliver(meta.message(USER, "still here?", "wamid.ISO"))
    await answered(running, "wamid.ISO")
    assert len(fake.sent_to(PNID, USER)) == 1
    with trio.fail_after(20):
        await mgr.wait_for(
            lambda: (
                any(c.token == OTHER_TOKEN for c in telegram.calls_of("getMe"))
                and mgr.slots[("telegram", "default")].state == "running"
            )
        )
    assert (wa.transport, wa.restarts) == (wa_run, 0)
    health = await call(running, "health", {})
    assert health["linkChannel"]["id"] == "whatsapp"
    assert health["linkChannel"]["linked"] is True
    assert health["channelOrder"] == ["telegram", "whatsapp"]
