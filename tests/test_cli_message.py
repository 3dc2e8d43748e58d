"""``smart-agent-neo message send``: a real CLI process against a gateway in this test's
nursery and FakeTelegram (OPERATIONS.md F.8)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import trio
from gateway_client import open_client

from .channelkit import BOT_TOKEN, OWNER, telegram_gateway
from .conftest import TOKEN, StartGateway
from .test_cli_process import cli_env


async def message_cli(
    home: Path, url: str, *args: str, token: str = TOKEN
) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(60):
        return await trio.run_process(
            [
                sys.executable,
                "-m",
                "gateway",
                "message",
                "send",
                "--url",
                url,
                "--token",
                token,
                *args,
            ],
            env=cli_env(home),
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )


async def test_message_send_delivers_once_however_often_it_is_retried(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """The issue's "done when": the same command, the same key, one Telegram message."""
    fake, running = await telegram_gateway(nursery, start_gateway, tmp_path)
    args = ("--channel", "telegram", "--target", str(OWNER), "--message", "hi")
    for _ in range(3):
        done = await message_cli(tmp_path, running.url, *args, "--idempotency-key", "cli-1")
        assert done.returncode == 0, done.stderr
        assert done.stdout.decode().strip() == f"Sent via Telegram to {OWNER} (message 1)."
    assert [m["text"] for m in fake.sent_to(BOT_TOKEN, OWNER)] == ["hi"]
    as_json = await message_cli(tmp_path, running.url, *args, "--json")
    payload = json.loads(as_json.stdout)
    assert (payload["deliveryState"], payload["messageId"]) == ("sent", "2")


async def test_message_send_reports_queued_refusals_and_a_file(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    fake, running = await telegram_gateway(nursery, start_gateway, tmp_path)
    photo = tmp_path / "note.txt"
    photo.write_text("a file")
    sent = await message_cli(tmp_path, running.url, "--target", str(OWNER), "--media", str(photo))
    assert sent.returncode == 0, sent.stderr
    document = fake.sent_to(BOT_TOKEN, OWNER)[0]["_params"]["document"]
    assert (document["filename"], document["data"]) == ("note.txt", b"a file")

    async with open_client(running.url, token=TOKEN) as client:
        await client.call("channels.stop", {"channel": "telegram"})
    queued = await message_cli(
        tmp_path, running.url, "--target", str(OWNER), "-m", "later", "--idempotency-key", "q1"
    )
    assert queued.returncode == 0, queued.stderr
    assert queued.stdout.decode().strip() == "Queued for delivery (q1)"

    bad = await message_cli(tmp_path, running.url, "--target", "bob", "-m", "x")
    assert bad.returncode == 1
    assert bad.stderr.decode().startswith('INVALID_REQUEST: invalid target for telegram: "bob"')
    empty = await message_cli(tmp_path, running.url, "--target", str(OWNER))
    assert empty.returncode == 1
    assert "--message or --media is required" in empty.stderr.decode()
    dry = await message_cli(tmp_path, running.url, "--target", "7", "-m", "x", "--dry-run")
    assert json.loads(dry.stdout)["params"]["to"] == "7"
    assert len(fake.calls_of("sendMessage")) == 0  # the file went as a document


async def test_message_send_fails_fast_when_the_gateway_is_down(tmp_path: Path) -> None:
    """OPERATIONS F.8: no direct channel fallback, no waiting for a gateway to appear."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = trio.current_time()
    down = await message_cli(tmp_path, f"ws://127.0.0.1:{port}", "--target", "1", "-m", "x")
    assert down.returncode == 1
    assert trio.current_time() - start < 20
    assert "Gateway target: ws://127.0.0.1:" in down.stderr.decode()
