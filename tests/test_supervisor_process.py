"""The process supervisor with real processes, where signals and process identity matter
(FAILURE-MODES 1, 2, 3, 4, 6, 9)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio
from gateway_client import open_client

from .conftest import in_thread
from .test_cli_process import gateway_process, run_cli
from .test_supervisor import shutdown_watcher

TOK = "tok-lifecycle-0123456789"


def write_config(home: Path, **gateway: Any) -> Path:
    state = home / ".smart-agent-neo"
    state.mkdir(parents=True, exist_ok=True)
    path = state / "smart-agent-neo.json"
    path.write_text(json.dumps({"gateway": {"mode": "local", "auth": {"token": TOK}, **gateway}}))
    return path


async def status(url: str) -> dict[str, Any]:
    async with open_client(url, token=TOK) as client:
        result: dict[str, Any] = await client.call("status")
        return result


async def test_sigusr1_restarts_in_place(tmp_path: Path) -> None:
    """Same PID, clients get shutdown + restartExpectedMs + 1012, then it serves again."""
    write_config(tmp_path)
    async with gateway_process(tmp_path, "gateway", "--port", "0") as proc:
        ready, watch = shutdown_watcher(proc.url, TOK)
        async with trio.open_nursery() as nursery:
            seen: list[tuple[dict[str, Any], int]] = []

            async def run_watch() -> None:
                seen.append(await in_thread(watch))

            nursery.start_soon(run_watch)
            await trio.to_thread.run_sync(ready.wait)
            proc.process.send_signal(signal.SIGUSR1)
            await proc.wait_for("in-process restart #1")
        payload, code = seen[0]
        assert payload == {"reason": "gateway restarting", "restartExpectedMs": 1500}
        assert code == 1012
        # --port 0 pins the port to "any": the restart binds a fresh one; the log says which
        line = next(ln for ln in proc.text.splitlines() if "in-process restart #1" in ln)
        url = line.split("serving again on ", 1)[1].split(" ", 1)[0]
        after = await status(url)
        assert after["gateway"]["pid"] == proc.process.pid
        assert after["config"]["restarts"] == 1
        code2, _ = await proc.stop()
        assert code2 == 0


async def test_sigusr1_is_ignored_when_commands_restart_is_false(tmp_path: Path) -> None:
    """FAILURE-MODES 6: the restart guard holds."""
    path = write_config(tmp_path)
    body = json.loads(path.read_text())
    body["commands"] = {"restart": False}
    path.write_text(json.dumps(body))
    async with gateway_process(tmp_path, "gateway", "--port", "0") as proc:
        proc.process.send_signal(signal.SIGUSR1)
        await proc.wait_for("SIGUSR1 restart ignored")
        assert (await status(proc.url))["config"]["restarts"] == 0
        code, _ = await proc.stop()
        assert code == 0


async def test_second_instance_on_the_same_config_is_refused(tmp_path: Path) -> None:
    write_config(tmp_path)
    async with gateway_process(tmp_path, "gateway", "--port", "0") as proc:
        second = await trio.to_thread.run_sync(lambda: run_cli(tmp_path, "gateway", "--port", "0"))
        assert second.returncode == 1  # D.1: a lock conflict is a failed start
        assert f"gateway already running (pid {proc.process.pid})" in second.stderr
        supervised = await trio.to_thread.run_sync(
            lambda: run_cli(tmp_path, "gateway", "--port", "0", INVOCATION_ID="0123abcd")
        )
        assert supervised.returncode == 78  # a systemd unit: RestartPreventExitStatus=78
        assert "Traceback" not in second.stderr
        code, _ = await proc.stop()
        assert code == 0


async def test_lock_is_reclaimed_after_sigkill(tmp_path: Path) -> None:
    """FAILURE-MODES 1: a crash leaves no lock that blocks the next start."""
    write_config(tmp_path)
    async with gateway_process(tmp_path, "gateway", "--port", "0") as proc:
        proc.process.kill()
        with trio.fail_after(10):
            await proc.process.wait()
    locks = list((tmp_path / ".smart-agent-neo").glob("gateway.*.lock"))
    assert len(locks) == 1  # the file is left behind ...
    async with gateway_process(tmp_path, "gateway", "--port", "0") as again:  # ... and harmless
        assert (await status(again.url))["gateway"]["pid"] == again.process.pid
        code, _ = await again.stop()
        assert code == 0


async def test_force_stops_our_own_gateway(tmp_path: Path) -> None:
    """FAILURE-MODES 2: --force frees the port from a verified gateway of ours."""
    write_config(tmp_path)
    async with gateway_process(tmp_path, "gateway", "--port", "0") as first:
        old_pid = first.process.pid
        async with gateway_process(
            tmp_path, "gateway", "--force", "--port", str(first.port)
        ) as second:
            assert f"force: stopped pid {old_pid}" in second.banner
            with trio.fail_after(10):
                assert await first.process.wait() == 0  # it got SIGTERM and stopped cleanly
            assert (await status(second.url))["gateway"]["pid"] == second.process.pid
            code, _ = await second.stop()
            assert code == 0


async def test_allow_multi_gateway_skips_the_config_lock(tmp_path: Path) -> None:
    """OPERATIONS.md D.1: SMART_AGENT_NEO_ALLOW_MULTI_GATEWAY=1 skips the file lock, so two
    gateways share one config (each on its own port); both stop cleanly."""
    write_config(tmp_path)
    multi = {"SMART_AGENT_NEO_ALLOW_MULTI_GATEWAY": "1"}
    async with (
        gateway_process(tmp_path, "gateway", "--port", "0", **multi) as first,
        gateway_process(tmp_path, "gateway", "--port", "0", **multi) as second,
    ):
        assert first.port != second.port
        for proc in (second, first):
            code, _ = await proc.stop()
            assert code == 0
            # OPERATIONS.md D.4's log lines for a stop
            await proc.wait_for("signal SIGTERM received")  # until read, or its output ended
            await proc.wait_for("received SIGTERM; shutting down")


async def test_force_never_kills_a_foreign_listener(tmp_path: Path) -> None:
    """FAILURE-MODES 2(c): an unrelated server is named and left alone."""
    write_config(tmp_path)
    squatter = await trio.lowlevel.open_process(
        [
            sys.executable,
            "-c",
            "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen();"
            "print(s.getsockname()[1], flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert squatter.stdout is not None
        port = int((await squatter.stdout.receive_some(64)).decode().strip())
        result = await trio.to_thread.run_sync(
            lambda: run_cli(tmp_path, "gateway", "--force", "--port", str(port))
        )
        assert result.returncode == 1  # as without --force (75 under a service manager)
        assert f"port {port} is held by pid {squatter.pid}" in result.stderr
        assert "not a smart-agent-neo gateway; not stopping it" in result.stderr
        assert squatter.poll() is None  # still running
    finally:
        squatter.kill()
        await squatter.wait()


async def test_port_held_by_another_gateway_of_ours_exits_78_when_supervised(
    tmp_path: Path,
) -> None:
    """FAILURE-MODES 2(a): a healthy instance of ours -> under a service manager the
    don't-restart exit code; from a terminal a plain failed start (1)."""
    write_config(tmp_path)
    other_home = tmp_path / "other"
    write_config(other_home)
    async with gateway_process(tmp_path, "gateway", "--port", "0") as proc:
        result = await trio.to_thread.run_sync(
            lambda: run_cli(
                other_home,
                "gateway",
                "--port",
                str(proc.port),
                SMART_AGENT_NEO_SERVICE_MARKER="smart-agent-neo",
            )
        )
        assert result.returncode == 78
        assert "held by a smart-agent-neo gateway" in result.stderr
        plain = await trio.to_thread.run_sync(
            lambda: run_cli(other_home, "gateway", "--port", str(proc.port))
        )
        assert plain.returncode == 1
        code, _ = await proc.stop()
        assert code == 0


