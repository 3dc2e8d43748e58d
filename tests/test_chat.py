"""WebChat over a live gateway: chat.send / chat.abort / chat.inject, the ``chat`` event and
chat.history's additions (PROTOCOL.md 7.8, 8; CONTROL-UI.md 6). Pure parts first.

The model is a real HTTP server on loopback speaking the OpenAI stream format
(``fakeprovider.py``), or the built-in offline model; the gateway's provider code is unchanged.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.lowlevel
from gateway_client import GatewayRpcError, open_client

from gateway.agent import attachments, chattext
from gateway.agent.chatstream import ChatStream
from gateway.app import Running
from gateway.protocol.chat import Attachment, ChatEventPayload
from gateway.protocol.codec import to_wire

from .conftest import TOKEN, StartGateway, make_settings
from .fakeprovider import FakeProvider, chat_sse, start_fake_provider
from .test_agent_runs import provider_config

MAIN = "agent:main:main"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


# -- pure: text rules, stop words, attachments, the delta throttle -------------------------


def test_text_is_nfc_without_control_characters_and_nul_is_refused() -> None:
    assert chattext.normalize("cafe\u0301") == "caf\u00e9"
    assert chattext.normalize("a\x01b\x1b[31mc\x7fd\x85e") == "ab[31mcde"
    assert chattext.normalize("tab\tlf\ncr\r") == "tab\tlf\ncr\r"
    with pytest.raises(chattext.ChatTextError, match=r"^message must not contain null bytes$"):
        chattext.normalize("a\x00b")


@pytest.mark.parametrize("text", ["/stop", " STOP ", "abort", "Wait!", "exit.", "interrupt", "esc"])
def test_stop_commands(text: str) -> None:
    assert chattext.is_stop_command(text)


@pytest.mark.parametrize("text", ["stop it", "/stopping", "please stop", "", "don't wait"])
def test_not_stop_commands(text: str) -> None:
    assert not chattext.is_stop_command(text)


def test_attachments_are_sorted_into_images_and_text() -> None:
    png = base64.b64encode(PNG).decode()
    note = base64.b64encode("héllo\n".encode()).decode()
    parts = attachments.parse(
        [
            Attachment(content=f"data:image/png;base64,{png}", file_name="a.png"),
            Attachment(content=note, file_name="notes.txt"),
            Attachment(content=png),  # no type given: sniffed
        ]
    )
    assert [type(p).__name__ for p in parts] == ["ImagePart", "TextPart", "ImagePart"]
    assert parts[0].mime_type == "image/png"
    assert parts[0].size == len(PNG)
    assert parts[1] == attachments.TextPart("text/plain", "héllo\n", 7, "notes.txt")
    text = attachments.model_text("look", parts)
    assert text == "look\n\nAttached file notes.txt (text/plain):\nhéllo\n"
    assert attachments.record(parts)[0] == {
        "type": "image",
        "mimeType": "image/png",
        "bytes": len(PNG),
        "fileName": "a.png",
    }


@pytest.mark.parametrize(
    ("attachment", "problem"),
    [
        (Attachment(content="!!not base64!!"), "attachments[0].content: not valid base64"),
        (
            Attachment(content=base64.b64encode(b"%PDF-1.4").decode(), file_name="x.pdf"),
            'attachments[0] ("x.pdf"): application/pdf is not supported',
        ),
        (
            Attachment(content=base64.b64encode(b"\xff\xfe").decode(), mime_type="text/plain"),
            "attachments[0]: text file is not valid UTF-8",
        ),
        (
            Attachment(
                content=base64.b64encode(PNG + b"\x00" * attachments.MAX_IMAGE_BYTES).decode()
            ),
            "attachments[0]: image is",
        ),
    ],
)
def test_bad_attachments_name_the_problem(attachment: Attachment, problem: str) -> None:
    with pytest.raises(attachments.AttachmentError) as raised:
        attachments.parse([attachment])
    assert str(raised.value).startswith(problem)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _stream(clock: _Clock) -> tuple[ChatStream, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []

    def emit(payload: ChatEventPayload) -> None:
        wire = to_wire(payload)
        assert isinstance(wire, dict)
        sent.append(wire)

    return ChatStream("r1", MAIN, "main", emit, lambda: 1000, clock), sent


def test_deltas_are_throttled_and_the_end_flushes_what_is_held() -> None:
    clock = _Clock()
    stream, sent = _stream(clock)
    stream.add("Hel")  # first: sent at once
    clock.now = 0.01
    stream.add("lo")  # within 50 ms: held
    stream.add(" wor")
    clock.now = 0.07
    stream.add("ld")  # interval up: sends everything held
    stream.step_done()
    stream.add("Next.")  # new step: a paragraph break, held
    stream.final(None, "stop")
    stream.final(None, "stop")  # a second end is ignored
    assert [(e["seq"], e["state"], e.get("deltaText")) for e in sent] == [
        (1, "delta", "Hel"),
        (2, "delta", "lo world"),
        (3, "delta", "\n\nNext."),
        (4, "final", None),
    ]
    assert sent[1]["message"] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "Hello world"}],
        "timestamp": 1000,
    }
    assert sent[3]["message"]["content"][0]["text"] == "Hello world\n\nNext."
    stream.add("late")
    assert len(sent) == 4


def test_aborted_and_error_carry_the_partial_text_when_there_is_any() -> None:
    stream, sent = _stream(_Clock())
    stream.aborted("aborted")
    assert sent == [
        {
            "runId": "r1",
            "sessionKey": MAIN,
            "seq": 1,
            "state": "aborted",
            "agentId": "main",
            "stopReason": "aborted",
        }
    ]
    stream, sent = _stream(_Clock())
    stream.add("half")
    stream.error("provider down", "rate_limit")
    assert sent[-1]["state"] == "error"
    assert sent[-1]["errorKind"] == "rate_limit"
    assert sent[-1]["message"]["content"][0]["text"] == "half"


async def test_the_flusher_sends_held_text_when_the_model_pauses(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sent: list[str] = []

    def emit(payload: ChatEventPayload) -> None:
        sent.append(payload.delta_text or payload.state)

    stream = ChatStream("r1", MAIN, "main", emit, lambda: 0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stream.run_flusher)
        stream.add("a")
        stream.add("b")  # held: the model then says nothing for a while
        await trio.sleep(1)
        assert sent == ["a", "b"]
        stream.final(None, "stop")
    assert sent == ["a", "b", "final"]


# -- over the wire ----------------------------------------------------------------------------


def _client(running: Running) -> Any:
    return open_client(running.url, token=TOKEN)


async def _collect(
    events: trio.MemoryReceiveChannel[dict[str, Any]], run_id: str
) -> list[dict[str, Any]]:
    """The run's ``chat`` payloads up to and including its last one."""
    out: list[dict[str, Any]] = []
    async for frame in events:
        payload = frame.get("payload") or {}
        if frame.get("event") == "chat" and payload.get("runId") == run_id:
            out.append(payload)
            if payload["state"] != "delta":
                return out
    return out


