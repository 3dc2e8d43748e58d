"""``smart-agent-neo logs`` and the gateway process's logging, as a user runs them.

The follow test runs the CLI as a real process against an in-process gateway that is
stopped and started again on the same port and state dir.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio
from gateway_client import GatewayConnectError, open_client

from gateway.app import Running, serve
from gateway.config.settings import Settings

from .conftest import TOKEN, make_settings
from .logkit import capture_logs
from .test_cli_process import cli_env, ctrl_c_works, gateway_process, run_cli


class Lines:
    """Reads a subprocess's stdout line by line."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.buffer = b""
        self.seen: list[str] = []

    async def next(self) -> str:
        while b"\n" not in self.buffer:
            chunk = await self.stream.receive_some(65536)
            assert chunk, f"process closed its output; saw: {self.seen}"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        text = line.decode()
        self.seen.append(text)
        return text

    async def until(self, predicate: Any, timeout: float = 15) -> dict[str, Any]:
        with trio.fail_after(timeout):
            while True:
                record: dict[str, Any] = json.loads(await self.next())
                if predicate(record):
                    return record


@asynccontextmanager
async def gateway_at(settings: Settings) -> AsyncIterator[Running]:
    async with trio.open_nursery() as nursery:
        running: Running = await nursery.start(serve, settings)
        try:
            yield running
        finally:
            running.stop()


async def system_event(url: str, text: str) -> None:
    async with open_client(url, token=TOKEN) as client:
        await client.call("system-event", {"text": text})


def has_text(text: str) -> Any:
    return lambda r: r.get("type") == "log" and (r.get("fields") or {}).get("text") == text


def notice(fragment: str) -> Any:
    return lambda r: r.get("type") == "notice" and fragment in r.get("message", "")


async def test_logs_follow_sees_new_lines_and_survives_a_restart(tmp_path: Path) -> None:
    """OPERATIONS.md F.4 / K.9: `logs --follow` reconnects after a gateway restart."""
    settings = make_settings(tmp_path)
    with capture_logs(settings, verbose=False):
        stderr_path = tmp_path / "cli-stderr.txt"
        async with gateway_at(settings) as first:
            port = first.port
            with stderr_path.open("wb") as stderr_file:  # the child keeps its own copy
                cli = await trio.lowlevel.open_process(
                    [
                        sys.executable,
                        "-m",
                        "gateway",
                        "logs",
                        "--follow",
                        "--json",
                        "--interval",
                        "200",
                        "--url",
                        first.url,
                        "--token",
                        TOKEN,
                    ],
                    env=cli_env(tmp_path, PYTHONFAULTHANDLER="1"),
                    stdout=subprocess.PIPE,
                    stderr=stderr_file,
                    preexec_fn=ctrl_c_works,
                )
            assert cli.stdout is not None
            out = Lines(cli.stdout)
            try:
                meta = await out.until(lambda r: r["type"] == "meta")
                assert meta["file"].startswith(str(tmp_path / "logs"))
                await system_event(first.url, "before the restart")
                await out.until(has_text("before the restart"))
                first.stop("restart for test")
                # the gateway is gone: the follower says so and keeps trying
                await out.until(notice("gateway unavailable"))
                async with gateway_at(attrs.evolve(settings, port=port)) as second:
                    await out.until(notice("gateway reconnected"))
                    await system_event(second.url, "after the restart")
                    record = await out.until(has_text("after the restart"))
                    assert record["level"] == "info"
                    assert record["subsystem"] == "gateway"
            finally:
                cli.send_signal(signal.SIGINT)
                with trio.move_on_after(10):
                    code = await cli.wait()
                if cli.returncode is None:  # a hang: show where (faulthandler dumps on SIGABRT)
                    status = await trio.Path(f"/proc/{cli.pid}/status").read_text()
                    masks = [ln for ln in status.splitlines() if ln.startswith(("Sig", "ShdPnd"))]
                    cli.send_signal(signal.SIGABRT)
                    with trio.move_on_after(5):
                        await cli.wait()
                    cli.kill()
                    await cli.wait()
                    raise AssertionError(
                        f"logs --follow ignored Ctrl-C for 10 s; signal masks {masks}; stderr:\n"
                        + stderr_path.read_text(errors="replace")[-6000:]
                    )
            assert code == 130
    # the line from before the restart was printed once, not replayed after reconnecting
    assert sum("before the restart" in line for line in out.seen) == 1


async def test_logs_prints_human_lines_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with capture_logs(settings, verbose=False):
        async with gateway_at(settings) as running:
            await system_event(running.url, "hello from the test")
            args = ["logs", "--plain", "--utc", "--url", running.url, "--token", TOKEN]
            result = await trio.to_thread.run_sync(lambda: run_cli(tmp_path, *args))
    assert result.returncode == 0, result.stderr
    (line,) = [x for x in result.stdout.splitlines() if "hello from the test" in x]
    assert line.endswith("Z [gateway] system event text=hello from the test")
    assert "\x1b[" not in result.stdout