WRITER = """
import sys
from pathlib import Path
from gateway.fsutil import write_atomic
path = Path(sys.argv[1])
a, b = Path(sys.argv[2]).read_text(), Path(sys.argv[3]).read_text()
print("ready", flush=True)
i = 0
while True:
    write_atomic(path, a if i % 2 else b, secret=True)
    i += 1
"""


async def test_kill_9_during_config_writes_leaves_old_or_new(tmp_path: Path) -> None:
    """FAILURE-MODES 9: a writer killed at random points never leaves a truncated file."""
    path = tmp_path / "smart-agent-neo.json"
    old = json.dumps({"gateway": {"mode": "local", "pad": "a" * 400_000}})
    new = json.dumps({"gateway": {"mode": "local", "pad": "b" * 400_000}})
    path.write_text(old)
    os.chmod(path, 0o600)
    (tmp_path / "a").write_text(old)
    (tmp_path / "b").write_text(new)
    rng = random.Random(1234)
    for _ in range(8):
        writer = await trio.lowlevel.open_process(
            [sys.executable, "-c", WRITER, str(path), str(tmp_path / "a"), str(tmp_path / "b")],
            stdout=subprocess.PIPE,
        )
        assert writer.stdout is not None
        assert (await writer.stdout.receive_some(16)).startswith(b"ready")
        # killing at a random moment is the point of this test: a delay, not a wait-for-event
        await trio.sleep(rng.uniform(0.001, 0.05))
        writer.kill()
        await writer.wait()
        content = path.read_text()
        assert content in (old, new), f"torn file of {len(content)} bytes"
        assert oct(path.stat().st_mode & 0o777) == oct(0o600)
