"""``smart-agent-neo agent``: a real CLI process against a gateway in this test's nursery."""

from __future__ import annotations

import json
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

    as_json = await agent_cli(tmp_path, running, "-m", "again", "--json")
    assert as_json.returncode == 0, as_json.stderr
    payload = json.loads(as_json.stdout)
    assert payload["status"] == "ok"
    assert payload["result"]["payloads"] == [{"text": "As JSON."}]

    failed = await agent_cli(tmp_path, running, "-m", "x")
    assert failed.returncode == 1
    assert failed.stderr.decode().strip() == (
        "UNAVAILABLE: provider fake returned HTTP 401: invalid api key"
    )

    timed_out = await agent_cli(tmp_path, running, "-m", "x", "--timeout", "1", "--json")
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

    args = build_parser().parse_args(["agent", "--message", "hi", "--thinking", "high"])
    assert build_params(args, "k")["thinking"] == "high"
    plain = build_parser().parse_args(["agent", "--message", "hi"])
    assert "thinking" not in build_params(plain, "k")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["agent", "--message", "hi", "--thinking", "lots"])
