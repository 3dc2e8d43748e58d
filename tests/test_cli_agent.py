"""``smart-agent-neo agent``: a real CLI process against a gateway in this test's nursery."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import trio

from gateway.app import Running

from .conftest import TOKEN, StartGateway, make_settings
from .fakeprovider import chat_sse, error_reply, start_fake_provider
from .test_agent_runs import provider_config
from .test_cli_process import cli_env


async def agent_cli(home: Path, running: Running, *args: str) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(30):
        return await trio.run_process(
            [
                sys.executable,
                "-m",
                "gateway",
                "agent",
                "--url",
                running.url,
                "--token",
                TOKEN,
                *args,
            ],
            env=cli_env(home),
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )


async def test_agent_cli_streams_the_reply_and_reports_errors(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    fake = await start_fake_provider(nursery)
    fake.queue(
        chat_sse("Streaming ", "from the ", "provider."),
        chat_sse("As JSON."),
        error_reply(401, "invalid api key"),
        chat_sse("too slow", hold_after=1),
    )
    running = await start_gateway(make_settings(tmp_path, config=provider_config(fake)))

    ok = await agent_cli(tmp_path, running, "--message", "hello", "--session", "cli-test")
    assert ok.returncode == 0, ok.stderr
    lines = ok.stdout.decode().splitlines()
    assert lines[0] == "Streaming from the provider."
    assert lines[1].startswith("run ")
    assert "fake/fake-model" in lines[1]
    assert fake.requests[0].body["messages"][-1] == {"role": "user", "content": "hello"}

    as_json = await agent_cli(tmp_path, running, "-m", "again", "--agent", "main", "--json")
    assert as_json.returncode == 0, as_json.stderr
    payload = json.loads(as_json.stdout)
    assert payload["status"] == "ok"
    assert payload["result"]["payloads"] == [{"text": "As JSON."}]

    failed = await agent_cli(tmp_path, running, "-m", "x", "--agent", "main")
    assert failed.returncode == 1
    assert failed.stderr.decode().strip() == (
        "UNAVAILABLE: provider fake returned HTTP 401: invalid api key"
    )

    timed_out = await agent_cli(
        tmp_path, running, "-m", "x", "--agent", "main", "--timeout", "1", "--json"
    )
    assert timed_out.returncode == 1
    error = json.loads(timed_out.stdout)
    assert error["ok"] is False
    assert error["error"]["code"] == "AGENT_TIMEOUT"
    assert error["payload"]["status"] == "error"

    unknown = await agent_cli(tmp_path, running, "-m", "x", "--agent", "ghost")
    assert unknown.returncode == 1
    assert b'unknown agent id "ghost"' in unknown.stderr


def test_thinking_is_passed_to_the_run_and_checked() -> None:
    """OPERATIONS F.9: ``--thinking off|minimal|low|medium|high|xhigh``."""
    import pytest

    from gateway.cli.agent import build_params
    from gateway.cli.main import build_parser

    args = build_parser().parse_args(
        ["agent", "--message", "hi", "--agent", "main", "--thinking", "high"]
    )
    assert build_params(args, "k")["thinking"] == "high"
    plain = build_parser().parse_args(["agent", "--message", "hi", "--to", "123"])
    assert "thinking" not in build_params(plain, "k")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["agent", "--message", "hi", "--thinking", "lots"])


def test_verbose_on_off_is_the_agent_commands_own() -> None:
    """OPERATIONS F.9: ``--verbose on|off`` after ``agent`` (not a store_true flag)."""
    import pytest

    from gateway.cli.main import build_parser

    args = build_parser().parse_args(
        ["agent", "--message", "hi", "--agent", "main", "--verbose", "on"]
    )
    assert args.agent_verbose == "on"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["agent", "-m", "hi", "--agent", "main", "--verbose", "loud"])


async def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(30):
        return await trio.run_process(
            [sys.executable, "-m", "gateway", *args],
            env=cli_env(home),
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )


async def test_agent_needs_a_selector(tmp_path: Path) -> None:
    """F.9: at least one of --to, --session-id, --agent; one line naming them, exit 1."""
    done = await _cli(tmp_path, "agent", "--message", "hi")
    assert done.returncode == 1
    line = done.stderr.decode().strip()
    assert "\n" not in line
    for flag in ("--to", "--session-id", "--agent"):
        assert flag in line


def _write_config(home: Path, config: dict[str, object]) -> None:
    state = home / ".smart-agent-neo"
    state.mkdir(parents=True, exist_ok=True)
    (state / "smart-agent-neo.json").write_text(json.dumps(config), encoding="utf-8")


async def test_agent_local_runs_embedded_without_a_gateway(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """F.9 ``--local``: no gateway anywhere; the same output shapes and the same transcript."""
    fake = await start_fake_provider(nursery)
    fake.queue(chat_sse("Local ", "reply."), chat_sse("As JSON."), chat_sse("Fell back."))
    # the config's port is bound here but never listens: connecting to it is refused
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    _write_config(
        tmp_path,
        {
            "gateway": {"mode": "local", "port": port},
            "models": {
                "providers": {
                    "fake": {
                        "baseUrl": fake.base_url,
                        "apiKey": "sk-test",
                        "api": "openai-completions",
                        "models": [{"id": "fake-model", "name": "Fake"}],
                    }
                }
            },
            "agents": {"defaults": {"model": {"primary": "fake/fake-model"}}},
        },
    )

    text = await _cli(tmp_path, "agent", "--local", "-m", "hello", "--session-id", "loc")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.decode().splitlines()
    assert lines[0] == "Local reply."
    assert lines[1].startswith("run ")
    assert "fake/fake-model" in lines[1]
    assert fake.requests[0].body["messages"][-1] == {"role": "user", "content": "hello"}
    transcripts = list((tmp_path / ".smart-agent-neo").rglob("*.jsonl"))
    assert any("Local reply." in p.read_text(encoding="utf-8") for p in transcripts)

    as_json = await _cli(tmp_path, "agent", "--local", "-m", "again", "--agent", "main", "--json")
    assert as_json.returncode == 0, as_json.stderr
    payload = json.loads(as_json.stdout)
    assert payload["status"] == "ok"
    assert payload["result"]["payloads"] == [{"text": "As JSON."}]

    unknown = await _cli(tmp_path, "agent", "--local", "-m", "x", "--agent", "ghost")
    assert unknown.returncode == 1
    assert b'unknown agent id "ghost"' in unknown.stderr

    # no --local and no gateway listening: the embedded run, with a note on stderr
    fallback = await _cli(tmp_path, "agent", "-m", "hi", "--agent", "main")
    assert fallback.returncode == 0, fallback.stderr
    assert fallback.stdout.decode().splitlines()[0] == "Fell back."
    note = fallback.stderr.decode().strip().splitlines()
    assert len(note) == 1
    assert "running the agent locally" in note[0]
    closed.close()