def test_logs_bad_arguments_are_one_line_errors(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "logs", "--limit", "0")
    assert result.returncode == 1
    assert result.stderr.strip() == "--limit: expected an integer 1-5000, got 0"
    no_creds = run_cli(tmp_path, "logs", "--url", "ws://127.0.0.1:9")
    assert no_creds.returncode == 1
    assert "requires explicit credentials" in no_creds.stderr
    assert "Traceback" not in result.stderr + no_creds.stderr


def test_logs_reads_the_local_file_when_the_gateway_is_down(tmp_path: Path) -> None:
    logs_dir = tmp_path / ".smart-agent-neo" / "logs"
    logs_dir.mkdir(parents=True)
    from datetime import date

    row = {
        "ts": "2026-01-01T10:00:00.000+00:00",
        "level": "warn",
        "subsystem": "gateway",
        "msg": "old news",
    }
    (logs_dir / f"smart-agent-neo-{date.today():%Y-%m-%d}.log").write_text(json.dumps(row) + "\n")
    port = _free_port()
    result = run_cli(tmp_path, "logs", "--json", SMART_AGENT_NEO_GATEWAY_PORT=str(port))
    assert result.returncode == 0, result.stderr
    records = [json.loads(x) for x in result.stdout.splitlines()]
    assert records[0]["type"] == "notice"
    assert "reading the local file" in records[0]["message"]
    assert records[-1]["message"] == "old news"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_gateway_process_logs_to_its_state_dir_without_secrets(tmp_path: Path) -> None:
    """The CLI run path: file under <state dir>/logs, --verbose console, no token anywhere."""
    secret = "process-flag-token-24680"
    async with gateway_process(
        tmp_path, "gateway", "--allow-unconfigured", "--port", "0", "--token", secret, "--verbose"
    ) as proc:
        with trio.fail_after(10):
            try:
                async with open_client(proc.url, token="a-wrong-token-13579"):
                    pass
            except GatewayConnectError:
                pass
            async with open_client(proc.url, token=secret) as client:
                await client.call("system-event", {"text": f"token is {secret}"})
        code, _ = await proc.stop()
        console = await proc.all_output()
    assert code == 0
    assert "debug [ws] connect frame" in console  # --verbose mirrors debug
    assert "warn [ws] auth failed" in console
    (log,) = (tmp_path / ".smart-agent-neo" / "logs").glob("smart-agent-neo-*.log")
    text = log.read_text()
    assert '"message":"auth failed"' in text
    assert '"message":"system event"' in text
    for where in (console, text):
        assert secret not in where
        assert "a-wrong-token-13579" not in where


def test_invalid_log_level_env_is_a_clear_error(tmp_path: Path) -> None:
    result = run_cli(
        tmp_path, "gateway", "--allow-unconfigured", "--port", "0", SMART_AGENT_NEO_LOG_LEVEL="loud"
    )
    assert result.returncode == 1
    assert "SMART_AGENT_NEO_LOG_LEVEL: expected one of" in result.stderr
    assert '"loud"' in result.stderr
    assert "Traceback" not in result.stderr
    assert os.environ.get("SMART_AGENT_NEO_LOG_LEVEL") is None


async def test_logs_follow_reads_a_new_file_from_its_start(tmp_path: Path) -> None:
    """When the gateway starts writing another file (a new day, or logging.file changed), the
    follower does not apply the old file's cursor to it: it reads the new file from its start."""
    settings = make_settings(tmp_path)
    log = logging.getLogger("gateway")
    with capture_logs(settings, verbose=False):
        async with gateway_at(settings) as running:
            cli = await trio.lowlevel.open_process(
                [
                    sys.executable,
                    "-m",
                    "gateway",
                    "logs",
                    "-f",
                    "--json",
                    "--interval",
                    "100",
                    "--url",
                    running.url,
                    "--token",
                    TOKEN,
                ],
                env=cli_env(tmp_path),
                stdout=subprocess.PIPE,
                preexec_fn=ctrl_c_works,
            )
            assert cli.stdout is not None
            out = Lines(cli.stdout)
            try:
                old = await out.until(lambda r: r["type"] == "meta")
                rt = running.runtime
                config = rt.settings.config
                moved = attrs.evolve(config.logging, file=str(tmp_path / "elsewhere") + "/")
                rt.settings = attrs.evolve(rt.settings, config=attrs.evolve(config, logging=moved))
                # all at once, without yielding: the next poll finds the new file already
                # longer than the old cursor, so only the file name tells it apart
                for i in range(30):
                    log.info("new file", extra={"text": f"new line {i}"})
                meta = await out.until(lambda r: r["type"] == "meta" and "elsewhere" in r["file"])
                assert meta["size"] > old["cursor"]
                assert meta["reset"] is False
                for i in range(30):
                    await out.until(has_text(f"new line {i}"))
            finally:
                cli.send_signal(signal.SIGINT)
                with trio.fail_after(10):
                    await cli.wait()