async def test_chat_send_streams_deltas_then_final_and_history_matches(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    fake = await start_fake_provider(nursery)
    fake.queue(chat_sse("Hello", " there", ", friend."))
    running = await start_gateway(make_settings(tmp_path, config=provider_config(fake)))
    async with _client(running) as c, c.subscribe({"chat", "agent"}) as events:
        with trio.fail_after(10):
            ack = await c.call(
                "chat.send", {"sessionKey": MAIN, "message": "hi", "idempotencyKey": "run-1"}
            )
            chat = await _collect(events, "run-1")
            history = await c.call("chat.history", {"sessionKey": "main"})
            again = await c.call(
                "chat.send", {"sessionKey": MAIN, "message": "hi", "idempotencyKey": "run-1"}
            )
    assert ack == {"runId": "run-1", "status": "started"}
    assert again == {"runId": "run-1", "status": "ok"}
    deltas = [e for e in chat if e["state"] == "delta"]
    assert deltas, chat
    assert "".join(e["deltaText"] for e in deltas) == "Hello there, friend."
    assert [e["seq"] for e in chat] == list(range(1, len(chat) + 1))
    for e in deltas:  # each delta carries the cumulative message too
        assert e["message"]["content"][0]["text"].endswith(e["deltaText"])
        assert e["sessionKey"] == MAIN
    final = chat[-1]
    assert final["state"] == "final"
    assert final["message"]["content"] == [{"type": "text", "text": "Hello there, friend."}]
    assert final["usage"] == {"input": 11, "output": 7, "total": 18}
    texts = [(m["role"], m["content"][0]["text"]) for m in history["messages"]]
    assert texts == [("user", "hi"), ("assistant", "Hello there, friend.")]
    assert "inFlightRun" not in history


async def test_text_is_cleaned_and_nul_refused_over_the_wire(gateway: Running) -> None:
    async with _client(gateway) as c:
        with pytest.raises(GatewayRpcError) as nul:
            await c.call(
                "chat.send", {"sessionKey": "main", "message": "a\x00", "idempotencyKey": "n"}
            )
        with pytest.raises(GatewayRpcError) as empty:
            await c.call(
                "chat.send", {"sessionKey": "main", "message": " \x01 ", "idempotencyKey": "e"}
            )
        with pytest.raises(GatewayRpcError) as missing:
            await c.call("chat.send", {"sessionKey": "main", "message": "x"})
        await c.call(
            "chat.send",
            {"sessionKey": "main", "message": "cafe\u0301 \x1b[1mbold", "idempotencyKey": "ok"},
        )
        await c.call("agent.wait", {"runId": "ok"})
        history = await c.call("chat.history", {"sessionKey": "main"})
    assert (nul.value.code, nul.value.message) == (
        "INVALID_REQUEST",
        "message must not contain null bytes",
    )
    assert empty.value.message == "message or attachment required"
    assert missing.value.message.startswith("invalid chat.send params:")
    assert history["messages"][0]["content"][0]["text"] == "caf\u00e9 [1mbold"


async def _held_run(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> tuple[FakeProvider, Running]:
    fake = await start_fake_provider(nursery)
    fake.queue(chat_sse("partial ", "words", " never", hold_after=3))
    running = await start_gateway(make_settings(tmp_path, config=provider_config(fake)))
    return fake, running


async def test_in_flight_duplicate_history_and_chat_abort(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """A held run: a repeated key is ``in_flight``; chat.history shows ``inFlightRun``;
    chat.abort stops it, the partial text is kept with abort metadata, ``aborted`` is sent."""
    fake, running = await _held_run(nursery, start_gateway, tmp_path)
    send = {"sessionKey": "main", "message": "go", "idempotencyKey": "held"}
    async with _client(running) as c, c.subscribe({"chat"}) as events:
        with trio.fail_after(10):
            await c.call("chat.send", send)
            await fake.streaming.wait()
            dup = await c.call("chat.send", send)
            during = await c.call("chat.history", {"sessionKey": MAIN})
            with pytest.raises(GatewayRpcError) as other:
                await c.call("chat.abort", {"sessionKey": "agent:main:elsewhere", "runId": "held"})
            unknown = await c.call("chat.abort", {"sessionKey": "main", "runId": "nope"})
            aborted = await c.call("chat.abort", {"sessionKey": "main", "runId": "held"})
            chat = await _collect(events, "held")
            after = await c.call("chat.history", {"sessionKey": "main"})
            again = await c.call("chat.abort", {"sessionKey": "main"})
    assert dup == {"runId": "held", "status": "in_flight"}
    assert during["inFlightRun"] == {"runId": "held", "text": "partial words"}
    assert during["sessionInfo"] == {"hasActiveRun": True, "activeRunIds": ["held"]}
    assert other.value.message == "runId does not match sessionKey"
    assert unknown == {"ok": True, "aborted": False, "runIds": []}
    assert aborted == {"ok": True, "aborted": True, "runIds": ["held"]}
    assert again == {"ok": True, "aborted": False, "runIds": []}
    assert chat[-1]["state"] == "aborted"
    assert chat[-1]["stopReason"] == "aborted"
    assert chat[-1]["message"]["content"][0]["text"] == "partial words"
    partial = after["messages"][1]
    assert partial["content"][0]["text"] == "partial words"
    assert partial["stopReason"] == "aborted"
    assert partial["abort"] == {"aborted": True, "origin": "rpc", "runId": "held"}


async def test_stop_command_aborts_the_sessions_runs(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    fake, running = await _held_run(nursery, start_gateway, tmp_path)
    async with _client(running) as c:
        with trio.fail_after(10):
            await c.call(
                "chat.send", {"sessionKey": "main", "message": "go", "idempotencyKey": "a"}
            )
            await fake.streaming.wait()
            stopped = await c.call(
                "chat.send", {"sessionKey": "main", "message": "/stop", "idempotencyKey": "b"}
            )
            history = await c.call("chat.history", {"sessionKey": "main"})
    assert stopped == {"ok": True, "aborted": True, "runIds": ["a"]}
    assert history["messages"][1]["abort"]["origin"] == "stop-command"
    assert len(fake.requests) == 1  # "/stop" never reached the model


async def test_chat_inject_appends_a_note_and_emits_final(gateway: Running) -> None:
    async with _client(gateway) as c, c.subscribe({"chat"}) as events:
        with trio.fail_after(10):
            result = await c.call(
                "chat.inject", {"sessionKey": "main", "message": "Backup done.", "label": "cron"}
            )
            async for frame in events:
                event = frame["payload"]
                break
            history = await c.call("chat.history", {"sessionKey": "main"})
    assert result["ok"] is True
    assert event["state"] == "final"
    assert event["sessionKey"] == MAIN
    assert event["message"]["content"][0]["text"] == "Backup done."
    (note,) = history["messages"]
    assert note["role"] == "assistant"
    assert note["label"] == "cron"
    assert note["id"] == result["messageId"]


async def test_attachments_reach_the_model_in_its_own_format(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    fake = await start_fake_provider(nursery)
    fake.queue(chat_sse("nice picture"))
    running = await start_gateway(make_settings(tmp_path, config=provider_config(fake)))
    png = base64.b64encode(PNG).decode()
    note = base64.b64encode(b"line one\n").decode()
    async with _client(running) as c:
        with trio.fail_after(10):
            await c.call(
                "chat.send",
                {
                    "sessionKey": "main",
                    "message": "what is this?",
                    "idempotencyKey": "att",
                    "deliver": False,
                    "attachments": [
                        {
                            "type": "image",
                            "mimeType": "image/png",
                            "fileName": "p.png",
                            "content": png,
                        },
                        {"mimeType": "text/plain", "fileName": "n.txt", "content": note},
                    ],
                },
            )
            await c.call("agent.wait", {"runId": "att"})
            with pytest.raises(GatewayRpcError) as bad:
                await c.call(
                    "chat.send",
                    {
                        "sessionKey": "main",
                        "message": "x",
                        "idempotencyKey": "bad",
                        "attachments": [{"content": "%%%"}],
                    },
                )
            history = await c.call("chat.history", {"sessionKey": "main"})
    user = fake.requests[0].body["messages"][-1]
    assert user["role"] == "user"
    assert user["content"][0] == {
        "type": "text",
        "text": "what is this?\n\nAttached file n.txt (text/plain):\nline one\n",
    }
    assert user["content"][1] == {
        "type": "image_url",
        "image_url": {"url": f"data:image/png;base64,{png}"},
    }
    assert bad.value.message == "invalid chat.send params: attachments[0].content: not valid base64"
    blocks = history["messages"][0]["content"]
    assert blocks[0] == {"type": "text", "text": "what is this?"}
    assert blocks[1] == {
        "type": "image",
        "mimeType": "image/png",
        "bytes": len(PNG),
        "fileName": "p.png",
        "omitted": True,
    }
    assert blocks[2]["text"] == "Attached file n.txt:\nline one\n"
    assert json.dumps(history).find(png) == -1  # image data never comes back


async def test_agent_runs_in_a_session_reach_webchat_too(gateway: Running) -> None:
    """A run started by ``agent`` (the CLI, a channel) streams into an open WebChat."""
    async with _client(gateway) as c, c.subscribe({"chat"}) as events:
        with trio.fail_after(10):
            await c.call(
                "agent", {"message": "ping", "idempotencyKey": "cli-run"}, expect_final=True
            )
            chat = await _collect(events, "cli-run")
    assert chat[-1]["state"] == "final"
    assert chat[-1]["sessionKey"] == MAIN
    assert "You said: ping" in chat[-1]["message"]["content"][0]["text"]


async def test_deliver_sends_the_reply_to_the_sessions_channel_route(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """``deliver:true`` sends the reply out through the chat the session last talked to;
    without it (or without a route) the reply stays in the gateway."""
    from .channelkit import BOT_TOKEN, OWNER, start_with_telegram, wait_state
    from .faketelegram import start_fake_telegram

    fake = await start_fake_telegram(nursery)
    fake.add_bot(BOT_TOKEN)
    running = await start_with_telegram(
        start_gateway, tmp_path, fake, dmPolicy="allowlist", allowFrom=[str(OWNER)]
    )
    await wait_state(running, "running")
    async with _client(running) as c:
        with trio.fail_after(20):
            # a session no channel has talked to: nowhere to deliver
            await c.call(
                "chat.send",
                {"sessionKey": "agent:main:desk", "message": "x", "idempotencyKey": "d0",
                 "deliver": True},
            )  # fmt: skip
            await c.call("agent.wait", {"runId": "d0"})
            fake.message(BOT_TOKEN, "hello from telegram", user_id=OWNER)  # main's route
            await fake.wait_for(lambda: len(fake.sent_to(BOT_TOKEN, OWNER)) == 1)
            await c.call(
                "chat.send",
                {"sessionKey": "main", "message": "kept here", "idempotencyKey": "d1"},
            )
            await c.call("agent.wait", {"runId": "d1"})
            await c.call(
                "chat.send",
                {"sessionKey": "main", "message": "send it out", "idempotencyKey": "d2",
                 "deliver": True},
            )  # fmt: skip
            await fake.wait_for(lambda: len(fake.sent_to(BOT_TOKEN, OWNER)) == 2)
    texts = [m["text"] for m in fake.sent_to(BOT_TOKEN, OWNER)]
    assert "hello from telegram" in texts[0]
    assert "send it out" in texts[1]
    assert not any("kept here" in t or "You said: x" in t for t in texts)


async def test_deliver_without_any_channel_keeps_the_reply_and_the_gateway(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """``deliver:true`` on a gateway with no channel (the channel database never opened):
    nowhere to deliver, the reply stays in the gateway, and nothing breaks."""
    running = await start_gateway(make_settings(tmp_path))
    async with _client(running) as c:
        with trio.fail_after(20):
            await c.call(
                "chat.send",
                {"sessionKey": "main", "message": "x", "idempotencyKey": "n0", "deliver": True},
            )
            await c.call("agent.wait", {"runId": "n0"})
            listed = await c.call("sessions.list")
            assert listed["sessions"]
            assert "lastRoute" not in listed["sessions"][0]
            await trio.lowlevel.checkpoint()  # let the delivery task look for a route
            assert (await c.call("health"))["ok"] is True
